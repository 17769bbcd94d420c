"""Bad input and broken surroundings: one line, exit 2, nothing half-done."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_batchgen.__main__ import main
from pytest_batchgen.layout import BatchLayout, batch_directories
from tests.conftest import COURSE, FIXTURES, BatchProject
from tests.support.fake_plugin import fill_disk
from tests.support.lessons import OUTCOMES

pytestmark = pytest.mark.usefixtures("project")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A filesystem of its own (tmpfs) a test can fill or make read-only; root only."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode:
        pytest.skip("cannot mount a small filesystem here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def one_line(run: object) -> str:
    result = run.result  # type: ignore[attr-defined]
    assert run.ret == 2, run.output()  # type: ignore[attr-defined]
    assert "Traceback" not in run.output() and "INTERNALERROR" not in run.output()  # type: ignore[attr-defined]
    [line] = result.stderr.lines
    return str(line)


def test_a_read_only_store_is_refused_before_any_lesson(project: BatchProject,
                                                         small_disk: Path) -> None:
    project.load("sow_current.json")
    shutil.copy(project.store_path, small_disk / "store.sqlite3")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    run = project.run(f"--batch-course={COURSE}",
                      f"--batch-store=sqlite:///{small_disk / 'store.sqlite3'}", subprocess=True)
    assert "cannot be written" in one_line(run) or "cannot open" in one_line(run)
    assert run.batch_dirs() == []  # nothing authored, nothing paid


def test_load_sow_into_a_read_only_store_is_one_line(small_disk: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{small_disk / 'store.sqlite3'}"
    assert main(["--store", url, "load-demo"]) == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    capsys.readouterr()
    assert main(["--store", url, "load-sow", str(FIXTURES / "sow_current.json"),
                 "--course", COURSE]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot open SQLite store")


def test_a_full_log_disk_is_one_line_and_the_store_agrees(project: BatchProject,
                                                          small_disk: Path) -> None:
    project.load("sow_current.json")
    fill_disk(small_disk)
    run = project.run(f"--batch-course={COURSE}", f"--batch-log-dir={small_disk / 'logs'}",
                      subprocess=True)
    assert "No space left on device" in one_line(run)
    assert project.rows() == []  # nothing started, so nothing unrecorded in the store


def test_a_log_disk_filling_up_mid_batch_stops_new_lessons(
    project: BatchProject, small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.load("sow_current.json")
    monkeypatch.setenv("BATCHGEN_FAKE_FILL_DISK", f"2:{small_disk}")
    run = project.run(f"--batch-course={COURSE}", f"--batch-log-dir={small_disk / 'logs'}",
                      subprocess=True)
    output = run.output()
    assert "INTERNALERROR" not in output and "Traceback" not in output
    assert "Logging error" not in output
    # Lessons 1 and 2 were written (2 filled the disk while it ran); 4 never started.
    assert [r["sow_order"] for r in project.rows()] == [1, 2]
    assert run.ret == 2
    assert run.result.stderr.lines[-1].startswith(
        "batchgen: could not write the summary of course_c84874 under ")
    assert "2 lessons written, 1 not started; the store has the lessons written" \
        in run.result.stderr.lines[-1]


def test_outcomes_that_are_not_json_are_one_line(project: BatchProject) -> None:
    project.load("sow_current.json")
    with sqlite3.connect(project.store_path) as db:
        db.execute("UPDATE course_outcomes SET data = '{broken'")
    run = project.run(f"--batch-course={COURSE}", subprocess=True)
    assert "is not a JSON object; load the outcomes again" in one_line(run)


@pytest.mark.parametrize("command", ["load-sow", "load-outcomes"])
def test_a_100k_deep_json_file_is_one_line(tmp_path: Path, command: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "deep.json"
    source.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["--store", f"sqlite:///{tmp_path / 's.db'}", command, str(source)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not valid JSON" in err


def test_a_100k_deep_mcp_config_is_one_line(project: BatchProject,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("APPWRITE_ENDPOINT", "APPWRITE_PROJECT_ID", "APPWRITE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    config = project.pytester.path / "deep.json"
    config.write_text("{" + '"a":{' * 50_000 + "}" * 50_001)
    run = project.run(f"--batch-course={COURSE}", "--batch-store=appwrite",
                      f"--batch-mcp-config={config}", subprocess=True)
    assert "is not valid JSON" in one_line(run)


def test_show_lesson_of_undecodable_cards_is_one_line(project: BatchProject,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [1])
    with sqlite3.connect(project.store_path) as db:
        db.execute("UPDATE lesson_templates SET cards = 'H4sIbroken'")
    assert main(["--store", f"sqlite:///{project.store_path}", "show-lesson", COURSE, "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be decoded" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"courseId": "course_x1", "entries": [{"order": True, "label": "x"}]},
         "order: Input should be a valid integer"),
        ({"courseId": "course_x1", "entries": [{"order": 10**30, "label": "x"}]},
         "order: Input should be less than or equal to 1000"),
        ({"courseId": "course_x1", "entries": [{"order": 1, "label": "   "}]},
         "label: must not be blank"),
        ({"courseId": "course_x1", "version": {"v": 1}, "entries": [{"order": 1,
                                                                      "label": "x"}]},
         "version must be text or a whole number"),
        ({"courseId": "course_x1", "status": "live", "entries": [{"order": 1, "label": "x"}]},
         "status must be one of published, draft, archived"),
        ({"courseId": "../../etc/x", "entries": [{"order": 1, "label": "x"}]},
         "is not a course id"),
        ({"courseId": 12345, "entries": [{"order": 1, "label": "x"}]}, "is not a course id"),
        ({"courseId": "course a b", "entries": [{"order": 1, "label": "x"}]},
         "is not a course id"),
        # `$` matches before a final newline: the ids must match whole.
        ({"courseId": "course_x1\n", "entries": [{"order": 1, "label": "x"}]},
         "is not a course id"),
        ({"courseId": "course_x1", "$id": "sow_x1\n", "entries": [{"order": 1, "label": "x"}]},
         "$id must be a row id"),
    ],
    ids=["order-true", "order-huge", "blank-label", "version-object", "unknown-status",
         "path-course", "number-course", "spaced-course", "newline-course", "newline-row-id"],
)
def test_load_sow_validates_as_the_batch_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: object, message: str
) -> None:
    source = tmp_path / "sow.json"
    source.write_text(json.dumps(content))
    assert main(["--store", f"sqlite:///{tmp_path / 's.db'}", "load-sow", str(source)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-max-cost=nan"], "--batch-max-cost: expected a finite number, got 'nan'"),
        (["--batch-timeout=inf"], "--batch-timeout: expected a finite number, got 'inf'"),
        (["--batch-max-cost=abc"], "--batch-max-cost: expected a number, got 'abc'"),
        (["--batch-max-retries=1.5"], "--batch-max-retries: expected a whole number"),
        (["--batch-max-retries=0"], "--batch-max-retries: must be at least 1, got '0'"),
        (["--batch-timeout=0"], "--batch-timeout: must be more than 0"),
        (["--batch-sow-status=live"], "--batch-sow-status: expected one of published, draft"),
        (["--batch-course=course_日本"], "'course_日本' is not a course id"),
        # str.isdigit() holds for these, int() refuses them: ASCII digits only.
        ([f"--batch-course={COURSE}\n"], "'course_c84874\\n' is not a course id"),
        (["--batch-max-retries=٣"], "--batch-max-retries: expected a whole number, got '٣'"),
        (["--batch-max-cost=٣"], "--batch-max-cost: expected a number, got '٣'"),
        (["--batch-shard=²/3"], "--batch-shard: expected K/N such as 2/4, got '²/3'"),
        (["--batch-shard=1/٣"], "--batch-shard: expected K/N such as 2/4, got '1/٣'"),
        ([f"{COURSE}::lesson_²"], f"'{COURSE}::lesson_²' is not a lesson of this batch"),
    ],
)
def test_bad_option_values_are_one_line_and_exit_2(project: BatchProject, args: list[str],
                                                   message: str) -> None:
    project.load("sow_current.json")
    run = project.run(f"--batch-course={COURSE}", *args, subprocess=True)
    assert message in one_line(run)


def test_an_ini_value_is_named_by_its_ini_key(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.pytester.makeini("[pytest]\nbatch_max_retries = 0\n")
    run = project.run(f"--batch-course={COURSE}", subprocess=True)
    assert "ini key batch_max_retries: must be at least 1" in one_line(run)


def test_ini_paths_are_taken_from_the_ini_files_directory(project: BatchProject) -> None:
    # Run from a subdirectory: the ini file's relative store and log directory are
    # its own directory's, as pytest takes its own path options, not the cwd's.
    project.load("sow_current.json")
    home = project.pytester.path
    sub = project.pytester.mkdir("sub")
    project.pytester.makeini("[pytest]\nbatch_store = sqlite:///store.sqlite3\n"
                             "batch_log_dir = runs\n")
    env = {**os.environ, "PYTHONPATH": f"{home}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-c", str(home / "tox.ini"),
                           f"--batch-course={COURSE}", "-pfake_plugin", "--batch-dry-run"],
                          cwd=sub, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [BatchLayout(d).plan.is_file() for d in batch_directories(home / "runs")] == [True]
    assert not (sub / "runs").exists() and not (sub / "store.sqlite3").exists()


def test_a_draft_only_course_says_how_to_use_it(project: BatchProject) -> None:
    project.load("sow_current.json", status="draft")
    run = project.run(f"--batch-course={COURSE}", subprocess=True)
    assert one_line(run).endswith("(statuses found: draft); --batch-sow-status=draft uses"
                                  " a draft")


def test_two_published_sows_of_one_version_are_named_and_chosen_alike(
    project: BatchProject
) -> None:
    document = json.loads((FIXTURES / "sow_current.json").read_text())
    project.load({**document, "$id": "sow_a"})
    project.load({**document, "$id": "sow_b"})
    plans = [project.run(f"--batch-course={COURSE}", "--batch-dry-run").plan()
             for _ in range(2)]
    assert plans[0]["sow"] == plans[1]["sow"] == {
        "doc_id": "sow_b", "version": "1", "status": "published",
        "passed_over_same_version": ["sow_a"]}


def test_unicode_digits_in_the_store_are_text_not_numbers(project: BatchProject) -> None:
    # '²'.isdigit() is true but int('²') raises: a version or order spelt so must be
    # read as the text it is, in every later run, not crash it.
    document = json.loads((FIXTURES / "sow_current.json").read_text())
    project.load({**document, "$id": "sow_odd", "version": "²"})
    project.load({**document, "$id": "sow_one", "version": "1"})
    odd = project.add_lessons(COURSE, [1, 2])[0]
    with sqlite3.connect(project.store_path) as db:
        db.execute('UPDATE lesson_templates SET sow_order = ? WHERE "$id" = ?', ("²", odd))
    run = project.run(f"--batch-course={COURSE}", "--batch-dry-run")
    assert run.ret == 0, run.output()
    plan = run.plan()
    assert plan["sow"]["doc_id"] == "sow_one"
    assert [p["order"] for p in plan["plan"]["skip"]] == [2]
    assert [p["order"] for p in plan["plan"]["generate"]] == [1, 4]
    # The audit passes the '²' row over as planning does: lesson 1 has no lesson.
    audit = project.run(f"--batch-course={COURSE}", "--batch-audit", author=None)
    assert "Traceback" not in audit.output()
    assert [r["status"] for r in audit.summary()["results"]][:1] == ["skipped"]


@pytest.mark.parametrize("force", [False, True], ids=["replace", "force"])
def test_an_order_stored_as_text_is_one_lesson_for_planning_writing_and_audit(
    project: BatchProject, force: bool
) -> None:
    # An older tool wrote lesson 4's order as text: every reader takes it as lesson 4.
    project.load("sow_current.json")
    [row_id] = project.add_lessons(COURSE, [4], model_version="legacy_generator")
    with sqlite3.connect(project.store_path) as db:
        db.execute('UPDATE lesson_templates SET sow_order = ? WHERE "$id" = ?', ("4", row_id))
    audit = project.run(f"--batch-course={COURSE}", "--batch-audit", "-k", "lesson_004",
                        author=None)
    [audited] = audit.summary()["results"]
    assert audited["status"] == "failed" and audited["violations"][0] == (
        "sow_order: must be a whole number from 1 to 1000, got text")
    run = project.run(f"--batch-course={COURSE}", "-k", "lesson_004",
                      *(["--batch-force", "--batch-yes"] if force else []))
    run.result.assert_outcomes(passed=1)
    [written] = [row for row in project.rows() if row["$id"] == row_id]
    assert written["sow_order"] == 4  # the row was updated, and its order with it
    assert len(project.rows()) == 1  # no second row beside it


DEEP_JSON = "[" * 100_000 + "]" * 100_000


def test_a_sow_whose_metadata_is_100k_deep_json_is_refused_at_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "sow.json"
    source.write_text(json.dumps({"courseId": "course_x1", "metadata": DEEP_JSON,
                                  "entries": [{"order": 1, "label": "x"}]}))
    assert main(["--store", f"sqlite:///{tmp_path / 's.db'}", "load-sow", str(source)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "metadata is not JSON" in err, err


def test_a_stored_sow_whose_metadata_is_100k_deep_json_is_one_line(
    project: BatchProject
) -> None:
    # As another tool could have stored it: every run of the course read it.
    project.load("sow_current.json")
    with sqlite3.connect(project.store_path) as db:
        db.execute("UPDATE Authored_SOW SET metadata = ?", (DEEP_JSON,))
    run = project.run(f"--batch-course={COURSE}", subprocess=True)
    assert "metadata is not JSON" in one_line(run)
    assert run.batch_dirs() == []


@pytest.mark.parametrize(("name", "text"), [
    ("tox.ini", "[pytest]\n"),
    ("pyproject.toml", "[tool.pytest.ini_options]\n"),
])
def test_load_sow_and_pytest_find_the_default_store_in_one_place(
    project: BatchProject, monkeypatch: pytest.MonkeyPatch, name: str, text: str
) -> None:
    # Both in a subdirectory of the project: pytest takes its default store from the
    # ini file's directory, so the loader must write it there too.
    home = project.pytester.path
    (home / name).write_text(text)
    sub = project.pytester.mkdir("sub")
    document = {**json.loads((FIXTURES / "sow_current.json").read_text()), "outcomes": OUTCOMES}
    source = home / "sow.json"
    source.write_text(json.dumps(document))
    monkeypatch.chdir(sub)
    assert main(["load-sow", str(source), "--course", COURSE]) == 0
    assert (home / "logs" / "batchgen.sqlite3").is_file()
    assert not (sub / "logs").exists()
    env = {**os.environ, "PYTHONPATH": f"{home}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-m", "pytest", f"--batch-course={COURSE}",
                           "-pfake_plugin", "--batch-dry-run"],
                          cwd=sub, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [BatchLayout(d).plan.is_file()
            for d in batch_directories(home / "logs" / "batch_runs")] == [True]


@pytest.mark.parametrize("value", ["postgres://x", "sqlite:///", "sqlite://store.db"])
def test_a_store_url_of_no_accepted_form_is_one_line_naming_its_ini_key(
    project: BatchProject, value: str
) -> None:
    # From the ini file, it was taken for a path: postgres://x came out mangled
    # under the ini's directory, and sqlite:/// as that directory, "missing".
    project.pytester.makeini(f"[pytest]\nbatch_store = {value}\n")
    result = project.pytester.runpytest_subprocess(f"--batch-course={COURSE}", "-pfake_plugin")
    assert result.ret == 2
    assert result.stderr.lines == [f"batchgen: ini key batch_store: expected sqlite:///PATH"
                                   f" or appwrite, got {value!r}"]
    result = project.pytester.runpytest_subprocess(f"--batch-course={COURSE}", "-pfake_plugin",
                                                   f"--batch-store={value}")
    assert result.stderr.lines == [f"batchgen: --batch-store: expected sqlite:///PATH"
                                   f" or appwrite, got {value!r}"]
