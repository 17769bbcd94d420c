"""When the model service is down: a circuit breaker, service errors told apart from
failed reviews, and lessons the service failed run again at the end of the run.

The real claude author (SDK + bundled CLI) against a scripted model that is down."""

from __future__ import annotations

import itertools
import json
import signal

import pytest

from pytest_batchgen.layout import BatchLayout
from tests.conftest import COURSE_LEGACY, BatchProject, legacy_sow, wait_for
from tests.support.model_server import HttpError, ModelRequest, ModelServer, Reply, scripted
from tests.test_claude_author import OUTCOMES

OVERLOADED = HttpError(529, "overloaded_error", "Overloaded")


def down_for(requests: int) -> object:
    """A model that answers 529 to the first `requests` lessons' first requests (every
    lesson's, when the count is large), then serves as usual."""
    happy, failed = scripted(), itertools.count()

    def script(request: ModelRequest) -> Reply:
        if request.role == "author" and not request.tool_uses() and next(failed) < requests:
            return OVERLOADED
        return happy(request)

    return script


@pytest.fixture
def course(project: BatchProject, model_server: ModelServer) -> BatchProject:
    project.load(legacy_sow(6), course=COURSE_LEGACY, outcomes=OUTCOMES)
    return project


def run(project: BatchProject, *args: str):  # type: ignore[no-untyped-def]
    return project.run(f"--batch-course={COURSE_LEGACY}", *args, author="claude",
                       subprocess=True)


def test_a_dead_service_stops_the_batch_after_three_lessons(
    course: BatchProject, model_server: ModelServer
) -> None:
    model_server.script = down_for(10_000)
    batch = run(course)
    assert batch.ret == 1
    batch.result.assert_outcomes(failed=3, skipped=3)
    summary = batch.summary()
    assert summary["service_errors"] == [1, 2, 3] and summary["not_started"] == [4, 5, 6]
    assert summary["stopped_early"].startswith(
        "the model service failed 3 lessons in a row (last: Claude agent failed: HTTP 529:")
    assert summary["stopped_early"].endswith("no further lesson is started")
    assert len(model_server.model_requests()) == 3  # one refused request a lesson, no more
    out = batch.output()
    assert "SERVICE ERROR" in out  # told apart from a lesson that failed its review
    results = {r["order"]: r for r in summary["results"]}
    assert results[1]["reason"] == "service_error" and results[4]["reason"] == \
        "service_unavailable"


def test_a_failed_review_is_no_service_failure(
    course: BatchProject, model_server: ModelServer
) -> None:
    model_server.script = scripted(verdict=False)
    batch = run(course, "--batch-max-retries=1", "-k", "not lesson_005 and not lesson_006")
    batch.result.assert_outcomes(failed=4)
    summary = batch.summary()
    assert summary["service_errors"] == [] and summary["not_started"] == []


@pytest.mark.parametrize("workers", [0, 2], ids=["serial", "xdist"])
def test_a_short_outage_costs_a_pause_not_the_batch(
    course: BatchProject, model_server: ModelServer, workers: int
) -> None:
    model_server.script = down_for(3)
    batch = run(course, "--batch-retry-errors=2", "--batch-retry-pause=0.1", f"-n{workers}")
    assert batch.ret == 0, batch.output()
    batch.result.assert_outcomes(passed=6)  # each lesson reported once
    summary = batch.summary()
    assert (summary["generated"], summary["service_errors"], summary["complete"]) == (
        6, [], True)
    assert len(course.rows(COURSE_LEGACY)) == 6
    # A lesson log keeps the run the service failed before the one that wrote it.
    logs = [batch.layout.lesson_log(order).read_text() for order in range(1, 7)]
    assert sum("Lesson failed: Claude agent failed: HTTP 529" in text for text in logs) == 3
    assert all(text.count("Lesson written:") == 1 for text in logs)
    if not workers:  # one process: its three failures in a row held back the rest
        assert sum("Not started: the model service failed 3 lessons in a row" in text
                   for text in logs) == 3


def test_reruns_stop_after_the_rounds_given(
    course: BatchProject, model_server: ModelServer
) -> None:
    model_server.script = down_for(10_000)
    batch = run(course, "--batch-retry-errors=1", "--batch-retry-pause=0.1", "-k",
                "lesson_001")
    assert batch.ret == 1
    batch.result.assert_outcomes(failed=1)
    assert len(model_server.model_requests()) == 2  # the run and one rerun
    assert batch.summary()["service_errors"] == [1]


def test_sigterm_during_the_pause_ends_the_run_with_the_held_lessons_not_run(
    course: BatchProject, model_server: ModelServer
) -> None:
    model_server.script = down_for(10_000)
    batch = course.start(f"--batch-course={COURSE_LEGACY}", "--batch-retry-errors=1",
                         "--batch-retry-pause=600", author="claude")
    wait_for(lambda: len(model_server.model_requests()) == 3, "three lessons to fail")
    batch.send_signal(signal.SIGTERM)
    output = batch.communicate(timeout=60)[0].decode()
    assert batch.returncode == 2, output
    [directory] = course.log_dir.glob("batch_*")
    summary = json.loads(BatchLayout(directory).summary.read_text())
    assert summary["interrupted"] is True and summary["results"] == []
    assert summary["not_run"] == [1, 2, 3, 4, 5, 6]
