"""Running one lesson: author, validate, write — in the process that runs the item.

Under xdist every worker has its own runner (its own store connection, author
and event loop); nothing here writes batch-level files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pytest_batchgen.authors import (
    STOP_GRACE,
    AuthoredLesson,
    AuthoringError,
    AuthorMetrics,
    AuthorRequest,
    LessonAuthor,
)
from pytest_batchgen.backends import Backends
from pytest_batchgen.batch import CourseBatch
from pytest_batchgen.contract import row_lesson
from pytest_batchgen.layout import write_json_atomic
from pytest_batchgen.lesson import LessonRow
from pytest_batchgen.logfiles import BANNER, lesson_log_error
from pytest_batchgen.planning import Action, PlannedLesson
from pytest_batchgen.requirements import EntryRequirements, requirements_for
from pytest_batchgen.results import LessonFailed, LessonResult, Status, Why, format_duration
from pytest_batchgen.settings import Settings
from pytest_batchgen.store import LessonStore, StoreError, WriteResult
from pytest_batchgen.worker.audit import audit_lesson
from pytest_batchgen.worker.diff import lesson_diff
from pytest_batchgen.worker.lessonpage import Version, write_lesson_page
from pytest_batchgen.worker.pending import PendingLesson, keep_pending

log = logging.getLogger(__name__)

# Lessons the store, or the model service, may fail in a row before none starts.
FAILURE_LIMIT = 3
# Seconds past --batch-timeout an author that stops itself gets before it is cancelled:
# its own grace to read the stopped agent's spend, and room to end its process.
CANCEL_AFTER = 3 * STOP_GRACE


@dataclass
class FailureStreak:
    """Lessons in a row that one outside service failed (in this process): past the
    limit, starting more would only pay for lessons that service cannot serve."""

    service: str
    count: int = 0
    last_error: str = ""

    def failed(self, error: str) -> None:
        self.count += 1
        self.last_error = error

    def passed(self) -> None:
        self.count = 0

    @property
    def tripped(self) -> bool:
        return self.count >= FAILURE_LIMIT

    def reason(self) -> str:
        return (f"{self.service} failed {self.count} lessons in a row (last:"
                f" {self.last_error}); no further lesson is started")


class LessonRunner:
    """Per-process state for running lessons, closed at session end."""

    def __init__(self, backends: Backends, settings: Settings) -> None:
        self.backends = backends
        self.settings = settings
        self.store_streak = FailureStreak("the store")
        # What the running lesson's author has spent so far (see AuthorRequest).
        self._spent = AuthorMetrics()
        self.service_streak = FailureStreak("the model service")
        #: What every process of the run shares with the others (see
        #: AuthorRequest.sessions_dir); set by the session once the batches are known.
        self.sessions_dir: Path | None = None
        # One loop per process, reused across lessons: clients that outlive a
        # lesson (and the SDK's subprocess transport) need a stable loop.
        self._loop: asyncio.Runner | None = None

    @property
    def store(self) -> LessonStore:
        return self.backends.store

    @property
    def author(self) -> LessonAuthor:
        return self.backends.author

    def close(self) -> None:
        """The author's last word on the loop it ran on; the store is the backends'."""
        if self._loop is None:
            return
        if self.backends.made_author is not None:
            self._loop.run(self.backends.made_author.aclose())
        self._loop.close()

    def run(self, batch: CourseBatch, lesson: PlannedLesson) -> LessonResult:
        """The lesson's result; raises LessonFailed (with the result) on failure."""
        result = LessonResult(order=lesson.order, label=lesson.label, status=Status.SKIPPED,
                              action=lesson.action.value,
                              duplicate_doc_ids=list(lesson.duplicates))
        if lesson.action is Action.SKIP:
            result.existing_doc_id = lesson.existing.doc_id if lesson.existing else None
            result.reason = lesson.reason.value
            result.stale = lesson.stale_against(batch.sow.version) or None
            return result
        if lesson.action is Action.AUDIT:
            result = audit_lesson(self.store, batch, lesson)
            if result.status == Status.FAILED:
                raise LessonFailed(result)
            return result
        # The item's log file exists from here on (see BatchSession's protocol hook).
        result.log_file = batch.layout.name(batch.layout.lesson_log(lesson.order))
        log.info(BANNER)
        log.info("Lesson %d of %s: %s (%s)", lesson.order, batch.course_id, lesson.label,
                 lesson.describe())
        log.info(BANNER)
        if self._not_started(batch, result):
            return result
        started = time.monotonic()
        metrics = AuthorMetrics()
        try:
            requirements = self._requirements(batch, lesson)
            with self._workspace(batch, lesson) as workspace:
                try:
                    authored = self._author_lesson(batch, lesson, workspace, requirements)
                except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the run ends here
                    self._keep_interrupted(batch, result, started)
                    raise
            metrics = authored.metrics
            row = self._build_row(batch, lesson, authored, requirements)
            replaced = (self._write_diff(batch, lesson.existing.doc_id, row, result)
                        if lesson.existing is not None else None)
            written = self._write(batch, lesson, row, result)
            if not written.created and not written.skipped:
                self._remove_diagrams(written.doc_id, result)
        except (Exception, SystemExit, asyncio.CancelledError) as exc:
            # An author's SystemExit or CancelledError stops nothing but its lesson:
            # Ctrl-C and SIGTERM reach here as KeyboardInterrupt, a timeout as
            # TimeoutError.
            result.status = Status.FAILED
            if isinstance(exc, AuthoringError) and exc.service:
                result.reason = Why.SERVICE_ERROR
                self.service_streak.failed(str(exc))
            else:  # the service answered: whatever failed, it was not the service
                self.service_streak.passed()
            if isinstance(exc, AuthoringError | StoreError | ValueError):
                result.error = str(exc)
            else:
                # An author bug must fail this lesson only, with the evidence kept.
                log.error("Unexpected error:\n%s", traceback.format_exc())
                result.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(
                    exc).__name__
            self._fill_metrics(result, getattr(exc, "metrics", metrics), started)
            self._log_end(result)
            raise LessonFailed(result) from exc
        self.service_streak.passed()
        result.set_review(authored.review)
        if written.skipped:
            result.reason, result.error = Why.WRITTEN_MEANWHILE, written.skipped
            result.existing_doc_id = written.doc_id
        else:
            result.status = Status.SUCCESS
            result.doc_id = written.doc_id
            result.duplicate_doc_ids = list(written.duplicates)
            # The reviewer's page: the lesson written, beside the one it replaced.
            versions = [Version("Written by this run", row.decoded())]
            if replaced is not None:
                versions.insert(0, Version("Before: the stored lesson it replaced",
                                           row_lesson(replaced.columns())[0]))
            write_lesson_page(batch, result, versions, authored.feedback)
        self._fill_metrics(result, metrics, started)
        self._log_end(result)
        return result

    def _not_started(self, batch: CourseBatch, result: LessonResult) -> bool:
        """Whether the lesson must not start: the budget is spent, or the store or the
        model service has failed so often in a row that authoring more would only pay
        for lessons it cannot take (or fail them one after another)."""
        budget = self.settings.max_cost
        spent = batch.layout.read_spend() if budget is not None else 0.0
        if budget is not None and spent >= budget:
            result.reason = Why.BUDGET_REACHED
            result.error = f"budget reached: ${spent:.4f} of ${budget:.2f} spent"
        elif self.store_streak.tripped:
            result.reason, result.error = Why.STORE_UNAVAILABLE, self.store_streak.reason()
        elif self.service_streak.tripped:
            result.reason, result.error = Why.SERVICE_UNAVAILABLE, self.service_streak.reason()
        elif (error := lesson_log_error()) is not None:
            # A lesson is paid for by the minute: none starts without its record.
            result.reason = Why.LOG_UNWRITABLE
            result.error = f"its log cannot be written ({error.strerror}); not started"
        else:
            return False
        result.status = Status.NOT_STARTED
        log.warning("Not started: %s", result.error)
        return True

    @contextmanager
    def _workspace(self, batch: CourseBatch, lesson: PlannedLesson) -> Iterator[Path | None]:
        """The lesson's working directory: kept under the batch directory, or a
        temporary one that leaves nothing behind."""
        if not self.author.uses_workspace:
            yield None
        elif self.settings.persist_workspace:
            path = batch.layout.workspace(lesson.order)
            path.mkdir(parents=True, exist_ok=True)
            yield path
        else:
            path = batch.layout.temporary_workspace(lesson.order)
            try:
                yield path
            finally:
                shutil.rmtree(path, ignore_errors=True)

    @staticmethod
    def _requirements(batch: CourseBatch, lesson: PlannedLesson) -> EntryRequirements:
        """What the lesson must carry from its entry, and how its outcome refs resolved;
        AuthoringError, before anything is paid for, when no lesson could be written."""
        view = batch.entry(lesson.order).view
        requirements = requirements_for(view, batch.outcomes)
        log.info("Entry shape: %s; addresses %s", view.shape,
                 "; ".join(standard.text() for standard in view.standards) or "nothing")
        if requirements.lesson_type not in (None, view.lesson_type):
            log.warning("lesson_type %r is not a type the platform's frontend accepts;"
                        " writing %r", view.lesson_type, requirements.lesson_type)
        for line in requirements.refs.log_lines():
            log.info(line)
        if requirements.problem:
            raise AuthoringError(f"{requirements.problem}; nothing was authored or written")
        log.info("outcomeRefs to write: %s", list(requirements.refs.refs))
        return requirements

    def _author_lesson(
        self, batch: CourseBatch, lesson: PlannedLesson, workspace: Path | None,
        requirements: EntryRequirements,
    ) -> AuthoredLesson:
        self._spent = AuthorMetrics()
        request = AuthorRequest(
            report_spend=self._note_spend,
            course_id=batch.course_id,
            entry=batch.entry(lesson.order),
            sow=batch.sow,
            outcomes=batch.outcomes,
            requirements=requirements,
            workspace=workspace,
            timeout=self.settings.timeout,
            sessions_dir=self.sessions_dir,
        )
        log.info("Author: %s (model_version %s); workspace: %s",
                 self.author.name, self.author.model_version, workspace or "none")
        if self._loop is None:
            self._loop = asyncio.Runner()
        timeout = self.settings.timeout
        # An author that stops itself at the timeout gets a grace period to do so
        # and report its spend; the cancellation stays as the backstop. Authors
        # stop their agent process on cancellation, so nothing outlives the lesson.
        backstop = timeout + CANCEL_AFTER if timeout and self.author.stops_at_timeout else timeout
        try:
            return self._loop.run(asyncio.wait_for(self.author.author(request), backstop))
        except TimeoutError:
            raise AuthoringError(f"timed out after {timeout:g}s; the author was stopped") from None

    def _build_row(
        self, batch: CourseBatch, lesson: PlannedLesson, authored: AuthoredLesson,
        requirements: EntryRequirements,
    ) -> LessonRow:
        """The gate: whatever the author (a conftest's included), nothing that breaks
        the lesson contract or misses what the entry asks reaches the store. The entry's
        facts (refs, type, policy, tags) are written by code, whatever the author wrote."""
        content, corrected = requirements.apply(authored.lesson)
        for line in corrected:
            log.info("From the entry: %s", line)
        violations = requirements.check(content)
        if violations:
            for violation in violations:
                log.error("Lesson contract: %s", violation)
            raise AuthoringError(
                f"lesson contract: {violations[0]}"
                + (f" (+{len(violations) - 1} more, see the lesson log)"
                   if len(violations) > 1 else ""),
                authored.metrics,
            )
        return LessonRow.build(
            content,
            course_id=batch.course_id,
            sow_order=lesson.order,
            model_version=self.author.model_version,
            sow_id=batch.sow.doc_id,
            sow_version=batch.sow.version,
        )

    def _write_diff(self, batch: CourseBatch, doc_id: str, row: LessonRow,
                    result: LessonResult) -> LessonRow | None:
        """What the write will change in the row the plan chose, kept beside the logs
        before anything is replaced; the row as it was (None when unreadable)."""
        try:
            old = self.store.read_lesson(doc_id)
        except (ValueError, StoreError) as exc:
            # A row an older generator left incomplete cannot be read back; that
            # must not cost the lesson, only its diff.
            log.warning("No diff: the stored lesson could not be read (%s)", exc)
            return None
        text = lesson_diff(old, row, f"lesson_{row.sow_order:03d}")
        path = batch.layout.diff(row.sow_order)
        path.parent.mkdir(exist_ok=True)
        path.write_text(text or "(no change)\n", encoding="utf-8")
        result.diff_file = batch.layout.name(path)
        result.changed = bool(text)
        log.info("Diff against the stored lesson: %s (%s)", result.diff_file,
                 "changed" if text else "no change")
        return old

    def _write(self, batch: CourseBatch, lesson: PlannedLesson, row: LessonRow,
               result: LessonResult) -> WriteResult:
        """Write the row as the store decides at this moment; a row the store cannot
        take, or will not (another run wrote the lesson meanwhile), is kept as a
        pending row file: an authored lesson is paid for and is never lost."""
        log.info("Writing lesson: courseId=%s sow_order=%d (%d bytes of cards)",
                 row.courseId, row.sow_order, len(row.cards))
        planned = lesson.existing if lesson.replaces_row else None
        drafting = self.author.any_row_counts
        try:
            written = self.store.write_lesson(row, planned, drafting=drafting)
        except Exception as exc:
            # Whatever the store raised (its own error, or a bug in a conftest's store),
            # the lesson is paid for: it is kept, never lost with the exception.
            error = str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
            self.store_streak.failed(error)
            path = keep_pending(batch.layout, PendingLesson(
                row, planned, drafting, self.settings.store_url, error))
            result.pending_file = batch.layout.name(path)
            raise StoreError(f"{error}; the lesson is kept in {result.pending_file}: write it"
                             f" later with python -m pytest_batchgen write-pending"
                             f" {batch.directory}") from None
        self.store_streak.passed()
        if written.skipped and drafting:
            # A draft never goes over a row, so it could never be written later.
            log.warning("Not written: %s", written.skipped)
        elif written.skipped:
            path = keep_pending(batch.layout, PendingLesson(
                row, planned, drafting, self.settings.store_url, written.skipped))
            result.pending_file = batch.layout.name(path)
            log.warning("Not written: %s; the lesson is kept in %s", written.skipped,
                        result.pending_file)
        elif written.created:
            log.info("Created lesson row %s", written.doc_id)
        else:
            log.info("Updated lesson row %s (was model_version %s)", written.doc_id,
                     written.replaced_model_version)
        if written.duplicates:
            log.warning("Other rows exist for this lesson and were left untouched: %s",
                        ", ".join(written.duplicates))
        return written

    def _remove_diagrams(self, row_id: str, result: LessonResult) -> None:
        """The overwritten lesson's diagrams fit cards that are gone: remove them (and
        their images) so the platform's diagram step draws the new cards afresh."""
        if self.settings.keep_diagrams:
            log.info("Diagrams of row %s kept (--batch-keep-diagrams)", row_id)
            return
        try:
            diagrams = self.store.list_diagrams([row_id])
            self.store.delete_diagrams(diagrams)
        except StoreError as exc:
            # The lesson is written and good; only its old pictures linger.
            log.warning("Old diagrams of row %s could not be removed: %s", row_id, exc)
            result.note = f"old diagrams could not be removed: {exc}"
            return
        for diagram in diagrams:
            log.info("Removed diagram %s of %s (image %s)", diagram.doc_id, diagram.card_id,
                     diagram.image_file_id or "none")
        result.removed_diagrams = [diagram.doc_id for diagram in diagrams]

    def _keep_interrupted(self, batch: CourseBatch, result: LessonResult,
                          started: float) -> None:
        """What a lesson stopped while it was being authored had spent: its test report
        never comes, so the controller reads this file into the summary (see the
        reporter), and the spend is counted though nothing was written. A lesson that
        had spent nothing stays what any unfinished lesson is: not run."""
        if not (self._spent.cost_usd or self._spent.tokens):
            return
        result.status, result.reason = Status.FAILED, Why.INTERRUPTED
        result.error = "interrupted (Ctrl-C or SIGTERM) while it was being authored; nothing"\
                       " was written"
        self._fill_metrics(result, self._spent, started)
        log.error("Lesson interrupted: %s", result.error)
        with contextlib.suppress(OSError):  # a full disk must not hide the interrupt
            path = batch.layout.interrupted(result.order)
            path.parent.mkdir(exist_ok=True)
            write_json_atomic(path, result.to_json())

    def _note_spend(self, metrics: AuthorMetrics) -> None:
        self._spent = metrics

    @staticmethod
    def _fill_metrics(result: LessonResult, metrics: AuthorMetrics, started: float) -> None:
        result.duration_seconds = time.monotonic() - started
        result.cost_usd = round(metrics.cost_usd, 6)
        result.tokens = metrics.tokens
        result.model = metrics.model or None
        result.turns = metrics.turns or None

    @staticmethod
    def _log_end(result: LessonResult) -> None:
        if result.status == Status.SUCCESS:
            log.info("Lesson written: %s", result.doc_id)
        else:
            log.error("Lesson failed: %s", result.error)
        log.info("Duration: %s; Cost: $%.4f USD; Tokens: %d",
                 format_duration(result.duration_seconds), result.cost_usd, result.tokens)
        log.info(BANNER)
