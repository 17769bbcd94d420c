"""`batch_summary.json`: one course's record, kept from the lessons' results.

The one place a batch's totals are kept (`Totals`): the summary file, the
batch log, the status line, the terminal summary and the report all read
them from here, and courses add up by the same rule.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pytest_batchgen.batch import CourseBatch
from pytest_batchgen.controller.documents import (
    Budget,
    Counts,
    DocumentUnreadable,
    ShardFields,
    SowRecord,
    Spend,
    SummaryDocument,
    read_document,
)
from pytest_batchgen.layout import BatchLayout, batch_directories, write_json_atomic
from pytest_batchgen.planning import Mode, PlannedLesson
from pytest_batchgen.results import LessonResult, Shard, Status, Why, format_duration

# While lessons run, the summary is rewritten at most this often (seconds), and a
# result is in the file at most this long after it arrived.
WRITE_INTERVAL = 1.0
# How many of the newest earlier summaries estimates are drawn from.
HISTORY_FILES = 20


def sow_record(batch: CourseBatch) -> SowRecord:
    """The SOW a batch used, as its summary and its plan record it."""
    sow = batch.sow
    record = SowRecord(doc_id=sow.doc_id, version=sow.version, status=sow.status)
    if sow.same_version:  # set only then: the file names it only then
        record.passed_over_same_version = list(sow.same_version)
    return record


def shard_fields(batch: CourseBatch) -> ShardFields:
    """Which shard a batch was, and the lessons it left to the others (summary and plan)."""
    if batch.shard is None:
        return {}
    return {"shard": Shard(index=batch.shard[0], count=batch.shard[1]),
            "in_other_shards": list(batch.other_shards)}


@dataclass
class Totals:
    """What results add up to: lessons by status, and the spend of those authored."""

    statuses: Counter[str] = field(default_factory=Counter)
    #: Lessons whose author ran (see LessonResult.authored): the spend is theirs.
    authored: int = 0
    cost_usd: float = 0.0
    tokens: int = 0
    authored_seconds: float = 0.0
    #: Stored lessons written from an older SOW version (audited or skipped).
    stale: int = 0

    def count(self, result: LessonResult, sign: int = 1) -> None:
        """Add a result (sign -1: take one back)."""
        self.statuses[result.status] += sign
        if result.stale:
            self.stale += sign
        if result.authored:
            self.authored += sign
            self.cost_usd += sign * result.cost_usd
            self.tokens += sign * result.tokens
            self.authored_seconds += sign * result.duration_seconds

    def copy(self) -> Totals:
        return Totals(Counter(self.statuses), self.authored, self.cost_usd, self.tokens,
                      self.authored_seconds, self.stale)

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.statuses + other.statuses, self.authored + other.authored,
                      self.cost_usd + other.cost_usd, self.tokens + other.tokens,
                      self.authored_seconds + other.authored_seconds,
                      self.stale + other.stale)

    @property
    def average_seconds(self) -> float:
        return self.authored_seconds / self.authored if self.authored else 0.0

    @property
    def average_cost(self) -> float:
        return self.cost_usd / self.authored if self.authored else 0.0


def count_fields(totals: Totals, mode: Mode) -> Counts:
    """A summary's counts of lessons by status (a batch's, or a merge's of several)."""
    statuses = totals.statuses
    counts: Counts = {"skipped": statuses[Status.SKIPPED],
                      "generated": statuses[Status.SUCCESS],
                      "failed": statuses[Status.FAILED], "stale": totals.stale}
    if mode == Mode.AUDIT:
        counts["passed"] = statuses[Status.PASSED]
    return counts


def spend_fields(totals: Totals) -> Spend:
    """A summary's spend: what its authored lessons cost, in all and on average."""
    return {
        "total_cost_usd": round(totals.cost_usd, 4),
        "total_tokens": totals.tokens,
        "avg_cost_per_lesson_usd": round(totals.average_cost, 4),
        "avg_duration_per_lesson_seconds": round(totals.average_seconds),
    }


def total(summaries: list[BatchSummary]) -> Totals:
    return sum((s.totals for s in summaries), Totals())


