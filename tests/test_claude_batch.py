"""Whole batches with the default (claude) author: plugin + SDK + CLI + scripted model."""

from __future__ import annotations

import json
import os
import signal
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_batchgen.contract import check_row, outcome_ids_of
from pytest_batchgen.layout import BatchLayout
from pytest_batchgen.lesson import LESSON_COLUMNS
from tests.conftest import COURSE, BatchProject, wait_for
from tests.support.model_server import (
    Hang,
    HttpError,
    ModelRequest,
    ModelServer,
    OfflineEnv,
    Reply,
    Script,
    ToolCalls,
    scripted,
    unreadable_revision,
)
from tests.support.processes import processes_in
from tests.test_claude_author import OUTCOMES


@pytest.fixture
def claude(project: BatchProject, model_server: ModelServer) -> BatchProject:
    project.load("sow_current.json", outcomes=OUTCOMES)
    return project


def run(project: BatchProject, *args: str):  # type: ignore[no-untyped-def]
    return project.run(f"--batch-course={COURSE}", *args, author="claude", subprocess=True)


def test_happy_path_writes_every_column_and_reports_cost(
    claude: BatchProject, model_server: ModelServer
) -> None:
    batch = run(claude, "--junitxml=report.xml", "--batch-model=claude-sonnet-4-5")
    assert batch.ret == 0, batch.output()
    batch.result.assert_outcomes(passed=3)
    rows = claude.rows()
    assert [r["sow_order"] for r in rows] == [1, 2, 4]
    for row in rows:
        assert all(row[name] not in (None, "") for name in LESSON_COLUMNS), row
        assert row["model_version"] == "claud_Agent_sdk"
        assert row["createdBy"] == "lesson_author_agent" and row["status"] == "draft"
    summary = batch.summary()
    assert summary["author"] == "claude" and summary["generated"] == 3
    assert summary["total_cost_usd"] > 0 and summary["total_tokens"] > 0
    first = summary["results"][0]
    assert first["cost_usd"] > 0 and first["tokens"] > 0 and first["model"] == "claude-sonnet-4-5"
    cases = ET.parse(claude.pytester.path / "report.xml").getroot().iter("testcase")
    props = {p.get("name"): p.get("value") for p in next(cases).iter("property")}
    assert float(props["cost_usd"]) == first["cost_usd"] and int(props["tokens"]) > 0
    assert props["row_id"] == rows[0]["$id"]
    # The critic's sub-scores beside its three: in the summary, JUnit (JSON) and report.
    assert first["critic_scores"]["card_structure"] == 0.95
    assert json.loads(props["critic_scores"])["coherence"] == 0.9
    assert "card structure 0.95" in batch.layout.report.read_text()
    # The model saw each lesson's entry and the course outcomes, inline.
    tasks = [r.text() for r in model_server.model_requests("author") if not r.tool_uses()]
    assert len(tasks) == 3
    assert {r.body["model"] for r in model_server.model_requests()} == {"claude-sonnet-4-5"}
    assert all("Use numerical skills in real-life contexts" in text for text in tasks)
    assert any("Numeracy: Time, Speed, and Distance" in text for text in tasks)


def test_a_broken_first_submission_is_fixed_and_the_written_rows_pass_the_contract(
    claude: BatchProject, model_server: ModelServer
) -> None:
    model_server.script = scripted(first_broken=True)
    batch = run(claude, "--junitxml=report.xml")
    batch.result.assert_outcomes(passed=3)
    store = claude.store()
    rows = [row for order in (1, 2, 4) for row in store.lesson_rows(COURSE, order)]
    outcome_ids = outcome_ids_of(store.fetch_outcomes(COURSE))
    store.close()
    # Each decoded as the frontend decodes it and held to every rule and outcome.
    assert [[str(v) for v in check_row(row, outcome_ids)] for row in rows] == [[], [], []]
    log = batch.layout.lesson_log(1).read_text()
    assert "submit_lesson rejected: 4 violations" in log
    # The mistyped outcome ref cost no round: code writes the entry's refs.
    assert "submit_lesson: outcomeRefs: the author wrote [\"1\", \"AS1.2\"]; written from" \
           " the entry: [\"O1\", \"AS1.2\"]" in log
    assert "critic_overall" in (claude.pytester.path / "report.xml").read_text()
    assert batch.summary()["results"][0]["critic_overall"] == 0.9375


