"""What a lesson written for one SOW entry must carry from that entry and its course.

The contract (contract.py) says what any lesson must be; this module adds what
*this* lesson must be, as far as code can tell from the entry: the outcome
refs, resolved against the course's `course_outcomes`; the lesson type as the
platform spells it; the calculator policy; one card per planned card. It is a
pure function of the entry and the course's outcome rows, so the Claude
author's tool, the item's gate and the outline author all ask the same thing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pytest_batchgen.contract import (
    LONG_LESSON_TYPES,
    PLATFORM_LESSON_TYPES,
    Lesson,
    Violation,
    check_lesson,
    check_outcome_ids,
    outcome_ids_of,
)

# Real SOWs use these too; the frontend's parser rejects them, so they are
# written as the closest type it accepts (the lesson log says so).
LESSON_TYPE_SUBSTITUTES = {
    "mock_assessment": "mock_exam",
    "summative_assessment": "mock_exam",
}
MAX_CARDS = 20


def platform_lesson_type(sow_type: str) -> str:
    return LESSON_TYPE_SUBSTITUTES.get(sow_type, sow_type)


def _ref_key(ref: str) -> str:
    """How a ref reads once spelling is set aside: "O1", "o1", "Outcome 01", "1" -> "1"."""
    text = re.sub(r"[\s_-]+", "", ref.upper())
    text = re.sub(r"^(OUTCOME|O)(?=\d)", "", text)
    return re.sub(r"(?<!\d)0+(?=\d)", "", text)


def _code_key(code: str) -> str:
    """Assessment standard codes: "AS1.1", "as 1.1", "1.1" -> "1.1"."""
    return re.sub(r"^AS(?=\d)", "", re.sub(r"\s+", "", code.upper()))


def _resolve(ref: str, known: frozenset[str], key: Any) -> str | None:
    """`ref` itself when known, else the one known value that reads the same."""
    if ref in known:
        return ref
    matches = {value for value in known if key(value) == key(ref)}
    return matches.pop() if len(matches) == 1 else None


def standard_codes_of(outcomes: list[dict[str, Any]]) -> frozenset[str]:
    """Every assessment standard code the course's outcome rows name."""
    codes = set()
    for outcome in outcomes:
        standards = outcome.get("assessmentStandards")
        if isinstance(standards, str):
            try:
                standards = json.loads(standards)
            except ValueError:
                continue
        for standard in standards if isinstance(standards, list) else []:
            if isinstance(standard, dict) and standard.get("code"):
                codes.add(str(standard["code"]))
    return frozenset(codes)


def as_list(value: Any) -> list[Any]:
    """An entry's list field as a list: hand-written SOWs put a lone value there too."""
    if isinstance(value, list):
        return value
    return [] if value in (None, "") else [value]


def _entry_standard_codes(entry: dict[str, Any]) -> list[str]:
    refs = as_list(entry.get("assessmentStandardRefs"))
    codes = [str(r.get("code") or "") if isinstance(r, dict) else str(r) for r in refs]
    # Refs with a dot that sit among the outcome refs are standard codes too.
    codes += [str(r) for r in as_list(entry.get("outcomeRefs")) if "." in str(r)]
    return [code for code in codes if code.strip()]


@dataclass(frozen=True)
class RefResolution:
    """The entry's outcome refs, as the lesson must carry them."""

    #: Outcome ids, then standard codes; an unresolved ref stays as the SOW spells it.
    refs: tuple[str, ...]
    #: (as the SOW spells it, as written) for every ref spelled differently.
    renamed: tuple[tuple[str, str], ...] = ()
    #: Outcome refs that match no outcome id of the course, or more than one.
    unresolved: tuple[str, ...] = ()
    #: Standard codes without a dot: the platform would look them up as outcome ids.
    dropped: tuple[str, ...] = ()

    def log_lines(self, outcome_ids: frozenset[str]) -> list[str]:
        lines = [f"Outcome ref {old!r} resolved to {new!r}" for old, new in self.renamed]
        lines += [f"Standard code {code!r} left out of outcomeRefs: without a dot the"
                  " platform would look it up as an outcome id" for code in self.dropped]
        known = ", ".join(sorted(outcome_ids)) or "none"
        lines += [f"Outcome ref {ref!r} matches no outcome id of the course (its outcome"
                  f" ids: {known})" for ref in self.unresolved]
        return lines


