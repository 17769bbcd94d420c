"""The outline author: a deterministic draft from the SOW entry, no model involved.

It exists for demos, CI and offline use. Its lessons are honest scaffolds, not
finished teaching material, but they pass the whole lesson contract: every
explainer carries the plan's real content (purpose, approach, worked example,
key concepts, standards; for legacy entries the label, notes and standards),
every card has 1-3 misconceptions (the plan's, else drawn from the standard
it addresses), and formative and mock lessons take the platform's layout (a
rules card, then question cards). Drafts carry their own `model_version`, so
they never count as agent-authored lessons, and the outline author never
replaces a lesson it did not write (see planning).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pytest_batchgen.authors import AuthoredLesson, AuthorMetrics, AuthorRequest
from pytest_batchgen.contract import CARDS, MINUTES, Lesson, card_id, cfu_id, check_rubric
from pytest_batchgen.entries import CardPlan, EntryView, PlannedMisconception, StandardRef
from pytest_batchgen.requirements import EntryRequirements

OUTLINE_MODEL_VERSION = "batchgen_outline"
ASSESSMENT_TYPES = ("formative_assessment", "mock_exam")
DEFAULT_BLOCKS = ("starter", "explainer", "guided_practice")
DEFAULT_MINUTES = 50
# calculator_section -> (the rules card's right option, its sentence).
CALCULATOR_RULES = {
    "calc": (0, "You may use a calculator."),
    "non_calc": (1, "You may not use a calculator."),
    "mixed": (2, "Use a calculator only where a question says you may."),
}
RULES = "rules"  # the card type of an assessment's first card

log = logging.getLogger(__name__)


class OutlineAuthor:
    """`LessonAuthor` that drafts deterministically from the entry."""

    name = "outline"
    model_version = OUTLINE_MODEL_VERSION
    any_row_counts = True
    uses_workspace = False
    #: (minutes, USD) per lesson for estimates before there is any history.
    default_estimate = (0.0, 0.0)
    #: Drafting takes no time to stop: the runner's cancellation is enough.
    stops_at_timeout = False

    def check_ready(self) -> None:
        """Needs nothing: this is what makes it the zero-setup author."""

    async def aclose(self) -> None:
        """Holds nothing across lessons."""

    async def author(self, request: AuthorRequest) -> AuthoredLesson:
        lesson = draft_lesson(request.entry.view, request.requirements)
        log.info("Draft outline ready: %s (%d cards)", lesson["title"], len(lesson["cards"]))
        return AuthoredLesson(lesson=lesson, metrics=AuthorMetrics(model="outline"))


# --- text that fits the contract ----------------------------------------------------


def _standards_text(standards: tuple[StandardRef, ...]) -> str:
    return " ".join(standard.text() for standard in standards)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?…:" else f"{text}."


def _fit(low: int, high: int, *parts: str) -> str:
    """The parts, in order, until the text is at least `low` long; cut at a word
    before `high`. Callers end `parts` with a fallback long enough on its own."""
    text = ""
    for part in parts:
        if part and len(text) < low:
            text = f"{text} {part}".strip()
    if len(text) > high:
        cut = text[: high - 1]
        at_word = cut.rsplit(" ", 1)[0].rstrip(",;:")
        text = (at_word if len(at_word) >= low else cut) + "…"  # a word longer than it all
    return text


def _plain(text: str) -> str:
    """Plain text for explainer_plain: no LaTeX the plan's text may hold."""
    return " ".join(re.sub(r"\\[A-Za-z]+|[$\\{}^]", " ", text).split())


def _letters(text: str, fallback: str) -> str:
    return re.sub(r"[^A-Z]", "", text.upper())[:24] or fallback


# --- card plans ---------------------------------------------------------------------


def _assessment_plans(view: EntryView) -> list[CardPlan]:
    """Formative and mock lessons without a card plan: a rules card, then one
    question card per standard assessed (the platform author's layout)."""
    standards = [standard.text() for standard in view.standards] or [
        view.label or "this unit"]
    questions = [
        CardPlan(number=number + 1, card_type="question", title=f"Question {number}: {text}",
                 purpose=f"Show what you can do for {text}.",
                 practice_problems=(f"Write one short real-life problem that tests {text}, then"
                                    " solve it. Show every step of your working and give the"
                                    " answer with its units.",),
                 standards=view.standards[number - 1: number])
        for number, text in enumerate(standards[: CARDS.high - 1], start=1)
    ]
    return [CardPlan(number=1, card_type=RULES), *questions]


