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
from pytest_batchgen.contract import Lesson
from pytest_batchgen.requirements import MAX_CARDS, EntryRequirements, as_list

OUTLINE_MODEL_VERSION = "batchgen_outline"
ASSESSMENT_TYPES = ("formative_assessment", "mock_exam")
DEFAULT_BLOCKS = ("starter", "explainer", "guided_practice")
# calculator_section -> (the rules card's right option, its sentence).
CALCULATOR_RULES = {
    "calc": (0, "You may use a calculator."),
    "non_calc": (1, "You may not use a calculator."),
    "mixed": (2, "Use a calculator only where a question says you may."),
}

log = logging.getLogger(__name__)


class OutlineAuthor:
    """`LessonAuthor` that drafts deterministically from the entry."""

    name = "outline"
    model_version = OUTLINE_MODEL_VERSION
    any_row_counts = True
    uses_workspace = False
    #: (minutes, USD) per lesson for estimates before there is any history.
    default_estimate = (0.0, 0.0)

    def check_ready(self) -> None:
        """Needs nothing: this is what makes it the zero-setup author."""

    async def aclose(self) -> None:
        """Holds nothing across lessons."""

    async def author(self, request: AuthorRequest) -> AuthoredLesson:
        lesson = draft_lesson(request.entry.data, request.requirements)
        log.info("Draft outline ready: %s (%d cards)", lesson["title"], len(lesson["cards"]))
        return AuthoredLesson(lesson=lesson, metrics=AuthorMetrics(model="outline"))


# --- text that fits the contract ----------------------------------------------------


def _text(value: Any) -> str:
    """Plan fields are text, lists of text, or standard objects: one line of text."""
    if isinstance(value, list):
        return " ".join(part for part in (_text(v) for v in value) if part)
    if isinstance(value, dict):
        code, description = value.get("code"), value.get("description") or value.get("desc")
        return f"{code}: {description}" if code and description else str(code or description or "")
    return " ".join(str(value or "").split())


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


def _standards(entry: dict[str, Any]) -> list[Any]:
    return as_list(entry.get("assessmentStandardRefs"))


