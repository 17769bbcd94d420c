"""Where schemes of work are read and lessons are written.

One small protocol, two implementations: an embedded SQLite store (the
zero-setup default) and Appwrite (production). Both pass the same contract
tests (tests/test_store_contract.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pytest_batchgen.defaults import DEFAULT_DATABASE, DEFAULT_MCP_CONFIG
from pytest_batchgen.digits import whole_number
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
    #: The SOW version it was written from ("" when the row does not say).
    sow_version: str = ""


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
    #: Why nothing was written, when the row as it stood at write time forbade it.
    skipped: str = ""


WRITTEN_MEANWHILE = "written meanwhile by another run"
CHANGED_MEANWHILE = "changed meanwhile by another run"


@dataclass(frozen=True)
class WriteDecision:
    """create, update `target`, or skip (with `reason`)."""

    action: str
    target: ExistingLesson | None = None
    reason: str = ""

    def skip_result(self) -> WriteResult | None:
        """What a store's write returns when it writes nothing; None for a write."""
        if self.action != "skip":
            return None
        assert self.target is not None
        return WriteResult(doc_id=self.target.doc_id, created=False, skipped=self.reason)


def decide_write(rows: list[ExistingLesson], planned: ExistingLesson | None, *,
                 model_version: str, drafting: bool) -> WriteDecision:
    """Decide at write time, against the rows as they are then, not as the plan saw them.

    The plan may be stale: another run may have written the lesson since. A
    write goes ahead only where the plan still holds (nothing there to create
    over; the row it meant to replace unchanged), or where the rule the plan
    followed would decide the same now: a reviewing author replaces another
    generator's row. A drafting author never writes over a row it did not plan
    to, and no author over a row of its own kind that it did not plan to.
    """
    if not rows:
        return WriteDecision("create")
    current = {row.doc_id: row for row in rows}
    if planned is not None and planned.doc_id in current:
        target = current[planned.doc_id]
        if target.updated_at == planned.updated_at:
            return WriteDecision("update", target)
    else:
        target = choose_row_to_update(rows, model_version)
    if not drafting and target.model_version != model_version:
        return WriteDecision("update", target)
    reason = WRITTEN_MEANWHILE if planned is None else CHANGED_MEANWHILE
    return WriteDecision("skip", target, f"{reason} (row {target.doc_id},"
                                         f" model_version {target.model_version or 'unset'})")


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

    def write_lesson(self, row: LessonRow, planned: ExistingLesson | None = None, *,
                     drafting: bool = False) -> WriteResult:
        """Create or replace the one row for (courseId, sow_order), as `decide_write`
        decides against the rows as they are at that moment; `planned` is the row the
        plan meant to replace, `drafting` the author's kind."""
        ...

    def check_writable(self) -> None:
        """Raise StoreError before the batch if a write cannot succeed."""
        ...

    def read_lesson(self, doc_id: str) -> LessonRow | None:
        """The lesson row `doc_id` (the one the plan chose to replace), or None."""
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


def lesson_row_id(course_id: str, sow_order: int) -> str:
    """The id a lesson's row is created with: the same for the same lesson, everywhere.

    `lt_` + 33 hex chars of sha1 = 36 chars, Appwrite's maximum.
    """
    digest = hashlib.sha1(f"{course_id}\x00{sow_order}".encode()).hexdigest()
    return f"lt_{digest[:33]}"


def choose_row_to_update(rows: list[ExistingLesson], model_version: str) -> ExistingLesson:
    """Of several rows for one lesson, the one a write updates (and a diff compares
    with): ours if there is one, else the oldest.

    The one rule for it: the plan records its choice, and the write decides by it
    again only when the rows changed since. Deterministic, so a re-run updates the
    same row it updated before.
    """
    ours = [row for row in rows if row.model_version == model_version]
    pool = ours or rows
    return min(pool, key=lambda row: (row.created_at, row.doc_id))


@dataclass(frozen=True)
class AppwriteOptions:
    """What the Appwrite store takes from a run's options."""

    database: str = DEFAULT_DATABASE
    #: Where the credentials are read from when the environment lacks them.
    mcp_config: Path = Path(DEFAULT_MCP_CONFIG)


def stored_order(value: Any) -> int | None:
    """A row's sow_order as planning, writing and the audit all read it: a whole
    number, or text of ASCII digits an older tool wrote ('4' is lesson 4); None for
    anything else (NULL, '²'), which belongs to no SOW entry."""
    if isinstance(value, str):
        return whole_number(value.strip())
    return None if isinstance(value, bool) or not isinstance(value, int) else value


def existing_lessons(rows: Iterable[dict[str, Any]]) -> list[ExistingLesson]:
    """Stored rows as planning sees them (both stores' columns have these names).

    A row whose sow_order is no order (see `stored_order`) belongs to no SOW entry:
    like a row for an order the SOW lacks, it is passed over, never a traceback.
    """
    lessons = []
    for row in rows:
        order = stored_order(row.get("sow_order"))
        if order is None:
            continue
        lessons.append(ExistingLesson(
            doc_id=str(row["$id"]),
            course_id=str(row.get("courseId") or ""),
            sow_order=order,
            model_version=str(row.get("model_version") or ""),
            title=str(row.get("title") or ""),
            created_at=str(row.get("$createdAt") or ""),
            updated_at=str(row.get("$updatedAt") or ""),
            status=str(row.get("status") or ""),
            sow_version=str(row.get("authored_sow_version") or ""),
        ))
    return lessons
