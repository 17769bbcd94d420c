"""What a SOW entry asks of its lesson, read once from whichever shape it was written in.

Stored SOWs hold three entry shapes (the lesson contract, "Entries in every
shape the platform writes"):

- legacy: `outcomeRefs` such as `"1"`, `assessmentStandardRefs` as strings, no
  card plan (`pedagogical_blocks` and `notes` instead);
- current: `outcomeRefs` plus `assessmentStandardRefs` as `{code, description,
  outcome}`, and a card plan;
- unified, what the platform's SOW author writes now:
  `standards_or_skills_addressed`, a list of `{code?, outcome?, skill_name?,
  description}` (unit-based courses name codes and outcomes, skills-based ones
  skill names), with the deprecated fields absent or still beside it.

`read_entry` turns any of them into one `EntryView`. Everything that needs to
know what an entry asks (its requirements, both authors, the critic, the
dry-run plan, the audit) reads the view, never the raw keys, so a new shape is
taught here once. Entries are written by people and by other generators: the
reading is lenient (a lone value where a list belongs, a number where text
belongs), and what it cannot read it leaves out rather than failing the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EntryShape(StrEnum):
    LEGACY = "legacy"
    CURRENT = "current"
    UNIFIED = "unified"


def as_list(value: Any) -> list[Any]:
    """An entry's list field as a list: hand-written SOWs put a lone value there too."""
    if isinstance(value, list):
        return value
    return [] if value in (None, "") else [value]


def text_of(value: Any) -> str:
    """A field as one line of text (numbers and lists of text included)."""
    if isinstance(value, list):
        return " ".join(part for part in (text_of(v) for v in value) if part)
    if isinstance(value, dict) or value is None or isinstance(value, bool):
        return ""
    return " ".join(str(value).split())


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(text for text in (text_of(v) for v in as_list(value)) if text)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class StandardRef:
    """One standard or skill that an entry (or one of its cards) addresses."""

    #: An assessment standard code ("AS1.2", "1.1"); "" for a skill.
    code: str = ""
    #: The outcome the standard belongs to ("O1", "1"); "" for a skill.
    outcome: str = ""
    #: A skills-based course's skill or topic, by name ("Working with surds").
    skill_name: str = ""
    description: str = ""

    @property
    def name(self) -> str:
        """How a reader names it: its code, else its skill, else its outcome."""
        return self.code or self.skill_name or self.outcome or self.description

    def text(self) -> str:
        """`AS1.2: Selecting a strategy`, `Working with surds: Simplification`."""
        name = self.code or self.skill_name or self.outcome
        if name and self.description:
            return f"{name}: {self.description}"
        return name or self.description

    def document(self) -> dict[str, str]:
        """The unified item, its empty fields left out."""
        return {key: value for key, value in (
            ("code", self.code), ("outcome", self.outcome), ("skill_name", self.skill_name),
            ("description", self.description)) if value}


def read_standard(value: Any) -> StandardRef | None:
    """A unified item, a current `{code, description, outcome}`, or a legacy code string."""
    if isinstance(value, dict):
        ref = StandardRef(code=text_of(value.get("code")), outcome=text_of(value.get("outcome")),
                          skill_name=text_of(value.get("skill_name")),
                          description=text_of(value.get("description") or value.get("desc")))
        return ref if ref.name else None
    code = text_of(value)
    return StandardRef(code=code) if code else None


def _standards(value: Any) -> tuple[StandardRef, ...]:
    found = (read_standard(item) for item in as_list(value))
    return tuple(dict.fromkeys(ref for ref in found if ref is not None))


@dataclass(frozen=True)
class PlannedMisconception:
    misconception: str
    #: How the plan says to put it right (the lesson's `clarification`).
    remediation: str = ""


@dataclass(frozen=True)
class RubricGuidance:
    """A card plan's `rubric_guidance`: the marks the plan expects."""

    total_points: int | None
    criteria: tuple[tuple[str, int], ...]

    def document(self) -> dict[str, Any]:
        return {"total_points": self.total_points,
                "criteria": [{"description": text, "points": points}
                             for text, points in self.criteria]}


def _rubric(value: Any) -> RubricGuidance | None:
    guidance = _object(value)
    criteria = tuple(
        (text_of(item.get("description")), points)
        for item in as_list(guidance.get("criteria")) if isinstance(item, dict)
        if text_of(item.get("description")) and (points := _whole(item.get("points"))) is not None)
    if not criteria:
        return None
    return RubricGuidance(_whole(guidance.get("total_points")), criteria)