@dataclass(frozen=True)
class _Record:
    """A summary's results, their totals and how many were authored."""

    results: dict[int, LessonResult]
    totals: Totals
    authoring_done: int


class BatchSummary:
    """`batch_summary.json` for one course.

    Totals are kept as results arrive (a 5000-lesson batch must not re-add
    5000 results per lesson); the file is rewritten at most every
    WRITE_INTERVAL seconds while lessons run, and whole at the end, on Ctrl-C
    and on SIGTERM. A result that arrives within the interval is written by a
    timer when the interval ends, not with the next lesson's (minutes later, or
    never after a `kill -9`). The spend the workers check before starting a lesson is a
    small file rewritten after every lesson, only when a budget needs it.
    """

    def __init__(self, batch: CourseBatch, *, force: bool, author: str,
                 max_cost: float | None = None) -> None:
        self.batch = batch
        self.force = force
        self.author = author
        self.max_cost = max_cost
        # What the results add up to, replaced whole by each record (see record()).
        self._record = _Record({}, Totals(), 0)
        # Left out of this run on purpose (-k, --lf): neither done nor missing.
        self.deselected: set[int] = set()
        self.path = batch.layout.summary
        self._written_at = 0.0
        #: Why the file could not be written last time (a full disk), else None.
        self.write_error: OSError | None = None
        self._to_author = batch.to_author
        self._authoring_deselected = 0
        # The timer's thread reads what the run's thread records: one at a time.
        self._lock = threading.RLock()
        self._late_write: threading.Timer | None = None
        self._finished = False
        self._labels = {str(entry.order): entry.label for entry in batch.sow.entries}

    @property
    def results(self) -> dict[int, LessonResult]:
        return self._record.results

    @property
    def totals(self) -> Totals:
        return self._record.totals

    def record(self, result: LessonResult) -> None:
        """Add a result. The new record is built whole, then put in place in one
        assignment: a Ctrl-C (an exception in this thread) lands before or after it,
        never between a result and its totals, so no lesson is lost from both the
        results and the lessons not run."""
        with self._lock:
            now = self._record
            old = now.results.get(result.order)
            totals = now.totals.copy()
            if old is not None:  # a report seen twice (xdist after Ctrl-C): count it once
                totals.count(old, -1)
            totals.count(result)
            self._record = _Record(
                {**now.results, result.order: result}, totals,
                now.authoring_done + (old is None and self.batch.lesson(result.order).runs_author))

    def deselect(self, orders: set[int]) -> None:
        with self._lock:
            self.deselected = orders
            self._authoring_deselected = sum(1 for order in orders
                                             if self.batch.lesson(order).runs_author)

    @property
    def authoring_left(self) -> int:
        """Lessons still to author in this run (for the ETA)."""
        return self._to_author - self._record.authoring_done - self._authoring_deselected

    def not_run(self) -> list[PlannedLesson]:
        """Planned lessons with no result that were not deselected (-k, --lf)."""
        return [lesson for lesson in self.batch.plan
                if lesson.order not in self.results and lesson.order not in self.deselected]

    def not_started(self, reason: str | None = None) -> list[int]:
        """Lessons the run did not start (budget spent, store failing), by order."""
        return sorted(r.order for r in self.results.values() if r.status == Status.NOT_STARTED
                      and (reason is None or r.reason == reason))

    @property
    def stopped(self) -> str:
        """Why the run stopped starting lessons before the end, or ""."""
        reasons = [r.error or "" for r in self.results.values()
                   if r.status == Status.NOT_STARTED]
        return reasons[0] if reasons else ""

    def document(self, *, finished: bool, interrupted: bool = False) -> SummaryDocument:
        now = datetime.now(UTC)
        not_run = [lesson.order for lesson in self.not_run()]
        not_started = self.not_started()
        elapsed = (now - self.batch.started).total_seconds()
        results = self.results.values()
        return SummaryDocument(
            batch_id=self.batch.batch_id,
            courseId=self.batch.course_id,
            start_time=self.batch.started,
            end_time=now,
            duration_seconds=round(elapsed),
            duration_human=format_duration(elapsed),
            force_mode=self.force,
            dry_run=False,
            mode=self.batch.mode,
            author=self.author,
            complete=finished and not interrupted and not not_run and not not_started,
            interrupted=interrupted,
            store=self.batch.store_description,
            sow=sow_record(self.batch),
            total_sow_entries=self.batch.total,
            **shard_fields(self.batch),
            **count_fields(self.totals, self.batch.mode),
            not_started=not_started,
            not_run=not_run,
            deselected=sorted(self.deselected),
            stopped_early=self.stopped or None,
            budget=Budget(max_cost_usd=self.max_cost,
                          reached=bool(self.not_started(Why.BUDGET_REACHED)),
                          not_started=self.not_started(Why.BUDGET_REACHED)),
            changed_lessons=sorted(r.order for r in results if r.changed),
            diagrams_removed=sum(len(r.removed_diagrams) for r in results),
            pending_files=sorted(r.pending_file for r in results if r.pending_file),
            service_errors=sorted(r.order for r in results if r.reason == Why.SERVICE_ERROR),
            results=[self.results[order] for order in sorted(self.results)],
            sow_labels=self._labels,
            **spend_fields(self.totals),
            log_directory=str(self.batch.directory),
        )

    def write(self, *, finished: bool = False, interrupted: bool = False) -> SummaryDocument:
        with self._lock:
            if finished:  # the last word: no timer's write may follow it
                self._finished = True
                if self._late_write is not None:
                    self._late_write.cancel()
            document = self.document(finished=finished, interrupted=interrupted)
            write_json_atomic(self.path, document.to_json())
            self._written_at = time.monotonic()
            self.write_error = None
            return document

    def lesson_recorded(self) -> None:
        """After each lesson: the spend at once, the whole summary when it is due.

        A file that cannot be written (a full disk) must not end the batch: the
        results stay here, and the end of the run says what could not be saved."""
        try:
            if self.max_cost is not None:  # only a budget needs the workers to know
                self.batch.layout.write_spend(self.totals.cost_usd)
            wait = self._written_at + WRITE_INTERVAL - time.monotonic()
            if wait <= 0:
                self.write()
            elif self._late_write is None:
                self._late_write = threading.Timer(wait, self._write_late)
                self._late_write.daemon = True  # never keeps a finished run alive
                self._late_write.start()
        except OSError as exc:
            self.write_error = exc

    def _write_late(self) -> None:
        with self._lock:
            self._late_write = None
            if self._finished:
                return
            try:
                self.write()
            except OSError as exc:
                self.write_error = exc


