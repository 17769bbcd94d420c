"""The outline author: a deterministic draft from the SOW entry, no model involved.

It exists for demos, CI and offline use. Its lessons are honest scaffolds —
card titles, purposes, worked examples and practice problems taken from the
entry's `lesson_plan.card_structure` (or, for legacy entries, from the label,
outcomes and standards) — not finished teaching material. They carry their
own `model_version`, so they never count as agent-authored lessons, and the
outline author never replaces a lesson it did not write (see planning).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pytest_batchgen.authors import AuthoredLesson, AuthorMetrics, AuthorRequest
from pytest_batchgen.lesson import LessonTemplate, platform_lesson_type

OUTLINE_MODEL_VERSION = "batchgen_outline"

log = logging.getLogger(__name__)

CALCULATOR_ALLOWED = {"non_calc": False, "mixed": True, "calc": True, "exam_conditions": True}


def _text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return str(value.get("description") or value.get("code") or "")
    return " ".join(str(value or "").split())


def _fit(text: str, low: int, high: int, pad: str) -> str:
    """Bring text within [low, high] characters: pad short, cut long at a word."""
    text = " ".join(text.split())
    if len(text) < low:
        text = f"{text} {pad}".strip()
    if len(text) > high:
        text = text[: high - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return text


def _standard_codes(entry: dict[str, Any]) -> list[str]:
    refs = entry.get("assessmentStandardRefs") or []
    return [str(r.get("code") if isinstance(r, dict) else r) for r in refs]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", text.upper()).strip("_")[:20] or "GENERAL"


class OutlineAuthor:
    """`LessonAuthor` that drafts deterministically from the entry."""

    name = "outline"
    model_version = OUTLINE_MODEL_VERSION
    any_row_counts = True
    uses_workspace = False

    def check_ready(self) -> None:
        """Needs nothing: this is what makes it the zero-setup author."""

    async def aclose(self) -> None:
        """Holds nothing across lessons."""

    async def author(self, request: AuthorRequest) -> AuthoredLesson:
        template = draft_template(request.entry.data)
        log.info("Draft outline ready: %s (%d cards)", template.title, len(template.cards))
        return AuthoredLesson(template=template, metrics=AuthorMetrics(model="outline"))


def _legacy_card_specs(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Legacy entries have no card plan: one card per pedagogical block."""
    blocks = entry.get("pedagogical_blocks") or ["explainer", "guided_practice"]
    notes = _text(entry.get("notes") or entry.get("lesson_instruction"))
    return [
        {
            "card_type": block,
            "title": f"{str(block).replace('_', ' ').title()}: {entry.get('label', '')}",
            "purpose": notes or f"Work on {entry.get('label', 'this lesson')}.",
            "standards_addressed": entry.get("assessmentStandardRefs") or [],
        }
        for block in blocks
    ]

def _card(number: int, spec: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    card_type = str(spec.get("card_type") or "explainer")
    kind = card_type.replace("_", " ").capitalize()
    title = _fit(str(spec.get("title") or kind), 10, 150, f"({kind})")
    if not title.lower().startswith(kind.lower()):
        title = _fit(f"{kind}: {title}", 10, 150, "")
    purpose = _text(spec.get("purpose")) or f"Work on {entry.get('label', 'this lesson')}."
    approach = _text(spec.get("pedagogical_approach"))
    worked = _text(spec.get("worked_example"))
    explainer = " ".join(
        part for part in (
            f"Purpose: {purpose}",
            f"Approach: {approach}" if approach else "",
            f"Worked example: {worked}" if worked else "",
            f"Standards: {_text(spec.get('standards_addressed'))}."
            if spec.get("standards_addressed") else "",
        ) if part
    )
    explainer = _fit(explainer, 50, 4000, "This draft card is an outline to be completed.")
    plain = _fit(f"In this part: {purpose}", 30, 600, "Take your time.")
    problems = [str(p) for p in spec.get("practice_problems") or []]
    stem = problems[0] if problems else _text(spec.get("cfu_strategy")) or (
        f"Explain in your own words: {purpose}"
    )
    misconceptions = [
        {
            "id": f"MISC_DRAFT_{_slug(card_type)}_{number:03d}",
            "misconception": _text(m.get("misconception") if isinstance(m, dict) else m),
            "clarification": _text(m.get("clarification") if isinstance(m, dict) else "")
            or "Revisit the worked example and compare each step.",
        }
        for m in spec.get("misconceptions_addressed") or []
        if _text(m.get("misconception") if isinstance(m, dict) else m)
    ]
    return {
        "id": f"card_{number:03d}",
        "title": title,
        "explainer": explainer,
        "explainer_plain": plain,
        "cfu": {
            "type": "structured_response",
            "id": f"q{number:03d}",
            "stem": _fit(stem, 10, 1000, "Show your working."),
            "rubric": {
                "total_points": 2,
                "criteria": [
                    {"description": "Chooses a suitable method", "points": 1},
                    {"description": "Reaches a correct, clearly stated answer", "points": 1},
                ],
            },
        },
        "misconceptions": misconceptions,
    }


def draft_template(entry: dict[str, Any]) -> LessonTemplate:
    """A valid lesson template drafted from one SOW entry, deterministically."""
    sow_type = str(entry.get("lesson_type", "teach"))
    lesson_type = platform_lesson_type(sow_type)
    if lesson_type != sow_type:
        log.warning("lesson_type %r is not accepted by the platform frontend; writing %r",
                    sow_type, lesson_type)
    plan = entry.get("lesson_plan") or {}
    specs = plan.get("card_structure") or _legacy_card_specs(entry)
    log.info("Drafting %d cards from %s", len(specs),
             "lesson_plan.card_structure" if plan.get("card_structure") else "label/outcomes")
    policy = dict(entry.get("policy") or {})
    section = policy.get("calculator_section")
    if section in CALCULATOR_ALLOWED:
        policy["calculator_allowed"] = CALCULATOR_ALLOWED[section]
    outcome_refs = [str(o) for o in entry.get("outcomeRefs") or []] + _standard_codes(entry)
    return LessonTemplate.model_validate(
        {
            "title": _fit(str(entry.get("label", "")), 30, 80, "(draft outline)"),
            "lesson_type": lesson_type,
            "estMinutes": int(entry.get("estMinutes") or 50),
            "cards": [_card(i, spec, entry) for i, spec in enumerate(specs[:20], start=1)],
            "outcomeRefs": list(dict.fromkeys(outcome_refs)),
            "engagement_tags": [str(t) for t in entry.get("engagement_tags") or []],
            "policy": policy,
        }
    )