def _block_plans(view: EntryView) -> list[CardPlan]:
    """Other legacy entries: one card per pedagogical block."""
    label = view.label or "this lesson"
    return [
        CardPlan(number=number, card_type=block,
                 title=f"{block.replace('_', ' ').title()}: {label}",
                 purpose=view.instruction or f"Work on {label}.",
                 pedagogical_approach=view.assessment_notes, standards=view.standards)
        for number, block in enumerate(
            (view.pedagogical_blocks or DEFAULT_BLOCKS)[:CARDS.high], start=1)
    ]


def card_plans(view: EntryView, lesson_type: str) -> list[CardPlan]:
    if view.cards:
        log.info("Drafting %d cards from lesson_plan.card_structure",
                 min(len(view.cards), CARDS.high))
        return list(view.cards[:CARDS.high])
    plans = (_assessment_plans(view) if lesson_type in ASSESSMENT_TYPES
             else _block_plans(view))
    log.info("Drafting %d cards from label, notes and standards (no card plan)", len(plans))
    return plans


# --- cards ----------------------------------------------------------------------------


class _Drafter:
    """Drafts one lesson's cards; numbers its misconceptions across the lesson."""

    def __init__(self, view: EntryView, requirements: EntryRequirements,
                 questions: int) -> None:
        self.view = view
        self.requirements = requirements
        self.label = view.label or "this lesson"
        #: How many question cards follow an assessment's rules card.
        self.questions = questions
        # Shared context that lengthens a sparse card with the lesson's own words.
        self.context = [_sentence(view.summary), _sentence(view.instruction)]
        self.misconceptions = 0

    def card(self, number: int, plan: CardPlan) -> dict[str, Any]:
        if plan.card_type == RULES:
            return self._rules_card(number)
        kind = (plan.card_type or "explainer").replace("_", " ").capitalize()
        title = plan.title or self.label
        if not title.lower().startswith(kind.lower()):
            title = f"{kind}: {title}"
        purpose = _sentence(plan.purpose) or f"Work on {self.label}."
        standards = plan.standards or self.view.standards
        parts = [
            purpose,
            _sentence(plan.pedagogical_approach),
            f"Worked example: {plan.worked_example}" if plan.worked_example else "",
            f"Key ideas: {', '.join(plan.key_concepts)}." if plan.key_concepts else "",
            f"Standards: {_standards_text(standards)}." if standards else "",
        ]
        explainer = _fit(100, 2000, " ".join(p for p in parts if p), *self.context,
                         f"This card is part of the lesson {self.label}: read it, then try the"
                         " question and check your working against the rubric.")
        plain = _fit(60, 1600, _plain(f"In this part: {purpose}"), _plain(plan.worked_example),
                     "Read each step slowly. Then try the question and show your working.")
        return {
            "id": card_id(number),
            "title": _fit(10, 100, title, "(outline)"),
            "explainer": explainer,
            "explainer_plain": plain,
            "cfu": self._question(number, plan, purpose),
            "misconceptions": self._misconceptions(plan, standards),
        }

    def _rules_card(self, number: int) -> dict[str, Any]:
        """The first card of an assessment: calculator policy, time, show working."""
        minutes = estimated_minutes(self.view, self.requirements)
        what = "mock exam" if self.requirements.lesson_type == "mock_exam" else "assessment"
        # The sentence and the right option follow the entry's calculator section.
        answer, calculator = CALCULATOR_RULES.get(self.view.calculator_section,
                                                  CALCULATOR_RULES["mixed"])
        count = self.questions
        rules = (f"This {what} has {count} question{'s' if count != 1 else ''} and takes about"
                 f" {minutes} minutes. {calculator} Show all your working: marks are given for"
                 " the method as well as the answer. Give units with every answer.")
        options = ["Yes, for every question", "No, not for any question",
                   "Only where a question says you may"]
        return {
            "id": card_id(number),
            "title": _fit(10, 100, f"Rules for this {what}: {self.label}"),
            "explainer": _fit(100, 2000, rules, _sentence(self.view.assessment_notes)),
            "explainer_plain": _fit(60, 1600, _plain(rules)),
            "cfu": {"type": "mcq", "id": cfu_id(number),
                    "stem": f"Can you use a calculator in this {what}?",
                    "options": options, "answerIndex": answer,
                    "rubric": _rubric(("Chooses the calculator rule stated for this"
                                       f" {what}", 1))},
            "misconceptions": [self._misconception(PlannedMisconception(
                "Thinking the method does not matter as long as the answer is right",
                "Marks are given for each correct step of working, so write every step"
                " even when you are sure of the answer."), "RULES")],
        }

    def _question(self, number: int, plan: CardPlan, purpose: str) -> dict[str, Any]:
        stem = (plan.practice_problems[0] if plan.practice_problems else None) or (
            f"{plan.cfu_strategy} {purpose}" if plan.cfu_strategy
            else f"Explain in your own words, with an example: {purpose}")
        return {
            "type": "structured_response",
            "id": cfu_id(number),
            "stem": _fit(10, 800, stem, "Show your working."),
            "rubric": self._marks(plan),
        }

    @staticmethod
    def _marks(plan: CardPlan) -> dict[str, Any]:
        """The plan's rubric guidance when the contract accepts it as a rubric, else
        marks for the method and for the answer."""
        if plan.rubric is not None:
            rubric = plan.rubric.document()
            if rubric["total_points"] is None:
                rubric["total_points"] = sum(points for _, points in plan.rubric.criteria)
            problems = check_rubric(rubric)
            if not problems:
                return rubric
            log.warning("Card %d: the plan's rubric_guidance is not a valid rubric (%s);"
                        " drafting marks for method and answer", plan.number, problems[0])
        return _rubric(("Chooses a suitable method and shows each step", 1),
                       ("Reaches a correct, clearly stated answer", 1))

    def _misconceptions(self, plan: CardPlan,
                        standards: tuple[StandardRef, ...]) -> list[dict[str, Any]]:
        topic = _letters(plan.card_type, "LESSON")
        if plan.misconceptions:
            return [self._misconception(m, topic) for m in plan.misconceptions[:3]]
        # No planned misconception: the classic slip for what the card assesses.
        about = standards[0].text() if standards else self.label
        return [self._misconception(PlannedMisconception(
            f"Believing {about} is only about the final answer",
            f"{about} is assessed on the method too: write each step, give units and check"
            " that the answer makes sense in the context."), topic)]

    def _misconception(self, planned: PlannedMisconception, topic: str) -> dict[str, Any]:
        self.misconceptions += 1
        return {
            "id": f"MISC_DRAFT_{topic}_{self.misconceptions:03d}",
            "misconception": _fit(10, 200, planned.misconception, "(common error)"),
            "clarification": _fit(20, 300, planned.remediation,
                                  "Compare each step with the worked example.",
                                  "Ask which step went wrong and why."),
        }


