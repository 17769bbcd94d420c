"""The collection tree of a batch: one collector per course, one item per SOW entry."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_batchgen.batch import CourseBatch
from pytest_batchgen.nodeids import lesson_node_name
from pytest_batchgen.planning import PlannedLesson
from pytest_batchgen.results import LessonFailed, LessonResult, Status

if TYPE_CHECKING:
    from pytest_batchgen.worker.runner import LessonRunner


class CourseCollector(pytest.Collector):
    def __init__(self, *, batch: CourseBatch, runner: LessonRunner, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch = batch
        self.runner = runner

    def collect(self) -> list[LessonItem]:
        return [
            LessonItem.from_parent(
                self, name=lesson_node_name(lesson.order), batch=self.batch,
                lesson=lesson, runner=self.runner,
            )
            for lesson in self.batch.plan
        ]


class LessonItem(pytest.Item):
    """Authors one lesson; a skip when the plan says it already exists."""

    def __init__(
        self, *, batch: CourseBatch, lesson: PlannedLesson, runner: LessonRunner, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.batch = batch
        self.lesson = lesson
        self.runner = runner
        # `-k Fractions` selects lessons by title words.
        self.extra_keyword_matches.add(lesson.label)

    def runtest(self) -> None:
        try:
            result = self.runner.run(self.batch, self.lesson)
        except LessonFailed as failure:
            self._record(failure.result)
            raise
        self._record(result)
        if result.status in (Status.SKIPPED, Status.NOT_STARTED):
            pytest.skip(result.error or self.lesson.describe())

    def _record(self, result: LessonResult) -> None:
        """user_properties carry the result to the controller and into JUnit."""
        self.user_properties.extend(result.to_properties(self.batch.course_id,
                                                         self.batch.directory))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, LessonFailed):
            result = excinfo.value.result
            lines = [f"{self.batch.course_id} order {self.lesson.order} ({self.lesson.label}):"
                     f" {result.error}", *(f"- {v}" for v in result.violations)]
            if result.log_file:
                lines.append(f"lesson log: {self.batch.layout.lesson_log(self.lesson.order)}")
            if result.lesson_page:  # the lesson as the learner meets it, the faults beside
                lines.append(f"lesson page: {self.batch.layout.lesson_page(self.lesson.order)}")
            return "\n".join(lines)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.batch.course_id}::{self.lesson.label}"
