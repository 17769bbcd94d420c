"""What a batch leaves behind: the plan, the batch log, the summary, lesson diffs.

The batch-level files are written on the controller only, from the plan and
the test reports; a lesson's own files (its log, its diff) by the process
that runs it. JSON files are replaced atomically so an interrupted run never
leaves half a file.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_batchgen.batch import CourseBatch
from pytest_batchgen.lesson import LessonRow
from pytest_batchgen.lessonlog import LOG_FORMAT, QuietFileHandler
from pytest_batchgen.planning import Action, Estimate, PlannedLesson, count_actions

RULE = "─" * 59
BANNER = "═" * 59
SUMMARY_FILE = "batch_summary.json"
# The running spend, for workers deciding whether to start a lesson (internal).
SPEND_FILE = "batch_spend.json"
# While lessons run, the summary is rewritten at most this often (seconds).
WRITE_INTERVAL = 1.0
DIFF_DIR = "diffs"
BUDGET_REACHED = "budget_reached"
STORE_UNAVAILABLE = "store_unavailable"
LOG_UNWRITABLE = "log_unwritable"
WRITTEN_MEANWHILE = "written_meanwhile"
PLAN_FILE = "dry_run_plan.json"
BATCH_LOG_FILE = "batch_execution.log"


def lesson_log_name(order: int) -> str:
    return f"lesson_order_{order:03d}.log"


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def format_duration(seconds: float) -> str:
    """8066 → '2h 14m 26s', 682 → '11m 22s', 45 → '45s' (spec §5.1)."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def spent_so_far(batch: CourseBatch) -> float:
    """The batch's spent cost, as the controller's record says.

    Reading a file rather than process memory lets every xdist worker see the
    same running total before it starts a lesson; the file is a few bytes, so
    checking it costs the same in lesson 5000 as in lesson 1.
    """
    try:
        document = json.loads((batch.directory / SPEND_FILE).read_text(encoding="utf-8"))
        return float(document.get("total_cost_usd", 0.0))
    except (OSError, ValueError, AttributeError):
        return 0.0


def lesson_diff(old: LessonRow | None, new: LessonRow, name: str) -> str:
    """A unified diff of the decoded lessons, old vs new; empty when nothing changed."""

    def lines(row: LessonRow | None) -> list[str]:
        if row is None:
            return []
        try:
            data = row.decoded()
        except ValueError:
            data = row.columns()  # an undecodable stored lesson: diff it as stored
        shown = {key: data[key] for key in DIFFED_COLUMNS}
        return json.dumps(shown, indent=2, ensure_ascii=False).splitlines(keepends=True)

    return "".join(difflib.unified_diff(lines(old), lines(new), f"{name} (stored)",
                                        f"{name} (new)"))


DIFFED_COLUMNS = ("title", "lesson_type", "estMinutes", "outcomeRefs", "engagement_tags",
                  "policy", "cards", "model_version")


