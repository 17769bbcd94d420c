"""Scale and operations: xdist, live status, budget, timeout, resume, diffs, report."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from pytest_batchgen.layout import BatchLayout
from tests.conftest import COURSE, BatchProject
from tests.support.rows import insert_lesson, lesson_row

XDIST = ["-p", "xdist", "-n", "2"]


def test_status_line_per_lesson_with_running_totals(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [1])
    run = project.run(f"--batch-course={COURSE}")
    run.result.stdout.fnmatch_lines([
        f"{COURSE}::lesson_001 SKIPPED*Already exists*",
        f"{COURSE}::lesson_002 GENERATED in 0s, $0.2000 | spent $0.2000, 2000 tokens,"
        " 1 to go, ETA 0s*",
        f"{COURSE}::lesson_004 GENERATED in 0s, $0.4000 | spent $0.6000, 6000 tokens,"
        " 0 to go, ETA 0s*",
    ])


def test_status_line_of_an_author_without_a_model_has_no_spend(project: BatchProject) -> None:
    project.load("sow_current.json")
    run = project.run(f"--batch-course={COURSE}", author="outline")
    run.result.stdout.fnmatch_lines([f"{COURSE}::lesson_001 GENERATED in 0s | 2 to go, ETA 0s*"])
    assert "$0.0000 |" not in run.output()


def test_quiet_run_has_no_status_lines(project: BatchProject) -> None:
    project.load("sow_current.json")
    run = project.run(f"--batch-course={COURSE}", "-q")
    assert "GENERATED" not in run.output()
    run.result.assert_outcomes(passed=3)


def test_budget_stops_starting_lessons(project: BatchProject) -> None:
    project.load("sow_current.json")
    # Scripted costs are 0.1 × order: 0.1 + 0.2 reaches 0.25 before lesson 4.
    run = project.run(f"--batch-course={COURSE}", "--batch-max-cost=0.25", "-rs")
    assert run.ret == 1
    run.result.assert_outcomes(passed=2, skipped=1)
    run.result.stdout.fnmatch_lines(["*1 lesson not started: budget reached: $0.3000 of $0.25*",
                                     "SKIPPED*budget reached: $0.3000 of $0.25 spent"])
    summary = run.summary()
    assert summary["budget"] == {"max_cost_usd": 0.25, "reached": True, "not_started": [4]}
    assert summary["skipped"] == 0 and summary["generated"] == 2
    assert [r["sow_order"] for r in project.rows()] == [1, 2]
    assert "NOT STARTED - budget reached" in run.layout.batch_log.read_text()
    assert summary["results"][2]["log_file"] == "lesson_order_004.log"
    assert "Not started: budget reached" in run.layout.lesson_log(4).read_text()


def test_timeout_fails_the_lesson_and_the_batch_goes_on(
    project: BatchProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.load("sow_current.json")
    monkeypatch.setenv("BATCHGEN_FAKE_SLOW", "2")
    # Long enough that the scripted lessons 1 and 4 finish on a loaded machine; lesson 2
    # hangs for 300 s, so only it can reach the limit.
    run = project.run(f"--batch-course={COURSE}", "--batch-timeout=3")
    assert run.ret == 1
    run.result.assert_outcomes(passed=2, failed=1)
    failed = run.summary()["results"][1]
    assert failed["error"] == "timed out after 3s; the author was stopped"
    assert [r["sow_order"] for r in project.rows()] == [1, 4]


def test_overwrite_keeps_a_diff_of_each_changed_lesson(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [1, 2])
    run = project.run(f"--batch-course={COURSE}", "--batch-force", "--batch-yes")
    summary = run.summary()
    assert summary["changed_lessons"] == [1, 2]
    assert summary["results"][0]["diff_file"] == "diffs/lesson_001.diff"
    assert "diff_file" not in summary["results"][2]  # nothing stored before: no diff
    diff = run.layout.diff(1).read_text()
    assert diff.startswith("--- lesson_001 (stored)\n+++ lesson_001 (new)\n")
    assert '-  "title": "Existing lesson number 1 for the course",' in diff
    assert '+      "id": "card_001",' in diff  # the new cards, decoded
    # Overwriting again with the same lesson: a diff that says so.
    again = project.run(f"--batch-course={COURSE}", "--batch-force", "--batch-yes")
    assert again.summary()["changed_lessons"] == []
    assert again.layout.diff(1).read_text() == "(no change)\n"


def test_the_diff_compares_with_the_row_the_write_replaces(project: BatchProject) -> None:
    """With two rows for a lesson, the one written over is the one diffed against (ours,
    though another tool touched its row more recently)."""
    project.load("sow_current.json")
    [ours] = project.add_lessons(COURSE, [1])
    insert_lesson(project.store_path, lesson_row(1, model_version="legacy_v1",
                                                 title="A legacy row touched more recently"),
                  created_at="2099-01-01T00:00:00.000+00:00")
    run = project.run(f"--batch-course={COURSE}", "--batch-force", "--batch-yes",
                      "-k", "lesson_001")
    assert run.summary()["results"][0]["doc_id"] == ours
    diff = run.layout.diff(1).read_text()
    assert '-  "title": "Existing lesson number 1 for the course",' in diff
    assert "legacy" not in diff


def test_html_report_is_self_contained(project: BatchProject,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [4])
    monkeypatch.setenv("BATCHGEN_FAKE_FAIL", "2")
    run = project.run(f"--batch-course={COURSE}")
    html = run.layout.report.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert '<a href="lesson_order_001.log"' in html and '<a href="lesson_order_002.log"' in html
    # A cost bar for each authored lesson (1, and 2 that failed); the scripted author
    # takes no time, and a chart of 0s says nothing, so there is none.
    assert html.count("<svg") == 1 and html.count('<rect class="cost"') == 2
    assert "scripted failure for order 2" in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing to fetch
    run.result.stdout.fnmatch_lines(["*report:  *batch_report.html"])


def test_several_courses_have_a_combined_total(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.load("sow_legacy_row.json", course=None)
    run = project.run(f"--batch-course={COURSE}", "--batch-course=course_c84774")
    run.result.stdout.fnmatch_lines(["all 2 courses: generated 6, skipped 0, failed 0"
                                     " | cost $1.3000, tokens 13000"])
    assert len(run.batch_dirs()) == 2


FINISHED_HOOK = """
    import json

    def pytest_batchgen_batch_finished(config, summary, directory):
        assert (directory / "batch_summary.json").is_file()
        with open("finished.jsonl", "a") as out:
            out.write(json.dumps({k: getattr(summary, k) for k in
                                  ("courseId", "generated", "failed", "complete")}) + "\\n")
