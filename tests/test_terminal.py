"""What a person reads in the terminal, JUnit and --help: each line says what it means."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from pytest_batchgen.__main__ import main
from tests.conftest import COURSE, BatchProject


@pytest.fixture
def written(project: BatchProject) -> BatchProject:
    """A course whose three lessons are all written: a second run skips them all."""
    project.load("sow_current.json")
    project.run(f"--batch-course={COURSE}").result.assert_outcomes(passed=3)
    return project


@pytest.mark.parametrize("workers", [0, 2], ids=["serial", "xdist"])
def test_a_skipped_lesson_says_why_under_xdist_too(written: BatchProject, workers: int) -> None:
    run = written.run(f"--batch-course={COURSE}", f"-n{workers}", "-rs", subprocess=True)
    run.result.assert_outcomes(skipped=3)
    out = run.output()
    # One line a lesson as it runs, saying why it was skipped (and one in the summary).
    lines = [line for line in out.splitlines() if "lesson_001" in line]
    assert len(lines) == 2, out
    assert "SKIPPED" in lines[0] and "Already exists (doc: " in lines[0]
    # The short summary names the lesson, not the line of the plugin that skipped it.
    assert f"SKIPPED [1] {COURSE}::lesson_001: Already exists (doc: " in out
    assert "items.py" not in out


def test_junit_skips_name_no_internal_path(written: BatchProject) -> None:
    xml = written.pytester.path / "skips.xml"
    written.run(f"--batch-course={COURSE}", f"--junitxml={xml}")
    skipped = [case.find("skipped") for case in ElementTree.parse(xml).getroot().iter("testcase")]
    assert all(s is not None and s.get("message", "").startswith("Already exists (doc: ")
               for s in skipped)
    assert all("pytest_batchgen" not in (s.text or "") for s in skipped if s is not None)


def test_show_lesson_takes_a_node_id_and_shows_the_row_id(
    written: BatchProject, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--store", f"sqlite:///{written.store_path}"]
    row_id = written.rows()[0]["$id"]
    assert main([*store, "show-lesson", f"{COURSE}::lesson_001"]) == 0
    by_node = json.loads(capsys.readouterr().out)
    assert main([*store, "show-lesson", COURSE, "1"]) == 0
    assert json.loads(capsys.readouterr().out) == by_node
    assert by_node["$id"] == row_id and by_node["sow_order"] == 1
    assert main([*store, "show-lesson", "course_x1::lesson_²"]) == 2
    assert "names no lesson: give COURSE ORDER or a node id" in capsys.readouterr().err


def test_help_shows_each_options_kind_and_default(project: BatchProject) -> None:
    result = project.pytester.runpytest_subprocess("--help")
    text = " ".join(result.stdout.str().split())
    assert "offline drafts) (default claude)" in text  # --batch-author
    assert "up to N times (a whole number; default 0)" in text  # --batch-retry-errors
    assert "(one of published, draft; default published)" in text  # --batch-sow-status
    assert "(a number; default 30)" in text  # --batch-retry-pause
    assert "default 30.0" not in text


def test_subcommands_explain_their_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    for command, says in [("show-lesson", "a lesson's node id as a run prints it"),
                          ("load-lesson", "lesson_templates rows: one JSON object or a list"),
                          ("write-pending", "the batch directory whose pending/ rows")]:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert says in " ".join(capsys.readouterr().out.split())


def test_an_audit_dry_run_ends_in_its_own_words(written: BatchProject) -> None:
    run = written.run(f"--batch-course={COURSE}", "--batch-audit", "--batch-dry-run",
                      author=None)
    assert "Nothing was audited (dry-run mode)." in run.output()
    assert "No lessons were generated" not in run.output()


def test_the_batch_log_names_no_mcp_config_an_sqlite_run_never_reads(
    written: BatchProject, tmp_path: Path
) -> None:
    log = written.run(f"--batch-course={COURSE}").layout.batch_log.read_text()
    assert "MCP Config" not in log and "Store: sqlite:///" in log
