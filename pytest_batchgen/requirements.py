"""What a lesson written for one SOW entry must carry from that entry and its course.

The contract (contract.py) says what any lesson must be; this module adds what
*this* lesson must be, as far as code can tell from the entry (read through
its `EntryView`, whatever shape it was written in): the outcome refs, resolved
against the course's `course_outcomes`; the lesson type as the platform spells
it; the calculator policy; the engagement tags; one card per planned card. It
is a pure function of the entry and the course's outcome rows, so the Claude
author's tool, the item's gate, the outline author and the audit all ask the
same thing.

What code can decide, code writes: `facts()` are the row's values taken from
the entry, and `apply()` puts them into whatever the author wrote, so a
transcription slip costs no model round. Authors are still told them (they
shape the content).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_batchgen.contract import (
    CARDS,
    LONG_LESSON_TYPES,
    LONG_MINUTES,
    MINUTES,
    PLATFORM_LESSON_TYPES,
    POLICY_NOTES,
    REF_TEXT,
    Lesson,
    Violation,
    check_lesson,
    check_outcome_ids,
    outcome_ids_of,
    row_lesson,
)
from pytest_batchgen.entries import EntryView, StandardRef

# Real SOWs use these too; the frontend's parser rejects them, so they are
# written as the closest type it accepts (the lesson log says so).
LESSON_TYPE_SUBSTITUTES = {
    "mock_assessment": "mock_exam",
    "summative_assessment": "mock_exam",
}
# How many of the course's names an unresolvable name is shown beside.
NEAREST = 3
# The row's values code takes from the entry, whatever the author wrote.
FACTS = ("outcomeRefs", "lesson_type", "policy", "engagement_tags")


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


def _name_key(name: str) -> str:
    """Skill and topic names: case and surrounding spaces aside (the contract's rule)."""
    return name.strip().casefold()


def _matches(ref: str, known: Mapping[str, str], key: Callable[[str], str]) -> set[str]:
    """The known values (`known` maps each to what it is matched by) that `ref` reads as."""
    if ref in known:
        return {ref}
    return {value for value, spelled in known.items() if key(spelled) == key(ref)}


def standard_codes_of(outcomes: list[dict[str, Any]]) -> frozenset[str]:
    """Every assessment standard code the course's outcome rows name."""
    codes = set()
    for outcome in outcomes:
        standards = outcome.get("assessmentStandards")
        if isinstance(standards, str):
            try:
                standards = json.loads(standards)
            except (ValueError, RecursionError):
                continue
        for standard in standards if isinstance(standards, list) else []:
            if isinstance(standard, dict) and standard.get("code"):
                codes.add(str(standard["code"]))
    return frozenset(codes)


def nearest(name: str, names: Iterable[str]) -> tuple[str, ...]:
    """The NEAREST names most like `name`, best first (ties alphabetically)."""
    def likeness(candidate: str) -> float:
        return difflib.SequenceMatcher(None, _name_key(name), _name_key(candidate)).ratio()

    return tuple(sorted(set(names), key=lambda candidate: (-likeness(candidate), candidate))
                 [:NEAREST])


@dataclass(frozen=True)
class Unresolved:
    """A name the entry gives that matches no outcome of the course, or several."""

    #: "outcome" (an outcome ref or a unit item's outcome) or "skill" (a skill or topic).
    kind: str
    name: str
    #: The course's ids or names nearest to it, or those it matches when several.
    nearest: tuple[str, ...]
    ambiguous: bool = False

    def __str__(self) -> str:
        shown = ", ".join(repr(name) for name in self.nearest) or "none"
        if self.ambiguous:
            return f"{self.kind} {self.name!r} matches several outcomes of the course ({shown})"
        names = "outcome ids" if self.kind == "outcome" else "skills and topics"
        return (f"{self.kind} {self.name!r} matches no outcome of the course (its nearest"
                f" {names}: {shown})")


@dataclass(frozen=True)
class RefResolution:
    """The entry's outcome refs, as the lesson must carry them."""

    #: Outcome ids, then standard codes, as the course spells them (resolved refs only).
    refs: tuple[str, ...]
    #: (as the SOW spells it, as written) for every outcome ref or code spelled differently.
    renamed: tuple[tuple[str, str], ...] = ()
    #: (name, outcome id) for every skill or topic the entry names.
    skills: tuple[tuple[str, str], ...] = ()
    #: Names that match no outcome of the course, or more than one.
    unresolved: tuple[Unresolved, ...] = ()
    #: Standard codes without a dot: the platform would look them up as outcome ids.
    dropped: tuple[str, ...] = ()
    #: Each standard or skill of the entry with the outcome id it resolved to ("" none).
    links: tuple[tuple[StandardRef, str], ...] = ()

    def log_lines(self) -> list[str]:
        """How each name became a ref: for the lesson log."""
        lines = [f"Outcome ref {old!r} resolved to {new!r}" for old, new in self.renamed]
        lines += [f"Skill {name!r} resolved to {ref!r}" for name, ref in self.skills]
        lines += [f"Standard code {code!r} left out of outcomeRefs: without a dot the"
                  " platform would look it up as an outcome id" for code in self.dropped]
        return lines + [f"Unresolvable: {problem}" for problem in self.unresolved]


class _Resolver:
    """Resolves one entry's names against one course's outcome rows."""

    def __init__(self, outcomes: list[dict[str, Any]]) -> None:
        self.ids = {str(o["outcomeId"]): str(o["outcomeId"]) for o in outcomes
                    if o.get("outcomeId")}
        # Skills-based courses: outcomeTitle is the skill's or topic's name.
        self.titles = {str(o["outcomeId"]): str(o["outcomeTitle"]) for o in outcomes
                       if o.get("outcomeId") and isinstance(o.get("outcomeTitle"), str)}
        self.codes = {code: code for code in standard_codes_of(outcomes)}
        self.renamed: list[tuple[str, str]] = []
        self.skills: list[tuple[str, str]] = []
        self.unresolved: list[Unresolved] = []

    def outcome(self, ref: str) -> str:
        found = self._one("outcome", ref, _matches(ref, self.ids, _ref_key), self.ids)
        if found and found != ref:
            self.renamed.append((ref, found))
        return found

    def skill(self, name: str) -> str:
        # By name; a SOW that names the id itself is taken at its word.
        matched = {name} if name in self.ids else _matches(name, self.titles, _name_key)
        found = self._one("skill", name, matched, self.titles)
        if found and found != name:
            self.skills.append((name, found))
        return found

    def code(self, code: str) -> str:
        found = _matches(code, self.codes, _code_key)
        resolved = found.pop() if len(found) == 1 else code  # an unknown code stays as spelled
        if resolved != code:
            self.renamed.append((code, resolved))
        return resolved

    def _one(self, kind: str, name: str, found: set[str], names: Mapping[str, str]) -> str:
        """The one match, or "" with the name recorded as unresolvable."""
        if len(found) == 1:
            return found.pop()
        if found:
            self.unresolved.append(Unresolved(kind, name, tuple(sorted(found)), ambiguous=True))
        else:
            self.unresolved.append(Unresolved(kind, name, nearest(name, names.values())))
        return ""


def resolve_refs(view: EntryView, outcomes: list[dict[str, Any]]) -> RefResolution:
    """The entry's outcome ids followed by its standard codes, as the platform's author
    writes them: each outcome (an old `outcomeRefs` id, a unit item's outcome) and each
    skill or topic (by name) as the course's outcome id, each code with a dot as the
    course spells it, where the match is unambiguous."""
    resolver = _Resolver(outcomes)
    ids: list[str] = []
    codes: list[str] = []
    dropped: list[str] = []
    links: list[tuple[StandardRef, str]] = []
    for standard in view.standards:
        linked = ""
        if standard.skill_name:
            linked = resolver.skill(standard.skill_name)
        elif standard.outcome:
            linked = resolver.outcome(standard.outcome)
        if linked:
            ids.append(linked)
        if standard.code:
            code = resolver.code(standard.code)
            if "." in code:
                codes.append(code)
            else:
                dropped.append(standard.code)
        links.append((standard, linked))
    return RefResolution(
        refs=tuple(dict.fromkeys([*ids, *codes])),
        renamed=tuple(dict.fromkeys(resolver.renamed)),
        skills=tuple(dict.fromkeys(resolver.skills)),
        unresolved=tuple(dict.fromkeys(resolver.unresolved)),
        dropped=tuple(dict.fromkeys(dropped)),
        links=tuple(links),
    )


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
    #: The entry's policy notes, written into the lesson's policy ("" for none).
    assessment_notes: str = ""
    engagement_tags: tuple[str, ...] = ()
    #: The CEFR level of the plain explainers ("B1"); "" for the platform's A2-B1.
    plain_language_level: str = ""

    @property
    def max_minutes(self) -> int:
        return (LONG_MINUTES if self.lesson_type in LONG_LESSON_TYPES else MINUTES).high

    @property
    def policy(self) -> dict[str, Any]:
        """The policy as the platform reads it: calculator_allowed, and the entry's notes."""
        policy: dict[str, Any] = {"calculator_allowed": self.calculator_allowed}
        if self.assessment_notes:
            policy["assessment_notes"] = self.assessment_notes
        return policy

    @property
    def problem(self) -> str:
        """Why no lesson can be written for the entry ("" when one can)."""
        if not self.refs.unresolved:
            return ""
        return ("its outcome refs cannot be resolved: "
                + "; ".join(map(str, self.refs.unresolved)))

    def facts(self) -> dict[str, Any]:
        """The row's values code takes from the entry, whatever the author wrote."""
        facts: dict[str, Any] = {"outcomeRefs": list(self.refs.refs), "policy": self.policy,
                                 "engagement_tags": list(self.engagement_tags)}
        if self.lesson_type is not None:
            facts["lesson_type"] = self.lesson_type
        return facts

    def apply(self, lesson: Any) -> tuple[Any, list[str]]:
        """The lesson with the entry's facts written in, and a line for each value the
        author had written otherwise; anything but an object is left for the contract
        to name."""
        if not isinstance(lesson, dict):
            return lesson, []
        facts = self.facts()
        changed = [f"{key}: the author wrote {json.dumps(lesson.get(key), ensure_ascii=False)};"
                   f" written from the entry: {json.dumps(value, ensure_ascii=False)}"
                   for key, value in facts.items() if key in lesson and lesson[key] != value]
        return {**lesson, **facts}, changed

    def document(self) -> dict[str, Any]:
        """What an author is told to write (the workspace's lesson_requirements.json)."""
        return {
            "outcomeRefs": list(self.refs.refs),
            "lesson_type": self.lesson_type,
            "policy": self.policy,
            "engagement_tags": list(self.engagement_tags),
            "cards": self.planned_cards,
            "estMinutes": f"5-{self.max_minutes}",
            "plain_language_level": f"CEFR {self.plain_language_level}"
            if self.plain_language_level else "CEFR A2-B1",
        }

    def check(self, lesson: Any) -> list[Violation]:
        """Every violation: the contract, the outcome ids, then fidelity to the entry."""
        found = check_lesson(lesson)
        if not isinstance(lesson, dict):
            return found
        found += check_outcome_ids(lesson.get("outcomeRefs"), self.outcome_ids)
        return found + self._fidelity(lesson)

    def check_row(self, row: Mapping[str, Any]) -> list[Violation]:
        """Every violation of a stored row: its columns, its lesson, the outcome ids, and
        fidelity to the entry (the audit); a column that did not decode is named once."""
        lesson, found, undecoded = row_lesson(row)
        found += [v for v in check_lesson(lesson) if v.where not in undecoded]
        found += check_outcome_ids(lesson.get("outcomeRefs"), self.outcome_ids)
        return found + [v for v in self._fidelity(lesson) if v.where not in undecoded]

    def _fidelity(self, lesson: Lesson) -> list[Violation]:
        found = [Violation("outcomeRefs", f"the entry's {problem}")
                 for problem in self.refs.unresolved]
        refs = lesson.get("outcomeRefs")
        # The platform links by each ref, not by their order.
        if not self.refs.unresolved and isinstance(refs, list) and (
                sorted(map(str, refs)) != sorted(self.refs.refs)):
            found.append(Violation("outcomeRefs", f"must be {list(self.refs.refs)}: the entry's"
                                   f" outcome ids, then its assessment standard codes (has"
                                   f" {refs})"))
        kind = lesson.get("lesson_type")
        if self.lesson_type and isinstance(kind, str) and kind != self.lesson_type:
            found.append(Violation("lesson_type", f"must be {self.lesson_type!r}, the entry's"
                                   f" lesson type (got {kind!r})"))
        policy = lesson.get("policy")
        allowed = policy.get("calculator_allowed") if isinstance(policy, dict) else None
        if isinstance(allowed, bool) and allowed != self.calculator_allowed:
            found.append(Violation("policy.calculator_allowed", f"must be"
                                   f" {json.dumps(self.calculator_allowed)}: calculator_allowed"
                                   " is true only for a calc lesson"))
        cards = lesson.get("cards")
        if self.planned_cards and isinstance(cards, list) and len(cards) != self.planned_cards:
            found.append(Violation("cards", f"must hold {self.planned_cards} cards, one per"
                                   " card of the entry's lesson_plan.card_structure, in order"
                                   f" (has {len(cards)})"))
        return found


def _policy_notes(view: EntryView) -> str:
    return view.assessment_notes if len(view.assessment_notes) <= POLICY_NOTES.high else ""


def requirements_for(view: EntryView, outcomes: list[dict[str, Any]]) -> EntryRequirements:
    lesson_type = platform_lesson_type(view.lesson_type)
    return EntryRequirements(
        outcome_ids=outcome_ids_of(outcomes),
        refs=resolve_refs(view, outcomes),
        lesson_type=lesson_type if lesson_type in PLATFORM_LESSON_TYPES else None,
        # The platform's author: calculator_allowed = (calculator_section == "calc").
        calculator_allowed=view.calculator_section == "calc",
        planned_cards=min(len(view.cards), CARDS.high) if view.cards else None,
        assessment_notes=_policy_notes(view),
        engagement_tags=tuple(dict.fromkeys(
            tag for tag in view.engagement_tags if len(tag) <= REF_TEXT.high)),
        plain_language_level=view.plain_language_level,
    )