def _rubric(*criteria: tuple[str, int]) -> dict[str, Any]:
    return {"total_points": sum(points for _, points in criteria),
            "criteria": [{"description": text, "points": points} for text, points in criteria]}


def estimated_minutes(view: EntryView, requirements: EntryRequirements) -> int:
    """The entry's estMinutes, held within the platform's range for the lesson type."""
    minutes = view.est_minutes if view.est_minutes is not None else DEFAULT_MINUTES
    fitted = min(max(minutes, MINUTES.low), requirements.max_minutes)
    if fitted != view.est_minutes:
        log.warning("estMinutes %r is outside 5-%d for this lesson type; writing %d",
                    view.est_minutes, requirements.max_minutes, fitted)
    return fitted


def lesson_title(view: EntryView) -> str:
    return _fit(30, 80, view.label, f"({view.block_name})" if view.block_name else "",
                "(draft outline)", "- a lesson drafted from its scheme of work")


def draft_lesson(view: EntryView, requirements: EntryRequirements) -> Lesson:
    """A contract-valid draft of one SOW entry's lesson, deterministically."""
    lesson_type = requirements.lesson_type or "teach"
    plans = card_plans(view, lesson_type)
    drafter = _Drafter(view, requirements, questions=len(plans) - 1)
    return {
        "title": lesson_title(view),
        "lesson_type": lesson_type,
        "estMinutes": estimated_minutes(view, requirements),
        **requirements.facts(),
        "cards": [drafter.card(number, plan) for number, plan in enumerate(plans, start=1)],
    }