def create_batch_directory(log_dir: Path, batch_id: str) -> Path:
    """Create the batch's directory: `batch_id`, or `_2`, `_3`… when a run in the
    same second (this one's other course, or a concurrent run) has it already.

    mkdir without exist_ok is the claim, so two runs can never share a directory.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    candidate, suffix = log_dir / batch_id, 2
    while True:
        try:
            candidate.mkdir()
        except FileExistsError:
            candidate, suffix = log_dir / f"{batch_id}_{suffix}", suffix + 1
            continue
        return candidate.absolute()


HISTORY_FILES = 20


def load_history(log_dir: Path, author: str) -> list[tuple[float, float]]:
    """(seconds, cost) of successful lessons by `author` in the newest earlier summaries.

    Estimates rest on what lessons really took here; unreadable files are
    passed over (a summary being written by a concurrent run, say).
    """
    paths = sorted(log_dir.glob(f"batch_*/{SUMMARY_FILE}"),
                   key=lambda p: p.stat().st_mtime)[-HISTORY_FILES:]
    history = []
    for path in paths:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(document, dict) or document.get("author") != author:
            continue
        history += [
            (float(r.get("duration_seconds", 0)), float(r.get("cost_usd", 0)))
            for r in document.get("results", [])
            if isinstance(r, dict) and r.get("status") == "success"
        ]
    return history


# --- the plan (dry run and force prompt) -------------------------------------


def plan_document(batch: CourseBatch, force: bool, estimate: Estimate) -> dict[str, Any]:
    """`dry_run_plan.json` (spec §2.1)."""
    actions = batch_actions(batch)
    lists: dict[str, list[dict[str, Any]]] = {action.value: [] for action in actions}
    for lesson in batch.plan:
        item: dict[str, Any] = {
            "order": lesson.order,
            "label": lesson.label,
            "reason": lesson.reason.value,
        }
        if lesson.existing:
            item.update(
                doc_id=lesson.existing.doc_id,
                model_version=lesson.existing.model_version,
                status=lesson.existing.status,
                created_at=lesson.existing.created_at,
            )
        if lesson.diagrams:
            item["diagrams"] = lesson.diagrams
        if lesson.duplicates:
            item["duplicate_doc_ids"] = list(lesson.duplicates)
        lists[lesson.action.value].append(item)
    counts = count_actions(batch.plan)
    return {
        "batch_id": batch.batch_id,
        "courseId": batch.course_id,
        "dry_run": True,
        "force_mode": force,
        "timestamp": utc_iso(batch.started),
        "store": batch.store_description,
        "sow": sow_document(batch),
        "total_sow_entries": batch.total,
        "mode": batch.mode,
        "plan": lists,
        "summary": {f"will_{action.value}": counts[action] for action in actions},
        **({} if batch.mode == "audit" else {"replacing": replacing_document(batch.plan)}),
        "estimates": estimate_document(estimate),
    }


def sow_document(batch: CourseBatch) -> dict[str, Any]:
    sow = batch.sow
    document: dict[str, Any] = {"doc_id": sow.doc_id, "version": sow.version,
                                "status": sow.status}
    if sow.same_version:
        document["passed_over_same_version"] = list(sow.same_version)
    return document


def batch_actions(batch: CourseBatch) -> tuple[Action, ...]:
    if batch.mode == "audit":
        return (Action.AUDIT, Action.SKIP)
    return (Action.GENERATE, Action.SKIP, Action.REPLACE, Action.OVERWRITE)


def replacing_document(plan: Iterable[PlannedLesson]) -> dict[str, int]:
    """What the plan's writes replace: rows, published ones among them, their diagrams."""
    lessons = [lesson for lesson in plan if lesson.replaces_row]
    return {
        "lessons": len(lessons),
        "published": sum(1 for p in lessons if p.existing and p.existing.status == "published"),
        "diagrams": sum(p.diagrams for p in lessons),
    }


def replacing_lines(plan: Iterable[PlannedLesson], keep_diagrams: bool) -> list[str]:
    """The plan's and the force prompt's warning about what an overwrite does."""
    counts = replacing_document(plan)
    lines = []
    if counts["published"]:
        lines.append(f"  {counts['published']} of the lessons to overwrite are published: an"
                     " overwrite makes them draft (hidden from learners until re-published)")
    if counts["diagrams"] and keep_diagrams:
        lines.append(f"  {counts['diagrams']} diagrams of them are kept (--batch-keep-diagrams):"
                     " they may no longer fit the new cards")
    elif counts["diagrams"]:
        lines.append(f"  {counts['diagrams']} diagrams of them will be removed after the"
                     " write, so the platform's diagram step draws them afresh"
                     " (--batch-keep-diagrams keeps them)")
    return lines


def estimate_document(estimate: Estimate) -> dict[str, Any]:
    return {
        "duration_minutes": estimate.minutes,
        "duration_human": f"{estimate.minutes} minutes",
        "cost_usd": estimate.cost_usd,
        "avg_duration_per_lesson_minutes": round(estimate.minutes_per_lesson, 2),
        "avg_cost_per_lesson_usd": round(estimate.cost_per_lesson_usd, 4),
        "based_on_lessons": estimate.data_points,
        "basis": estimate.basis,
    }


