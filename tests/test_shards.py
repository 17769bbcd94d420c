"""A course across the jobs of a CI matrix: `--batch-shard=K/N` runs, and `merge`
combining what the jobs leave into one record per course and one catalogue."""

from __future__ import annotations

import json
import shutil
from html import escape as html_escape
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_batchgen.__main__ import main, parser
from pytest_batchgen.layout import CATALOGUE_FILE, BatchLayout
from pytest_batchgen.planning import shard_of
from pytest_batchgen.settings import OPTIONS
from tests.conftest import COURSE, COURSE_LEGACY, AppwriteProject, BatchProject, legacy_sow
from tests.support.appwrite_server import AppwriteTestServer

ROOT = Path(__file__).parent.parent
WORKFLOW = ROOT / "examples" / "github-actions.yml"
LESSONS = 9
SHARDS = 3
# What a lesson's record says whichever run authored it (not its times or paths).
SAME_FIELDS = ("order", "label", "status", "action", "doc_id", "cost_usd", "tokens")


def merged(out: Path, course: str = COURSE) -> dict[str, Any]:
    return json.loads(BatchLayout(out / f"batch_{course}_merged").summary.read_text())


def lessons(summary: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(r[f] for f in SAME_FIELDS) for r in summary["results"]]


def counts(summary: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(summary[k] for k in ("total_sow_entries", "generated", "skipped", "failed",
                                      "not_run", "deselected", "complete"))


def merge(*paths: Path, out: Path, allow_incomplete: bool = False) -> int:
    return main(["merge", *map(str, paths), "--out", str(out),
                 *["--allow-incomplete"] * allow_incomplete])


def test_three_shards_on_one_store_merge_into_the_unsharded_run(
    appwrite_project: AppwriteProject, tmp_path: Path
) -> None:
    appwrite_project.load(LESSONS)
    log_dirs = [tmp_path / f"job{k}" for k in range(1, SHARDS + 1)]
    # Three jobs at once, as a matrix runs them: one store, a log directory each.
    jobs = [appwrite_project.start(f"--batch-shard={k}/{SHARDS}", f"--batch-log-dir={log_dir}")
            for k, log_dir in enumerate(log_dirs, start=1)]
    outputs = [job.communicate(timeout=120)[0].decode() for job in jobs]
    assert [job.returncode for job in jobs] == [0] * SHARDS, outputs

    written = []
    for k, log_dir in enumerate(log_dirs, start=1):
        [directory] = log_dir.glob("batch_*")
        assert directory.name.endswith(f"_shard{k}of{SHARDS}")
        summary = json.loads(BatchLayout(directory).summary.read_text())
        ours = [o for o in range(1, LESSONS + 1) if shard_of(o, SHARDS) == k]
        assert summary["shard"] == {"index": k, "count": SHARDS}
        assert [r["order"] for r in summary["results"]] == ours
        assert summary["in_other_shards"] == sorted(set(range(1, LESSONS + 1)) - set(ours))
        assert (summary["generated"], summary["complete"]) == (len(ours), True)
        written += [r["doc_id"] for r in summary["results"]]
    rows = appwrite_project.rows()
    assert [r["sow_order"] for r in rows] == list(range(1, LESSONS + 1))  # no duplicate row
    assert sorted(r["$id"] for r in rows) == sorted(written)  # each by the shard it was in

    with AppwriteTestServer() as other:  # the same course, one job on a store of its own
        AppwriteProject(appwrite_project.project, other).load(LESSONS)
        whole = AppwriteProject(appwrite_project.project, other).start(
            f"--batch-log-dir={tmp_path / 'whole'}")
        assert whole.communicate(timeout=120)[0] and whole.returncode == 0
    [directory] = (tmp_path / "whole").glob("batch_*")
    unsharded = json.loads(BatchLayout(directory).summary.read_text())

    assert merge(*log_dirs, out=tmp_path / "merged") == 0
    combined = merged(tmp_path / "merged", COURSE_LEGACY)
    assert counts(combined) == counts(unsharded) == (LESSONS, LESSONS, 0, 0, [], [], True)
    assert lessons(combined) == lessons(unsharded)
    assert combined["not_covered"] == []
    assert combined["total_cost_usd"] == unsharded["total_cost_usd"]
    assert len(combined["merged_from"]) == SHARDS


@pytest.fixture
def sharded(project: BatchProject) -> BatchProject:
    project.load(legacy_sow(6, COURSE), course=None)
    return project


def test_a_shard_runs_its_lessons_and_names_the_others(sharded: BatchProject) -> None:
    run = sharded.run(f"--batch-course={COURSE}", "--batch-shard=2/3")
    run.result.assert_outcomes(passed=2)
    run.result.stdout.fnmatch_lines([f"{COURSE} (shard 2/3): generated 2, *"])
    summary = run.summary()
    assert (summary["in_other_shards"], summary["not_run"], summary["deselected"]) == (
        [1, 3, 4, 6], [], [])
    assert [r["sow_order"] for r in sharded.rows()] == [2, 5]
    # A lesson of another shard, named on the command line, is a mistake to say so.
    other = sharded.run(f"--batch-course={COURSE}", "--batch-shard=2/3",
                        f"{COURSE}::lesson_003", subprocess=True)
    assert other.ret == 2
    assert f"{COURSE}::lesson_003 is in shard 3/3, not in this run's --batch-shard=2/3" in (
        other.output())


def test_an_empty_shard_succeeds(sharded: BatchProject) -> None:
    # A matrix sized for the longest course gives a short one shards without lessons.
    run = sharded.run(f"--batch-course={COURSE}", "--batch-shard=7/8")
    assert run.ret == 0
    summary = run.summary()
    assert (summary["results"], summary["in_other_shards"], summary["complete"]) == (
        [], [1, 2, 3, 4, 5, 6], True)


def test_a_dry_run_plans_its_shard(sharded: BatchProject) -> None:
    run = sharded.run(f"--batch-course={COURSE}", "--batch-shard=1/4", "--batch-dry-run")
    plan = run.plan()
    assert [p["order"] for p in plan["plan"]["generate"]] == [1, 5]
    assert (plan["shard"], plan["in_other_shards"]) == ({"index": 1, "count": 4}, [2, 3, 4, 6])


def test_a_plugin_that_drops_items_deselects_them(sharded: BatchProject) -> None:
    # As pytest-shard does: items removed in collection, and no pytest_deselected call.
    sharded.pytester.makeconftest("""
        def pytest_collection_modifyitems(items):
            items[:] = items[::2]
    """)
    summary = sharded.run(f"--batch-course={COURSE}").summary()
    assert (summary["generated"], summary["deselected"], summary["not_run"]) == (
        3, [2, 4, 6], [])


def test_merge_counts_a_rerun_lesson_once_with_its_latest_result(
    sharded: BatchProject, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BATCHGEN_FAKE_FAIL", "2")
    first = sharded.run(f"--batch-course={COURSE}").summary()
    assert first["failed"] == 1
    monkeypatch.delenv("BATCHGEN_FAKE_FAIL")
    rerun = sharded.run(f"--batch-course={COURSE}").summary()  # skips 1, 3-6; authors 2
    assert (rerun["skipped"], rerun["generated"]) == (5, 1)

    assert merge(sharded.log_dir, out=tmp_path / "merged") == 0
    summary = merged(tmp_path / "merged")
    assert counts(summary) == (6, 6, 0, 0, [], [], True)
    assert summary["total_cost_usd"] == pytest.approx(0.1 * 21)  # each lesson's authoring
    assert summary["total_cost_usd_all_runs"] == pytest.approx(
        first["total_cost_usd"] + rerun["total_cost_usd"])
    lesson_2 = summary["results"][1]
    assert lesson_2["status"] == "success"
    assert (tmp_path / "merged" / summary["batch_id"] / lesson_2["log_file"]).is_file()
    assert f"{COURSE}: generated 6, skipped 0, failed 0" in capsys.readouterr().out


def test_merge_of_a_missing_shard_is_not_covered(sharded: BatchProject, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    sharded.run(f"--batch-course={COURSE}", "--batch-shard=1/2")
    # Issue 19: an incomplete catalogue exited 0, as if it could be published.
    assert merge(sharded.log_dir, out=tmp_path / "merged") == 1
    summary = merged(tmp_path / "merged")
    assert (summary["generated"], summary["not_covered"], summary["complete"]) == (
        3, [2, 4, 6], False)
    assert "not covered 3" in capsys.readouterr().out
    catalogue = json.loads((tmp_path / "merged" / CATALOGUE_FILE).read_text())
    assert catalogue["complete"] is False
    # Issue 19: the report said "in progress" and left the uncovered lessons out.
    report = BatchLayout(tmp_path / "merged" / summary["batch_id"]).report.read_text()
    assert "in progress" not in report and "Incomplete: 3 not covered" in report
    for order in (2, 4, 6):  # a row each, with its label and the shard it belongs to
        label = next(e["label"] for e in legacy_sow(6, COURSE)["entries"] if e["order"] == order)
        row = report.split(f'data-key="{order}"', 1)[1].split("</tr>", 1)[0]
        assert "not covered" in row and html_escape(label) in row and "<td>2/2</td>" in row
    first = report.split('data-key="1"', 1)[1].split("</tr>", 1)[0]
    assert "<td>1/2</td>" in first  # the shard that ran it
    assert merge(sharded.log_dir, out=tmp_path / "merged", allow_incomplete=True) == 0


def test_merge_of_two_courses_lists_every_failure_with_its_log(
    project: BatchProject, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project.load({**legacy_sow(3, COURSE), "$id": "sow-of-another-course"}, course=None)
    project.load(legacy_sow(4), course=None)
    monkeypatch.setenv("BATCHGEN_FAKE_FAIL", "3")
    project.run(f"--batch-course={COURSE}", f"--batch-course={COURSE_LEGACY}")
    out = tmp_path / "merged"

    assert merge(project.log_dir, out=out) == 1  # failures: not a catalogue to publish
    catalogue = json.loads((out / CATALOGUE_FILE).read_text())
    assert [c["courseId"] for c in catalogue["courses"]] == sorted([COURSE, COURSE_LEGACY])
    assert {k: catalogue["totals"][k] for k in ("courses", "lessons", "generated", "failed")} == {
        "courses": 2, "lessons": 7, "generated": 5, "failed": 2}
    assert [(f["courseId"], f["order"]) for f in catalogue["failures"]] == [
        (COURSE_LEGACY, 3), (COURSE, 3)]
    for failure in catalogue["failures"]:
        assert "scripted failure for order 3" in (out / failure["log_file"]).read_text()
    report = BatchLayout(out).report.read_text()
    assert COURSE in report and COURSE_LEGACY in report and "scripted failure" in report
    assert "not ready to publish" in report and "Complete" not in report
    # A second merge into the same place replaces the first.
    assert merge(project.log_dir, out=out, allow_incomplete=True) == 0


def test_merge_refuses_summaries_of_different_plans(
    sharded: BatchProject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sharded.run(f"--batch-course={COURSE}", "-k", "lesson_001")
    edited = legacy_sow(6, COURSE)
    edited["entries"][0]["label"] = "Another lesson altogether"
    sharded.load(edited, course=None)
    sharded.run(f"--batch-course={COURSE}", "--batch-force", "--batch-yes", "-k", "lesson_001")
    capsys.readouterr()

    assert merge(sharded.log_dir, out=tmp_path / "merged") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "disagree about lesson 1" in error
    assert "'Another lesson altogether'" in error
    assert not (tmp_path / "merged").exists()
    assert not list(tmp_path.glob(".merged*"))


def test_merge_keeps_generation_and_audit_apart(sharded: BatchProject, tmp_path: Path) -> None:
    # Issue 19: one audit in logs/batch_runs made `merge logs/batch_runs` refuse it all
    # ("a generate run and … a audit run").
    sharded.run(f"--batch-course={COURSE}")
    sharded.run(f"--batch-course={COURSE}", "--batch-audit", author=None)
    out = tmp_path / "merged"
    assert merge(sharded.log_dir, out=out) == 0
    generated, audited = merged(out), json.loads(
        BatchLayout(out / f"batch_{COURSE}_audit_merged").summary.read_text())
    assert (generated["mode"], generated["generated"], generated["complete"]) == (
        "generate", 6, True)
    assert (audited["mode"], audited["passed"], audited["complete"]) == ("audit", 6, True)
    catalogue = json.loads((out / CATALOGUE_FILE).read_text())
    assert [(c["courseId"], c["mode"]) for c in catalogue["courses"]] == [
        (COURSE, "audit"), (COURSE, "generate")]
    assert merge(sharded.log_dir, out=out) == 0  # and again, over its own output


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: d, "no batch_summary.json under"),
    (lambda d: d / "nothing", "does not exist"),
    (lambda d: (d / "batch_summary.json").write_text("[1, 2]") and d,
     "is not a batch summary"),
    (lambda d: (d / "batch_summary.json").write_text("{") and d, "cannot be read as JSON"),
    (lambda d: (d / "batch_summary.json").write_text(
        '{"courseId": "course_x1", "start_time": "2026-01-01T00:00:00Z",'
        ' "results": [{"order": 1}]}') and d,
     "is not a batch summary (results.0.label: Field required)"),
    (lambda d: (d / "batch_summary.json").write_text(
        '{"courseId": "course_x1", "start_time": "2026-01-01T00:00", "results": []}') and d,
     "is not a batch summary (start_time: Input should have timezone info)"),
], ids=["empty", "missing", "not-a-summary", "not-json", "bad-result", "naive-time"])
def test_merge_of_no_batches_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, message: str
) -> None:
    source = tmp_path / "artifacts"
    source.mkdir()
    assert merge(make(source), out=tmp_path / "merged") == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and error.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts"]


def test_merge_will_not_replace_a_directory_it_did_not_write(
    sharded: BatchProject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sharded.run(f"--batch-course={COURSE}")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "keep.txt").write_text("mine")
    assert merge(sharded.log_dir, out=tmp_path / "reports") == 2
    assert "is not the output of a merge" in capsys.readouterr().err
    assert (tmp_path / "reports" / "keep.txt").read_text() == "mine"


def test_a_dry_run_estimates_from_merged_summaries(sharded: BatchProject,
                                                   tmp_path: Path) -> None:
    for k in (1, 2):  # two jobs' artifacts, merged into the log directory of a third
        sharded.run(f"--batch-course={COURSE}", f"--batch-shard={k}/2",
                    f"--batch-log-dir={tmp_path / f'job{k}'}")
    fresh = sharded.log_dir / "merged"
    assert merge(tmp_path / "job1", tmp_path / "job2", out=fresh) == 0
    sharded.load(legacy_sow(8, COURSE), course=None)  # two lessons more to author

    run = sharded.run(f"--batch-course={COURSE}", "--batch-dry-run")
    run.result.stdout.fnmatch_lines(["*average of 6 earlier lessons*"])
    # The jobs' own batches beside the merge of them count once.
    for k in (1, 2):
        for directory in (tmp_path / f"job{k}").iterdir():
            directory.rename(sharded.log_dir / directory.name)
    run = sharded.run(f"--batch-course={COURSE}", "--batch-dry-run")
    run.result.stdout.fnmatch_lines(["*average of 6 earlier lessons*"])



def summary_with(result: dict[str, Any], **fields: Any) -> str:
    """A one-lesson batch summary, `result`'s fields over a failed lesson's."""
    lesson = {"order": 1, "label": "x", "status": "failed", "action": "generate",
              "duration_seconds": 60, "cost_usd": 0.1, "tokens": 10,
              "log_file": "lesson_order_001.log", **result}
    return json.dumps({"courseId": COURSE, "start_time": "2026-01-01T00:00:00Z",
                       "batch_id": "batch_x", "total_sow_entries": 1, "results": [lesson],
                       **fields})


@pytest.mark.parametrize(("text", "where"), [
    (summary_with({"cost_usd": "0.1"}), "results.0.cost_usd"),
    (summary_with({"duration_seconds": "60"}), "results.0.duration_seconds"),
    (summary_with({"cost_usd": float("inf")}), "results.0.cost_usd"),
    (summary_with({"duration_seconds": float("nan")}), "results.0.duration_seconds"),
    (summary_with({"critic_overall": float("nan")}), "results.0.critic_overall"),
    (summary_with({"tokens": "10"}), "results.0.tokens"),
    (summary_with({}, total_cost_usd=float("inf")), "total_cost_usd"),
], ids=["string-cost", "string-duration", "infinite-cost", "nan-duration", "nan-score",
        "string-tokens", "infinite-total"])
def test_merge_refuses_figures_no_run_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             text: str, where: str) -> None:
    # They passed the shape check, then broke a sum (a traceback) or went into the
    # catalogue as Infinity, which is not JSON.
    source = tmp_path / "artifacts" / "batch_x"
    source.mkdir(parents=True)
    (source / "batch_summary.json").write_text(text)
    assert merge(tmp_path / "artifacts", out=tmp_path / "merged") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"is not a batch summary ({where}: " in error, error
    assert not (tmp_path / "merged").exists()