"""


@pytest.mark.parametrize("workers", [[], XDIST], ids=["n0", "n2"])
def test_batch_finished_hook_runs_once_per_course_on_the_controller(
    project: BatchProject, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    # The place for notifications (e-mail when a batch completes).
    project.pytester.makeconftest(FINISHED_HOOK)
    project.load("sow_current.json")
    project.load("sow_legacy_row.json", course=None)
    monkeypatch.setenv("BATCHGEN_FAKE_FAIL", "2")
    run = project.run(f"--batch-course={COURSE}", "--batch-course=course_c84774",
                      *workers, subprocess=True)
    assert run.ret == 1
    calls = (project.pytester.path / "finished.jsonl").read_text().splitlines()
    assert sorted(calls) == sorted(
        json.dumps({"courseId": course, "generated": 2, "failed": 1, "complete": True})
        for course in (COURSE, "course_c84774"))


def test_batch_finished_hook_hears_of_an_interrupt(
    project: BatchProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.pytester.makeconftest(FINISHED_HOOK)
    project.load("sow_current.json")
    monkeypatch.setenv("BATCHGEN_FAKE_INTERRUPT", "2")
    assert project.run(f"--batch-course={COURSE}", subprocess=True).ret == 2
    [call] = (project.pytester.path / "finished.jsonl").read_text().splitlines()
    assert json.loads(call) == {"courseId": COURSE, "generated": 1, "failed": 0,
                                "complete": False}


# --- pytest-xdist -----------------------------------------------------------------------


def test_xdist_spreads_lessons_and_the_controller_writes_one_summary(
    project: BatchProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.load("sow_current.json")
    project.load("sow_legacy_row.json", course=None)
    monkeypatch.setenv("BATCHGEN_FAKE_FAIL", "2")
    run = project.run(f"--batch-course={COURSE}", "--batch-course=course_c84774",
                      "--log-level=DEBUG", *XDIST, subprocess=True)
    assert run.ret == 1
    run.result.assert_outcomes(passed=4, failed=2)
    run.result.stdout.fnmatch_lines(["*2 workers [[]6 items[]]*"])
    assert re.search(r"\[gw0\].*GENERATED", run.output())
    assert re.search(r"\[gw1\].*GENERATED", run.output())
    for directory in run.batch_dirs():
        summary = run.summary(directory)
        assert (summary["generated"], summary["failed"], summary["not_run"]) == (2, 1, [])
        assert len(summary["results"]) == 3
        for order in (1, 2):
            text = BatchLayout(directory).lesson_log(order).read_text()
            assert f"DEBUG-MARK helper working on order {order}" in text
            assert f"working on order {3 - order}" not in text
    assert len(project.rows()) + len(project.rows("course_c84774")) == 4


def test_xdist_deselection_is_not_counted_as_not_run(project: BatchProject) -> None:
    project.load("sow_current.json")
    run = project.run(f"--batch-course={COURSE}", "-k", "not Speed", *XDIST, subprocess=True)
    run.result.assert_outcomes(passed=2)  # workers deselect; the controller is told
    summary = run.summary()
    assert (summary["deselected"], summary["not_run"], summary["complete"]) == ([2], [], True)


def test_xdist_ctrl_c_leaves_a_valid_summary_and_the_rerun_resumes(
    project: BatchProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.load("sow_legacy_row.json", course=None)
    project.load("sow_current.json")
    monkeypatch.setenv("BATCHGEN_FAKE_INTERRUPT_PARENT", "4")
    run = project.run(f"--batch-course={COURSE}", *XDIST, subprocess=True)
    assert run.ret == 2
    summary = run.summary()
    assert summary["interrupted"] is True and summary["complete"] is False
    completed = [r["order"] for r in summary["results"] if r["status"] == "success"]
    assert 4 in summary["not_run"] and set(completed) | set(summary["not_run"]) >= {1, 2, 4}
    assert sorted(r["sow_order"] for r in project.rows()) == sorted(completed)
    monkeypatch.delenv("BATCHGEN_FAKE_INTERRUPT_PARENT")
    again = project.run(f"--batch-course={COURSE}", *XDIST, subprocess=True)
    again.result.assert_outcomes(passed=3 - len(completed), skipped=len(completed))
    assert sorted(r["sow_order"] for r in project.rows()) == [1, 2, 4]


def test_xdist_force_prompt_refuses_without_terminal_before_spawning(
    project: BatchProject,
) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [1])
    run = project.run(f"--batch-course={COURSE}", "--batch-force", *XDIST, subprocess=True)
    assert run.ret == 2
    assert "created: 2/2 workers" not in run.output()
    assert run.batch_dirs() == []


def test_an_unreadable_stored_lesson_costs_its_diff_not_the_lesson(
    project: BatchProject,
) -> None:
    project.load("sow_current.json")
    [doc_id] = project.add_lessons(COURSE, [1])
    with sqlite3.connect(project.store_path) as db:  # as an older generator left it
        db.execute('UPDATE lesson_templates SET estMinutes = NULL WHERE "$id" = ?', (doc_id,))
    run = project.run(f"--batch-course={COURSE}", "--batch-force", "--batch-yes")
    run.result.assert_outcomes(passed=3)
    assert project.rows()[0]["$id"] == doc_id and project.rows()[0]["estMinutes"] == 50
    assert "No diff: the stored lesson could not be read" in (
        run.layout.lesson_log(1)).read_text()
    summary = run.summary()
    assert "diff_file" not in summary["results"][0] and summary["changed_lessons"] == []