@dataclass(frozen=True)
class CardPlan:
    """One card of the entry's `lesson_plan.card_structure`."""

    number: int
    card_type: str = ""
    title: str = ""
    purpose: str = ""
    standards: tuple[StandardRef, ...] = ()
    pedagogical_approach: str = ""
    key_concepts: tuple[str, ...] = ()
    worked_example: str = ""
    practice_problems: tuple[str, ...] = ()
    cfu_strategy: str = ""
    misconceptions: tuple[PlannedMisconception, ...] = ()
    rubric: RubricGuidance | None = None
    minutes: int | None = None

    def document(self) -> dict[str, Any]:
        """The card as the unified shape writes it, empty fields left out."""
        values: dict[str, Any] = {
            "card_number": self.number,
            "card_type": self.card_type,
            "title": self.title,
            "purpose": self.purpose,
            "standards_addressed": [ref.document() for ref in self.standards],
            "pedagogical_approach": self.pedagogical_approach,
            "key_concepts": list(self.key_concepts),
            "worked_example": self.worked_example,
            "practice_problems": list(self.practice_problems),
            "cfu_strategy": self.cfu_strategy,
            "misconceptions_addressed": [
                {"misconception": m.misconception, "remediation": m.remediation}
                for m in self.misconceptions],
            "rubric_guidance": self.rubric.document() if self.rubric else None,
            "estimated_minutes": self.minutes,
        }
        return {key: value for key, value in values.items() if value not in ("", [], None)}


def _misconceptions(value: Any) -> tuple[PlannedMisconception, ...]:
    found = []
    for item in as_list(value):
        if isinstance(item, dict):
            text = text_of(item.get("misconception"))
            # Older plans call the remediation a clarification.
            fix = text_of(item.get("remediation") or item.get("clarification"))
        else:
            text, fix = text_of(item), ""
        if text:
            found.append(PlannedMisconception(text, fix))
    return tuple(found)


def _card(number: int, value: Any) -> CardPlan:
    if not isinstance(value, dict):
        return CardPlan(number=number, purpose=text_of(value))
    return CardPlan(
        number=number,
        card_type=text_of(value.get("card_type")),
        title=text_of(value.get("title")),
        purpose=text_of(value.get("purpose")),
        standards=_standards(value.get("standards_addressed")),
        pedagogical_approach=text_of(value.get("pedagogical_approach")),
        key_concepts=_texts(value.get("key_concepts")),
        worked_example=text_of(value.get("worked_example")),
        practice_problems=_texts(value.get("practice_problems")),
        cfu_strategy=text_of(value.get("cfu_strategy")),
        misconceptions=_misconceptions(value.get("misconceptions_addressed")),
        rubric=_rubric(value.get("rubric_guidance")),
        minutes=_whole(value.get("estimated_minutes")),
    )


def cefr_level(value: Any) -> str:
    """`CEFR_B1` (the platform's spelling), `b1`, `B1` -> `B1`; "" when none is given."""
    text = text_of(value).upper().removeprefix("CEFR").strip("_ -")
    return text if text in ("A1", "A2", "B1", "B2", "C1", "C2") else ""


