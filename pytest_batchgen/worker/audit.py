"""`--batch-audit`: one stored lesson judged against the whole lesson contract.

The audit reads and never writes; it needs no author and no key. It judges
every row stored for the lesson exactly as stored (a row the frontend cannot
decode is a finding, not a crash), with the course's outcomes for the refs
session start looks up.
"""

from __future__ import annotations

from pytest_batchgen.batch import CourseBatch
from pytest_batchgen.contract import check_row, outcome_ids_of
from pytest_batchgen.planning import PlannedLesson, Reason
from pytest_batchgen.results import LessonResult, Status
from pytest_batchgen.store import LessonStore


def audit_lesson(store: LessonStore, batch: CourseBatch, lesson: PlannedLesson) -> LessonResult:
    """passed, failed with every violation, or skipped when no lesson is stored."""
    result = LessonResult(order=lesson.order, label=lesson.label, status=Status.SKIPPED,
                          action=lesson.action.value)
    rows = store.lesson_rows(batch.course_id, lesson.order)
    if not rows:
        result.reason = Reason.NOT_FOUND.value
        result.error = "no lesson is stored for this entry"
        return result
    outcome_ids = outcome_ids_of(batch.outcomes)
    ids = [str(row.get("$id")) for row in rows]
    violations = []
    if len(rows) > 1:
        violations.append(f"rows: {len(rows)} rows for one lesson ({', '.join(ids)}); the"
                          " platform may show any of them")
    for row_id, row in zip(ids, rows, strict=True):
        prefix = f"row {row_id}: " if len(rows) > 1 else ""
        violations += [f"{prefix}{violation}" for violation in check_row(row, outcome_ids)]
    result.doc_id, result.duplicate_doc_ids = ids[0], ids[1:]
    result.violations = violations
    result.status = Status.FAILED if violations else Status.PASSED
    if violations:
        result.error = f"{len(violations)} violation(s) of the lesson contract"
    return result
