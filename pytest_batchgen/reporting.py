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
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_batchgen.batch import CourseBatch
from pytest_batchgen.lesson import LessonRow
from pytest_batchgen.lessonlog import LOG_FORMAT
from pytest_batchgen.planning import Action, Estimate, PlannedLesson, count_actions

RULE = "─" * 59
BANNER = "═" * 59
SUMMARY_FILE = "batch_summary.json"
DIFF_DIR = "diffs"
BUDGET_REACHED = "budget_reached"
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
    """The batch's spent cost, as its summary (the controller's record) says.

    Reading the file rather than process memory lets every xdist worker see
    the same running total before it starts a lesson.
    """
    try:
        document = json.loads((batch.directory / SUMMARY_FILE).read_text(encoding="utf-8"))
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
        "sow": {"doc_id": batch.sow.doc_id, "version": batch.sow.version,
                "status": batch.sow.status},
        "total_sow_entries": batch.total,
        "mode": batch.mode,
        "plan": lists,
        "summary": {f"will_{action.value}": counts[action] for action in actions},
        **({} if batch.mode == "audit" else {"replacing": replacing_document(batch.plan)}),
        "estimates": estimate_document(estimate),
    }


def batch_actions(batch: CourseBatch) -> tuple[Action, ...]:
    if batch.mode == "audit":
        return (Action.AUDIT, Action.SKIP)
    return (Action.GENERATE, Action.SKIP, Action.OVERWRITE)


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
    rwidth = min(max([len(r) for r in reasons] + [15]), 44)

    def row(*cells: str) -> str:
        return f"│ {cells[0]:^5} │ {cells[1]:<{width}} │ {cells[2]:<12} │ {cells[3]:<{rwidth}} │"

    def border(left: str, mid: str, right: str) -> str:
        segments = ("─" * 7, "─" * (width + 2), "─" * 14, "─" * (rwidth + 2))
        return left + mid.join(segments) + right

    counts = count_actions(batch.plan)
    lines = [
        f"Course ID: {batch.course_id}",
        f"SOW: {batch.sow.doc_id} (version {batch.sow.version}, {batch.sow.status})",
        f"Total SOW Entries: {batch.total}",
        f"Force Mode: {'Yes' if force else 'No'}",
        "",
        border("┌", "┬", "┐"),
        row("Order", "Label", "Status", "Reason"),
        border("├", "┼", "┤"),
    ]
    for lesson, reason in zip(batch.plan, reasons, strict=True):
        label = lesson.label if len(lesson.label) <= width else lesson.label[: width - 1] + "…"
        reason = reason if len(reason) <= rwidth else reason[: rwidth - 1] + "…"
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
        f"  Will overwrite:             {counts[Action.OVERWRITE]} lessons",
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
    handler = logging.FileHandler(batch.directory / BATCH_LOG_FILE, encoding="utf-8")
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
    status: str  # skipped | success | failed
    action: str = ""
    doc_id: str | None = None
    existing_doc_id: str | None = None
    error: str | None = None
    duration_seconds: float = 0.0
    cost_usd: float = 0.0
    tokens: int = 0
    log_file: str | None = None
    # Why a lesson was skipped: already_exists, or budget_reached.
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
    # --batch-audit: every rule the stored lesson breaks.
    violations: list[str] = field(default_factory=list)

    def set_review(self, review: dict[str, float] | None) -> None:
        if review:
            self.critic_fidelity = review["sow_fidelity"]
            self.critic_quality = review["basic_quality"]
            self.critic_overall = review["overall"]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        generated = self.status in ("success", "failed") and self.action != Action.AUDIT
        data["duration_seconds"] = round(self.duration_seconds)
        if not generated:
            for name in ("duration_seconds", "cost_usd", "tokens", "model", "turns"):
                data.pop(name)
        return {k: v for k, v in data.items() if v not in (None, []) or k == "log_file"}

    def to_properties(self, course_id: str) -> list[tuple[str, object]]:
        """As test-report user_properties: the controller's input and JUnit's <property>s."""
        return [("course", course_id)] + [
            (PROPERTY_NAMES.get(name, name), value) for name, value in self.to_json().items()
        ]

    @classmethod
    def from_properties(cls, properties: list[tuple[str, object]]) -> LessonResult | None:
        fields: dict[str, Any] = {FIELD_NAMES.get(name, name): value
                                  for name, value in properties}
        if "status" not in fields:
            return None  # a report from before the lesson recorded anything
        fields.pop("course", None)
        return cls(**{k: v for k, v in fields.items() if k in cls.__dataclass_fields__})


