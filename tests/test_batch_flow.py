"""A batch end to end, feature by feature, each as a real pytest run."""

from __future__ import annotations

import pytest

from tests.conftest import COURSE, BatchProject

pytestmark = pytest.mark.usefixtures("project")


def test_plugin_is_inert_without_batch_course(project: BatchProject) -> None:
    # In a fresh interpreter: without a course the plugin imports no batch
    # machinery, so an installed plugin costs other pytest runs nothing.
    project.pytester.makepyfile(test_plain="""
        import sys

        def test_ok():
            loaded = [m for m in sys.modules if m.startswith("pytest_batchgen.")]
            assert sorted(loaded) == ["pytest_batchgen.defaults", "pytest_batchgen.digits",
                                      "pytest_batchgen.hooks", "pytest_batchgen.nodeids",
                                      "pytest_batchgen.plugin", "pytest_batchgen.settings"]
    """)
    result = project.pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    assert not project.log_dir.exists()


def test_a_batch_run_starts_without_warnings(project: BatchProject) -> None:
    # The project sets no asyncio_default_fixture_loop_scope, as a newcomer's
    # would not: pytest-asyncio's warning about it must not head the run.
    project.load("sow_current.json")
    result = project.run(f"--batch-course={COURSE}", subprocess=True).result
    assert result.ret == 0
    assert result.stderr.str() == ""
    assert "Warning:" not in result.stdout.str()
    assert "warnings summary" not in result.stdout.str()


def test_help_lists_options_in_one_group(project: BatchProject) -> None:
    result = project.pytester.runpytest_subprocess("--help")  # no batch: pytest-asyncio may warn
    result.stdout.fnmatch_lines(["batch lesson generation (pytest-batchgen):",
                                 "*--batch-course=ID*", "*--batch-dry-run*"])


# --- F1: dry run -----------------------------------------------------------------------


def test_dry_run_with_no_existing_lessons_generates_all(project: BatchProject) -> None:
    project.load("sow_current.json")
    run = project.run(f"--batch-course={COURSE}", "--batch-dry-run")
    assert run.ret == 0
    plan = run.plan()
    assert plan["summary"] == {"will_generate": 3, "will_skip": 0, "will_replace": 0,
                               "will_overwrite": 0}
    assert [p["order"] for p in plan["plan"]["generate"]] == [1, 2, 4]
    assert plan["courseId"] == COURSE and plan["dry_run"] is True
    assert plan["estimates"]["avg_cost_per_lesson_usd"] == 0.17  # no history yet
    assert plan["estimates"]["cost_usd"] == 0.51
    run.result.stdout.fnmatch_lines([
        "*Batch Generation Plan - DRY RUN*",
        "*│   1   │ Numeracy: Fractions, Decimals, and Percentages*GENERATE*Not found*",
        "*Will generate (new):        3 lessons*",
        "*Estimated Cost: ~$0.51 USD*",
        "*Dry-run plan saved to:*dry_run_plan.json",
        "*No lessons were generated (dry-run mode).*",
    ])
    assert project.rows() == []
    assert sorted(p.name for p in run.batch_dir.iterdir()) == ["dry_run_plan.json"]


def test_dry_run_with_all_existing_skips_all(project: BatchProject) -> None:
    project.load("sow_current.json")
    ids = project.add_lessons(COURSE, [1, 2, 4])
    run = project.run(f"--batch-course={COURSE}", "--batch-dry-run")
    plan = run.plan()
    assert plan["summary"] == {"will_generate": 0, "will_skip": 3, "will_replace": 0,
                               "will_overwrite": 0}
    assert [p["doc_id"] for p in plan["plan"]["skip"]] == ids
    assert all(p["model_version"] == "claud_Agent_sdk" for p in plan["plan"]["skip"])
    run.result.stdout.fnmatch_lines([f"*SKIP*Already exists (doc: {ids[0]})*"])


def test_dry_run_with_mixed_existing(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [2])
    project.add_lessons(COURSE, [4], model_version="old_generator")
    plan = project.run(f"--batch-course={COURSE}", "--batch-dry-run").plan()
    assert plan["summary"] == {"will_generate": 1, "will_skip": 1, "will_replace": 1,
                               "will_overwrite": 0}
    assert [(p["order"], p["reason"]) for p in plan["plan"]["generate"]] == [(1, "not_found")]
    assert [(p["order"], p["reason"]) for p in plan["plan"]["replace"]] == [
        (4, "other_model_version")]