def plan_table(batch: CourseBatch, force: bool, estimate: Estimate,
               keep_diagrams: bool = False) -> list[str]:
    """The spec's console plan: header, one row per entry, totals, estimates."""
    width = max([len(lesson.label) for lesson in batch.plan] + [27])
    width = min(width, 48)
    reasons = [lesson.describe() for lesson in batch.plan]
    rwidth = max([len(r) for r in reasons] + [15])  # whole: the reason is the point

    def row(*cells: str) -> str:
        return f"│ {cells[0]:^5} │ {cells[1]:<{width}} │ {cells[2]:<12} │ {cells[3]:<{rwidth}} │"

    def border(left: str, mid: str, right: str) -> str:
        segments = ("─" * 7, "─" * (width + 2), "─" * 14, "─" * (rwidth + 2))
        return left + mid.join(segments) + right

    counts = count_actions(batch.plan)
    lines = [
        f"Course ID: {batch.course_id}",
        f"SOW: {batch.sow.describe()}",
        f"Total SOW Entries: {batch.total}",
        f"Force Mode: {'Yes' if force else 'No'}",
        "",
        border("┌", "┬", "┐"),
        row("Order", "Label", "Status", "Reason"),
        border("├", "┼", "┤"),
    ]
    for lesson, reason in zip(batch.plan, reasons, strict=True):
        label = lesson.label if len(lesson.label) <= width else lesson.label[: width - 1] + "…"
        lines.append(row(str(lesson.order), label, lesson.action.name, reason))
    lines += [border("└", "┴", "┘"), "", "Summary:"]
    if batch.mode == "audit":
        return [*lines,
                f"  Will audit (stored):        {counts[Action.AUDIT]} lessons",
                f"  Will skip (no lesson):      {counts[Action.SKIP]} lessons"]
    return [
        *lines,
        f"  Will skip (already exist):  {counts[Action.SKIP]} lessons",
        f"  Will generate (new):        {counts[Action.GENERATE]} lessons",
        f"  Will replace (other model): {counts[Action.REPLACE]} lessons",
        f"  Will overwrite (force):     {counts[Action.OVERWRITE]} lessons",
        *replacing_lines(batch.plan, keep_diagrams),
        "",
        *estimate_lines(estimate),
    ]


def estimate_lines(estimate: Estimate) -> list[str]:
    return [
        f"Estimated Duration: ~{estimate.minutes} minutes"
        f" ({estimate.minutes_per_lesson:.1f} min/lesson average)",
        f"Estimated Cost: ~${estimate.cost_usd:.2f} USD"
        f" (${estimate.cost_per_lesson_usd:.2f}/lesson average; {estimate.basis})",
    ]


# --- the batch log --------------------------------------------------------------


