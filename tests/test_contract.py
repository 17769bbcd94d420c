"""The lesson contract as tables: one broken lesson per rule, valid edge cases, outcome
refs, fidelity to the entry, and stored rows as the audit reads them."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest

from pytest_batchgen.contract import (
    MAX_CARDS_JSON,
    check_lesson,
    check_outcome_ids,
    check_row,
    outcome_ids_of,
)
from pytest_batchgen.entries import read_entry
from pytest_batchgen.lesson import encode_cards
from pytest_batchgen.requirements import requirements_for, resolve_refs
from tests.support.lessons import CORPUS, OUTCOMES, VALID, Case, valid_lesson
from tests.support.rows import row_columns

OUTCOME_IDS = outcome_ids_of(OUTCOMES)


def contract(lesson: Any) -> list[str]:
    found = check_lesson(lesson) + check_outcome_ids(
        lesson.get("outcomeRefs") if isinstance(lesson, dict) else None, OUTCOME_IDS)
    return [str(v) for v in found]


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_each_rule_is_named_where_it_is_broken(case: Case) -> None:
    violations = check_lesson(case.lesson) + check_outcome_ids(case.lesson.get("outcomeRefs"),
                                                               OUTCOME_IDS)
    assert [v.where for v in violations] == [case.where], violations
    assert case.says in violations[0].rule


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_edge_cases_pass(name: str) -> None:
    assert contract(VALID[name]) == []


def test_every_violation_is_reported_at_once() -> None:
    lesson = valid_lesson()
    lesson["title"] = "Short"
    lesson["extra"] = 1
    first, second, third = lesson["cards"]
    first["misconceptions"] = []
    first["explainer"] = "Too short to teach anything."
    second["cfu"]["expected"] = "4"
    third["cfu"]["rubric"]["criteria"][0]["description"] = "Method"
    third["cfu"]["rubric"]["total_points"] = 5  # and the points no longer add up
    found = contract(lesson)
    assert len(found) == 7, found
    assert "cards[2] (card_003).cfu.rubric.total_points: must equal the criteria's points," \
           " which add up to 2 (got 5)" in found


def test_not_a_lesson_at_all() -> None:
    assert contract([]) == ["lesson: must be an object, got a list"]
    found = contract({"title": "x" * 40})
    assert {v.split(":")[0] for v in found} == {"lesson_type", "estMinutes", "outcomeRefs",
                                                "engagement_tags", "policy", "cards"}


# --- outcome refs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome_refs", "standards", "refs", "renamed", "unresolved"),
    [
        (["O1"], [{"code": "AS1.1"}], ["O1", "AS1.1"], [], []),
        (["1"], ["1.1", "1.2"], ["O1", "AS1.1", "AS1.2"],
         [("1", "O1"), ("1.1", "AS1.1"), ("1.2", "AS1.2")], []),
        (["o2", "Outcome 1"], [], ["O2", "O1"], [("o2", "O2"), ("Outcome 1", "O1")], []),
        (["O01"], ["AS9.9"], ["O1", "AS9.9"], [("O01", "O1")], []),  # unknown codes stay
        (["7"], [], [], [], ["7"]),  # unresolvable: no ref for it, and no lesson
        (["1", "1"], [], ["O1"], [("1", "O1")], []),
        ([], [], [], [], []),  # an entry with no outcome: nothing for session start to find
        (["O1", "AS1.2"], [], ["O1", "AS1.2"], [], []),  # a code among the outcome refs
    ],
)
def test_outcome_refs_resolve_when_the_match_is_unambiguous(
    outcome_refs: list[str], standards: list[Any], refs: list[str],
    renamed: list[tuple[str, str]], unresolved: list[str],
) -> None:
    entry = {"order": 1, "outcomeRefs": outcome_refs, "assessmentStandardRefs": standards}
    resolution = resolve_refs(read_entry(entry), OUTCOMES)
    assert list(resolution.refs) == refs
    assert list(resolution.renamed) == renamed
    assert [problem.name for problem in resolution.unresolved] == unresolved


def test_an_ambiguous_ref_is_not_guessed() -> None:
    outcomes = [*OUTCOMES, {"outcomeId": "01"}]  # "1" could be O1 or 01
    [problem] = resolve_refs(read_entry({"order": 1, "outcomeRefs": ["1"]}), outcomes).unresolved
    assert (problem.name, problem.ambiguous, problem.nearest) == ("1", True, ("01", "O1"))


def test_a_standard_code_without_a_dot_is_left_out() -> None:
    outcomes = [{"outcomeId": "SKILL_SURDS", "assessmentStandards": '[{"code": "AS1"}]'}]
    resolution = resolve_refs(read_entry({"order": 1, "outcomeRefs": ["SKILL_SURDS"],
                                          "assessmentStandardRefs": [{"code": "AS1"}]}),
                              outcomes)
    assert resolution.refs == ("SKILL_SURDS",) and resolution.dropped == ("AS1",)
    assert "would look it up as an outcome id" in resolution.log_lines()[0]


# --- what the entry asks of its lesson ---------------------------------------------------------


ENTRY = {"order": 1, "label": "Percentages", "lesson_type": "teach",
         "policy": {"calculator_section": "non_calc"}, "outcomeRefs": ["O1"],
         "assessmentStandardRefs": [{"code": "AS1.1"}, {"code": "AS1.2"}],
         "lesson_plan": {"card_structure": [{"card_number": n} for n in (1, 2, 3)]}}


@pytest.mark.parametrize(
    ("entry", "change", "says"),
    [
        (ENTRY, {"outcomeRefs": ["O1", "AS1.1"]}, "outcomeRefs: must be ['O1', 'AS1.1', 'AS1.2']"),
        (ENTRY, {"lesson_type": "revision"}, "lesson_type: must be 'teach'"),
        (ENTRY, {"policy": {"calculator_allowed": True}}, "policy.calculator_allowed: must be"
         " false: calculator_allowed is true only for a calc lesson"),
        ({**ENTRY, "lesson_plan": {"card_structure": [{}, {}]}}, {},
         "cards: must hold 2 cards, one per card of the entry's lesson_plan.card_structure"),
        ({**ENTRY, "lesson_type": "summative_assessment"}, {}, "lesson_type: must be 'mock_exam'"),
    ],
)
def test_the_gate_holds_the_lesson_to_its_entry(entry: dict[str, Any], change: dict[str, Any],
                                                says: str) -> None:
    found = [str(v) for v in requirements_for(read_entry(entry), OUTCOMES).check({**valid_lesson(),
                                                                      **change})]
    assert len(found) == 1 and found[0].startswith(says), found


def test_the_facts_of_the_entry_are_written_by_code() -> None:
    entry = {**ENTRY, "engagement_tags": ["ScotRail fares", ""],
             "policy": {"calculator_section": "calc", "assessment_notes": "Show working."}}
    requirements = requirements_for(read_entry(entry), OUTCOMES)
    typed = {**valid_lesson(), "outcomeRefs": ["O2"], "lesson_type": "revision",
             "policy": {"calculator_allowed": False}, "engagement_tags": ["shopping"]}
    lesson, corrected = requirements.apply(typed)
    assert {key: lesson[key] for key in ("outcomeRefs", "lesson_type", "policy",
                                         "engagement_tags")} == {
        "outcomeRefs": ["O1", "AS1.1", "AS1.2"], "lesson_type": "teach",
        "policy": {"calculator_allowed": True, "assessment_notes": "Show working."},
        "engagement_tags": ["ScotRail fares"]}
    assert [line.split(":")[0] for line in corrected] == [
        "outcomeRefs", "policy", "engagement_tags", "lesson_type"]
    assert requirements.check(lesson) == []
    # What the author wrote that the entry does not decide is the author's.
    assert lesson["cards"] == typed["cards"] and lesson["title"] == typed["title"]


def test_calculator_allowed_only_for_calc() -> None:
    sections = {section: requirements_for(
                    read_entry({**ENTRY, "policy": {"calculator_section": section}}),
                    OUTCOMES).policy
                for section in ("calc", "non_calc", "mixed", "exam_conditions")}
    assert sections == {"calc": {"calculator_allowed": True},
                        "non_calc": {"calculator_allowed": False},
                        "mixed": {"calculator_allowed": False},
                        "exam_conditions": {"calculator_allowed": False}}


def test_an_unresolved_ref_is_named_with_the_course_ids() -> None:
    requirements = requirements_for(read_entry({**ENTRY, "outcomeRefs": ["X"]}), OUTCOMES)
    lesson = {**valid_lesson(), "outcomeRefs": ["X", "AS1.1", "AS1.2"]}
    assert [str(v) for v in requirements.check(lesson)] == [
        "outcomeRefs[0]: 'X' is not an outcome id of the course (its outcome ids: O1, O2);"
        " a learner's session would not start",
        "outcomeRefs: the entry's outcome 'X' matches no outcome of the course (its nearest"
        " outcome ids: 'O1', 'O2')"]
    assert requirements.problem.startswith("its outcome refs cannot be resolved: outcome 'X'")


# --- stored rows -----------------------------------------------------------------------------


def test_a_valid_stored_row_passes() -> None:
    assert check_row(row_columns(valid_lesson(), 1), OUTCOME_IDS) == []


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"cards": "H4sInot-really-gzip"}, "cards: cards cannot be decoded"),
        # A gzip bomb: inflated no further than any lesson could be, whatever it holds.
        ({"cards": base64.b64encode(gzip.compress(b"[" + b" " * (MAX_CARDS_JSON + 1) + b"]"))
          .decode()}, f"cards: cards inflate past {MAX_CARDS_JSON} bytes"),
        ({"cards": "[" + " " * MAX_CARDS_JSON + "]"}, "cards: cards take 2000002 characters"),
        ({"cards": encode_cards({"a": 1})}, "cards: cards do not decode to a list"),  # type: ignore[arg-type]
        ({"policy": "{calculator_allowed: false"}, "policy: must be the JSON text of a policy"),
        ({"outcomeRefs": None}, "outcomeRefs: must be the JSON text of a list"),
        ({"status": "archived"}, "status: must be one of draft, review, published"),
        ({"sow_order": 1001}, "sow_order: must be a whole number from 1 to 1000"),
        ({"model_version": "m" * 51}, "model_version: must be 0-50 characters"),
        ({"lesson_type": "summative_assessment"}, "lesson_type: must be one of"),
        ({"outcomeRefs": json.dumps(["1", "1.1"])}, "outcomeRefs[0]: '1' is not an outcome id"),
    ],
)
def test_a_broken_stored_row_is_named(change: dict[str, Any], says: str) -> None:
    found = [str(v) for v in check_row({**row_columns(valid_lesson(), 1), **change}, OUTCOME_IDS)]
    assert len(found) == 1 and found[0].startswith(says), found


@pytest.mark.parametrize(("path", "value", "where"), [
    (("cards", 0, "cfu", "id"), "q001\n", "cards[0] (card_001).cfu.id"),
    (("cards", 0, "cfu", "id"), "q٠٠١", "cards[0] (card_001).cfu.id"),
    (("cards", 0, "misconceptions", 0, "id"), "MISC_MATH_PERCENT_001\n",
     "cards[0] (card_001).misconceptions[0].id"),
])
def test_ids_match_whole_and_in_ascii(path: tuple[str | int, ...], value: str,
                                      where: str) -> None:
    # `$` also matches before a final newline, and `\d` any script's digits.
    lesson = valid_lesson()
    parent: Any = lesson
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    assert [v.split(":")[0] for v in contract(lesson)] == [where]