def test_lesson_log_holds_the_full_agent_trace(claude: BatchProject) -> None:
    batch = run(claude)
    log = batch.layout.lesson_log(1).read_text()
    assert "Workspace file ready:" in log and "sow_entry_input.json" in log
    assert "pytest_batchgen.authors.claude - INFO - #1 [author #1] SystemMessage init:" in log
    assert "[author #1] AssistantMessage tool call mcp__batchgen__submit_lesson" in log
    assert "[critic #1] AssistantMessage tool call mcp__batchgen__submit_review" in log
    assert "submit_review: PASS" in log
    assert "ResultMessage success" in log
    assert "Lesson written:" in log
    workspace = batch.layout.workspace(1)
    assert (workspace / "sow_entry_input.json").is_file()
    # The critic read the accepted lesson from the workspace; it is the one written.
    title = claude.rows()[0]["title"]
    assert json.loads((workspace / "lesson_submission.json").read_text())["title"] == title
    assert f"revision: '{title}'" in log


def test_the_api_key_appears_in_nothing_the_run_leaves(claude: BatchProject) -> None:
    # DEBUG logging, JUnit and a kept workspace: every place a secret could leak.
    batch = run(claude, "--log-level=DEBUG", "--junitxml=report.xml")
    assert batch.ret == 0, batch.output()
    key = OfflineEnv.API_KEY
    assert key not in batch.output()
    written = [p for p in claude.pytester.path.rglob("*") if p.is_file()]
    assert any(p.name == "lesson_order_001.log" for p in written)
    leaks = [p for p in written if key.encode() in p.read_bytes()]
    assert leaks == []


def test_critic_rejecting_past_max_retries_leaves_the_good_row_untouched(
    claude: BatchProject, model_server: ModelServer
) -> None:
    [good] = claude.add_lessons(COURSE, [1])
    before = claude.rows()[0]
    model_server.script = scripted(verdict=False)
    batch = run(claude, "--batch-force", "--batch-yes", "--batch-max-retries=1",
                "-k", "lesson_001")
    assert batch.ret == 1
    batch.result.assert_outcomes(failed=1, deselected=2)
    assert claude.rows()[0] == before and before["$id"] == good
    failed = batch.summary()["results"][0]
    assert failed["error"] == ("no lesson passed review within --batch-max-retries=1"
                               " (2 accepted, 2 reviewed)")
    assert failed["cost_usd"] > 0
    batch.result.stdout.fnmatch_lines(["*order 1 (*): no lesson passed review*"])
    # The report shows the reason and the log's last lines, not the whole agent trace.
    out = batch.result.stdout.str()
    section = out.split("Captured log call")[1].split("=====")[0]
    assert "earlier lines; the whole log:" in section and "lesson_order_001.log" in section
    assert len(section.strip().splitlines()) <= 1 + 8 + 1
    assert "#1 SystemMessage init" not in out


def test_api_error_fails_one_lesson_and_the_next_is_generated(
    claude: BatchProject, model_server: ModelServer
) -> None:
    model_server.script = scripted(fail=HttpError(529, "overloaded_error", "Overloaded"),
                                   fail_orders=(2,))
    batch = run(claude)
    assert batch.ret == 1
    batch.result.assert_outcomes(passed=2, failed=1)
    assert [r["sow_order"] for r in claude.rows()] == [1, 4]
    error = batch.summary()["results"][1]["error"]
    assert error.startswith("Claude agent failed: HTTP 529: API Error: 529 Overloaded")
    assert "Traceback" not in batch.output()