# JUnit dashboards call the written row's id "row_id".
PROPERTY_NAMES = {"doc_id": "row_id"}
FIELD_NAMES = {v: k for k, v in PROPERTY_NAMES.items()}


class BatchSummary:
    """`batch_summary.json` for one course, rewritten after every lesson."""

    def __init__(self, batch: CourseBatch, *, force: bool, author: str,
                 max_cost: float | None = None) -> None:
        self.batch = batch
        self.force = force
        self.author = author
        self.max_cost = max_cost
        self.results: dict[int, LessonResult] = {}
        # Each result's JSON, made once: the summary is rewritten after every lesson.
        self._documents: dict[int, dict[str, Any]] = {}
        # Left out of this run on purpose (-k, --lf): neither done nor missing.
        self.deselected: set[int] = set()
        self.path = batch.directory / SUMMARY_FILE

    def record(self, result: LessonResult) -> None:
        self.results[result.order] = result
        self._documents[result.order] = result.to_json()

    def counts(self) -> dict[str, int]:
        counts = {"skipped": 0, "success": 0, "failed": 0, "passed": 0, BUDGET_REACHED: 0}
        for result in self.results.values():
            counts[BUDGET_REACHED if result.reason == BUDGET_REACHED else result.status] += 1
        return counts

    def not_run(self) -> list[PlannedLesson]:
        """Planned lessons with no result that were not deselected (-k, --lf)."""
        return [lesson for lesson in self.batch.plan
                if lesson.order not in self.results and lesson.order not in self.deselected]

    @property
    def budget_reached(self) -> bool:
        return self.counts()[BUDGET_REACHED] > 0

    def document(self, *, finished: bool, interrupted: bool = False) -> dict[str, Any]:
        now = datetime.now(UTC)
        generated = [r for r in self.results.values() if r.status in ("success", "failed")]
        total_cost = round(sum(r.cost_usd for r in generated), 4)
        total_tokens = sum(r.tokens for r in generated)
        not_run = [lesson.order for lesson in self.not_run()]
        counts = self.counts()
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
            "complete": finished and not interrupted and not not_run,
            "interrupted": interrupted,
            "store": self.batch.store_description,
            "sow": {"doc_id": self.batch.sow.doc_id, "version": self.batch.sow.version,
                    "status": self.batch.sow.status},
            "total_sow_entries": self.batch.total,
            "skipped": counts["skipped"],
            "generated": counts["success"],
            **({"passed": counts["passed"]} if self.batch.mode == "audit" else {}),
            "failed": counts["failed"],
            "not_run": not_run,
            "deselected": sorted(self.deselected),
            "budget": {
                "max_cost_usd": self.max_cost,
                "reached": counts[BUDGET_REACHED] > 0,
                "not_started": sorted(r.order for r in self.results.values()
                                      if r.reason == BUDGET_REACHED),
            },
            "changed_lessons": sorted(r.order for r in self.results.values() if r.changed),
            "diagrams_removed": sum(len(r.removed_diagrams) for r in self.results.values()),
            "results": [self._documents[order] for order in sorted(self._documents)],
            "total_cost_usd": total_cost,
            "total_tokens": total_tokens,
            "avg_cost_per_lesson_usd": round(total_cost / len(generated), 4) if generated else 0,
            "avg_duration_per_lesson_seconds": round(
                sum(r.duration_seconds for r in generated) / len(generated)
            ) if generated else 0,
            "log_directory": str(self.batch.directory),
        }

    def write(self, *, finished: bool = False, interrupted: bool = False) -> dict[str, Any]:
        document = self.document(finished=finished, interrupted=interrupted)
        write_json_atomic(self.path, document)
        return document
