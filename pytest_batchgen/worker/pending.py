"""Lessons authored (and paid for) but not written: kept as row files, written later.

When the store cannot take a lesson (unreachable, refusing) or the row as it
stands at write time forbids the write (another run wrote the lesson
meanwhile), the row is kept as `pending/lesson_NNN.json` in the batch
directory with what the write needs: the plan's row and the author's kind.
`python -m pytest_batchgen write-pending BATCH_DIR` writes them later, with the
same write-time decision as the batch, and removes each file it wrote.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_batchgen.layout import BatchLayout, write_json_atomic
from pytest_batchgen.lesson import LessonRow
from pytest_batchgen.requirements import requirements_for
from pytest_batchgen.sow import SowRecord
from pytest_batchgen.store import ExistingLesson, LessonStore, WriteResult


@dataclass(frozen=True)
class PendingLesson:
    row: LessonRow
    #: The row the plan meant to replace (None: the plan found none).
    planned: ExistingLesson | None
    drafting: bool
    #: The store the batch wrote to (a URL or `appwrite`; never a secret), for the
    #: reader: write-pending takes its store as the batch does, never from the file.
    store: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row.columns(),
                "planned": dataclasses.asdict(self.planned) if self.planned else None,
                "drafting": self.drafting, "store": self.store, "reason": self.reason}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PendingLesson:
        planned = data.get("planned")
        return cls(row=LessonRow.model_validate(data["row"]),
                   planned=ExistingLesson(**planned) if planned else None,
                   drafting=bool(data["drafting"]), store=str(data["store"]),
                   reason=str(data.get("reason") or ""))


def keep_pending(layout: BatchLayout, lesson: PendingLesson) -> Path:
    """Save the row; written whole or not at all (a rename), so a later run trusts it."""
    path = layout.pending(lesson.row.sow_order)
    path.parent.mkdir(exist_ok=True)
    write_json_atomic(path, lesson.to_json())
    return path


def pending_lessons(layout: BatchLayout) -> list[tuple[Path, PendingLesson]]:
    """The batch's pending rows, by order; ValueError names a file that is not one."""
    found = []
    for path in layout.pending_files():
        try:
            found.append((path, PendingLesson.from_json(json.loads(path.read_text("utf-8")))))
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise ValueError(f"{path} is not a pending lesson ({type(exc).__name__})") from None
    return found


def refusal(path: Path, lesson: PendingLesson, course_id: str, sow: SowRecord,
            outcomes: list[dict[str, Any]]) -> str:
    """Why a pending row may not be written ("" when it may). A pending file is a file
    anyone could have edited since the batch: it passes the same gate as any lesson
    (the contract, the course's outcomes, what its entry asks), and only as the lesson
    of the batch's course that its file is named for."""
    row = lesson.row
    if row.courseId != course_id:
        return f"its row is for {row.courseId}, not for the batch's course {course_id}"
    if path.name != BatchLayout(path.parent.parent).pending(row.sow_order).name:
        return f"its row is for lesson {row.sow_order}, not for the lesson its file names"
    entry = next((e for e in sow.entries if e.order == row.sow_order), None)
    if entry is None:
        return f"{course_id} has no lesson {row.sow_order} in its SOW {sow.doc_id}"
    violations = requirements_for(entry.view, outcomes).check_row(row.columns())
    if violations:
        more = f" (+{len(violations) - 1} more)" if len(violations) > 1 else ""
        return f"lesson contract: {violations[0]}{more}"
    return ""


def write_pending(store: LessonStore, path: Path, lesson: PendingLesson) -> WriteResult:
    """Write one pending row; its file goes once the row is in the store."""
    written = store.write_lesson(lesson.row, lesson.planned, drafting=lesson.drafting)
    if not written.skipped:
        path.unlink()
    return written