def _assessment_specs(entry: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """Formative and mock lessons without a card plan: a rules card, then one
    question card per standard assessed (the platform author's layout)."""
    standards = _standards(entry) or [entry.get("label") or "this unit"]
    questions = [
        {"card_type": "question", "title": f"Question {number}: {_text(standard)}",
         "purpose": f"Show what you can do for {_text(standard)}.",
         "stem": f"Write one short real-life problem that tests {_text(standard)}, then solve"
                 " it. Show every step of your working and give the answer with its units.",
         "standards_addressed": [standard]}
        for number, standard in enumerate(standards[: MAX_CARDS - 1], start=1)
    ]
    return [{"card_type": "rules", "question_count": len(questions), "kind": kind}, *questions]


def _block_specs(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Other legacy entries: one card per pedagogical block."""
    notes = _text(entry.get("notes") or entry.get("lesson_instruction"))
    policy = entry.get("policy") if isinstance(entry.get("policy"), dict) else {}
    focus = _text(policy.get("assessment_notes")) if policy else ""
    label = _text(entry.get("label")) or "this lesson"
    return [
        {"card_type": block, "title": f"{str(block).replace('_', ' ').title()}: {label}",
         "purpose": notes or f"Work on {label}.", "pedagogical_approach": focus,
         "standards_addressed": _standards(entry)}
        for block in (as_list(entry.get("pedagogical_blocks")) or DEFAULT_BLOCKS)[:MAX_CARDS]
    ]


def card_specs(entry: dict[str, Any], lesson_type: str) -> list[dict[str, Any]]:
    plan = entry.get("lesson_plan") if isinstance(entry.get("lesson_plan"), dict) else {}
    structure = plan.get("card_structure") if plan else None
    if isinstance(structure, list) and structure:
        log.info("Drafting %d cards from lesson_plan.card_structure",
                 min(len(structure), MAX_CARDS))
        return [spec if isinstance(spec, dict) else {"purpose": _text(spec)}
                for spec in structure[:MAX_CARDS]]
    specs = (_assessment_specs(entry, lesson_type) if lesson_type in ASSESSMENT_TYPES
             else _block_specs(entry))
    log.info("Drafting %d cards from label, notes and standards (no card plan)", len(specs))
    return specs


# --- cards ----------------------------------------------------------------------------


class _Drafter:
    """Drafts one lesson's cards; numbers its misconceptions across the lesson."""

    def __init__(self, entry: dict[str, Any], requirements: EntryRequirements) -> None:
        self.entry = entry
        self.requirements = requirements
        self.label = _text(entry.get("label")) or "this lesson"
        plan = entry.get("lesson_plan") if isinstance(entry.get("lesson_plan"), dict) else {}
        # Shared context that lengthens a sparse card with the lesson's own words.
        self.context = [_sentence(_text(plan.get("summary"))) if plan else "",
                        _sentence(_text(entry.get("lesson_instruction") or entry.get("notes")))]
        self.misconceptions = 0

    def card(self, number: int, spec: dict[str, Any]) -> dict[str, Any]:
        if spec.get("card_type") == "rules":
            return self._rules_card(number, spec)
        kind = str(spec.get("card_type") or "explainer").replace("_", " ").capitalize()
        title = _text(spec.get("title")) or self.label
        if not title.lower().startswith(kind.lower()):
            title = f"{kind}: {title}"
        purpose = _sentence(_text(spec.get("purpose"))) or f"Work on {self.label}."
        standards = as_list(spec.get("standards_addressed")) or _standards(self.entry)
        parts = [
            purpose,
            _sentence(_text(spec.get("pedagogical_approach"))),
            f"Worked example: {_text(spec.get('worked_example'))}"
            if spec.get("worked_example") else "",
            f"Key ideas: {_text(spec.get('key_concepts'))}." if spec.get("key_concepts") else "",
            f"Standards: {_text(standards)}." if standards else "",
        ]
        explainer = _fit(100, 2000, " ".join(p for p in parts if p), *self.context,
                         f"This card is part of the lesson {self.label}: read it, then try the"
                         " question and check your working against the rubric.")
        plain = _fit(60, 1600, _plain(f"In this part: {purpose}"),
                     _plain(_text(spec.get("worked_example"))),
                     "Read each step slowly. Then try the question and show your working.")
        return {
            "id": f"card_{number:03d}",
            "title": _fit(10, 100, title, "(outline)"),
            "explainer": explainer,
            "explainer_plain": plain,
            "cfu": self._question(number, spec, purpose),
            "misconceptions": self._misconceptions(spec, standards),
        }

    def _rules_card(self, number: int, spec: dict[str, Any]) -> dict[str, Any]:
        """The first card of an assessment: calculator policy, time, show working."""
        minutes = estimated_minutes(self.entry, self.requirements)
        what = "mock exam" if spec["kind"] == "mock_exam" else "assessment"
        policy = self.entry.get("policy") if isinstance(self.entry.get("policy"), dict) else {}
        # The sentence and the right option follow the entry's calculator section.
        answer, calculator = CALCULATOR_RULES.get(
            str(policy.get("calculator_section")) if policy else "", CALCULATOR_RULES["mixed"])
        count = spec["question_count"]
        rules = (f"This {what} has {count} question{'s' if count != 1 else ''} and takes about"
                 f" {minutes} minutes. {calculator} Show all your working: marks are given for"
                 " the method as well as the answer. Give units with every answer.")
        notes = _sentence(_text(policy.get("assessment_notes"))) if policy else ""
        options = ["Yes, for every question", "No, not for any question",
                   "Only where a question says you may"]
        return {
            "id": f"card_{number:03d}",
            "title": _fit(10, 100, f"Rules for this {what}: {self.label}"),
            "explainer": _fit(100, 2000, rules, notes),
            "explainer_plain": _fit(60, 1600, _plain(rules)),
            "cfu": {"type": "mcq", "id": f"q{number:03d}",
                    "stem": f"Can you use a calculator in this {what}?",
                    "options": options, "answerIndex": answer,
                    "rubric": _rubric(("Chooses the calculator rule stated for this"
                                       f" {what}", 1))},
            "misconceptions": [self._misconception(
                "Thinking the method does not matter as long as the answer is right",
                "Marks are given for each correct step of working, so write every step"
                " even when you are sure of the answer.", "RULES")],
        }

    def _question(self, number: int, spec: dict[str, Any], purpose: str) -> dict[str, Any]:
        problems = [_text(p) for p in as_list(spec.get("practice_problems")) if _text(p)]
        stem = spec.get("stem") or (problems[0] if problems else None) or (
            f"{_text(spec.get('cfu_strategy'))} {purpose}" if spec.get("cfu_strategy")
            else f"Explain in your own words, with an example: {purpose}")
        return {
            "type": "structured_response",
            "id": f"q{number:03d}",
            "stem": _fit(10, 800, stem, "Show your working."),
            "rubric": _rubric(("Chooses a suitable method and shows each step", 1),
                              ("Reaches a correct, clearly stated answer", 1)),
        }

    def _misconceptions(self, spec: dict[str, Any], standards: list[Any]) -> list[dict[str, Any]]:
        topic = _letters(str(spec.get("card_type") or ""), "LESSON")
        planned = [m for m in as_list(spec.get("misconceptions_addressed"))
                   if _text(m.get("misconception") if isinstance(m, dict) else m)]
        if planned:
            return [self._misconception(
                _text(m.get("misconception") if isinstance(m, dict) else m),
                _text(m.get("clarification") or m.get("remediation"))
                if isinstance(m, dict) else "", topic) for m in planned[:3]]
        # No planned misconception: the classic slip for what the card assesses.
        return [self._misconception(
            f"Believing {_text(standard)} is only about the final answer",
            f"{_text(standard)} is assessed on the method too: write each step, give units"
            " and check that the answer makes sense in the context.", topic)
            for standard in (standards or [self.label])[:1]]

    def _misconception(self, text: str, clarification: str, topic: str) -> dict[str, Any]:
        self.misconceptions += 1
        return {
            "id": f"MISC_DRAFT_{topic}_{self.misconceptions:03d}",
            "misconception": _fit(10, 200, text, "(common error)"),
            "clarification": _fit(20, 300, clarification,
                                  "Compare each step with the worked example.",
                                  "Ask which step went wrong and why."),
        }


def _rubric(*criteria: tuple[str, int]) -> dict[str, Any]:
    return {"total_points": sum(points for _, points in criteria),
            "criteria": [{"description": text, "points": points} for text, points in criteria]}


def estimated_minutes(entry: dict[str, Any], requirements: EntryRequirements) -> int:
    """The entry's estMinutes, held within the platform's range for the lesson type."""
    raw = entry.get("estMinutes")
    minutes = raw if isinstance(raw, int) and not isinstance(raw, bool) else 50
    fitted = min(max(minutes, 5), requirements.max_minutes)
    if fitted != raw:
        log.warning("estMinutes %r is outside 5-%d for this lesson type; writing %d",
                    raw, requirements.max_minutes, fitted)
    return fitted


def lesson_title(entry: dict[str, Any]) -> str:
    label = _text(entry.get("label"))
    coherence = entry.get("coherence") if isinstance(entry.get("coherence"), dict) else {}
    block = _text(coherence.get("block_name")) if coherence else ""
    return _fit(30, 80, label, f"({block})" if block else "", "(draft outline)",
                "- a lesson drafted from its scheme of work")


def engagement_tags(entry: dict[str, Any]) -> list[str]:
    """The entry's tags; a blank one, or one longer than a tag (100), is left out."""
    tags = [str(tag).strip() for tag in as_list(entry.get("engagement_tags"))]
    kept = [tag for tag in tags if 0 < len(tag) <= 100]
    if len(kept) < len(tags):
        log.warning("%d engagement tag(s) left out: blank or over 100 characters",
                    len(tags) - len(kept))
    return kept


def draft_lesson(entry: dict[str, Any], requirements: EntryRequirements) -> Lesson:
    """A contract-valid draft of one SOW entry's lesson, deterministically."""
    sow_type = str(entry.get("lesson_type") or "teach")
    lesson_type = requirements.lesson_type or "teach"
    if lesson_type != sow_type:
        log.warning("lesson_type %r is not a type the platform's frontend accepts; writing %r",
                    sow_type, lesson_type)
    drafter = _Drafter(entry, requirements)
    specs = card_specs(entry, lesson_type)
    return {
        "title": lesson_title(entry),
        "lesson_type": lesson_type,
        "estMinutes": estimated_minutes(entry, requirements),
        "outcomeRefs": list(requirements.refs.refs),
        "engagement_tags": engagement_tags(entry),
        "policy": requirements.policy,
        "cards": [drafter.card(number, spec) for number, spec in enumerate(specs, start=1)],
    }