def test_collect_only_is_a_dry_run(project: BatchProject) -> None:
    project.load("sow_current.json")
    run = project.run(f"--batch-course={COURSE}", "--co")
    assert run.ret == 0
    run.result.stdout.fnmatch_lines([f"<CourseCollector {COURSE}>", "  <LessonItem lesson_001>",
                                     "  <LessonItem lesson_004>"])
    assert run.plan()["summary"]["will_generate"] == 3
    assert project.rows() == []


def test_force_dry_run_plans_overwrites_without_prompting(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [1, 2])
    plan = project.run(f"--batch-course={COURSE}", "--batch-dry-run", "--batch-force").plan()
    assert plan["summary"] == {"will_generate": 1, "will_skip": 0, "will_replace": 0,
                               "will_overwrite": 2}
    assert plan["force_mode"] is True


# --- F2: skip and generate ------------------------------------------------------------------


def test_default_mode_skips_existing_and_generates_missing(project: BatchProject) -> None:
    project.load("sow_current.json")
    [existing] = project.add_lessons(COURSE, [2])
    run = project.run(f"--batch-course={COURSE}", "-rs")
    assert run.ret == 0
    run.result.assert_outcomes(passed=2, skipped=1)
    run.result.stdout.fnmatch_lines([f"SKIPPED*Already exists (doc: {existing})"])
    rows = project.rows()
    assert [(r["sow_order"], r["model_version"]) for r in rows] == [
        (1, "claud_Agent_sdk"), (2, "claud_Agent_sdk"), (4, "claud_Agent_sdk")]
    assert rows[1]["$id"] == existing and rows[1]["authored_sow_id"] == "sow_old"
    assert rows[0]["authored_sow_id"] == f"sow_{COURSE}"
    assert not run.layout.lesson_log(2).exists()  # skipped: no log
    assert run.layout.lesson_log(1).exists()


