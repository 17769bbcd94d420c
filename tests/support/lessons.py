"""Lessons for the contract's tests: a valid one, valid edge cases, and one broken
lesson per rule of the lesson contract (each breaking exactly that rule).

The same corpus drives the gate's table test and the audit's run over stored rows.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

COURSE = "course_c84874"
OUTCOMES = [
    {"outcomeId": "O1", "outcomeTitle": "Use numerical skills in real-life contexts",
     "assessmentStandards": json.dumps([{"code": "AS1.1", "desc": "Interpreting a situation"},
                                        {"code": "AS1.2", "desc": "Selecting a strategy"}])},
    {"outcomeId": "O2", "outcomeTitle": "Interpret graphical data and probability",
     "assessmentStandards": json.dumps([{"code": "AS2.1", "desc": "Extracting data"}])},
]

RUBRIC = {"total_points": 2, "criteria": [
    {"description": "Chooses the right method for the question", "points": 1},
    {"description": "States the correct answer with units", "points": 1}]}


def card(number: int, cfu: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": f"card_{number:03d}",
        "title": f"Finding percentages, part {number}",
        "explainer": "To find $10\\%$ of an amount, divide it by 10. To find $30\\%$, find"
                     " $10\\%$ first and multiply by 3: $30\\%$ of £120 is $3 \\times 12 = 36$.",
        "explainer_plain": "To find 10 percent of an amount, divide it by 10. Then multiply"
                           " to get 20 or 30 percent.",
        "cfu": cfu or {"type": "mcq", "id": f"q{number:03d}",
                       "stem": "What is 10% of £80?", "options": ["£8", "£10", "£80"],
                       "answerIndex": 0, "rubric": copy.deepcopy(RUBRIC)},
        "misconceptions": [{"id": "MISC_MATH_PERCENT_001",
                            "misconception": "Dividing by 100 to find 10 percent",
                            "clarification": "10 percent is one tenth, so divide by 10."}],
    }


def numeric(number: int = 2, **changes: Any) -> dict[str, Any]:
    return {"type": "numeric", "id": f"q{number:03d}", "stem": "What is 25% of £16 in pounds?",
            "expected": 4, "tolerance": 0.01, "money2dp": True,
            "hints": ["Find 50% first by halving the amount.",
                      "Half of that is 25 percent of the amount.",
                      "Half of £8 is the answer you need."],
            "rubric": copy.deepcopy(RUBRIC), **changes}


def structured(number: int = 3, **changes: Any) -> dict[str, Any]:
    return {"type": "structured_response", "id": f"q{number:03d}",
            "stem": "A jacket costs £60 and is reduced by 30%. Find the sale price.",
            "rubric": copy.deepcopy(RUBRIC), **changes}


def valid_lesson() -> dict[str, Any]:
    return {
        "title": "Percentages of Amounts Without a Calculator",
        "lesson_type": "teach",
        "estMinutes": 50,
        "outcomeRefs": ["O1", "AS1.1", "AS1.2"],
        "engagement_tags": ["shopping", "finance"],
        "policy": {"calculator_allowed": False},
        "cards": [card(1), card(2, numeric()), card(3, structured())],
    }


def changed(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    lesson = valid_lesson()
    change(lesson)
    return lesson


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set `cards.0.cfu.options` (dotted, list indices as numbers) to value."""
    def change(lesson: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = lesson
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return change


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(lesson: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = lesson
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        del target[last]
    return change


def _many_cards(count: int) -> Callable[[dict[str, Any]], None]:
    def change(lesson: dict[str, Any]) -> None:
        lesson["cards"] = [card(n) for n in range(1, count + 1)]
    return change


@dataclass(frozen=True)
class Case:
    """A lesson breaking one rule; `where` is the violation's location, `says` part of it."""

    name: str
    lesson: dict[str, Any]
    where: str
    says: str
    #: Whether the broken lesson can be stored as a row at all (the audit's corpus).
    storable: bool = True


C0, CFU0, CFU1, CFU2 = "cards[0] (card_001)", "cards[0] (card_001).cfu", \
    "cards[1] (card_002).cfu", "cards[2] (card_003).cfu"
MIS0 = f"{C0}.misconceptions[0]"
LATEX_PLAIN = "Divide by 10 to find ten percent: \\frac{1}{10} of the amount, then multiply."

CORPUS = [
    # the lesson (row) level
    Case("title-short", changed(_set("title", "Percentages")), "title", "30-80"),
    Case("title-long", changed(_set("title", "P" * 81)), "title", "30-80"),
    # Text no store can hold (no UTF-8 for a lone surrogate; NUL) or that reads
    # otherwise than it is stored (a right-to-left override).
    Case("title-surrogate", changed(_set("title", "Percentages of amounts \ud800 by hand")),
         "title", "U+D800", storable=False),
    Case("title-nul", changed(_set("title", "Percentages of amounts \x00 by hand")),
         "title", "U+0000", storable=False),
    Case("stem-bidi-override", changed(_set("cards.0.cfu.stem", "What is 10% of \u202e08£?")),
         CFU0 + ".stem", "U+202E"),
    Case("lesson-type", changed(_set("lesson_type", "mock_assessment")), "lesson_type",
         "frontend rejects 'mock_assessment'"),
    Case("minutes-over", changed(_set("estMinutes", 121)), "estMinutes", "from 5 to 120"),
    Case("minutes-mock-over", changed(lambda x: x.update(lesson_type="mock_exam",
                                                           estMinutes=181)),
         "estMinutes", "from 5 to 180"),
    Case("minutes-under", changed(_set("estMinutes", 4)), "estMinutes", "from 5 to 120"),
    Case("minutes-text", changed(_set("estMinutes", "50")), "estMinutes", "got text"),
    Case("unknown-key", changed(_set("courseId", COURSE)), "courseId", "key not allowed",
         storable=False),
    Case("missing-key", changed(_drop("engagement_tags")), "engagement_tags", "missing",
         storable=False),
    Case("refs-not-list", changed(_set("outcomeRefs", "O1")), "outcomeRefs", "list of texts"),
    Case("refs-unknown-outcome", changed(_set("outcomeRefs", ["1", "AS1.1"])), "outcomeRefs[0]",
         "'1' is not an outcome id of the course (its outcome ids: O1, O2)"),
    Case("tags-not-texts", changed(_set("engagement_tags", [1])), "engagement_tags[0]",
         "got a number"),
    Case("policy-extra-key", changed(_set("policy", {"calculator_allowed": False,
                                                      "calculator_section": "non_calc"})),
         "policy.calculator_section", "key not allowed"),
    Case("policy-no-calculator", changed(_set("policy", {})), "policy.calculator_allowed",
         "missing"),
    Case("policy-calculator-text", changed(_set("policy", {"calculator_allowed": "no"})),
         "policy.calculator_allowed", "true or false"),
    Case("policy-notes-long", changed(_set("policy", {"calculator_allowed": False,
                                                       "assessment_notes": "n" * 501})),
         "policy.assessment_notes", "0-500"),
    # cards
    Case("no-cards", changed(_set("cards", [])), "cards", "1-20 cards"),
    Case("too-many-cards", changed(_many_cards(21)), "cards", "1-20 cards, has 21"),
    Case("card-id-order", changed(_set("cards.1.id", "card_003")), "cards[1] (card_003).id",
         "must be 'card_002'"),
    Case("card-level-rubric", changed(_set("cards.0.rubric", RUBRIC)), f"{C0}.rubric",
         "key not allowed"),
    Case("card-no-misconceptions-key", changed(_drop("cards.0.misconceptions")),
         f"{C0}.misconceptions", "missing"),
    Case("card-title-short", changed(_set("cards.0.title", "Percent")), f"{C0}.title", "10-100"),
    Case("card-title-long", changed(_set("cards.0.title", "T" * 101)), f"{C0}.title", "10-100"),
    Case("explainer-short", changed(_set("cards.0.explainer", "Divide by ten." * 5)),
         f"{C0}.explainer", "100-2000"),
    Case("explainer-long", changed(_set("cards.0.explainer", "x" * 2001)), f"{C0}.explainer",
         "100-2000"),
    Case("plain-short", changed(_set("cards.0.explainer_plain", "Divide by ten.")),
         f"{C0}.explainer_plain", "60-1600"),
    Case("plain-long", changed(_set("cards.0.explainer_plain", "p" * 1601)),
         f"{C0}.explainer_plain", "60-1600"),
    Case("plain-latex", changed(_set("cards.0.explainer_plain", LATEX_PLAIN)),
         f"{C0}.explainer_plain", "without LaTeX"),
    Case("no-misconception", changed(_set("cards.0.misconceptions", [])),
         f"{C0}.misconceptions", "1-3 misconceptions, has 0"),
    Case("four-misconceptions", changed(lambda x: x["cards"][0].update(
        misconceptions=x["cards"][0]["misconceptions"] * 4)), f"{C0}.misconceptions",
         "1-3 misconceptions, has 4"),
    Case("misconception-id", changed(_set("cards.0.misconceptions.0.id", "MISC_MATH_001")),
         f"{MIS0}.id", "MISC_MATH_PERCENT_001"),
    Case("misconception-id-digits", changed(_set("cards.0.misconceptions.0.id",
                                                 "MISC_MATH_P2_001")), f"{MIS0}.id", "letter-only"),
    Case("misconception-short", changed(_set("cards.0.misconceptions.0.misconception", "Wrong")),
         f"{MIS0}.misconception", "10-200"),
    Case("misconception-long", changed(_set("cards.0.misconceptions.0.misconception", "m" * 201)),
         f"{MIS0}.misconception", "10-200"),
    Case("clarification-short", changed(_set("cards.0.misconceptions.0.clarification", "No.")),
         f"{MIS0}.clarification", "20-300"),
    Case("clarification-long", changed(_set("cards.0.misconceptions.0.clarification", "c" * 301)),
         f"{MIS0}.clarification", "20-300"),
    Case("misconception-remediation", changed(_set("cards.0.misconceptions.0.remediation", "x")),
         f"{MIS0}.remediation", "key not allowed"),
    Case("hook-short", changed(_set("cards.0.context_hooks", ["Tesco"])),
         f"{C0}.context_hooks[0]", "10-100"),
    Case("hook-long", changed(_set("cards.0.context_hooks", ["h" * 101])),
         f"{C0}.context_hooks[0]", "10-100"),
    # questions
    Case("cfu-type", changed(_set("cards.2.cfu.type", "essay")), f"{CFU2}.type", "one of mcq"),
    Case("cfu-id", changed(_set("cards.0.cfu.id", "q1")), f"{CFU0}.id", "q001"),
    Case("stem-short", changed(_set("cards.0.cfu.stem", "10% of 80")), f"{CFU0}.stem", "10-500"),
    Case("stem-long", changed(_set("cards.0.cfu.stem", "s" * 501)), f"{CFU0}.stem", "10-500"),
    Case("structured-stem-long", changed(_set("cards.2.cfu.stem", "s" * 801)), f"{CFU2}.stem",
         "10-800"),
    Case("no-rubric", changed(_drop("cards.2.cfu.rubric")), f"{CFU2}.rubric", "missing"),
    Case("rubric-extra-key", changed(_set("cards.0.cfu.rubric.max", 2)), f"{CFU0}.rubric.max",
         "key not allowed"),
    Case("rubric-total-zero", changed(lambda x: x["cards"][0]["cfu"].update(rubric={
        "total_points": 0, "criteria": [{"description": "Any attempt at all", "points": 1}]})),
         f"{CFU0}.rubric.total_points", "from 1 to 20"),
    Case("rubric-no-criteria", changed(_set("cards.0.cfu.rubric.criteria", [])),
         f"{CFU0}.rubric.criteria", "1-5 criteria"),
    Case("rubric-six-criteria", changed(lambda x: x["cards"][0]["cfu"].update(rubric={
        "total_points": 6, "criteria": [{"description": "One step of the working", "points": 1}]
        * 6})), f"{CFU0}.rubric.criteria", "1-5 criteria, has 6"),
    Case("criterion-short", changed(_set("cards.0.cfu.rubric.criteria.0.description", "Method")),
         f"{CFU0}.rubric.criteria[0].description", "10-200"),
    Case("criterion-points-zero", changed(_set("cards.0.cfu.rubric.criteria.0.points", 0)),
         f"{CFU0}.rubric.criteria[0].points", "from 1 to 10"),
    Case("criterion-points-fraction", changed(_set("cards.0.cfu.rubric.criteria.0.points", 1.5)),
         f"{CFU0}.rubric.criteria[0].points", "whole number"),
    Case("rubric-sum", changed(_set("cards.0.cfu.rubric.total_points", 3)),
         f"{CFU0}.rubric.total_points", "add up to 2 (got 3)"),
    Case("mcq-two-options", changed(_set("cards.0.cfu.options", ["£8", "£10"])),
         f"{CFU0}.options", "3-5 items"),
    Case("mcq-six-options", changed(_set("cards.0.cfu.options", ["£8", "£10", "£80", "£1",
                                                                 "£2", "£3"])),
         f"{CFU0}.options", "3-5 items"),
    Case("mcq-blank-option", changed(_set("cards.0.cfu.options.2", "  ")),
         f"{CFU0}.options[2]", "blank"),
    Case("mcq-long-option", changed(_set("cards.0.cfu.options.2", "o" * 201)),
         f"{CFU0}.options[2]", "1-200"),
    Case("mcq-answer-range", changed(_set("cards.0.cfu.answerIndex", 3)), f"{CFU0}.answerIndex",
         "from 0 to 2"),
    Case("mcq-no-answer", changed(_drop("cards.0.cfu.answerIndex")), f"{CFU0}.answerIndex",
         "missing"),
    Case("mcq-indices-single", changed(_set("cards.0.cfu.answerIndices", [0])),
         f"{CFU0}.answerIndices", "multiSelect"),
    Case("multi-empty", changed(lambda x: x["cards"][0]["cfu"].update(
        multiSelect=True, answerIndices=[]) or x["cards"][0]["cfu"].pop("answerIndex")),
         f"{CFU0}.answerIndices", "non-empty"),
    Case("multi-repeat", changed(lambda x: x["cards"][0]["cfu"].update(
        multiSelect=True, answerIndices=[0, 0]) or x["cards"][0]["cfu"].pop("answerIndex")),
         f"{CFU0}.answerIndices", "repeat"),
    Case("multi-range", changed(lambda x: x["cards"][0]["cfu"].update(
        multiSelect=True, answerIndices=[0, 4]) or x["cards"][0]["cfu"].pop("answerIndex")),
         f"{CFU0}.answerIndices[1]", "from 0 to 2"),
    Case("multi-with-answer-index", changed(lambda x: x["cards"][0]["cfu"].update(
        multiSelect=True, answerIndices=[0, 1])), f"{CFU0}.answerIndex", "answerIndices only"),
    Case("multi-select-text", changed(_set("cards.0.cfu.multiSelect", "yes")),
         f"{CFU0}.multiSelect", "true or false"),
    Case("mcq-hints", changed(_set("cards.0.cfu.hints", ["a hint", "b", "c"])),
         f"{CFU0}.hints", "key not allowed"),
    Case("numeric-expected-text", changed(_set("cards.1.cfu.expected", "4")),
         f"{CFU1}.expected", "admin editor"),
    Case("numeric-expected-negative", changed(_set("cards.1.cfu.expected", -4)),
         f"{CFU1}.expected", "at least 0"),
    Case("numeric-no-tolerance", changed(_drop("cards.1.cfu.tolerance")), f"{CFU1}.tolerance",
         "missing"),
    Case("numeric-tolerance-high", changed(_set("cards.1.cfu.tolerance", 2)),
         f"{CFU1}.tolerance", "from 0 to 1"),
    Case("numeric-money-text", changed(_set("cards.1.cfu.money2dp", "yes")),
         f"{CFU1}.money2dp", "true or false"),
    Case("numeric-two-hints", changed(_set("cards.1.cfu.hints", ["Halve the amount first.",
                                                                 "Then halve it again."])),
         f"{CFU1}.hints", "3-5 items"),
    Case("numeric-short-hint", changed(_set("cards.1.cfu.hints.0", "Halve it")),
         f"{CFU1}.hints[0]", "10-200"),
    Case("numeric-options", changed(_set("cards.1.cfu.options", ["1", "2", "3"])),
         f"{CFU1}.options", "key not allowed"),
    Case("structured-hints", changed(_set("cards.2.cfu.hints", ["one hint that helps"] * 3)),
         f"{CFU2}.hints", "key not allowed"),
    Case("short-text-expected", changed(lambda x: x["cards"][2]["cfu"].update(
        type="short_text", expected="£42")), f"{CFU2}.expected", "key not allowed"),
]


def multi_select() -> dict[str, Any]:
    lesson = valid_lesson()
    cfu = lesson["cards"][0]["cfu"]
    del cfu["answerIndex"]
    cfu.update(stem="Select ALL correct answers: which are equal to one half?",
               options=["1/2", "2/4", "0.5", "2/3"], multiSelect=True, answerIndices=[0, 1, 2])
    return lesson


def mock_exam() -> dict[str, Any]:
    return {**valid_lesson(), "lesson_type": "mock_exam", "estMinutes": 180}


def unicode_lesson() -> dict[str, Any]:
    lesson = valid_lesson()
    lesson["title"] = "Ùine is Astar: Glaschu gu Dùn Èideann 🚆 (Gàidhlig)"
    lesson["cards"][0]["title"] = "Slighe ScotRail: Inbhir Nis → Peairt"
    lesson["cards"][0]["context_hooks"] = ["ScotRail fares between Inbhir Nis and Peairt"]
    return lesson


VALID = {
    "plain": valid_lesson(),
    "multi-select-mcq": multi_select(),
    "twenty-cards": changed(_many_cards(20)),
    "mock-exam-180-minutes": mock_exam(),
    "unicode": unicode_lesson(),
    "assessment-notes": changed(_set("policy", {"calculator_allowed": True,
                                                "assessment_notes": "Calculator allowed."})),
    "short-text": changed(lambda x: x["cards"][2]["cfu"].update(type="short_text")),
    "numeric-float-no-extras": changed(lambda x: x["cards"][1].update(cfu={
        k: v for k, v in numeric(expected=4.5).items() if k not in ("money2dp", "hints")})),
}
