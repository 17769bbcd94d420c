"""The plan as a reader sees it: `dry_run_plan.json`, the console table, the force
prompt's warning lines, and the dry run's hooks that write and print them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from pydantic_core import to_jsonable_python

from pytest_batchgen.batch import CourseBatch
from pytest_batchgen.controller.documents import utc_iso
from pytest_batchgen.controller.summary import shard_fields, sow_record
from pytest_batchgen.items import LessonItem
from pytest_batchgen.layout import write_json_atomic
from pytest_batchgen.planning import Action, Estimate, Mode, PlannedLesson, count_actions
from pytest_batchgen.requirements import requirements_for
from pytest_batchgen.results import plural


def plan_document(batch: CourseBatch, force: bool, estimate: Estimate) -> dict[str, Any]:
    """`dry_run_plan.json`: what a dry run plans, saved beside its batch."""
    actions = batch_actions(batch)
    problems = entry_problems(batch)
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
        if lesson.stale_against(batch.sow.version):
            item["stale"] = True
        if problem := problems.get(lesson.order):
            item["cannot_write"] = problem
        lists[lesson.action.value].append(item)
    counts = count_actions(batch.plan)
    return {
        "batch_id": batch.batch_id,
        "courseId": batch.course_id,
        "dry_run": True,
        "force_mode": force,
        "timestamp": utc_iso(batch.started),
        "store": batch.store_description,
        "sow": sow_record(batch).to_json(),
        "total_sow_entries": batch.total,
        **to_jsonable_python(shard_fields(batch)),
        "mode": batch.mode,
        "plan": lists,
        "summary": {f"will_{action.value}": counts[action] for action in actions},
        # Stored lessons written from an older SOW version, and lessons whose entry
        # names outcomes or skills the course lacks (they would fail unpaid).
        "stale": stale_orders(batch),
        "cannot_write": sorted(problems),
        **({} if batch.mode is Mode.AUDIT else {"replacing": replacing_document(batch.plan)}),
        "estimates": estimate_document(estimate),
    }


def stale_orders(batch: CourseBatch) -> list[int]:
    return [lesson.order for lesson in batch.plan if lesson.stale_against(batch.sow.version)]


def entry_problems(batch: CourseBatch) -> dict[int, str]:
    """Why the lessons the plan would author or audit cannot be held to their entry
    (an outcome or skill the course lacks), by order."""
    problems = {}
    for lesson in batch.plan:
        if lesson.runs_author or lesson.action is Action.AUDIT:
            requirements = requirements_for(batch.entry(lesson.order).view, batch.outcomes)
            if requirements.problem:
                problems[lesson.order] = requirements.problem
    return problems


def batch_actions(batch: CourseBatch) -> tuple[Action, ...]:
    if batch.mode is Mode.AUDIT:
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
        "passed_over": list(estimate.passed_over),
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
        *([f"Shard: {batch.shard[0]}/{batch.shard[1]} ({plural(len(batch.plan), 'lesson')} here,"
           f" {len(batch.other_shards)} in other shards)"] if batch.shard else []),
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
    stale = stale_orders(batch)
    notes = [
        *([f"  Stale (written from an older SOW version than {batch.sow.version}):"
           f" {plural(len(stale), 'lesson')}"] if stale else []),
        *(f"  ⚠ lesson {order} {'fails' if batch.mode == 'audit' else 'cannot be written'}:"
          f" {problem}" for order, problem in sorted(entry_problems(batch).items())),
    ]
    if batch.mode is Mode.AUDIT:
        return [*lines,
                f"  Will audit (stored):        {plural(counts[Action.AUDIT], 'lesson')}",
                f"  Will skip (no lesson):      {plural(counts[Action.SKIP], 'lesson')}", *notes]
    return [
        *lines,
        f"  Will skip (already exist):  {plural(counts[Action.SKIP], 'lesson')}",
        f"  Will generate (new):        {plural(counts[Action.GENERATE], 'lesson')}",
        f"  Will replace (other model): {plural(counts[Action.REPLACE], 'lesson')}",
        f"  Will overwrite (force):     {plural(counts[Action.OVERWRITE], 'lesson')}",
        *replacing_lines(batch.plan, keep_diagrams),
        *notes,
        "",
        *estimate_lines(estimate),
    ]


def estimate_lines(estimate: Estimate) -> list[str]:
    return [
        f"Estimated Duration: ~{estimate.minutes} minutes"
        f" ({estimate.minutes_per_lesson:.1f} min/lesson average)",
        f"Estimated Cost: ~${estimate.cost_usd:.2f} USD"
        f" (${estimate.cost_per_lesson_usd:.2f}/lesson average; {estimate.basis})",
        *(f"Estimates passed over {summary}" for summary in estimate.passed_over),
    ]


class DryRunReport:
    """A dry run's output (`--batch-dry-run`, `--co`): the plan of what was collected
    (node ids, -k, --lf narrow it), written to each batch directory and printed."""

    def __init__(self, batches: list[CourseBatch], *, force: bool, keep_diagrams: bool,
                 estimate: Callable[[int], Estimate]) -> None:
        self.batches = batches
        self.force = force
        self.keep_diagrams = keep_diagrams
        self.estimate = estimate

    @staticmethod
    def _as_collected(batch: CourseBatch, items: list[pytest.Item]) -> CourseBatch:
        """The batch as this run will touch it: only the lessons collected and selected."""
        orders = {item.lesson.order for item in items
                  if isinstance(item, LessonItem) and item.batch.course_id == batch.course_id}
        return dataclasses.replace(batch, plan=tuple(p for p in batch.plan if p.order in orders))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for batch in self.batches:
            shown = self._as_collected(batch, session.items)
            document = plan_document(shown, self.force, self.estimate(shown.to_author))
            document["deselected"] = sorted({p.order for p in batch.plan}
                                            - {p.order for p in shown.plan})
            write_json_atomic(batch.layout.plan, document)

    def pytest_report_collectionfinish(self, config: pytest.Config,
                                       items: list[pytest.Item]) -> list[str]:
        lines = []
        for batch in self.batches:
            shown = self._as_collected(batch, items)
            lines += [
                "",
                "╔" + "═" * 64 + "╗",
                "║" + "Batch Generation Plan - DRY RUN".center(64) + "║",
                "╚" + "═" * 64 + "╝",
                "",
                *plan_table(shown, self.force, self.estimate(shown.to_author),
                            self.keep_diagrams),
                *([f"Deselected: {plural(batch.total - len(shown.plan), 'lesson')} (node ids,"
                   " -k, --lf)"]
                  if len(shown.plan) < batch.total else []),
                "",
                f"✓ Dry-run plan saved to: {batch.layout.plan}",
            ]
        audit = all(batch.mode is Mode.AUDIT for batch in self.batches)
        lines += ["", "Nothing was audited (dry-run mode)." if audit
                  else "No lessons were generated (dry-run mode)."]
        return lines
