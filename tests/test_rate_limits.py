"""A key that allows fewer requests at once than the run has workers: the run's shared
limit on model sessions keeps the workers from colliding on it.

The real claude author (SDK + bundled CLI) in xdist workers, against a scripted model
that answers 429 to any request beyond its capacity."""

from __future__ import annotations

import pytest

from tests.conftest import COURSE_LEGACY, BatchProject, legacy_sow
from tests.support.model_server import ModelServer
from tests.test_claude_author import OUTCOMES

LESSONS = 4


@pytest.fixture
def course(project: BatchProject, model_server: ModelServer) -> BatchProject:
    project.load(legacy_sow(LESSONS), course=COURSE_LEGACY, outcomes=OUTCOMES)
    # One request at a time, each long enough that two workers' sessions overlap.
    model_server.capacity, model_server.delay = 1, 0.5
    return project


def test_two_workers_under_a_limit_of_one_session_never_meet_a_429(
    course: BatchProject, model_server: ModelServer
) -> None:
    # With CLAUDE_CODE_MAX_RETRIES=0 (the tests' CLI environment) any 429 fails a lesson.
    batch = course.run(f"--batch-course={COURSE_LEGACY}", "--batch-max-sessions=1", "-n2",
                       author="claude", subprocess=True)
    assert batch.ret == 0, batch.output()
    batch.result.assert_outcomes(passed=LESSONS)
    assert model_server.refused == 0
    assert len(model_server.model_requests()) == 2 * LESSONS
    # Its slots live in the run's first batch directory, where every worker finds them.
    assert [path.name for path in (batch.batch_dir / "sessions").glob("slot_*")] == [
        "slot_000"]


def test_without_a_limit_workers_collide_and_the_shared_limit_falls(
    course: BatchProject, model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDE_CODE_MAX_RETRIES", "10")  # the CLI retries, as in a real run
    model_server.retry_after = 0.2
    batch = course.run(f"--batch-course={COURSE_LEGACY}", "-n2", author="claude",
                       subprocess=True)
    assert batch.ret == 0, batch.output()
    batch.result.assert_outcomes(passed=LESSONS)
    logs = "".join(batch.layout.lesson_log(order).read_text()
                   for order in range(1, LESSONS + 1))
    # The workers' sessions overlapped at once (two workers, two sessions allowed), a
    # 429 halved the limit for both, and the CLI's retry got through.
    assert model_server.refused >= 1
    assert "model session limit lowered from 2 to 1 (at most 2) after a 429" in logs
