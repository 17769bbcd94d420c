"""Whole batches on `--batch-store=appwrite`: real pytest runs against the test server.

The outer test starts the Appwrite test server and points the run at it with
APPWRITE_* environment variables, exactly as a user's shell would; the run
(in-process, or a subprocess where exit 2 and stderr matter) uses the real
SDK over HTTP. Two authors: `outline` (the offline drafter, any row counts
as existing) and the scripted author of tests/support/fake_plugin.py (writes
the Claude author's model_version, so the production skip rules apply).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_batchgen.lesson import CLAUDE_MODEL_VERSION
from tests.conftest import COURSE_LEGACY as COURSE
from tests.conftest import AppwriteProject
from tests.support.rows import lesson_row

LESSON_ROWS = r"/tables/lesson_templates/rows$"
WRONG_KEY = "sk-wrong-but-secret-4f1c9a7e2b"


def test_dry_run_of_105_entries_with_40_existing_plans_65(
    appwrite_project: AppwriteProject
) -> None:
    server = appwrite_project.server
    appwrite_project.load(105, encoding="storage", existing=range(1, 41))
    server.reset_counts()

    run = appwrite_project.run("--batch-dry-run")

    assert run.ret == 0, run.output()
    plan = run.plan()
    assert plan["summary"] == {"will_generate": 65, "will_skip": 40, "will_replace": 0,
                               "will_overwrite": 0}
    assert [p["order"] for p in plan["plan"]["generate"]] == list(range(41, 106))
    # Not N+1: one page for 40 lessons; the SOW list, the SOW by id, its entries file,
    # the course's outcomes (a course without any is refused before the plan).
    assert server.count("list_rows", table="lesson_templates") == 1
    assert server.count() == 5
    assert server.count("create_row") == server.count("update_row") == 0
    assert plan["store"] == (
        f"appwrite {server.url} project {server.project} database default")
    run.result.stdout.fnmatch_lines(["SOW: sow-legacy-v3 (version 3, published)"])


def test_a_run_creates_the_missing_lessons_and_a_rerun_writes_nothing(
    appwrite_project: AppwriteProject
) -> None:
    server = appwrite_project.server
    appwrite_project.load(6, encoding="legacy", existing=range(1, 3))

    first = appwrite_project.run()
    assert first.ret == 0, first.output()
    first.result.assert_outcomes(passed=4, skipped=2)
    rows = appwrite_project.rows()
    assert [r["sow_order"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {r["authored_sow_id"] for r in rows[2:]} == {"sow-legacy-v3"}
    assert {r["authored_sow_version"] for r in rows[2:]} == {"3"}
    server.reset_counts()

    second = appwrite_project.run()

    assert second.ret == 0
    second.result.assert_outcomes(skipped=6)
    assert appwrite_project.rows() == rows
    assert server.count("create_row") == server.count("update_row") == 0


def test_a_duplicate_pair_is_reported_and_not_multiplied(
    appwrite_project: AppwriteProject
) -> None:
    server = appwrite_project.server
    appwrite_project.load(3)
    older = server.add_lesson(lesson_row(2, course=COURSE, model_version="legacy_v1"),
                              created_at="2024-01-01T00:00:00.000+00:00")
    newer = server.add_lesson(lesson_row(2, course=COURSE, model_version="legacy_v2"),
                              created_at="2024-02-01T00:00:00.000+00:00")

    run = appwrite_project.run(author="scripted")

    assert run.ret == 0, run.output()
    run.result.assert_outcomes(passed=3)
    result = run.summary()["results"][1]
    assert (result["order"], result["doc_id"], result["duplicate_doc_ids"]) == (2, older, [newer])
    pair = appwrite_project.rows(sow_order=2)
    assert {r["$id"]: r["model_version"] for r in pair} == {
        older: CLAUDE_MODEL_VERSION, newer: "legacy_v2"}
    assert len(appwrite_project.rows()) == 4


def test_a_failing_write_fails_that_lesson_only(appwrite_project: AppwriteProject) -> None:
    server = appwrite_project.server
    appwrite_project.load(4)
    # Appwrite refuses the create of lesson 3 (once: a 400 is never retried).
    server.inject(LESSON_ROWS, 400, method="POST", body=r'"sow_order": 3\b')

    run = appwrite_project.run()

    assert run.ret == 1
    run.result.assert_outcomes(passed=3, failed=1)
    assert [r["sow_order"] for r in appwrite_project.rows()] == [1, 2, 4]
    failed = run.summary()["results"][2]
    assert failed["status"] == "failed"
    assert failed["error"].startswith(f"Appwrite write lesson {COURSE} #3: 400")
    assert server.count("create_row") == 4


def test_transient_failures_are_retried_and_the_batch_succeeds(
    appwrite_project: AppwriteProject
) -> None:
    server = appwrite_project.server
    appwrite_project.load(3)
    server.inject(LESSON_ROWS, 429, method="GET")
    server.inject(LESSON_ROWS, 500, method="POST")
    server.inject(LESSON_ROWS, "drop", method="POST", body=r'"sow_order": 3\b')

    run = appwrite_project.run()

    assert run.ret == 0, run.output()
    run.result.assert_outcomes(passed=3)
    assert [r["sow_order"] for r in appwrite_project.rows()] == [1, 2, 3]
    assert [h.fault for h in server.hits if h.fault] == ["429", "500", "drop"]


def all_files_text(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace")
                     for p in root.rglob("*") if p.is_file())


def test_a_wrong_key_exits_2_in_one_line_without_the_key(
    appwrite_project: AppwriteProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    appwrite_project.load(3)
    monkeypatch.setenv("APPWRITE_API_KEY", WRONG_KEY)

    run = appwrite_project.run(subprocess=True)

    assert run.ret == 2
    [line] = run.result.stderr.lines
    assert line.startswith(f"batchgen: Appwrite read SOW of {COURSE}: http://127.0.0.1:")
    assert "rejected the API key" in line
    assert "Traceback" not in run.output()
    assert WRONG_KEY not in run.output()
    assert WRONG_KEY not in all_files_text(appwrite_project.project.pytester.path)
    assert run.batch_dirs() == []
    assert appwrite_project.server.count() == 1  # a 401 is not retried


def test_missing_appwrite_settings_exit_2_naming_the_piece(
    appwrite_project: AppwriteProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    appwrite_project.load(3)
    monkeypatch.delenv("APPWRITE_PROJECT_ID")

    run = appwrite_project.run(subprocess=True)

    assert run.ret == 2
    [line] = run.result.stderr.lines
    assert line.startswith("batchgen: Appwrite settings incomplete: ")
    assert "no-such.mcp.json does not exist; set APPWRITE_PROJECT_ID in the environment" in line
    assert appwrite_project.server.count() == 0


def test_retries_before_a_batch_level_error_stay_out_of_the_one_line(
    appwrite_project: AppwriteProject
) -> None:
    appwrite_project.load(3)
    appwrite_project.server.inject(r"/tables/Authored_SOW/rows$", 503, times=2)
    appwrite_project.server.inject(r"/tables/Authored_SOW/rows$", 401)

    run = appwrite_project.run(subprocess=True)

    assert run.ret == 2
    [line] = run.result.stderr.lines  # no "retry 1/4" warnings above it
    assert "rejected the API key" in line
