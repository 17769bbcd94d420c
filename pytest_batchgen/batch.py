"""One course's batch: its SOW, outcomes, plan and run directory.

Built once on the controller; under xdist it travels to the workers as
JSON (`to_wire` / `from_wire`, by pydantic) so every worker collects
identical items without reading the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from pytest_batchgen.layout import BatchLayout
from pytest_batchgen.planning import Mode, PlannedLesson
from pytest_batchgen.sow import SowRecord


def batch_id_for(course_id: str, started: datetime,
                 shard: tuple[int, int] | None = None) -> str:
    """`batch_{courseId}_{YYYYMMDD_HHMMSS}`, local time; a shard's ends in
    `_shard2of4`, so the jobs of one matrix never share a name."""
    batch_id = f"batch_{course_id}_{started.astimezone().strftime('%Y%m%d_%H%M%S')}"
    return batch_id + (f"_shard{shard[0]}of{shard[1]}" if shard else "")


@dataclass(frozen=True)
class CourseBatch:
    course_id: str
    sow: SowRecord
    outcomes: list[dict[str, Any]]
    plan: tuple[PlannedLesson, ...]
    started: datetime
    batch_id: str
    # Absolute; created only once the whole batch has validated.
    directory: Path
    store_description: str
    mode: Mode = Mode.GENERATE
    #: --batch-shard (K, N): the plan holds shard K's lessons only.
    shard: tuple[int, int] | None = None
    #: The orders of the course's other shards (another job's lessons).
    other_shards: tuple[int, ...] = ()

    @property
    def total(self) -> int:
        """The SOW's entries (a plan narrowed to a run's selection keeps this)."""
        return len(self.sow.entries)

    @property
    def to_author(self) -> int:
        """How many lessons the plan will author (generate or overwrite)."""
        return sum(1 for lesson in self.plan if lesson.runs_author)

    @cached_property
    def _by_order(self) -> dict[int, tuple[int, PlannedLesson, Any]]:
        """order -> (1-based position in the SOW, planned lesson, SOW entry): looked up
        per lesson, so a 5000-lesson batch must not search its plan each time."""
        entries = {entry.order: (position, entry)
                   for position, entry in enumerate(self.sow.entries, 1)}
        found = {}
        for lesson in self.plan:
            position, entry = entries[lesson.order]
            found[lesson.order] = (position, lesson, entry)
        return found

    def position(self, order: int) -> int:
        """1-based index of the lesson among the SOW's entries ("[6/12]")."""
        return self._by_order[order][0]

    def lesson(self, order: int) -> PlannedLesson:
        return self._by_order[order][1]

    def entry(self, order: int) -> Any:
        return self._by_order[order][2]

    @property
    def layout(self) -> BatchLayout:
        return BatchLayout(self.directory)

    def to_wire(self) -> dict[str, Any]:
        """JSON for an xdist worker (execnet carries plain data only)."""
        return _WIRE.dump_python(self, mode="json")  # type: ignore[no-any-return]

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> CourseBatch:
        return _WIRE.validate_python(data)


# pydantic serialises the whole batch (SOW entries, plan, rows, dates) both ways.
_WIRE = TypeAdapter(CourseBatch)