def resolve_refs(entry: dict[str, Any], outcomes: list[dict[str, Any]]) -> RefResolution:
    """The entry's outcome ids followed by its standard codes, as the platform's author
    writes them, each spelled as the course spells it where the match is unambiguous."""
    ids, codes = outcome_ids_of(outcomes), standard_codes_of(outcomes)
    refs: list[str] = []
    renamed: list[tuple[str, str]] = []
    unresolved: list[str] = []
    dropped: list[str] = []
    for ref in (str(r) for r in as_list(entry.get("outcomeRefs")) if "." not in str(r)):
        found = _resolve(ref, ids, _ref_key)
        if found is None:
            unresolved.append(ref)
        elif found != ref:
            renamed.append((ref, found))
        refs.append(found or ref)
    for code in _entry_standard_codes(entry):
        found = _resolve(code, codes, _code_key) or code
        if found != code:
            renamed.append((code, found))
        if "." in found:
            refs.append(found)
        else:
            dropped.append(code)
    return RefResolution(refs=tuple(dict.fromkeys(refs)), renamed=tuple(dict.fromkeys(renamed)),
                         unresolved=tuple(unresolved), dropped=tuple(dropped))


@dataclass(frozen=True)
class EntryRequirements:
    """The contract, plus what this entry asks of its lesson."""

    outcome_ids: frozenset[str]
    refs: RefResolution
    #: The entry's lesson type as the platform spells it; None when the platform
    #: has no such type (the contract then names the ones it has).
    lesson_type: str | None
    calculator_allowed: bool
    #: Cards the entry's `lesson_plan.card_structure` plans (None without a plan).
    planned_cards: int | None = None

    @property
    def max_minutes(self) -> int:
        return 180 if self.lesson_type in LONG_LESSON_TYPES else 120

    @property
    def policy(self) -> dict[str, bool]:
        """The policy as the platform reads it: calculator_allowed and nothing else."""
        return {"calculator_allowed": self.calculator_allowed}

    def document(self) -> dict[str, Any]:
        """What an author is told to write (the workspace's lesson_requirements.json)."""
        return {
            "outcomeRefs": list(self.refs.refs),
            "unresolved_outcome_refs": list(self.refs.unresolved),
            "course_outcome_ids": sorted(self.outcome_ids),
            "lesson_type": self.lesson_type,
            "policy": self.policy,
            "cards": self.planned_cards,
            "estMinutes": f"5-{self.max_minutes}",
        }

    def check(self, lesson: Any) -> list[Violation]:
        """Every violation: the contract, the outcome ids, then fidelity to the entry."""
        found = check_lesson(lesson)
        if not isinstance(lesson, dict):
            return found
        found += check_outcome_ids(lesson.get("outcomeRefs"), self.outcome_ids)
        return found + self._fidelity(lesson)

    def _fidelity(self, lesson: Lesson) -> list[Violation]:
        found = []
        refs = lesson.get("outcomeRefs")
        if not self.refs.unresolved and isinstance(refs, list) and tuple(refs) != self.refs.refs:
            found.append(Violation("outcomeRefs", f"must be {list(self.refs.refs)}: the entry's"
                                   " outcome ids, then its assessment standard codes"))
        kind = lesson.get("lesson_type")
        if self.lesson_type and isinstance(kind, str) and kind != self.lesson_type:
            found.append(Violation("lesson_type", f"must be {self.lesson_type!r}, the entry's"
                                   f" lesson type (got {kind!r})"))
        policy = lesson.get("policy")
        if isinstance(policy, dict) and policy != self.policy:
            found.append(Violation("policy", f"must be exactly {json.dumps(self.policy)}"
                                   " (calculator_allowed is true only for a calc lesson)"))
        cards = lesson.get("cards")
        if self.planned_cards and isinstance(cards, list) and len(cards) != self.planned_cards:
            found.append(Violation("cards", f"must hold {self.planned_cards} cards, one per"
                                   " card of the entry's lesson_plan.card_structure, in order"
                                   f" (has {len(cards)})"))
        return found


def requirements_for(entry: dict[str, Any], outcomes: list[dict[str, Any]]) -> EntryRequirements:
    plan = entry.get("lesson_plan")
    structure = plan.get("card_structure") if isinstance(plan, dict) else None
    policy = entry.get("policy")
    section = policy.get("calculator_section") if isinstance(policy, dict) else None
    lesson_type = platform_lesson_type(str(entry.get("lesson_type") or "teach"))
    return EntryRequirements(
        outcome_ids=outcome_ids_of(outcomes),
        refs=resolve_refs(entry, outcomes),
        lesson_type=lesson_type if lesson_type in PLATFORM_LESSON_TYPES else None,
        # The platform's author: calculator_allowed = (calculator_section == "calc").
        calculator_allowed=section == "calc",
        planned_cards=min(len(structure), MAX_CARDS)
        if isinstance(structure, list) and structure else None,
    )
