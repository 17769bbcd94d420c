"""Which SOW entries to generate, skip or overwrite: a pure function.

No I/O here, and the output order is the SOW's order, so every xdist worker
that receives the same inputs builds the same items.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pytest_batchgen.sow import SowEntry, older_sow_version
from pytest_batchgen.store import ExistingLesson, choose_row_to_update

# The spec's fallback figures (minutes, USD per lesson), used only when no history
# exists and the author names none of its own.
DEFAULT_ESTIMATE = (7.0, 0.17)


class Mode(StrEnum):
    """What a run does with a course: author the missing lessons, or audit the stored."""

    GENERATE = "generate"
    AUDIT = "audit"


class Action(StrEnum):
    GENERATE = "generate"
    SKIP = "skip"
    #: Write over another generator's row (no force needed: it is not a finished lesson).
    REPLACE = "replace"
    OVERWRITE = "overwrite"
    AUDIT = "audit"


class Reason(StrEnum):
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    OTHER_MODEL_VERSION = "other_model_version"
    FORCE = "force"


@dataclass(frozen=True)
class PlannedLesson:
    order: int
    label: str
    action: Action
    reason: Reason
    # The row that makes it skip, or that the write will replace.
    existing: ExistingLesson | None = None
    # Further rows for the same lesson (left by older generators).
    duplicates: tuple[str, ...] = ()
    # Diagrams attached to the row the write will replace (removed after it).
    diagrams: int = 0

    def stale_against(self, sow_version: str) -> bool:
        """The stored lesson was written from an older SOW version than `sow_version`."""
        return self.existing is not None and older_sow_version(self.existing.sow_version,
                                                               sow_version)

    @property
    def runs_author(self) -> bool:
        return self.action in (Action.GENERATE, Action.REPLACE, Action.OVERWRITE)

    @property
    def replaces_row(self) -> bool:
        """The write will update a stored row (force, or another generator's lesson)."""
        return self.runs_author and self.existing is not None

    def describe(self) -> str:
        """The human reason, as the spec words it."""
        doc = self.existing.doc_id if self.existing else ""
        if self.action is Action.AUDIT:
            return f"Audit row {doc}"
        if self.reason is Reason.ALREADY_EXISTS:
            return f"Already exists (doc: {doc})"
        if self.reason is Reason.OTHER_MODEL_VERSION:
            assert self.existing is not None
            return f"Replaces {doc} (model_version {self.existing.model_version or 'unset'})"
        if self.reason is Reason.FORCE:
            return f"Force mode, was: {doc}"
        return "Not found in database"


def _rows_by_order(existing: Iterable[ExistingLesson]) -> dict[int, list[ExistingLesson]]:
    """A lesson's rows, oldest first."""
    rows_by_order: dict[int, list[ExistingLesson]] = {}
    for row in existing:
        rows_by_order.setdefault(row.sow_order, []).append(row)
    return {order: sorted(rows, key=lambda r: (r.created_at, r.doc_id))
            for order, rows in rows_by_order.items()}


def plan_lessons(
    entries: Sequence[SowEntry],
    existing: Iterable[ExistingLesson],
    *,
    model_version: str,
    any_row_counts: bool = False,
    force: bool = False,
) -> list[PlannedLesson]:
    """Classify every entry: generate, skip, replace or overwrite.

    A lesson exists when a row for its order carries `model_version`; for a
    drafting author (`any_row_counts`) any row does, so drafts never replace
    real lessons. Without force, a row of another model_version is replaced;
    with force, every entry that has a row is overwritten.
    """
    rows_by_order = _rows_by_order(existing)
    plan = []
    for entry in entries:
        rows = rows_by_order.get(entry.order, [])
        ours = [r for r in rows if r.model_version == model_version]
        blocking = rows if any_row_counts else ours
        chosen = choose_row_to_update(rows, model_version) if rows else None
        duplicates = tuple(r.doc_id for r in rows if r is not chosen)
        if chosen is None:
            action, reason = Action.GENERATE, Reason.NOT_FOUND
        elif force:
            action, reason = Action.OVERWRITE, Reason.FORCE
        elif blocking:
            action, reason = Action.SKIP, Reason.ALREADY_EXISTS
        else:
            action, reason = Action.REPLACE, Reason.OTHER_MODEL_VERSION
        plan.append(
            PlannedLesson(
                order=entry.order,
                label=entry.label,
                action=action,
                reason=reason,
                existing=chosen,
                duplicates=duplicates,
            )
        )
    return plan


def plan_audit(entries: Sequence[SowEntry],
               existing: Iterable[ExistingLesson]) -> list[PlannedLesson]:
    """An audit checks every entry that has a stored lesson, whoever wrote it."""
    rows_by_order = _rows_by_order(existing)
    plan = []
    for entry in entries:
        rows = rows_by_order.get(entry.order, [])
        plan.append(PlannedLesson(
            order=entry.order, label=entry.label,
            action=Action.AUDIT if rows else Action.SKIP,
            reason=Reason.ALREADY_EXISTS if rows else Reason.NOT_FOUND,
            existing=rows[0] if rows else None,
            duplicates=tuple(r.doc_id for r in rows[1:]),
        ))
    return plan


def shard_of(order: int, count: int) -> int:
    """The shard (1 to `count`) a lesson belongs to: its order, dealt round.

    It depends on the lesson alone, so a lesson keeps its shard when others are
    added, and dealing by order keeps the shards of a course within one lesson
    of each other in size.
    """
    return (order - 1) % count + 1


def split_shard(plan: Sequence[PlannedLesson], shard: tuple[int, int] | None
                ) -> tuple[list[PlannedLesson], tuple[int, ...]]:
    """The lessons of shard (K, N), and the orders left to the other shards."""
    if shard is None:
        return list(plan), ()
    index, count = shard
    ours = [lesson for lesson in plan if shard_of(lesson.order, count) == index]
    return ours, tuple(lesson.order for lesson in plan if shard_of(lesson.order, count) != index)


def count_actions(plan: Iterable[PlannedLesson]) -> dict[Action, int]:
    counts = dict.fromkeys(Action, 0)
    for lesson in plan:
        counts[lesson.action] += 1
    return counts


@dataclass(frozen=True)
class Estimate:
    lessons: int
    minutes_per_lesson: float
    cost_per_lesson_usd: float
    # How many past lessons the averages rest on; 0 means the spec's defaults.
    data_points: int = 0
    # Earlier summaries the averages could not use, each `PATH (why)`.
    passed_over: tuple[str, ...] = ()

    @property
    def minutes(self) -> int:
        return math.ceil(self.lessons * self.minutes_per_lesson)

    @property
    def cost_usd(self) -> float:
        return round(self.lessons * self.cost_per_lesson_usd, 2)

    @property
    def basis(self) -> str:
        if not self.data_points:
            return "the author's defaults, no history yet"
        return f"average of {self.data_points} earlier lessons"


def estimate(lessons: int, history: Sequence[tuple[float, float]] = (),
             defaults: tuple[float, float] = DEFAULT_ESTIMATE) -> Estimate:
    """Duration and cost for `lessons`, from (seconds, cost) of earlier lessons, else
    from `defaults` (minutes, cost per lesson)."""
    if not history:
        return Estimate(lessons, *defaults)
    seconds = sum(s for s, _ in history) / len(history)
    cost = sum(c for _, c in history) / len(history)
    return Estimate(lessons, seconds / 60, cost, data_points=len(history))