@dataclass(frozen=True)
class EntryView:
    """One SOW entry as a lesson author needs it, whatever shape it was written in."""

    order: int
    label: str
    #: The shape it was read from (for logs; two shapes of one entry read the same).
    shape: EntryShape = field(default=EntryShape.UNIFIED, compare=False)
    #: The lesson type as the SOW spells it (requirements map it to the platform's).
    lesson_type: str = "teach"
    #: The outcomes, standards or skills the entry addresses, in the unified shape's
    #: terms (an older entry's `outcomeRefs` are items naming an outcome only).
    standards: tuple[StandardRef, ...] = ()
    calculator_section: str = ""
    assessment_notes: str = ""
    engagement_tags: tuple[str, ...] = ()
    #: `estMinutes` when it is a whole number (requirements fit it to the type's range).
    est_minutes: int | None = None
    cards: tuple[CardPlan, ...] = ()
    summary: str = ""
    #: `lesson_instruction` (unified, current), else a legacy entry's `notes`.
    instruction: str = ""
    #: The CEFR level of `accessibility_profile.plain_language_level` ("B1"), or "".
    plain_language_level: str = ""
    dyslexia_friendly: bool = False
    key_terms: tuple[str, ...] = ()
    #: A legacy entry's `pedagogical_blocks` (its cards, when it has no card plan).
    pedagogical_blocks: tuple[str, ...] = ()
    block_name: str = ""
    prerequisites: tuple[str, ...] = ()

    def document(self) -> dict[str, Any]:
        """The entry in the unified shape: what the authors and the critic are shown, and
        what `read_entry` reads back to this same view."""
        values: dict[str, Any] = {
            "order": self.order,
            "label": self.label,
            "lesson_type": self.lesson_type,
            "coherence": {key: value for key, value in (
                ("block_name", self.block_name),
                ("prerequisites", list(self.prerequisites))) if value} or None,
            "policy": {key: value for key, value in (
                ("calculator_section", self.calculator_section),
                ("assessment_notes", self.assessment_notes)) if value} or None,
            "engagement_tags": list(self.engagement_tags),
            "standards_or_skills_addressed": [ref.document() for ref in self.standards],
            "lesson_plan": {"summary": self.summary,
                            "card_structure": [card.document() for card in self.cards]}
            if self.cards or self.summary else None,
            "pedagogical_blocks": list(self.pedagogical_blocks),
            "accessibility_profile": {key: value for key, value in (
                ("plain_language_level", f"CEFR_{self.plain_language_level}"
                 if self.plain_language_level else ""),
                ("dyslexia_friendly", self.dyslexia_friendly),
                ("key_terms_simplified", list(self.key_terms))) if value} or None,
            "estMinutes": self.est_minutes,
            "lesson_instruction": self.instruction,
        }
        return {key: value for key, value in values.items() if value not in ("", [], None)}


def entry_shape(entry: dict[str, Any]) -> EntryShape:
    if "standards_or_skills_addressed" in entry:
        return EntryShape.UNIFIED
    plan = _object(entry.get("lesson_plan"))
    standards = as_list(entry.get("assessmentStandardRefs"))
    if plan.get("card_structure") or any(isinstance(ref, dict) for ref in standards):
        return EntryShape.CURRENT
    return EntryShape.LEGACY


def read_entry(entry: dict[str, Any]) -> EntryView:
    """The view of an entry of any shape.

    A unified entry's `standards_or_skills_addressed` is what it addresses;
    deprecated fields beside it are read only when it is empty (a skills-based
    entry's old `outcomeRefs` may hold skill descriptions, which resolve to
    nothing). Older entries read as the unified shape would say the same: each
    `outcomeRefs` id an item naming that outcome, in their order, then the
    standards; refs with a dot among them are standard codes (legacy SOWs mix them).
    """
    shape = entry_shape(entry)
    standards = _standards(entry.get("standards_or_skills_addressed"))
    if not standards:
        refs = _texts(entry.get("outcomeRefs"))
        standards = tuple(dict.fromkeys((
            *(StandardRef(outcome=ref) for ref in refs if "." not in ref),
            *_standards(entry.get("assessmentStandardRefs")),
            *(StandardRef(code=ref) for ref in refs if "." in ref))))
    plan = _object(entry.get("lesson_plan"))
    policy = _object(entry.get("policy"))
    coherence = _object(entry.get("coherence"))
    profile = _object(entry.get("accessibility_profile"))
    return EntryView(
        order=int(entry["order"]),
        label=text_of(entry.get("label")),
        shape=shape,
        lesson_type=text_of(entry.get("lesson_type")) or "teach",
        standards=standards,
        calculator_section=text_of(policy.get("calculator_section")),
        assessment_notes=text_of(policy.get("assessment_notes")),
        engagement_tags=_texts(entry.get("engagement_tags")),
        est_minutes=_whole(entry.get("estMinutes")),
        cards=tuple(_card(number, card) for number, card
                    in enumerate(as_list(plan.get("card_structure")), start=1)),
        summary=text_of(plan.get("summary")),
        instruction=text_of(entry.get("lesson_instruction") or entry.get("notes")),
        plain_language_level=cefr_level(profile.get("plain_language_level")),
        dyslexia_friendly=profile.get("dyslexia_friendly") is True,
        key_terms=_texts(profile.get("key_terms_simplified")),
        pedagogical_blocks=_texts(entry.get("pedagogical_blocks")),
        block_name=text_of(coherence.get("block_name")),
        prerequisites=_texts(coherence.get("prerequisites")),
    )