@pytest.mark.parametrize("log_file", ["/etc/passwd", "../../../etc/passwd", "../batch_y/x.log"])
def test_merge_links_only_to_files_inside_the_batch(tmp_path: Path, log_file: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "artifacts" / "batch_x"
    source.mkdir(parents=True)
    (source / "batch_summary.json").write_text(summary_with({"log_file": log_file}))
    out = tmp_path / "merged"
    assert merge(tmp_path / "artifacts", out=out) == 1  # the lesson failed
    assert "\n1 course, 1 lesson: complete; 1 failed\n" in capsys.readouterr().out
    [result] = merged(out)["results"]
    assert result["log_file"] is None  # a result's log_file key is always there
    catalogue = json.loads((out / CATALOGUE_FILE).read_text())
    assert [f["log_file"] for f in catalogue["failures"]] == [None]
    assert "passwd" not in (out / "batch_report.html").read_text()
    assert "passwd" not in BatchLayout(out / f"batch_{COURSE}_merged").report.read_text()


def test_merge_into_the_current_directory(sharded: BatchProject, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    sharded.run(f"--batch-course={COURSE}")
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert merge(sharded.log_dir, out=Path(".")) == 0
    assert merged(tmp_path / "here")["generated"] == 6
    assert merge(sharded.log_dir, out=Path(".")) == 0  # and again, over its own output


def test_merge_never_deletes_what_it_did_not_write(sharded: BatchProject,
                                                   tmp_path: Path) -> None:
    sharded.run(f"--batch-course={COURSE}")
    out = tmp_path / "merged"
    assert merge(sharded.log_dir, out=out) == 0
    # A user's notes, and the very inputs of the next merge, inside an earlier merge's
    # output: a merge there replaces its own files and nothing else.
    (out / "notes.txt").write_text("mine")
    (out / f"batch_{COURSE}_merged" / "notes.txt").write_text("mine too")
    inputs = out / "artifacts"
    shutil.copytree(sharded.log_dir, inputs)
    before = sorted(p.relative_to(inputs) for p in inputs.rglob("*"))
    assert merge(inputs, out=out) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / f"batch_{COURSE}_merged" / "notes.txt").read_text() == "mine too"
    assert sorted(p.relative_to(inputs) for p in inputs.rglob("*")) == before
    assert merged(out)["generated"] == 6
    assert not list(tmp_path.glob(".merged*"))


# --- the example workflow -----------------------------------------------------------------


def run_lines(workflow: dict[str, Any]) -> list[str]:
    """Every line of every `run:` step, continuation lines joined."""
    lines = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            lines += step.get("run", "").replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip()]


