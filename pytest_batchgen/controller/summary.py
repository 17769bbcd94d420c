"""`batch_summary.json`: one course's record, kept from the lessons' results.

The one place a batch's totals are kept (`Totals`): the summary file, the
batch log, the status line, the terminal summary and the report all read
them from here, and courses add up by the same rule.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from pytest_batchgen.batch import CourseBatch
from pytest_batchgen.layout import BatchLayout, batch_directories, write_json_atomic
from pytest_batchgen.planning import Mode, PlannedLesson
from pytest_batchgen.results import LessonResult, Status, Why, format_duration

# While lessons run, the summary is rewritten at most this often (seconds), and a
# result is in the file at most this long after it arrived.
WRITE_INTERVAL = 1.0
# How many of the newest earlier summaries estimates are drawn from.
HISTORY_FILES = 20


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def sow_document(batch: CourseBatch) -> dict[str, Any]:
    """The SOW a batch used, as its summary and its plan record it."""
    sow = batch.sow
    document: dict[str, Any] = {"doc_id": sow.doc_id, "version": sow.version,
                                "status": sow.status}
    if sow.same_version:
        document["passed_over_same_version"] = list(sow.same_version)
    return document


def shard_document(batch: CourseBatch) -> dict[str, Any]:
    """Which shard a batch was, and the lessons it left to the others (summary and plan)."""
    if batch.shard is None:
        return {}
    return {"shard": {"index": batch.shard[0], "count": batch.shard[1]},
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


def counts_document(totals: Totals, mode: str) -> dict[str, int]:
    """A summary's counts of lessons by status (a batch's, or a merge's of several)."""
    statuses = totals.statuses
    return {
        "skipped": statuses[Status.SKIPPED],
        "generated": statuses[Status.SUCCESS],
        **({"passed": statuses[Status.PASSED]} if mode == Mode.AUDIT else {}),
        "failed": statuses[Status.FAILED],
        # Not a status of its own: a stale lesson is also skipped, passed or failed.
        "stale": totals.stale,
    }


def spend_document(totals: Totals) -> dict[str, Any]:
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
    """A summary's results, their JSON, their totals and how many were authored."""

    results: dict[int, LessonResult]
    documents: dict[int, dict[str, Any]]
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
        self._record = _Record({}, {}, Totals(), 0)
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
        document = result.to_json()  # made once: every write of the file uses it
        with self._lock:
            now = self._record
            old = now.results.get(result.order)
            totals = now.totals.copy()
            if old is not None:  # a report seen twice (xdist after Ctrl-C): count it once
                totals.count(old, -1)
            totals.count(result)
            self._record = _Record(
                {**now.results, result.order: result},
                {**now.documents, result.order: document}, totals,
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

    def document(self, *, finished: bool, interrupted: bool = False) -> dict[str, Any]:
        now = datetime.now(UTC)
        not_run = [lesson.order for lesson in self.not_run()]
        not_started = self.not_started()
        elapsed = (now - self.batch.started).total_seconds()
        return {
            "batch_id": self.batch.batch_id,
            "courseId": self.batch.course_id,
            "start_time": utc_iso(self.batch.started),
            "end_time": utc_iso(now),
            "duration_seconds": round(elapsed),
            "duration_human": format_duration(elapsed),
            "force_mode": self.force,
            "dry_run": False,
            "mode": self.batch.mode,
            "author": self.author,
            # Everything planned and selected has a result, and every one was started.
            "complete": finished and not interrupted and not not_run and not not_started,
            "interrupted": interrupted,
            "store": self.batch.store_description,
            "sow": sow_document(self.batch),
            "total_sow_entries": self.batch.total,
            **shard_document(self.batch),
            # These add up: skipped + generated (or passed) + failed + not_started
            # + not_run + deselected (+ in_other_shards) = total_sow_entries.
            **counts_document(self.totals, self.batch.mode),
            "not_started": not_started,
            "not_run": not_run,
            "deselected": sorted(self.deselected),
            "stopped_early": self.stopped or None,
            "budget": {
                "max_cost_usd": self.max_cost,
                "reached": bool(self.not_started(Why.BUDGET_REACHED)),
                "not_started": self.not_started(Why.BUDGET_REACHED),
            },
            "changed_lessons": sorted(r.order for r in self.results.values() if r.changed),
            "diagrams_removed": sum(len(r.removed_diagrams) for r in self.results.values()),
            "pending_files": sorted(r.pending_file for r in self.results.values()
                                    if r.pending_file),
            # Failed by the model service (an outage, an API error), not by review.
            "service_errors": sorted(r.order for r in self.results.values()
                                     if r.reason == Why.SERVICE_ERROR),
            "results": [self._record.documents[order] for order in sorted(self.results)],
            # Every lesson's label, so a report (a merge's too) can show the lessons no
            # result names (not run, another shard's) as rows of their own.
            "sow_labels": self._labels,
            **spend_document(self.totals),
            "log_directory": str(self.batch.directory),
        }

    def write(self, *, finished: bool = False, interrupted: bool = False) -> dict[str, Any]:
        with self._lock:
            if finished:  # the last word: no timer's write may follow it
                self._finished = True
                if self._late_write is not None:
                    self._late_write.cancel()
            document = self.document(finished=finished, interrupted=interrupted)
            write_json_atomic(self.path, document)
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


class SummaryUnreadable(Exception):
    """A summary file a later run cannot use; the message says why, after its path."""


Shape = TypeVar("Shape", bound=BaseModel)


def read_summary(path: Path) -> dict[str, Any]:
    """A summary file as a JSON object. Any file may be found where summaries are
    looked for: a half-written one, another tool's, one nested past the parser."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise SummaryUnreadable(f"cannot be read as JSON ({type(exc).__name__})") from None
    if not isinstance(document, dict):
        raise SummaryUnreadable("is not a batch summary")
    return document


def summary_shape(document: dict[str, Any], shape: type[Shape]) -> Shape:
    """What a reader relies on of a summary, checked before it is used (the results'
    figures strict and finite: see results.Figure)."""
    try:
        return shape.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(map(str, error["loc"]))
        raise SummaryUnreadable(f"is not a batch summary ({where}: {error['msg']})") from None


class MergedSource(BaseModel):
    model_config = ConfigDict(extra="ignore")

    batch_id: str


class HistoryShape(BaseModel):
    """What estimates read of an earlier summary."""

    model_config = ConfigDict(extra="ignore")

    batch_id: str | None = None
    results: list[LessonResult]
    merged_from: list[MergedSource] | None = None


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
    found: list[HistoryShape] = []
    passed_over: list[str] = []
    for path in paths:
        try:
            document = read_summary(path)
            if document.get("author") == author:
                found.append(summary_shape(document, HistoryShape))
        except SummaryUnreadable as exc:
            passed_over.append(f"{path} ({exc})")
    merged = {source.batch_id for shape in found for source in shape.merged_from or []}
    return History(
        [(r.duration_seconds, r.cost_usd) for shape in found if shape.batch_id not in merged
         for r in shape.results if r.status == Status.SUCCESS],
        tuple(passed_over))
