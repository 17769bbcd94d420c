"""`--batch-audit`: one stored lesson judged against the whole lesson contract and its entry.

The audit reads and never writes; it needs no author and no key. It judges
every row stored for the lesson exactly as stored (a row the frontend cannot
decode is a finding, not a crash): against the contract, the course's outcomes
that session start looks up, and what its SOW entry asks as far as code can
tell (the outcome refs as they resolve today, lesson type, calculator policy,
one card per planned card). Each audited lesson gets its page, every violation
beside the card and field it names. A lesson written from an older SOW version than the
course's current one is reported stale; stale alone is not a failure.
"""

from __future__ import annotations

from typing import Any

from pytest_batchgen.batch import CourseBatch
from pytest_batchgen.contract import row_lesson
from pytest_batchgen.planning import PlannedLesson, Reason
from pytest_batchgen.requirements import requirements_for
from pytest_batchgen.results import LessonResult, Status
from pytest_batchgen.sow import older_sow_version
from pytest_batchgen.store import LessonStore
from pytest_batchgen.worker.lessonpage import Version, write_lesson_page


def audit_lesson(store: LessonStore, batch: CourseBatch, lesson: PlannedLesson) -> LessonResult:
    """passed, failed with every violation, or skipped when no lesson is stored."""
    result = LessonResult(order=lesson.order, label=lesson.label, status=Status.SKIPPED,
                          action=lesson.action.value)
    rows = store.lesson_rows(batch.course_id, lesson.order)
    if not rows:
        result.reason = Reason.NOT_FOUND.value
        result.error = "no lesson is stored for this entry"
        return result
    requirements = requirements_for(batch.entry(lesson.order).view, batch.outcomes)
    ids = [str(row.get("$id")) for row in rows]
    violations = []
    if len(rows) > 1:
        violations.append(f"rows: {len(rows)} rows for one lesson ({', '.join(ids)}); the"
                          " platform may show any of them")
    versions = []
    for row_id, row in zip(ids, rows, strict=True):
        prefix = f"row {row_id}: " if len(rows) > 1 else ""
        found = requirements.check_row(row)
        violations += [f"{prefix}{violation}" for violation in found]
        versions.append(Version(f"Stored row {row_id}", row_lesson(row)[0], found))
    result.doc_id, result.duplicate_doc_ids = ids[0], ids[1:]
    result.violations = violations
    result.status = Status.FAILED if violations else Status.PASSED
    if violations:
        result.error = f"{len(violations)} violation(s) of the lesson contract or its entry"
    older = [version for version in map(_written_from, rows)
             if older_sow_version(version, batch.sow.version)]
    if older:
        result.stale = True
        result.note = (f"stale: written from SOW version {older[0]}; the course's SOW"
                       f" {batch.sow.doc_id} is version {batch.sow.version}")
    write_lesson_page(batch, result, versions)
    return result


def _written_from(row: dict[str, Any]) -> str:
    version = row.get("authored_sow_version")
    return "" if version is None else str(version)
