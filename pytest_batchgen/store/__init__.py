"""Where schemes of work are read and lessons are written.

One small protocol, two implementations: an embedded SQLite store (the
zero-setup default) and Appwrite (production). Both pass the same contract
tests (tests/test_store_contract.py).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pytest_batchgen.lesson import LessonRow
from pytest_batchgen.sow import SowRecord


class StoreError(Exception):
    """The store cannot be used at all (unreachable, rejected key, bad config).

    Raised before the batch starts it is a batch-level error (exit 2);
    raised by a write it fails only that lesson.
    """


class CourseNotFound(StoreError):
    """No usable SOW for the course: unknown course, wrong status, bad entries."""


@dataclass(frozen=True)
class ExistingLesson:
    """A `lesson_templates` row, as much of it as planning needs."""

    doc_id: str
    course_id: str
    sow_order: int
    model_version: str
    title: str = ""
    created_at: str = ""
    updated_at: str = ""
    #: draft | review | published: an overwrite makes a published lesson a draft.
    status: str = ""


@dataclass(frozen=True)
class LessonDiagram:
    """A `lesson_diagrams` row: the platform's picture for one card of one lesson row.

    An overwrite keeps the row id, so the old lesson's diagrams would stay
    attached to new cards they no longer fit; the item removes them.
    """

    doc_id: str
    lesson_row_id: str  # the column `lessonTemplateId`
    card_id: str
    #: The image in the platform's diagram bucket ("" when none was stored).
    image_file_id: str = ""


@dataclass(frozen=True)
class WriteResult:
    doc_id: str
    created: bool
    # Other rows for the same (courseId, sow_order) the old generator left
    # behind: reported, never deleted, never multiplied.
    duplicates: tuple[str, ...] = field(default_factory=tuple)
    replaced_model_version: str | None = None


class LessonStore(Protocol):
    """What the batch needs from a store; nothing more."""

    #: Shown in the plan and logs, never containing a secret.
    description: str
    #: True when the platform's own tools read this store, so that whatever is
    #: written here reaches learners (Appwrite); the embedded store is ours alone.
    shared: bool

    def fetch_sow(self, course_id: str, *, status: str = "published") -> SowRecord:
        """The course's SOW with that status, highest version; CourseNotFound if none."""
        ...

    def fetch_outcomes(self, course_id: str) -> list[dict[str, Any]]:
        """The course's `course_outcomes` rows (context for the author)."""
        ...

    def list_lessons(self, course_id: str) -> list[ExistingLesson]:
        """Every `lesson_templates` row of the course, in one paged pass."""
        ...

    def write_lesson(self, row: LessonRow) -> WriteResult:
        """Create or replace the one row for (courseId, sow_order)."""
        ...

    def read_lesson(self, course_id: str, sow_order: int) -> LessonRow | None:
        """The row for (courseId, sow_order), or None."""
        ...

    def lesson_rows(self, course_id: str, sow_order: int) -> list[dict[str, Any]]:
        """Every row for (courseId, sow_order) exactly as stored, `$id` included:
        what the audit judges (a broken row must still be readable)."""
        ...

    def list_diagrams(self, lesson_row_ids: Collection[str]) -> list[LessonDiagram]:
        """The `lesson_diagrams` rows of these lesson rows."""
        ...

    def delete_diagrams(self, diagrams: Sequence[LessonDiagram]) -> None:
        """Remove these diagram rows and their image files (gone already is fine)."""
        ...

    def close(self) -> None: ...


def choose_row_to_update(rows: list[ExistingLesson], model_version: str) -> ExistingLesson:
    """Of several rows for one lesson, update ours if there is one, else the oldest.

    Deterministic, so a re-run updates the same row it updated before.
    """
    ours = [row for row in rows if row.model_version == model_version]
    pool = ours or rows
    return min(pool, key=lambda row: (row.created_at, row.doc_id))


def open_default_store(url: str, settings: Any) -> LessonStore:
    """The store `--batch-store` names: `sqlite:///PATH` or `appwrite`."""
    if url == "appwrite":
        from pytest_batchgen.store.appwrite import open_appwrite_store

        return open_appwrite_store(settings)
    if url.startswith("sqlite:"):
        from pytest_batchgen.store.sqlite import SqliteStore

        return SqliteStore.from_url(url, create=False)  # filled by load-sow, not here
    raise StoreError(f"unknown --batch-store {url!r} (use sqlite:///PATH or appwrite)")