def test_rerun_skips_everything_and_writes_no_row(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.run(f"--batch-course={COURSE}")
    before = project.rows()
    second = project.run(f"--batch-course={COURSE}")
    second.result.assert_outcomes(skipped=3)
    assert project.rows() == before
    assert second.ret == 0


def test_row_of_another_model_version_is_replaced_not_duplicated(project: BatchProject) -> None:
    project.load("sow_current.json")
    [old] = project.add_lessons(COURSE, [1], model_version="old_generator")
    project.run(f"--batch-course={COURSE}").result.assert_outcomes(passed=3)
    rows = [r for r in project.rows() if r["sow_order"] == 1]
    assert [(r["$id"], r["model_version"]) for r in rows] == [(old, "claud_Agent_sdk")]


def test_outline_drafts_never_replace_an_existing_lesson(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [1], model_version="old_generator")
    run = project.run(f"--batch-course={COURSE}", author="outline")
    run.result.assert_outcomes(passed=2, skipped=1)
    assert [r["model_version"] for r in project.rows()] == [
        "old_generator", "batchgen_outline", "batchgen_outline"]
    # ...and outline drafts do not block the real author, which replaces all three.
    project.run(f"--batch-course={COURSE}").result.assert_outcomes(passed=3)
    assert {r["model_version"] for r in project.rows()} == {"claud_Agent_sdk"}


def test_k_selects_lessons_by_title(project: BatchProject) -> None:
    project.load("sow_current.json")
    run = project.run(f"--batch-course={COURSE}", "-k", "Speed or Revision")
    run.result.assert_outcomes(passed=2, deselected=1)
    assert [r["sow_order"] for r in project.rows()] == [2, 4]
    summary = run.summary()
    assert (summary["deselected"], summary["not_run"], summary["complete"]) == ([1], [], True)


def test_lesson_node_ids_as_arguments_select_lessons(project: BatchProject) -> None:
    project.load("sow_current.json")
    # As in any pytest run; `lesson_4` is read as the node id `lesson_004`.
    run = project.run(f"--batch-course={COURSE}", f"{COURSE}::lesson_001", f"{COURSE}::lesson_4")
    run.result.assert_outcomes(passed=2, deselected=1)
    assert [r["sow_order"] for r in project.rows()] == [1, 4]
    summary = run.summary()
    assert (summary["deselected"], summary["not_run"], summary["complete"]) == ([2], [], True)
    assert "Deselected: 1 (-k, --lf or node ids)" in run.layout.batch_log.read_text()


def test_node_ids_are_stable_and_lf_reruns_failures(project: BatchProject,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    project.load("sow_current.json")
    monkeypatch.setenv("BATCHGEN_FAKE_FAIL", "2")
    first = project.run(f"--batch-course={COURSE}", "-v")
    first.result.stdout.fnmatch_lines([f"{COURSE}::lesson_002 FAILED*"])
    monkeypatch.delenv("BATCHGEN_FAKE_FAIL")
    again = project.run(f"--batch-course={COURSE}", "--lf", "-v")
    again.result.assert_outcomes(passed=1, deselected=2)
    again.result.stdout.fnmatch_lines([f"{COURSE}::lesson_002 GENERATED*"])


# --- F3 / F10: force -----------------------------------------------------------------------


def test_force_with_yes_overwrites_every_lesson_in_place(project: BatchProject) -> None:
    project.load("sow_current.json")
    ids = project.add_lessons(COURSE, [1, 2])
    run = project.run(f"--batch-course={COURSE}", "--batch-force", "--batch-yes")
    run.result.assert_outcomes(passed=3)
    rows = project.rows()
    assert [r["$id"] for r in rows[:2]] == ids
    assert all(r["authored_sow_id"] == f"sow_{COURSE}" for r in rows)
    summary = run.summary()
    assert summary["force_mode"] is True
    assert [r["action"] for r in summary["results"]] == ["overwrite", "overwrite", "generate"]
    log = run.layout.batch_log.read_text()
    assert "Force mode enabled - will overwrite all lessons" in log
    assert f"GENERATING (Force mode, was: {ids[0]})" in log


def test_force_without_terminal_or_yes_exits_2_and_writes_nothing(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [1])
    before = project.rows()
    run = project.run(f"--batch-course={COURSE}", "--batch-force", subprocess=True)
    assert run.ret == 2
    run.result.stderr.fnmatch_lines(["*batchgen: --batch-force would overwrite*pass --batch-yes*"])
    assert "Traceback" not in run.output()
    assert project.rows() == before
    assert run.batch_dirs() == []


# --- F8 / F9: failures, exit codes ----------------------------------------------------------


def test_failed_lesson_does_not_stop_the_batch(project: BatchProject,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    project.load("sow_current.json")
    monkeypatch.setenv("BATCHGEN_FAKE_FAIL", "2")
    run = project.run(f"--batch-course={COURSE}")
    assert run.ret == 1
    run.result.assert_outcomes(passed=2, failed=1)
    run.result.stdout.fnmatch_lines([
        f"*{COURSE} order 2 (Numeracy: Time, Speed, and Distance): scripted failure for order 2",
        "lesson log: *lesson_order_002.log",
    ])
    assert [r["sow_order"] for r in project.rows()] == [1, 4]
    summary = run.summary()
    assert (summary["generated"], summary["failed"], summary["skipped"]) == (2, 1, 0)
    failed = summary["results"][1]
    assert failed["status"] == "failed" and failed["error"] == "scripted failure for order 2"
    assert failed["cost_usd"] == 0.05 and failed["tokens"] == 1234  # partial figures kept
    log = run.layout.batch_log.read_text()
    assert "[2/3] Order 2 - ❌ FAILED" in log and "Error: scripted failure for order 2" in log


def test_failed_authoring_never_overwrites_a_good_lesson(project: BatchProject,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [1, 2, 4])
    before = project.rows()
    monkeypatch.setenv("BATCHGEN_FAKE_FAIL", "1")
    monkeypatch.setenv("BATCHGEN_FAKE_CRASH", "2")
    monkeypatch.setenv("BATCHGEN_FAKE_INVALID", "4")
    run = project.run(f"--batch-course={COURSE}", "--batch-force", "--batch-yes")
    run.result.assert_outcomes(failed=3)
    assert project.rows() == before
    errors = [r["error"] for r in run.summary()["results"]]
    assert errors[1] == "RuntimeError: scripted crash for order 2"
    # The gate holds whatever the author returns to the contract, and says all it broke.
    assert errors[2] == ("lesson contract: cards[0] (card_001).misconceptions: must hold 1-3"
                         " misconceptions, has 0 (+1 more, see the lesson log)")
    assert "Lesson contract: cards[0] (card_001).cfu.stem: must be 10-800 characters, has 5" \
        in run.layout.lesson_log(4).read_text()
    assert "Traceback" in run.layout.lesson_log(2).read_text()


@pytest.mark.parametrize(("variable", "error"), [
    ("BATCHGEN_FAKE_SYSTEM_EXIT", "SystemExit: scripted exit for order 2"),
    ("BATCHGEN_FAKE_CANCELLED", "CancelledError"),
])
def test_an_author_raising_system_exit_or_cancelled_fails_only_its_lesson(
    project: BatchProject, monkeypatch: pytest.MonkeyPatch, variable: str, error: str
) -> None:
    # Neither is an Exception: they went past the lesson's own handling, so the
    # summary held pytest's repr of the failure and the lesson no log file.
    project.load("sow_current.json")
    monkeypatch.setenv(variable, "2")
    run = project.run(f"--batch-course={COURSE}")
    run.result.assert_outcomes(passed=2, failed=1)
    failed = run.summary()["results"][1]
    assert failed["error"] == error
    assert "Traceback" in (run.batch_dir / failed["log_file"]).read_text()


def test_a_failing_write_fails_only_that_lesson(project: BatchProject,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    project.load("sow_current.json")
    monkeypatch.setenv("BATCHGEN_FAKE_WRITE_FAIL", "2")
    run = project.run(f"--batch-course={COURSE}")
    run.result.assert_outcomes(passed=2, failed=1)
    assert run.summary()["results"][1]["error"].startswith(
        "scripted write failure for order 2; the lesson is kept in pending/lesson_002.json")


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        pytest.param(None, [f"--batch-course={COURSE}"],
                     "the SQLite store ", id="store-never-loaded"),
        pytest.param("other-course", [f"--batch-course={COURSE}"],
                     f"no SOW found for course '{COURSE}'", id="unknown-course"),
        pytest.param("draft", [f"--batch-course={COURSE}"],
                     f"no published SOW for course '{COURSE}' (statuses found: draft)",
                     id="no-published-sow"),
        pytest.param("published", ["--batch-course=c84874"],
                     "--batch-course: 'c84874' is not a course id", id="bad-course-id"),
        pytest.param("published", [f"--batch-course={COURSE}", "--batch-store=mysql://x"],
                     "--batch-store: expected sqlite:///PATH or appwrite, got 'mysql://x'",
                     id="bad-store"),
        pytest.param("published", [f"--batch-course={COURSE}", "--batch-author=gpt"],
                     "unknown --batch-author 'gpt'", id="bad-author"),
        pytest.param("published", [f"--batch-course={COURSE}", "--batch-author=outline",
                                   "--batch-model=claude-opus"],
                     "--batch-model applies to the claude author only", id="bad-combination"),
        pytest.param("published", [f"--batch-course={COURSE}", "--batch-max-retries=0"],
                     "--batch-max-retries: must be at least 1", id="bad-retries"),
        pytest.param("published", [f"--batch-course={COURSE}", "tests/test_x.py"],
                     "'tests/test_x.py' is not a lesson of this batch", id="test-path"),
        pytest.param("published", [f"--batch-course={COURSE}", "course_other::lesson_001"],
                     "'course_other::lesson_001' is not a lesson of this batch",
                     id="other-course-lesson"),
        pytest.param("published", [f"--batch-course={COURSE}", f"{COURSE}::lesson_003"],
                     f"{COURSE}::lesson_003 is not in the SOW of {COURSE} (lessons 1-4)",
                     id="lesson-not-in-sow"),
    ],
)
def test_batch_level_errors_exit_2_with_one_line(project: BatchProject, setup: str | None,
                                                 args: list[str], message: str) -> None:
    if setup == "other-course":
        project.load("sow_legacy_row.json", course=None)
    elif setup:
        project.load("sow_current.json", status=setup)
    # The outline author, so that --batch-author and author checks are the real ones.
    run = project.run(*args, author="outline", subprocess=True)
    assert run.ret == 2
    assert run.result.stdout.lines == []
    [line] = run.result.stderr.lines  # one readable line
    assert line.startswith(f"batchgen: {message}")
    assert "Traceback" not in run.output()
    assert run.batch_dirs() == []
    assert project.store_path.exists() == (setup is not None)  # a read creates no store


def test_option_without_batch_course_is_a_usage_error(project: BatchProject) -> None:
    result = project.pytester.runpytest_inprocess("--batch-force")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--batch-force needs --batch-course*"])


def test_undecodable_entries_exit_2(project: BatchProject) -> None:
    store = project.store()
    store.save_sow({"$id": "sow_bad", "courseId": COURSE, "status": "published",
                    "entries": "gzip:not-base64!"})
    store.close()
    run = project.run(f"--batch-course={COURSE}", subprocess=True)
    assert run.ret == 2
    assert "batchgen: entries cannot be decoded" in run.result.stderr.str()


def test_unreadable_store_exits_2(project: BatchProject) -> None:
    project.store_path.write_text("this is not a database")
    run = project.run(f"--batch-course={COURSE}", subprocess=True)
    assert run.ret == 2
    run.result.stderr.fnmatch_lines(["batchgen: cannot open SQLite store *store.sqlite3:"
                                     " file is not a database"])
    assert "Traceback" not in run.output()


def test_ctrl_c_while_reading_the_store_is_one_line(project: BatchProject) -> None:
    # A slow store (Appwrite retrying) is where a user presses Ctrl-C before the
    # session exists; pytest's own interrupt handling is not there yet.
    project.load("sow_current.json")
    project.pytester.makeconftest("""
        from pytest_batchgen.store.sqlite import SqliteStore

        class Interrupted(SqliteStore):
            def list_lessons(self, course_id):
                raise KeyboardInterrupt

        def pytest_batchgen_make_store(config, settings):
            return Interrupted.from_url(settings.store_url)
    """)
    run = project.run(f"--batch-course={COURSE}", subprocess=True)
    assert run.ret == 2
    assert run.result.stderr.lines == [
        "batchgen: interrupted before the batch started; nothing was written"]
    assert run.batch_dirs() == []


# --- F4 / F6 / F7: logs and summary ------------------------------------------------------------


def test_summary_has_every_spec_field_and_valid_json(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [4])
    run = project.run(f"--batch-course={COURSE}")
    summary = run.summary()
    spec_fields = {"batch_id", "courseId", "start_time", "end_time", "duration_seconds",
                   "duration_human", "force_mode", "dry_run", "total_sow_entries", "skipped",
                   "generated", "failed", "results", "total_cost_usd", "total_tokens",
                   "avg_cost_per_lesson_usd", "avg_duration_per_lesson_seconds",
                   "log_directory"}
    assert spec_fields <= summary.keys()
    assert summary["batch_id"] == run.batch_dir.name
    assert summary["batch_id"].startswith(f"batch_{COURSE}_")
    assert summary["start_time"].endswith("Z") and summary["complete"] is True
    assert (summary["total_sow_entries"], summary["generated"], summary["skipped"]) == (3, 2, 1)
    assert summary["total_cost_usd"] == pytest.approx(0.3)  # scripted: 0.1 × order
    assert summary["total_tokens"] == 3000
    assert summary["avg_cost_per_lesson_usd"] == pytest.approx(0.15)
    assert summary["log_directory"] == str(run.batch_dir)
    skipped = summary["results"][2]
    assert skipped == {"order": 4, "label": "Course Revision and AVU Practice",
                       "status": "skipped", "action": "skip", "reason": "already_exists",
                       "existing_doc_id": skipped["existing_doc_id"], "log_file": None}
    success = summary["results"][0]
    assert success["status"] == "success" and success["log_file"] == "lesson_order_001.log"
    assert success["doc_id"] == project.rows()[0]["$id"]


def test_batch_log_is_readable_progress(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [1])
    run = project.run(f"--batch-course={COURSE}")
    log = run.layout.batch_log.read_text(encoding="utf-8")
    for line in ["Batch Lesson Generation Starting", f"Course ID: {COURSE}",
                 f"Found 3 SOW entries for {COURSE}", "Found 1 existing lesson (orders: 1)",
                 "Generation Plan: Skip 1, Generate 2, Replace 0, Overwrite 0",
                 "[1/3] Order 1 (Numeracy: Fractions, Decimals, and Percentages): SKIP",
                 "[2/3] Order 2 (Numeracy: Time, Speed, and Distance): GENERATING",
                 "Log file: lesson_order_002.log", "[2/3] Order 2 - ✅ SUCCESS",
                 "Cost: $0.2000 USD", "Tokens: 2000", "Batch Generation Complete",
                 "Generated (success): 2", "Summary saved to: batch_summary.json"]:
        assert line in log, line
    lesson_log = run.layout.lesson_log(2).read_text(encoding="utf-8")
    assert "pytest_batchgen.worker.runner - INFO - Lesson written:" in lesson_log
    assert "GENERATING" not in lesson_log  # the batch log stays out of lesson logs


def test_several_courses_get_one_batch_dir_each(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.load("sow_legacy_row.json", course=None)
    run = project.run(f"--batch-course={COURSE}", "--batch-course=course_c84774")
    run.result.assert_outcomes(passed=6)
    summaries = [run.summary(d) for d in run.batch_dirs()]
    assert sorted(s["courseId"] for s in summaries) == ["course_c84774", COURSE]
    run.result.stdout.fnmatch_lines(["*course_c84874: generated 3, skipped 0, failed 0*",
                                     "*course_c84774: generated 3, skipped 0, failed 0*"])


def test_junit_carries_lesson_properties(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [4])
    run = project.run(f"--batch-course={COURSE}", "--junitxml=report.xml")
    xml = (project.pytester.path / "report.xml").read_text()
    import xml.etree.ElementTree as ET

    cases = ET.fromstring(xml).iter("testcase")
    props = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
             for case in cases}
    first = props["lesson_001"]
    assert first["course"] == COURSE and first["order"] == "1"
    assert first["action"] == "generate" and first["status"] == "success"
    assert first["row_id"] == project.rows()[0]["$id"]
    assert (first["cost_usd"], first["tokens"]) == ("0.1", "1000")
    assert "duration_seconds" in first
    assert props["lesson_004"]["action"] == "skip"
    assert "PytestWarning" not in run.output()


def test_estimates_use_history_of_earlier_runs(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.run(f"--batch-course={COURSE}", "-k", "lesson_001 or lesson_002")
    plan = project.run(f"--batch-course={COURSE}", "--batch-dry-run").plan()
    estimates = plan["estimates"]
    assert estimates["based_on_lessons"] == 2
    assert estimates["avg_cost_per_lesson_usd"] == pytest.approx(0.15)
    assert estimates["cost_usd"] == pytest.approx(0.15)


def test_ctrl_c_leaves_a_valid_incomplete_summary(project: BatchProject,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    project.load("sow_current.json")
    monkeypatch.setenv("BATCHGEN_FAKE_INTERRUPT", "2")
    run = project.run(f"--batch-course={COURSE}", subprocess=True)
    assert run.ret == 2
    summary = run.summary()
    assert summary["complete"] is False and summary["interrupted"] is True
    assert [r["order"] for r in summary["results"]] == [1]
    assert summary["not_run"] == [2, 4]
    assert [r["sow_order"] for r in project.rows()] == [1]
    assert "Batch Generation Interrupted" in run.layout.batch_log.read_text()
    assert not list(run.batch_dir.glob(".*"))  # no temporary half-written files
    # Running the same command again resumes: 1 is skipped, the rest generated.
    monkeypatch.delenv("BATCHGEN_FAKE_INTERRUPT")
    again = project.run(f"--batch-course={COURSE}")
    again.result.assert_outcomes(passed=2, skipped=1)


def test_the_runtime_needs_no_test_plugin() -> None:
    # pytest-asyncio warns at configure time in projects that leave its loop scope
    # unset: as a runtime dependency it broke `filterwarnings = error` everywhere.
    from importlib.metadata import requires

    runtime = [r for r in requires("pytest-batchgen") or [] if "extra ==" not in r]
    assert not [r for r in runtime if r.startswith(("pytest-asyncio", "pytest-xdist"))]


def test_an_unrelated_strict_project_runs_exactly_as_before(project: BatchProject) -> None:
    # A plain project with warnings as errors, in this environment minus the test-only
    # plugins a user's environment would not have: our plugin adds nothing to its run.
    project.pytester.makeini("[pytest]\nfilterwarnings = error\n")
    project.pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    result = project.pytester.runpytest_subprocess("-p", "no:asyncio", "-p", "no:xdist",
                                                   "-W", "error")
    result.assert_outcomes(passed=1)
    assert result.ret == 0 and "warning" not in result.stdout.str().lower()
    assert result.stderr.str() == ""
