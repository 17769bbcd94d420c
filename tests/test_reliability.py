"""Never overwrite a finished lesson, never lose a paid one (issue: reliability)."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from pytest_batchgen.__main__ import main
from pytest_batchgen.layout import BatchLayout, batch_directories
from pytest_batchgen.lesson import CLAUDE_MODEL_VERSION, encode_cards
from tests.conftest import COURSE, FIXTURES, BatchProject, BatchRun, legacy_sow, wait_for
from tests.support.appwrite_server import AppwriteTestServer
from tests.support.lessons import OUTCOMES
from tests.support.processes import processes, running

pytestmark = pytest.mark.usefixtures("project")

DRAFTS = {"BATCHGEN_FAKE_DRAFTING": "1"}


@pytest.mark.parametrize(
    ("held", "other", "held_writes"),
    [
        (DRAFTS, {}, False),  # drafts planned, real lessons written meanwhile: keep them
        ({}, {}, False),  # a real lesson written meanwhile by another run is not replaced
        ({}, DRAFTS, True),  # drafts written meanwhile: the real lesson replaces them
    ],
    ids=["drafts-after-lessons", "lessons-after-lessons", "lessons-after-drafts"],
)
def test_a_stale_plan_decides_again_at_write_time(
    project: BatchProject, held: dict[str, str], other: dict[str, str], held_writes: bool
) -> None:
    project.load("sow_current.json")
    gate = project.pytester.path / "go"
    # Run A plans (every lesson missing), starts lesson 1 and waits before authoring...
    first = project.start(f"--batch-course={COURSE}", "-k", "lesson_001",
                          env={**held, "BATCHGEN_FAKE_WAIT_FILE": str(gate)})
    wait_for(lambda: any(BatchLayout(d).lesson_log(1).exists()
                         for d in batch_directories(project.log_dir)),
             "run A to plan and start its lesson")
    # ...while run B, a real second process on the same store, writes the lesson.
    second = project.start(f"--batch-course={COURSE}", "-k", "lesson_001", env=other)
    second.communicate(timeout=60)
    assert second.returncode == 0
    before = project.rows()
    gate.touch()
    output = first.communicate(timeout=60)[0].decode()
    assert first.returncode == 0, output
    after = project.rows()
    assert len(after) == 1 and after[0]["$id"] == before[0]["$id"]  # never two rows
    if held_writes:
        assert after[0]["model_version"] == CLAUDE_MODEL_VERSION
        return
    assert after == before  # the finished lesson stands as run B wrote it
    results = [json.loads(BatchLayout(d).summary.read_text())["results"][0]
               for d in project.log_dir.glob("batch_*")]
    [result] = [r for r in results if r.get("reason") == "written_meanwhile"]
    assert result["status"] == "skipped"
    assert result["error"].startswith("written meanwhile by another run (row")
    # A paid lesson is kept for write-pending; a draft (never written over a row) is not.
    assert result.get("pending_file") == (None if held else "pending/lesson_001.json")
    assert "written meanwhile by another run" in output


def test_a_lesson_the_store_refuses_is_kept_and_written_later(
    project: BatchProject, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project.load("sow_current.json")
    monkeypatch.setenv("BATCHGEN_FAKE_WRITE_FAIL", "2")
    run = project.run(f"--batch-course={COURSE}")
    run.result.assert_outcomes(passed=2, failed=1)
    failed = run.summary()["results"][1]
    assert failed["pending_file"] == "pending/lesson_002.json"
    assert failed["error"] == (
        "scripted write failure for order 2; the lesson is kept in pending/lesson_002.json:"
        f" write it later with python -m pytest_batchgen write-pending {run.batch_dir}")
    assert failed["cost_usd"] > 0  # paid for
    assert run.summary()["pending_files"] == ["pending/lesson_002.json"]
    assert [r["sow_order"] for r in project.rows()] == [1, 4]
    capsys.readouterr()
    # Later, with the store back: written without authoring again, and the file goes.
    store = ["--store", f"sqlite:///{project.store_path}"]
    assert main([*store, "write-pending", str(run.batch_dir)]) == 0
    out = capsys.readouterr().out
    assert "lesson_002.json: created row" in out and "1 written, 0 kept" in out
    assert [r["sow_order"] for r in project.rows()] == [1, 2, 4]
    assert not run.layout.pending(2).exists()
    assert main([*store, "write-pending", str(run.batch_dir)]) == 0  # nothing left: fine
    assert "no pending lessons" in capsys.readouterr().out


def test_any_error_at_write_time_keeps_the_lesson_pending(
    project: BatchProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.load("sow_current.json")
    monkeypatch.setenv("BATCHGEN_FAKE_WRITE_CRASH", "2")  # not a StoreError
    run = project.run(f"--batch-course={COURSE}")
    run.result.assert_outcomes(passed=2, failed=1)
    failed = run.summary()["results"][1]
    assert failed["error"].startswith("UnicodeEncodeError: 'utf-8' codec can't encode")
    assert failed["pending_file"] == "pending/lesson_002.json" and failed["cost_usd"] > 0
    assert run.layout.pending(2).is_file()


def test_a_failing_store_stops_new_lessons_after_three_in_a_row(
    project: BatchProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.load(legacy_sow(6), course=None, status="published")
    monkeypatch.setenv("BATCHGEN_FAKE_WRITE_FAIL", "1,2,3")
    run = project.run("--batch-course=course_c84774")
    assert run.ret == 1
    run.result.assert_outcomes(failed=3, skipped=3)
    summary = run.summary()
    assert summary["not_started"] == [4, 5, 6] and summary["complete"] is False
    assert summary["stopped_early"].startswith(
        "the store failed 3 lessons in a row (last: scripted write failure for order 3)")
    assert summary["generated"] + summary["failed"] + len(summary["not_started"]) == 6
    # Nothing was paid for the lessons not started.
    assert all("cost_usd" not in r for r in summary["results"] if r["status"] == "not_started")
    assert "3 lessons not started: the store failed" in run.output()


def test_a_budget_stop_adds_up(project: BatchProject) -> None:
    project.load(legacy_sow(6), course=None, status="published")
    project.add_lessons("course_c84774", [6])
    run = project.run("--batch-course=course_c84774", "--batch-max-cost=0.25")
    assert run.ret == 1
    summary = run.summary()
    # 0.1 + 0.2 reach the budget: 3, 4 and 5 are not started; 6 exists.
    assert (summary["generated"], summary["skipped"], summary["not_started"]) == (2, 1,
                                                                                   [3, 4, 5])
    assert summary["complete"] is False and summary["budget"]["reached"] is True
    statuses = [r["status"] for r in summary["results"]]
    assert statuses.count("skipped") == summary["skipped"] == 1
    assert (summary["skipped"] + summary["generated"] + summary["failed"]
            + len(summary["not_started"]) + len(summary["not_run"])) == 6
    html = run.layout.report.read_text()
    assert "generated 2, skipped 1, failed 0" in html and "not started 3" in html


def test_an_older_embedded_store_is_migrated(project: BatchProject) -> None:
    project.load("sow_current.json")
    with sqlite3.connect(project.store_path) as db:  # as an older version made it
        db.execute("ALTER TABLE lesson_templates DROP COLUMN authored_sow_id")
        db.execute("ALTER TABLE lesson_templates DROP COLUMN authored_sow_version")
    run = project.run(f"--batch-course={COURSE}")
    run.result.assert_outcomes(passed=3)
    assert {r["authored_sow_id"] for r in project.rows()} == {f"sow_{COURSE}"}


def test_rows_with_no_usable_order_are_passed_over(project: BatchProject) -> None:
    project.load("sow_current.json")
    [first, second] = project.add_lessons(COURSE, [1, 2])
    with sqlite3.connect(project.store_path) as db:
        db.execute('UPDATE lesson_templates SET sow_order = NULL WHERE "$id" = ?', (first,))
        db.execute('UPDATE lesson_templates SET sow_order = \'2\' WHERE "$id" = ?', (second,))
    run = project.run(f"--batch-course={COURSE}", "--batch-dry-run")
    assert run.ret == 0
    plan = run.plan()
    assert [p["order"] for p in plan["plan"]["skip"]] == [2]  # text "2" counts as 2
    assert [p["order"] for p in plan["plan"]["generate"]] == [1, 4]


def pending_batch(project: BatchProject, monkeypatch: pytest.MonkeyPatch,
                  *orders: int) -> BatchRun:
    """A batch whose store refused the lessons of `orders`: they are pending files."""
    project.load("sow_current.json")
    monkeypatch.setenv("BATCHGEN_FAKE_WRITE_FAIL", ",".join(map(str, orders)))
    run = project.run(f"--batch-course={COURSE}")
    monkeypatch.delenv("BATCHGEN_FAKE_WRITE_FAIL")
    return run


def edit_pending(run: BatchRun, order: int, change: Callable[[dict[str, Any]], None]) -> None:
    path = run.layout.pending(order)
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def test_write_pending_holds_every_row_to_the_gate_a_batch_holds_it_to(
    project: BatchProject, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = pending_batch(project, monkeypatch, 1, 2, 4)
    broken = json.dumps([{"id": "card_001"}])  # a card that breaks the contract

    def broken_cards(document: dict[str, Any]) -> None:
        document["row"]["cards"] = encode_cards(json.loads(broken))

    def other_course(document: dict[str, Any]) -> None:
        document["row"]["courseId"] = "course_other1"

    def other_order(document: dict[str, Any]) -> None:
        document["row"]["sow_order"] = 999

    elsewhere = tmp_path / "elsewhere.sqlite3"

    def other_store(document: dict[str, Any]) -> None:
        document["store"] = f"sqlite:///{elsewhere}"  # never trusted

    edit_pending(run, 1, broken_cards)
    edit_pending(run, 2, other_course)
    edit_pending(run, 4, lambda document: (other_order(document), other_store(document)))
    capsys.readouterr()
    store = ["--store", f"sqlite:///{project.store_path}"]
    assert main([*store, "write-pending", str(run.batch_dir)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("lesson_001.json: kept: refused: lesson contract:"
                               " cards[0] (card_001).title: missing (required)")
    assert lines[1] == ("lesson_002.json: kept: refused: its row is for course_other1, not"
                        f" for the batch's course {COURSE}")
    assert lines[2] == ("lesson_004.json: kept: refused: its row is for lesson 999, not for"
                        " the lesson its file names")
    assert lines[3].startswith("0 written, 3 kept")
    assert project.rows() == [] and not elsewhere.exists()
    assert all(run.layout.pending(order).is_file() for order in (1, 2, 4))


def test_write_pending_takes_the_store_as_the_batch_does(
    project: BatchProject, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = pending_batch(project, monkeypatch, 2)
    # No --store: the ini's batch_store, from the ini file's directory, as pytest reads it.
    project.pytester.makeini(f"[pytest]\nbatch_store = sqlite:///{project.store_path.name}\n")
    capsys.readouterr()
    assert main(["write-pending", str(run.batch_dir)]) == 0
    assert "1 written, 0 kept" in capsys.readouterr().out
    assert [r["sow_order"] for r in project.rows()] == [1, 2, 4]


def test_write_pending_writes_no_draft_where_the_batch_would_not(
    project: BatchProject, monkeypatch: pytest.MonkeyPatch,
    appwrite_server: AppwriteTestServer, appwrite_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BATCHGEN_FAKE_DRAFTING", "1")  # an outline draft's marker and rules
    run = pending_batch(project, monkeypatch, 2)
    appwrite_server.add_sow(COURSE, json.loads((FIXTURES / "sow_current.json").read_text())
                            ["entries"])
    appwrite_server.add_outcomes(COURSE, OUTCOMES)
    capsys.readouterr()
    appwrite = ["--store", "appwrite", "write-pending", str(run.batch_dir),
                "--mcp-config", str(project.pytester.path / "none.json")]
    assert main(appwrite) == 2
    assert capsys.readouterr().err == (
        "error: lesson_002.json holds outline drafts, and the platform reads"
        f" appwrite {appwrite_env['APPWRITE_ENDPOINT']} project"
        f" {appwrite_env['APPWRITE_PROJECT_ID']} database default as finished lessons;"
        " pass --allow-drafts to write drafts there, as --batch-allow-drafts lets a"
        " batch\n")
    assert appwrite_server.rows("lesson_templates") == []
    assert main([*appwrite, "--allow-drafts"]) == 0
    assert len(appwrite_server.rows("lesson_templates")) == 1


def test_write_pending_refuses_what_is_not_a_batch(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["write-pending", str(tmp_path / "nowhere")]) == 2
    assert "is not a batch directory" in capsys.readouterr().err
    BatchLayout(tmp_path).pending_dir.mkdir()
    BatchLayout(tmp_path).pending(1).write_text("{not json")
    assert main(["write-pending", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a pending lesson" in err


def test_the_plan_covers_what_the_run_will_touch(project: BatchProject) -> None:
    project.load("sow_current.json")
    run = project.run(f"--batch-course={COURSE}", "--batch-dry-run", "-k", "Time")
    plan = run.plan()
    assert [p["order"] for p in plan["plan"]["generate"]] == [2]
    assert plan["deselected"] == [1, 4] and plan["total_sow_entries"] == 3
    assert plan["estimates"]["cost_usd"] == 0.17  # one lesson's, not three
    run.result.stdout.fnmatch_lines(["*Deselected: 2 lessons (node ids, -k, --lf)*"])
    assert "Fractions" not in run.result.stdout.str().split("Dry-run plan saved")[0]


def test_estimates_are_the_authors_own(project: BatchProject) -> None:
    project.load("sow_current.json")
    plan = project.run(f"--batch-course={COURSE}", "--batch-dry-run", author="outline").plan()
    assert (plan["estimates"]["duration_minutes"], plan["estimates"]["cost_usd"]) == (0, 0.0)


def test_junit_names_every_lessons_row_and_the_batch(project: BatchProject) -> None:
    project.load("sow_current.json")
    [existing] = project.add_lessons(COURSE, [1])
    xml = project.pytester.path / "batch.xml"
    run = project.run(f"--batch-course={COURSE}", f"--junitxml={xml}")
    cases = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
             for case in ElementTree.parse(xml).getroot().iter("testcase")}
    skipped = cases["lesson_001"]
    assert skipped["row_id"] == existing and "log_file" not in skipped
    assert skipped["batch_dir"] == str(run.batch_dir)
    written = cases["lesson_002"]
    assert written["row_id"] == project.rows()[1]["$id"]
    assert written["log_file"] == "lesson_order_002.log"


def test_a_replacement_is_named_as_such(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [4], model_version="old_generator")
    run = project.run(f"--batch-course={COURSE}", "--batch-dry-run")
    run.result.stdout.fnmatch_lines([
        "*REPLACE*Replaces * (model_version old_generator)*",
        "*Will replace (other model): 1 lesson*"])
    written = project.run(f"--batch-course={COURSE}")
    assert written.summary()["results"][2]["action"] == "replace"


def test_kill_9_loses_no_finished_lesson_from_the_summary(project: BatchProject) -> None:
    # Lessons 1 and 2 end within a second of the start, inside the summary's write
    # interval; lesson 3 hangs. Their results must reach the file without waiting for
    # another lesson to end, since none will before the process is killed.
    project.load(legacy_sow(3), course=None)
    batch = project.start("--batch-course=course_c84774", env={"BATCHGEN_FAKE_SLOW": "3"})

    def summary() -> dict[str, object]:
        found = list(batch_directories(project.log_dir))
        if not found or not BatchLayout(found[0]).summary.exists():
            return {}
        return json.loads(BatchLayout(found[0]).summary.read_text())

    try:
        wait_for(lambda: len(summary().get("results", [])) == 2, "lessons 1-2 in the summary")
    finally:
        batch.kill()
        batch.communicate(timeout=60)
    written = summary()
    assert (written["generated"], written["not_run"], written["complete"]) == (2, [3], False)
    # Merged, the killed run is what it was: two lessons, one not run (incomplete: 1).
    assert main(["merge", str(project.log_dir), "--out", str(project.pytester.path / "m")]) == 1


def _success(**figures: object) -> str:
    result = {"order": 1, "label": "x", "status": "success", "action": "generate",
              "duration_seconds": 60, "cost_usd": 0.1, **figures}
    return json.dumps({"courseId": COURSE, "author": "scripted", "results": [result]})


@pytest.mark.parametrize("text", [
    _success(duration_seconds=None),
    _success(duration_seconds=float("nan")),  # json.dumps writes NaN, json.loads reads it
    _success(cost_usd="0.1"),
    json.dumps({"courseId": COURSE, "author": "scripted", "results": 5}),
    json.dumps({"courseId": COURSE, "author": "scripted", "results": [],
                "merged_from": 5}),
    '{"author": "scripted", "results": ' + "[" * 100_000 + "]" * 100_000 + "}",
], ids=["null-duration", "nan-duration", "string-cost", "results-5", "merged-from-5",
        "deep"])
def test_an_odd_summary_in_the_log_directory_is_passed_over_by_name(
    project: BatchProject, text: str
) -> None:
    project.load("sow_current.json")
    project.run(f"--batch-course={COURSE}", "-k", "lesson_001 or lesson_002")
    odd = project.log_dir / f"batch_{COURSE}_20200101_000000" / "batch_summary.json"
    odd.parent.mkdir()
    odd.write_text(text)
    run = project.run(f"--batch-course={COURSE}", "--batch-dry-run")
    assert run.ret == 0, run.output()
    estimates = run.plan()["estimates"]
    assert estimates["based_on_lessons"] == 2  # the two real lessons, not the odd file's
    assert [p.split(" (")[0] for p in estimates["passed_over"]] == [str(odd)]
    run.result.stdout.fnmatch_lines([f"*passed over {odd} (*"])


@pytest.mark.parametrize("workers", [0, 1], ids=["serial", "xdist"])
def test_sigterm_stops_a_batch_started_with_sigint_ignored(project: BatchProject,
                                                           workers: int) -> None:
    # `cmd &` in a script and nohup start pytest with SIGINT ignored: SIGTERM, passed
    # on as SIGINT, was ignored too, and lesson 1 (hanging here) ran on.
    project.load(legacy_sow(3), course=None)
    batch = project.start("--batch-course=course_c84774", "-p", "xdist", f"-n{workers}",
                          env={"BATCHGEN_FAKE_SLOW": "1"}, ignore_sigint=True)
    try:
        wait_for(lambda: any(project.log_dir.glob("batch_*/lesson_order_001.log")),
                 "lesson 1 to start")
        batch.send_signal(signal.SIGTERM)
        output = batch.communicate(timeout=60)[0].decode()
    finally:
        batch.kill()
    assert batch.returncode == 2, output
    [directory] = batch_directories(project.log_dir)
    summary = json.loads(BatchLayout(directory).summary.read_text())
    assert summary["interrupted"] is True and 1 in summary["not_run"]


def test_xdist_workers_die_with_a_killed_controller(project: BatchProject) -> None:
    # kill -9 runs no cleanup in the controller: its workers, adopted by init, went
    # on authoring and writing rows the summary says were never run.
    project.load(legacy_sow(6), course=None)
    batch = project.start("--batch-course=course_c84774", "-p", "xdist", "-n2",
                          env={"BATCHGEN_FAKE_DELAY": "2"})
    try:
        wait_for(lambda: len(list(project.log_dir.glob("batch_*/lesson_order_*.log"))) >= 2,
                 "both workers to run a lesson")
        workers = [p.pid for p in processes() if p.parent == batch.pid]
        assert len(workers) == 2
    finally:
        batch.kill()
        # Not communicate(): the workers hold the output pipe too, so it would wait
        # for them.
        batch.wait(timeout=60)
    try:
        written = project.rows("course_c84774")
        wait_for(lambda: not running(workers), "the workers to end with their controller")
        time.sleep(3)  # longer than a lesson takes: a worker still authoring would write
        assert project.rows("course_c84774") == written
    finally:
        assert batch.stdout is not None
        batch.stdout.close()
