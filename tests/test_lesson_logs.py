"""Per-lesson logs hold everything logged during that lesson, and only that."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_batchgen.layout import BatchLayout
from tests.conftest import COURSE, BatchProject


def lesson_log(project: BatchProject, run_dir: Path, order: int) -> str:
    return BatchLayout(run_dir).lesson_log(order).read_text(encoding="utf-8")


def test_debug_lines_of_other_modules_reach_only_their_own_lesson_log(
    project: BatchProject,
) -> None:
    project.load("sow_current.json")
    run = project.run(f"--batch-course={COURSE}", "--log-level=DEBUG", subprocess=True)
    assert run.ret == 0
    first = lesson_log(project, run.batch_dir, 1)
    second = lesson_log(project, run.batch_dir, 2)
    assert "fake_plugin.helper - DEBUG - DEBUG-MARK helper working on order 1" in first
    assert "order 2" not in first and "Lesson 2 of" not in first
    assert "fake_plugin.helper - DEBUG - DEBUG-MARK helper working on order 2" in second
    assert "order 1" not in second
    # The lesson log's format: time - logger - level - message.
    assert first.splitlines()[0].split(" - ")[1:3] == ["pytest_batchgen.worker.runner", "INFO"]


def test_default_level_is_info(project: BatchProject) -> None:
    project.load("sow_current.json")
    run = project.run(f"--batch-course={COURSE}", subprocess=True)
    text = lesson_log(project, run.batch_dir, 1)
    assert "INFO-MARK helper working on order 1" in text
    assert "DEBUG-MARK" not in text


def test_log_level_from_ini(project: BatchProject) -> None:
    project.pytester.makeini("[pytest]\nlog_level = WARNING\n")
    project.load("sow_current.json")
    run = project.run(f"--batch-course={COURSE}", subprocess=True)
    assert "INFO-MARK" not in lesson_log(project, run.batch_dir, 1)


def test_a_library_resetting_root_logging_cannot_empty_the_log(
    project: BatchProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference implementation's defect 1: basicConfig(force=True) emptied the file."""
    project.load("sow_current.json")
    monkeypatch.setenv("BATCHGEN_FAKE_RESET_LOGGING", "1")
    run = project.run(f"--batch-course={COURSE}", subprocess=True)
    assert run.ret == 0
    first = lesson_log(project, run.batch_dir, 1)
    assert "INFO-MARK helper working on order 1" in first
    assert "Lesson written:" in first
    # ...and the next lesson still gets its own, complete log.
    assert "INFO-MARK helper working on order 2" in lesson_log(project, run.batch_dir, 2)


def test_failed_lesson_log_keeps_the_error(project: BatchProject,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    project.load("sow_current.json")
    monkeypatch.setenv("BATCHGEN_FAKE_FAIL", "4")
    run = project.run(f"--batch-course={COURSE}", subprocess=True)
    text = lesson_log(project, run.batch_dir, 4)
    assert "ERROR - Lesson failed: scripted failure for order 4" in text
    assert "Cost: $0.0500 USD; Tokens: 1234" in text