@dataclass(frozen=True)
class History:
    """(seconds, cost) of earlier successful lessons, and the summaries passed over,
    each as `PATH (why)`."""

    lessons: list[tuple[float, float]] = field(default_factory=list)
    passed_over: tuple[str, ...] = ()


def summary_files(log_dir: Path) -> list[Path]:
    """The batch summaries under a log directory: its own batches', and those one level
    down (a merge's output, a CI's artifacts downloaded there)."""
    directories = [*batch_directories(log_dir),
                   *(d for d in sorted(log_dir.glob("*/batch_*")) if d.is_dir())]
    return [path for path in (BatchLayout(d).summary for d in directories) if path.is_file()]


def load_history(log_dir: Path, author: str) -> History:
    """Successful lessons by `author` in the newest earlier summaries, merged ones
    included (a CI matrix's history, merged and kept here).

    Estimates rest on what lessons really took here. A file that cannot be read
    or holds what no run writes (a summary being written by a concurrent run, a
    null or NaN figure) is passed over and named, never the end of the run; a
    batch that is also in a merge found here counts once.
    """
    paths = sorted(summary_files(log_dir), key=lambda p: p.stat().st_mtime)[-HISTORY_FILES:]
    found: list[SummaryDocument] = []
    passed_over: list[str] = []
    for path in paths:
        try:
            found.append(read_document(path, SummaryDocument))
        except DocumentUnreadable as exc:
            passed_over.append(f"{path} ({exc})")
    found = [summary for summary in found if summary.author == author]
    merged = {source.batch_id for summary in found for source in summary.merged_from or []}
    return History(
        [(r.duration_seconds, r.cost_usd) for summary in found if summary.batch_id not in merged
         for r in summary.results if r.status == Status.SUCCESS],
        tuple(passed_over))