def test_an_unreadable_answer_fails_its_lesson_in_one_line_and_the_batch_ends_cleanly(
    claude: BatchProject, model_server: ModelServer
) -> None:
    # It killed the SDK's reader: the lesson recorded nothing it had spent, and the
    # batch ended with an "Event loop is closed" traceback.
    model_server.script = unreadable_revision()
    batch = run(claude, "-k", "lesson_001")
    assert batch.ret == 1
    [failed] = batch.summary()["results"]
    assert failed["error"] == "Claude agent failed: its answer could not be read" \
                              " (RecursionError)"
    assert failed["tokens"] > 0  # the first round's requests were answered and paid for
    assert "Traceback" not in batch.output() and "Event loop is closed" not in batch.output()


def test_no_persist_workspace_leaves_no_files_and_no_processes(
    claude: BatchProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # where the workspaces would be made
    batch = run(claude, "--batch-no-persist-workspace")
    assert batch.ret == 0
    assert not batch.layout.workspaces.exists()
    assert list(scratch.iterdir()) == []
    assert processes_in(scratch) == []
    assert json.loads(batch.layout.summary.read_text())["generated"] == 3
    # Nor under the CLI's own directories: no transcript (every prompt and lesson) in
    # its config directory, no MCP log in its cache.
    config, cache = (Path(os.environ[name]) for name in ("CLAUDE_CONFIG_DIR", "XDG_CACHE_HOME"))
    assert not (config / "projects").exists()
    assert not (cache / "claude-cli-nodejs").exists()


APPWRITE_KEY = "appwrite-key-0f3c9e1d2b7a"  # a fake, as the README tells users to keep it


def test_no_agent_can_read_a_secret_and_none_reaches_a_log(
    claude: BatchProject, model_server: ModelServer
) -> None:
    mcp = claude.pytester.path / ".mcp.json"
    mcp.write_text(json.dumps({"mcpServers": {"appwrite": {
        "command": "uvx", "args": ["mcp-server-appwrite", f"APPWRITE_API_KEY={APPWRITE_KEY}"]}}}))
    happy = scripted()

    def curious(request: ModelRequest) -> Reply:
        # A model (or an instruction planted in SOW text) going for the key: it reads
        # the config, and quotes what it somehow knows.
        if request.role == "author" and not request.tool_uses():
            return ToolCalls([("Read", {"file_path": str(mcp)})],
                             text=f"Reading {mcp}; the key is {APPWRITE_KEY}.")
        return happy(request)

    model_server.script = curious
    batch = run(claude, "--log-level=DEBUG", "--junitxml=report.xml", "-k", "lesson_001")
    assert batch.ret == 0, batch.output()
    author = model_server.model_requests("author")
    assert "Read" not in author[0].tools  # no file tool is offered at all
    [refused] = author[1].tool_results()
    assert refused.get("is_error") and APPWRITE_KEY not in json.dumps(refused)
    written = [p for p in claude.pytester.path.rglob("*") if p.is_file() and p != mcp]
    assert any(p.name == "lesson_order_001.log" for p in written)
    assert [p for p in written if APPWRITE_KEY.encode() in p.read_bytes()] == []
    assert "the key is [redacted]" in batch.layout.lesson_log(1).read_text()


def test_missing_key_exits_2_and_a_dry_run_needs_none(
    claude: BatchProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    batch = run(claude)
    assert batch.ret == 2
    [line] = batch.result.stderr.lines
    assert line.startswith("batchgen: the claude author needs ANTHROPIC_API_KEY")
    assert batch.batch_dirs() == []
    assert run(claude, "--batch-dry-run").ret == 0


def test_missing_cli_exits_2(claude: BatchProject, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHGEN_CLAUDE_CLI", "/nowhere/claude")
    batch = run(claude)
    assert batch.ret == 2
    assert batch.result.stderr.lines == [
        "batchgen: Claude Code CLI not found at /nowhere/claude (BATCHGEN_CLAUDE_CLI)"]


def test_timeout_stops_the_agent_process_and_leaves_nothing(
    claude: BatchProject, model_server: ModelServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    model_server.delay = 60  # the model never answers in time
    batch = run(claude, "--batch-timeout=3", "--batch-no-persist-workspace", "-k", "lesson_001")
    assert batch.ret == 1
    assert batch.summary()["results"][0]["error"] == (
        "timed out after 3s; the author was stopped")
    assert processes_in(scratch) == [] and list(scratch.iterdir()) == []
    assert claude.rows() == []


def critic_hangs(seconds: float) -> Script:
    """The standard play, but no critic's request is ever answered in time."""
    happy = scripted()
    return lambda request: Hang(seconds) if request.role == "critic" else happy(request)


def test_a_timed_out_lesson_reports_what_the_model_was_paid(
    claude: BatchProject, model_server: ModelServer
) -> None:
    # The author's session answers; the critic's never does in time.
    model_server.script = critic_hangs(60)
    batch = run(claude, "--batch-timeout=4", "-k", "lesson_001", "--batch-max-cost=0.0001")
    assert batch.ret == 1
    summary = batch.summary()
    result = summary["results"][0]
    assert result["error"] == "timed out after 4s; the author was stopped"
    # The author's session was paid for, and the interrupted critic's result message
    # says what it spent: the lesson's, and the batch budget counts it.
    assert result["cost_usd"] > 0 and result["tokens"] > 0
    assert summary["total_cost_usd"] == pytest.approx(result["cost_usd"], abs=1e-4)
    assert result["duration_seconds"] < 4 + 30  # stopped by itself, not by the backstop


def test_sigterm_mid_lesson_records_what_the_lesson_had_spent(
    claude: BatchProject, model_server: ModelServer
) -> None:
    # The author's session is answered and paid for; the critic's never answers.
    model_server.script = critic_hangs(120)
    batch = claude.start(f"--batch-course={COURSE}", "-k", "lesson_001", author="claude")
    wait_for(lambda: len(model_server.model_requests("critic")) == 1, "the critic's request")
    batch.send_signal(signal.SIGTERM)
    output = batch.communicate(timeout=60)[0].decode()
    assert batch.returncode == 2, output
    [directory] = claude.log_dir.glob("batch_*")
    summary = json.loads(BatchLayout(directory).summary.read_text())
    [result] = summary["results"]
    assert (result["status"], result["reason"]) == ("failed", "interrupted")
    assert result["cost_usd"] > 0 and result["tokens"] > 0
    assert summary["total_cost_usd"] == pytest.approx(result["cost_usd"], abs=1e-4)
    assert summary["interrupted"] is True and summary["not_run"] == []
    assert f"${result['cost_usd']:.4f}" in BatchLayout(directory).batch_log.read_text()


@pytest.mark.parametrize(("how", "workers"), [
    (signal.SIGKILL, 1),  # the xdist controller killed: its worker's CLI was orphaned
    (signal.SIGTERM, 0),
    (signal.SIGTERM, 1),
], ids=["kill-9-xdist", "sigterm", "sigterm-xdist"])
def test_the_agents_cli_dies_with_the_batch(
    claude: BatchProject, model_server: ModelServer, how: signal.Signals, workers: int
) -> None:
    claude.pytester.makeconftest("""
        def pytest_batchgen_batch_finished(config, summary, directory):
            (directory / "finished.txt").write_text("ran")
    """)
    happy = scripted()
    # The agent is deep in its work (a subagent mid-request) when the batch is stopped.
    model_server.script = lambda request: Hang(120) if request.role == "author" \
        else happy(request)
    batch = claude.start(f"--batch-course={COURSE}", "-k", "lesson_001", "-p", "xdist",
                         f"-n{workers}", author="claude")
    wait_for(lambda: bool(processes_in(claude.log_dir)), "the agent's CLI to start")
    batch.send_signal(how)
    output = batch.communicate(timeout=60)[0].decode()
    # kill -9 runs no cleanup in the batch: the CLI goes because its parent did.
    wait_for(lambda: not processes_in(claude.log_dir), "the CLI to end with its batch")
    if how == signal.SIGTERM:  # stopped as Ctrl-C stops a batch: everything recorded
        assert batch.returncode == 2, output
        [directory] = claude.log_dir.glob("batch_*")
        summary = json.loads(BatchLayout(directory).summary.read_text())
        assert summary["interrupted"] is True and summary["not_run"] == [1]
        assert BatchLayout(directory).report.is_file()
        assert (directory / "finished.txt").read_text() == "ran"
