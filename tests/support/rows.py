"""Stored rows for tests, one factory per kind: lesson rows as a store holds them, and
rows put straight into a SQLite store behind its back, as older tools left them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_batchgen.lesson import CLAUDE_MODEL_VERSION, LessonRow, encode_cards
from tests.support.lessons import COURSE

# A small lesson as another run would have stored it (not contract-complete: an
# older run's lesson is what a batch meets in the store).
STORED_LESSON: dict[str, Any] = {
    "lesson_type": "teach", "estMinutes": 50, "outcomeRefs": ["O1", "AS1.2"],
    "engagement_tags": ["shopping"], "policy": {"calculator_section": "non_calc"},
    "cards": [{"id": "card_000", "title": "Équivalent fractions — a first look",
               "explainer": "x" * 60, "explainer_plain": "y" * 40}],
}


def row_columns(lesson: dict[str, Any], order: int, course: str = COURSE) -> dict[str, Any]:
    """A `lesson_templates` row holding `lesson` as stored, whatever it breaks."""
    return {
        "courseId": course, "sow_order": order, "title": lesson.get("title"),
        "createdBy": "lesson_author_agent", "version": 1, "status": "draft",
        "model_version": CLAUDE_MODEL_VERSION, "lesson_type": lesson.get("lesson_type"),
        "estMinutes": lesson.get("estMinutes"),
        "outcomeRefs": json.dumps(lesson.get("outcomeRefs")),
        "engagement_tags": json.dumps(lesson.get("engagement_tags")),
        "policy": json.dumps(lesson.get("policy")),
        "cards": encode_cards(lesson.get("cards", [])),
        "authored_sow_id": "sow_test", "authored_sow_version": "1",
    }


def lesson_row(order: int, *, course: str = COURSE, model_version: str = CLAUDE_MODEL_VERSION,
               title: str = "") -> LessonRow:
    """A stored lesson as another run would have left it."""
    lesson = {**STORED_LESSON,
              "title": title or f"Existing lesson number {order} for the course"}
    return LessonRow.model_validate({**row_columns(lesson, order, course),
                                     "model_version": model_version,
                                     "authored_sow_id": "sow_old"})


def insert_rows(store: Path, rows: Sequence[Mapping[str, Any]], *,
                created_at: str | None = None) -> list[str]:
    """Rows into a SQLite store's lesson_templates exactly as given, past the store's
    checks (a second row for a lesson, broken columns): ids row000, row001… in the
    order inserted, created a second apart unless `created_at` says when."""
    with sqlite3.connect(store) as db:
        first = db.execute("SELECT COUNT(*) FROM lesson_templates").fetchone()[0]
        ids = []
        for number, columns in enumerate(rows, start=first):
            names = ['"$id"', '"$createdAt"', '"$updatedAt"', *columns]
            stamp = created_at or f"2025-01-01T00:{number // 60:02d}:{number % 60:02d}.000+00:00"
            ids.append(f"row{number:03d}")
            db.execute(f"INSERT INTO lesson_templates ({', '.join(names)}) VALUES"
                       f" ({', '.join('?' * len(names))})",
                       (ids[-1], stamp, stamp, *columns.values()))
    db.close()
    return ids


def insert_lesson(store: Path, row: LessonRow, *, created_at: str | None = None) -> str:
    """One lesson row, as an older tool would have written it (duplicates are possible)."""
    return insert_rows(store, [row.columns()], created_at=created_at)[0]