def test_the_example_workflow_is_a_matrix_that_runs_commands_that_exist() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    matrix = jobs["author"]["strategy"]["matrix"]
    assert {"course", "shard"} <= set(matrix)
    assert jobs["merge"]["needs"] == "author"
    assert "always()" in jobs["merge"]["if"]

    lines = run_lines(workflow)
    pytest_lines = [line for line in lines if line.startswith("pytest ")]
    assert pytest_lines
    known = {option.flag for option in OPTIONS}
    for line in pytest_lines:
        flags = {word.split("=")[0] for word in line.split() if word.startswith("--batch-")}
        assert flags <= known, f"unknown options in {line!r}: {flags - known}"
        assert "--batch-shard=" in line and "--batch-store=appwrite" in line
        assert " -n " in line and "--junitxml=" in line
    [merge_line] = [line for line in lines if "pytest_batchgen merge" in line]
    args = merge_line.split("pytest_batchgen", 1)[1].split()
    assert parser().parse_args(args).paths  # the subcommand and its options parse

    extras = [line for line in lines if line.startswith("pip install") and "[" in line]
    assert extras
    pyproject = (ROOT / "pyproject.toml").read_text()
    for line in extras:
        for extra in line.split("[", 1)[1].split("]")[0].split(","):
            assert f"\n{extra} = [" in pyproject, f"no [{extra}] extra in pyproject.toml"
    secrets = WORKFLOW.read_text()
    for name in ("APPWRITE_ENDPOINT", "APPWRITE_PROJECT_ID", "APPWRITE_API_KEY",
                 "ANTHROPIC_API_KEY"):
        assert f"{name}: ${{{{ secrets.{name} }}}}" in secrets