def open_batch_log(batch: CourseBatch) -> logging.Logger:
    """A logger for `batch_execution.log` that stays out of lesson logs.

    It does not propagate, so the per-lesson root handler never sees the
    orchestration lines and pytest's own log capture is not flooded.
    """
    logger = logging.getLogger(f"pytest_batchgen.batch.{batch.batch_id}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = QuietFileHandler(batch.directory / BATCH_LOG_FILE, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT.replace(" - %(name)s", "")))
    logger.addHandler(handler)
    return logger


def close_batch_log(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


# --- results and the summary -------------------------------------------------------


@dataclass
class LessonResult:
    """One lesson's outcome, as carried by its test report's user_properties."""

    order: int
    label: str
    # success | failed | skipped (the lesson exists, or was written meanwhile by another
    # run) | not_started (budget spent, store failing) | passed (an audit)
    status: str
    action: str = ""
    doc_id: str | None = None
    existing_doc_id: str | None = None
    error: str | None = None
    duration_seconds: float = 0.0
    cost_usd: float = 0.0
    tokens: int = 0
    log_file: str | None = None
    # Why a lesson was skipped or not started: already_exists, written_meanwhile,
    # budget_reached, store_unavailable.
    reason: str | None = None
    diff_file: str | None = None
    changed: bool | None = None
    note: str | None = None
    model: str | None = None
    turns: int | None = None
    duplicate_doc_ids: list[str] = field(default_factory=list)
    # The critic's scores of the written lesson (authors that review), 0-1.
    critic_fidelity: float | None = None
    critic_quality: float | None = None
    critic_overall: float | None = None
    # Diagram rows of the overwritten lesson removed after the write.
    removed_diagrams: list[str] = field(default_factory=list)
    # An authored lesson the store did not take, kept for write-pending.
    pending_file: str | None = None
    # --batch-audit: every rule the stored lesson breaks.
    violations: list[str] = field(default_factory=list)

    def set_review(self, review: dict[str, float] | None) -> None:
        if review:
            self.critic_fidelity = review["sow_fidelity"]
            self.critic_quality = review["basic_quality"]
            self.critic_overall = review["overall"]

    @property
    def authored(self) -> bool:
        """The author ran (and may have spent): its figures belong in the record."""
        return self.action != Action.AUDIT and (
            self.status in ("success", "failed") or self.reason == WRITTEN_MEANWHILE)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["duration_seconds"] = round(self.duration_seconds)
        if not self.authored:
            for name in ("duration_seconds", "cost_usd", "tokens", "model", "turns"):
                data.pop(name)
        return {k: v for k, v in data.items() if v not in (None, []) or k == "log_file"}

    def to_properties(self, course_id: str, batch_dir: Path) -> list[tuple[str, object]]:
        """As test-report user_properties: the controller's input and JUnit's <property>s.

        JUnit dashboards call the lesson's row `row_id`, the written one or the one
        that made it a skip; a lesson with no log file has no `log_file`."""
        data = self.to_json()
        row_id = data.pop("doc_id", None) or data.get("existing_doc_id")
        return [("course", course_id), ("batch_dir", str(batch_dir)),
                *(("row_id", row_id),) * bool(row_id),
                *((name, value) for name, value in data.items() if value is not None)]

    @classmethod
    def from_properties(cls, properties: list[tuple[str, object]]) -> LessonResult | None:
        fields: dict[str, Any] = dict(properties)
        if "status" not in fields:
            return None  # a report from before the lesson recorded anything
        if "existing_doc_id" not in fields:
            fields["doc_id"] = fields.pop("row_id", None)
        return cls(**{k: v for k, v in fields.items() if k in cls.__dataclass_fields__})




class BatchSummary:
    """`batch_summary.json` for one course, and the one place its totals are kept.

    Totals are kept as results arrive (a 5000-lesson batch must not re-add
    5000 results per lesson); the file is rewritten at most every
    WRITE_INTERVAL seconds while lessons run, and whole at the end, on Ctrl-C
    and on SIGTERM. The spend the workers check before starting a lesson is a
    small file rewritten after every lesson (SPEND_FILE).
    """

    def __init__(self, batch: CourseBatch, *, force: bool, author: str,
                 max_cost: float | None = None) -> None:
        self.batch = batch
        self.force = force
        self.author = author
        self.max_cost = max_cost
        self.results: dict[int, LessonResult] = {}
        # Each result's JSON, made once.
        self._documents: dict[int, dict[str, Any]] = {}
        # Left out of this run on purpose (-k, --lf): neither done nor missing.
        self.deselected: set[int] = set()
        self.path = batch.directory / SUMMARY_FILE
        self.statuses: Counter[str] = Counter()
        self.cost_usd = 0.0
        self.tokens = 0
        self.authored = 0
        self.authored_seconds = 0.0
        self._written_at = 0.0
        #: Why the file could not be written last time (a full disk), else None.
        self.write_error: OSError | None = None
        self._to_author = sum(1 for lesson in batch.plan if lesson.runs_author)
        self._authoring_done = 0
        self._authoring_deselected = 0

    def record(self, result: LessonResult) -> None:
        old = self.results.get(result.order)
        if old is not None:  # a report seen twice (xdist after Ctrl-C): count it once
            self._tally(old, -1)
        elif self.batch.lesson(result.order).runs_author:
            self._authoring_done += 1
        self.results[result.order] = result
        self._documents[result.order] = result.to_json()
        self._tally(result, 1)

    def _tally(self, result: LessonResult, sign: int) -> None:
        self.statuses[result.status] += sign
        if result.authored:
            self.authored += sign
            self.cost_usd += sign * result.cost_usd
            self.tokens += sign * result.tokens
            self.authored_seconds += sign * result.duration_seconds

    def deselect(self, orders: set[int]) -> None:
        self.deselected = orders
        self._authoring_deselected = sum(1 for order in orders
                                         if self.batch.lesson(order).runs_author)

    @property
    def authoring_left(self) -> int:
        """Lessons still to author in this run (for the ETA)."""
        return self._to_author - self._authoring_done - self._authoring_deselected

    def not_run(self) -> list[PlannedLesson]:
        """Planned lessons with no result that were not deselected (-k, --lf)."""
        return [lesson for lesson in self.batch.plan
                if lesson.order not in self.results and lesson.order not in self.deselected]

    def not_started(self, reason: str | None = None) -> list[int]:
        """Lessons the run did not start (budget spent, store failing), by order."""
        return sorted(r.order for r in self.results.values() if r.status == "not_started"
                      and (reason is None or r.reason == reason))

    @property
    def budget_reached(self) -> bool:
        return any(r.reason == BUDGET_REACHED for r in self.results.values())

    @property
    def stopped(self) -> str:
        """Why the run stopped starting lessons before the end, or ""."""
        reasons = [r.error or "" for r in self.results.values() if r.status == "not_started"]
        return reasons[0] if reasons else ""

    def document(self, *, finished: bool, interrupted: bool = False) -> dict[str, Any]:
        now = datetime.now(UTC)
        not_run = [lesson.order for lesson in self.not_run()]
        not_started = self.not_started()
        cost = round(self.cost_usd, 4)
        return {
            "batch_id": self.batch.batch_id,
            "courseId": self.batch.course_id,
            "start_time": utc_iso(self.batch.started),
            "end_time": utc_iso(now),
            "duration_seconds": round((now - self.batch.started).total_seconds()),
            "duration_human": format_duration((now - self.batch.started).total_seconds()),
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
            # These add up: skipped + generated (or passed) + failed + not_started
            # + not_run + deselected = total_sow_entries.
            "skipped": self.statuses["skipped"],
            "generated": self.statuses["success"],
            **({"passed": self.statuses["passed"]} if self.batch.mode == "audit" else {}),
            "failed": self.statuses["failed"],
            "not_started": not_started,
            "not_run": not_run,
            "deselected": sorted(self.deselected),
            "stopped_early": self.stopped or None,
            "budget": {
                "max_cost_usd": self.max_cost,
                "reached": self.budget_reached,
                "not_started": self.not_started(BUDGET_REACHED),
            },
            "changed_lessons": sorted(r.order for r in self.results.values() if r.changed),
            "diagrams_removed": sum(len(r.removed_diagrams) for r in self.results.values()),
            "pending_files": sorted(r.pending_file for r in self.results.values()
                                    if r.pending_file),
            "results": [self._documents[order] for order in sorted(self._documents)],
            "total_cost_usd": cost,
            "total_tokens": self.tokens,
            "avg_cost_per_lesson_usd": round(cost / self.authored, 4) if self.authored else 0,
            "avg_duration_per_lesson_seconds": round(
                self.authored_seconds / self.authored) if self.authored else 0,
            "log_directory": str(self.batch.directory),
        }

    def write(self, *, finished: bool = False, interrupted: bool = False) -> dict[str, Any]:
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
                write_json_atomic(self.batch.directory / SPEND_FILE,
                                  {"total_cost_usd": round(self.cost_usd, 6)})
            if time.monotonic() - self._written_at >= WRITE_INTERVAL:
                self.write()
        except OSError as exc:
            self.write_error = exc
