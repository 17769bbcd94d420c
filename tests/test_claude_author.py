"""The Claude author, driven for real: SDK + bundled CLI against the scripted model."""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_batchgen.authors import AuthoringError, AuthorRequest, AuthorUnavailable
from pytest_batchgen.authors.claude import (
    AUTH_VARIABLES,
    CLI_VARIABLE,
    ClaudeAuthor,
    ClaudeOptions,
    has_login,
)
from pytest_batchgen.authors.outline import draft_lesson
from pytest_batchgen.authors.prompting import RESEARCH_BRIEF_MAX
from pytest_batchgen.authors.review import (
    FIDELITY_PARTS,
    QUALITY_PARTS,
    SUBMISSION_FILE,
    Submissions,
    judge_verdict,
)
from pytest_batchgen.authors.sessions import SessionLimiter
from pytest_batchgen.requirements import requirements_for
from pytest_batchgen.sow import SowRecord, record_from_row
from tests.conftest import FIXTURES
from tests.support.lessons import OUTCOMES
from tests.support.model_server import (
    SUBMIT_LESSON,
    SUBMIT_REVIEW,
    Drop,
    HttpError,
    ModelRequest,
    ModelServer,
    Reply,
    Text,
    ToolCalls,
    lesson_for,
    scripted,
    unreadable_revision,
    verdict_for,
)
from tests.support.processes import cli_children


def sow() -> SowRecord:
    document = json.loads((FIXTURES / "sow_current.json").read_text())
    return record_from_row({"$id": "sow_1", "courseId": "course_c84874", "version": "2",
                            "status": "published", "entries": document["entries"],
                            "metadata": document["metadata"]})


def request(tmp_path: Path, order: int = 1) -> AuthorRequest:
    record = sow()
    entry = next(e for e in record.entries if e.order == order)
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    return AuthorRequest("course_c84874", entry, record, OUTCOMES,
                         requirements_for(entry.view, OUTCOMES), workspace)


AUTHOR = ClaudeAuthor(ClaudeOptions(max_retries=2, model="claude-sonnet-4-5"))
# The coroutine tests; the sync ones are not marked (pytest-asyncio warns of those).
asyncio_test = pytest.mark.asyncio


@asyncio_test
async def test_happy_path_writes_a_valid_reviewed_lesson(
    model_server: ModelServer, tmp_path: Path
) -> None:
    authored = await AUTHOR.author(request(tmp_path))
    assert authored.lesson["title"] == "Numeracy: Fractions, Decimals, and Percentages"
    assert [card["id"] for card in authored.lesson["cards"]] == ["card_001", "card_002"]
    metrics = authored.metrics
    assert metrics.cost_usd > 0 and metrics.tokens > 0 and metrics.turns >= 1
    assert metrics.model == "claude-sonnet-4-5"
    assert cli_children(os.getpid()) == []  # the agent's process ended with the lesson
    workspace = tmp_path / "workspace"
    assert json.loads((workspace / "sow_entry_input.json").read_text())["order"] == 1
    context = json.loads((workspace / "sow_context.json").read_text())
    assert context["next_lesson"]["order"] == 2 and context["previous_lesson"] is None
    assert context["sow"] == {"doc_id": "sow_1", "version": "2", "status": "published"}
    outcomes = json.loads((workspace / "course_outcomes.json").read_text())
    assert outcomes["outcomes"] == OUTCOMES


@asyncio_test
async def test_each_session_sees_its_inputs_inline_and_only_its_own_tool(
    model_server: ModelServer, tmp_path: Path
) -> None:
    await AUTHOR.author(request(tmp_path))
    # The happy path is two model requests: one lesson, one verdict.
    assert [r.role for r in model_server.model_requests()] == ["author", "critic"]
    author, critic = model_server.model_requests()
    seen = author.text()
    assert "The 10% Method" in seen and "30% of £120" in seen  # the whole entry, inline
    assert "Use numerical skills in real-life contexts" in seen  # the outcomes, inline
    assert "Write lesson 1 of course course_c84874" in seen
    assert "You are the lesson author" in author.system
    assert author.tools == [SUBMIT_LESSON]  # no file tool: its inputs are inline
    assert "You are the lesson critic" in critic.system
    assert critic.tools == [SUBMIT_REVIEW]  # a critic cannot submit
    assert "<lesson>" in critic.text() and "Review lesson 1" in critic.text()


@asyncio_test
async def test_a_submission_breaking_frontend_rules_gets_every_violation_at_once(
    model_server: ModelServer, tmp_path: Path
) -> None:
    model_server.script = scripted(first_broken=True)
    authored = await AUTHOR.author(request(tmp_path))
    results = [r for req in model_server.model_requests("author") for r in req.tool_results()]
    rejected = json.loads(json.dumps(next(r for r in results if r.get("is_error"))["content"]))
    text = rejected if isinstance(rejected, str) else rejected[0]["text"]
    # Five faults; the wrong ref is not one: code writes the entry's refs, so a slip
    # copying them costs no round.
    assert "The lesson was NOT accepted: 4 violation(s) of the lesson contract" in text
    assert "outcomeRefs" not in text
    for line in [
        "- cards[0] (card_001).explainer: must be 100-2000 characters, has 51",
        "- cards[0] (card_001).misconceptions: must hold 1-3 misconceptions, has 0",
        "- cards[1] (card_002).notes: key not allowed by the contract",
        "- cards[1] (card_002).cfu.expected: must be a number, got text (the admin editor",
    ]:
        assert line in text, text
    assert "(round 1 of 2)" in text
    # The second submission was accepted, reviewed and returned: it passes the contract.
    assert requirements_for(sow().entries[0].view, OUTCOMES).check(authored.lesson) == []
    assert authored.review == REVIEWED


@asyncio_test
async def test_an_answer_past_a_megabyte_is_read_refused_and_paid_for(
    model_server: ModelServer, tmp_path: Path
) -> None:
    happy = scripted()

    def oversized(request: ModelRequest) -> Reply:
        # The first submission is 1.5 MB: the SDK's default reader limit is 1 MB.
        if request.role == "author" and not request.tool_uses():
            lesson = lesson_for(request)
            lesson["cards"][0]["explainer"] = "x" * 1_500_000
            return ToolCalls([(SUBMIT_LESSON, {"lesson": lesson})])
        return happy(request)

    model_server.script = oversized
    authored = await AUTHOR.author(request(tmp_path))
    [refused] = [result for req in model_server.model_requests("author")
                 for result in req.tool_results()][:1]
    assert refused.get("is_error") and "explainer: must be 100-2000 characters" in json.dumps(
        refused)
    assert authored.metrics.cost_usd > 0 and authored.lesson["cards"][0]["explainer"] != "x"


@asyncio_test
async def test_an_answer_nested_past_the_parser_fails_with_what_was_spent(
    model_server: ModelServer, tmp_path: Path
) -> None:
    model_server.script = unreadable_revision()
    with pytest.raises(AuthoringError) as failure:
        await AUTHOR.author(request(tmp_path))
    assert str(failure.value) == "Claude agent failed: its answer could not be read" \
                                 " (RecursionError)"
    # The first round's sessions were answered and paid for: they are counted.
    assert failure.value.metrics.cost_usd > 0 and failure.value.metrics.tokens > 0
    assert cli_children(os.getpid()) == []


@asyncio_test
async def test_critic_rejecting_past_max_retries_fails_without_a_lesson(
    model_server: ModelServer, tmp_path: Path
) -> None:
    model_server.script = scripted(verdict=False)
    with pytest.raises(AuthoringError) as failure:
        await AUTHOR.author(request(tmp_path))
    assert str(failure.value) == ("no lesson passed review within --batch-max-retries=2"
                                  " (3 accepted, 3 reviewed)")
    assert [r.role for r in model_server.model_requests()] == ["author", "critic"] * 3
    assert failure.value.metrics.cost_usd > 0  # partial figures are kept
    assert cli_children(os.getpid()) == []


@asyncio_test
@pytest.mark.parametrize(
    ("fail", "message"),
    [
        (HttpError(529, "overloaded_error", "Overloaded"), "Claude agent failed: HTTP 529:"),
        (HttpError(500), "Claude agent failed: HTTP 500:"),
        (Drop(), "Claude agent failed: API Error: Connection dropped"),
    ],
    ids=["overloaded", "server-error", "dropped-stream"],
)
async def test_api_failures_fail_the_lesson_readably(
    model_server: ModelServer, tmp_path: Path, fail: Any, message: str
) -> None:
    model_server.script = scripted(fail=fail)
    with pytest.raises(AuthoringError) as failure:
        await AUTHOR.author(request(tmp_path))
    assert str(failure.value).startswith(message)
    assert "\n" not in str(failure.value)
    assert cli_children(os.getpid()) == []


@asyncio_test
async def test_trace_logs_every_message_tagged_with_its_session(
    model_server: ModelServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model_server.script = scripted(verdicts=(False, True))
    caplog.set_level(logging.DEBUG)
    await AUTHOR.author(request(tmp_path))
    lines = [r.getMessage() for r in caplog.records if r.name == "pytest_batchgen.authors.claude"]
    text = "\n".join(lines)
    for session in ("author #1", "critic #1", "author #2", "critic #2"):
        assert f"[{session}] SystemMessage init:" in text
    assert any(f"[author #1] AssistantMessage tool call {SUBMIT_LESSON}" in line
               for line in lines)
    assert any("[critic #2] AssistantMessage tool call mcp__batchgen__submit_review" in line
               for line in lines)
    assert "submit_review: FAIL" in text and "submit_review: PASS" in text
    assert "[critic #2] ResultMessage success: turns" in text
    assert "sk-test-offline" not in text  # the key is never logged


@asyncio_test
async def test_cli_scratch_files_stay_in_the_workspace(
    model_server: ModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "tmp"
    outside.mkdir()
    monkeypatch.setenv("TMPDIR", str(outside))
    await AUTHOR.author(request(tmp_path))
    assert list(outside.iterdir()) == []
    assert (tmp_path / "workspace" / "cli_tmp").is_dir()


def test_check_ready_needs_a_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in AUTH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path))
    with pytest.raises(AuthorUnavailable, match=r"needs ANTHROPIC_API_KEY.*--batch-author=outline"):
        ClaudeAuthor().check_ready()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    ClaudeAuthor().check_ready()


@pytest.mark.parametrize("config_dir", ["CLAUDE_CONFIG_DIR", "HOME"])
def test_a_saved_claude_login_is_enough(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, config_dir: str
) -> None:
    # `claude /login` keeps its credentials in the CLI's config directory.
    monkeypatch.setenv("HOME", str(tmp_path))
    saved = tmp_path / ".claude" if config_dir == "HOME" else tmp_path / "elsewhere"
    environ = {"CLAUDE_CONFIG_DIR": str(saved)} if config_dir == "CLAUDE_CONFIG_DIR" else {}
    saved.mkdir()
    assert has_login(environ) is (sys.platform == "darwin")  # a directory alone: macOS only
    (saved / ".credentials.json").write_text("{}")
    assert has_login(environ)


def test_check_ready_needs_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    with pytest.raises(AuthorUnavailable) as error:
        ClaudeAuthor(ClaudeOptions(cli_path="/nowhere/claude")).check_ready()
    assert str(error.value) == f"Claude Code CLI not found at /nowhere/claude ({CLI_VARIABLE})"


# --- the tool contract, as a table ----------------------------------------------------------


def valid_lesson() -> dict[str, Any]:
    view = sow().entries[0].view
    return draft_lesson(view, requirements_for(view, OUTCOMES))


def submissions(workspace: Path | None = None, max_rounds: int = 5) -> Submissions:
    return Submissions(max_rounds=max_rounds, workspace=workspace,
                       requirements=requirements_for(sow().entries[0].view, OUTCOMES))


PASS = verdict_for(True)
FAIL = verdict_for(False)
REVIEWED = {**dict.fromkeys(FIDELITY_PARTS, 0.95), **dict.fromkeys(QUALITY_PARTS, 0.9),
            "sow_fidelity": 0.95, "basic_quality": 0.9, "overall": 0.9375}


def test_an_accepted_lesson_that_cannot_be_saved_costs_no_round(tmp_path: Path) -> None:
    state = submissions(workspace=tmp_path / "gone")  # its file cannot be written
    assert state.submit_lesson({"lesson": valid_lesson()}) == (
        True, "accepted: the lesson is valid and goes to review.")
    assert (state.accepted, state.rounds) == (1, 0)


def test_text_no_store_can_hold_is_refused_before_it_is_reviewed() -> None:
    state = submissions()
    lesson = {**valid_lesson(), "title": "Fractions, decimals and percentages \ud800"}
    accepted, answer = state.submit_lesson({"lesson": lesson})
    assert not accepted and "title: must not hold the character U+D800" in answer
    assert state.rounds == 1 and state.latest is None


def test_result_is_the_latest_accepted_lesson_whose_latest_review_passed() -> None:
    state = submissions()
    assert state.submit_review(PASS) == (False, "There is no accepted lesson to review yet.")
    first = valid_lesson()
    assert state.submit_lesson({"lesson": first})[0]
    assert state.result is None  # not reviewed yet
    assert state.submit_review(PASS)[0]
    assert state.result is not None and state.result["title"] == first["title"]
    assert state.latest_review == REVIEWED
    second = {**first, "title": "A second, revised version of the same lesson"}
    assert state.submit_lesson({"lesson": second})[0]
    assert state.result is None  # the new lesson's review is still to come
    state.submit_review(FAIL)
    assert state.result is None
    state.submit_review(PASS)
    assert state.result is not None and state.result["title"] == second["title"]


def test_the_latest_accepted_lesson_is_kept_in_the_workspace(tmp_path: Path) -> None:
    # For whoever debugs the lesson later: what the critic was given.
    state = submissions(tmp_path)
    saved = tmp_path / SUBMISSION_FILE
    lesson = valid_lesson()
    ok, text = state.submit_lesson({"lesson": lesson})
    assert ok and text == "accepted: the lesson is valid and goes to review."
    assert json.loads(saved.read_text())["title"] == lesson["title"]
    assert not state.submit_lesson({"lesson": {**lesson, "title": "short"}})[0]
    assert json.loads(saved.read_text())["title"] == lesson["title"]  # rejected: unchanged


def scored(passes: bool = True, **changes: Any) -> dict[str, Any]:
    """A consistent verdict with some scores (or gates, errors) changed."""
    verdict = verdict_for(passes)
    gates = changes.pop("gates", verdict["gates"])
    errors = changes.pop("factual_errors", verdict["factual_errors"])
    return {**verdict, "gates": gates, "factual_errors": errors,
            "scores": {**verdict["scores"], **changes}}


ALL_ONE = {name: 1 for name in (*FIDELITY_PARTS, *QUALITY_PARTS, "sow_fidelity",
                                "basic_quality", "overall")}


@pytest.mark.parametrize(
    ("verdict", "refusal"),
    [
        (scored(True), None),
        (scored(False), None),
        # Sums within the tolerance of the tool's own are the critic's rounding.
        (scored(True, overall=0.945), None),
        (scored(True, overall=0.95), "overall is 0.9375, not 0.95"),
        (scored(True, content=0.5), "sow_fidelity is 0.7925, not 0.95"),
        (scored(True, coherence=0.5, basic_quality=0.78), "overall is 0.9075, not 0.9375"),
        (scored(False, **ALL_ONE, factual_errors=["card_002: 25% of £16 is £4, not £5"],
                gates={"schema": True, "factual": False}), None),
        (scored(True, **ALL_ONE, factual_errors=["card_001: wrong answer index"],
                gates={"schema": True, "factual": False}), "1 factual error"),
        (scored(True, **ALL_ONE, factual_errors=["card_001: wrong answer index"]),
         "the factual gate passes exactly when no factual error is listed"),
        (scored(True, **ALL_ONE, gates={"schema": False, "factual": True}), "both gates"),
        (scored(True, content=0.8, sow_fidelity=0.8975, overall=0.8981), "a pass needs"),
        (scored(False, **ALL_ONE), "these scores pass both gates and every threshold"),
        (scored(True, content=9), "from 0 to 1 (not: content)"),
        ({**scored(True), "scores": {"pedagogy": 4}}, "from 0 to 1 (not: card_structure,"),
        ({"pass": "yes", "gates": {"schema": True, "factual": True}, "scores": {}}, "Expected"),
        ({"pass": True, "scores": {}}, "Expected"),  # no gates
    ],
)
def test_a_verdict_must_agree_with_its_scores(verdict: dict[str, Any], refusal: str | None
                                              ) -> None:
    _, refused = judge_verdict(verdict)
    assert (refused is None) if refusal is None else (refused is not None and refusal in refused)


def test_the_tool_computes_every_dimension_from_its_parts() -> None:
    scores, refused = judge_verdict(scored(False, content=0.5, sow_fidelity=0.7925,
                                           overall=0.7444))
    assert refused is None
    assert (scores["sow_fidelity"], scores["basic_quality"], scores["overall"]) == (
        0.7925, 0.6, 0.7444)
    assert scores["content"] == 0.5


def test_the_author_gets_the_feedback_of_every_dimension_and_the_factual_errors() -> None:
    state = submissions()
    assert state.submit_lesson({"lesson": valid_lesson()})[0]
    verdict = scored(False, factual_errors=["card_002: £4, not £5"],
                     gates={"schema": True, "factual": False})
    assert state.submit_review(verdict)[0]
    assert state.feedback.splitlines() == [
        "sow_fidelity: follows the card plan.", "basic_quality: cards lack Scottish context.",
        "revision: the lesson: name a real Scottish place in each card.",
        "factual error: card_002: £4, not £5"]


def test_a_refused_verdict_costs_a_round_and_leaves_the_lesson_unreviewed() -> None:
    state = submissions(max_rounds=3)
    assert state.submit_lesson({"lesson": valid_lesson()})[0]
    ok, text = state.submit_review(scored(True, content=0.5))
    assert not ok and "Verdict refused" in text and "(round 1 of 3)" in text
    assert state.result is None and state.reviews == []


def test_rounds_count_rejections_and_failed_reviews() -> None:
    state = submissions(max_rounds=2)
    ok, text = state.submit_lesson({"lesson": {"title": "x"}})
    assert not ok and "(round 1 of 2)" in text
    assert state.submit_lesson({"lesson": valid_lesson()})[0]
    ok, text = state.submit_review(FAIL)
    assert ok and "(round 2 of 2)" in text and not state.exhausted
    ok, text = state.submit_review({**FAIL, "feedback": {"revision": "still no"}})
    assert state.exhausted and "retry budget of 2 rounds is exhausted" in text
    assert state.submit_lesson({"lessons": []})[0] is False


@asyncio_test
async def test_research_runs_first_and_its_brief_reaches_the_author(
    model_server: ModelServer, tmp_path: Path
) -> None:
    author = ClaudeAuthor(ClaudeOptions(research=True, model="claude-sonnet-4-5"))
    await author.author(request(tmp_path))
    roles = [r.role for r in model_server.model_requests()]
    assert roles == ["researcher", "author", "critic"]
    researcher = model_server.model_requests("researcher")[0]
    assert sorted(researcher.tools) == ["WebFetch", "WebSearch"]
    assert "You are the lesson researcher" in researcher.system
    author = model_server.model_requests("author")[0]
    assert "<research_brief>" in author.text() and "ScotRail fares" in author.text()


@asyncio_test
async def test_a_research_brief_past_its_bound_is_cut_to_it(
    model_server: ModelServer, tmp_path: Path
) -> None:
    # Its prompt asks for less; a researcher that writes on regardless must not grow
    # every request of the lesson that follows.
    happy = scripted()
    brief = "Brief: ScotRail fares. " + "x" * RESEARCH_BRIEF_MAX
    model_server.script = lambda request: Text(brief + "PAST THE BOUND") \
        if request.role == "researcher" else happy(request)
    await ClaudeAuthor(ClaudeOptions(research=True, model="claude-sonnet-4-5")).author(
        request(tmp_path))
    told = model_server.model_requests("author")[0].text()
    assert brief[:RESEARCH_BRIEF_MAX] in told and "PAST THE BOUND" not in told


@asyncio_test
async def test_cost_cap_per_lesson_stops_the_agent(
    model_server: ModelServer, tmp_path: Path
) -> None:
    capped = ClaudeAuthor(ClaudeOptions(max_cost_per_lesson=0.01, model="claude-sonnet-4-5"))
    with pytest.raises(AuthoringError) as failure:
        await capped.author(request(tmp_path))
    assert str(failure.value) == "Claude agent failed: Reached maximum budget ($0.01)"
    assert failure.value.metrics.cost_usd > 0
    assert len(model_server.model_requests()) < 8  # stopped before the happy path's end


# --- the loop, round by round -------------------------------------------------------------


@asyncio_test
async def test_a_failed_review_costs_two_more_requests_and_the_revision_passes(
    model_server: ModelServer, tmp_path: Path
) -> None:
    model_server.script = scripted(verdicts=(False, True))
    authored = await AUTHOR.author(request(tmp_path))
    assert [r.role for r in model_server.model_requests()] == ["author", "critic"] * 2
    revision = model_server.model_requests("author")[1].text()
    # The critic's feedback reaches the author word for word, with the lesson it judged.
    assert "<critic_feedback>" in revision and "cards lack Scottish context." in revision
    assert "<previous_lesson>" in revision
    assert authored.review is not None and authored.review["overall"] == 0.9375


@asyncio_test
@pytest.mark.parametrize("role", ["author", "critic"])
async def test_a_session_that_ends_without_its_tool_costs_a_round(
    model_server: ModelServer, tmp_path: Path, role: str
) -> None:
    happy = scripted()
    silent = iter([True])  # the first session of `role` only says something

    def script(model_request: ModelRequest) -> Reply:
        if model_request.role == role and not model_request.tool_uses() and next(silent, False):
            return Text("I would rather not.")
        return happy(model_request)

    model_server.script = script
    authored = await AUTHOR.author(request(tmp_path))
    assert authored.lesson["title"].startswith("Numeracy")
    roles = [r.role for r in model_server.model_requests()]
    assert roles == (["author", "author", "critic"] if role == "author"
                     else ["author", "critic", "critic"])


@asyncio_test
@pytest.mark.parametrize(("role", "other_tool"), [
    ("author", "mcp__batchgen__submit_review"),  # an author approving its own lesson
    ("critic", SUBMIT_LESSON),  # a critic writing the lesson it should judge
])
async def test_no_session_can_use_the_other_sessions_tool(
    model_server: ModelServer, tmp_path: Path, role: str, other_tool: str
) -> None:
    happy = scripted()

    def script(model_request: ModelRequest) -> Reply:
        if model_request.role != role:
            return happy(model_request)
        if model_request.tool_uses():
            return Text("Done.")
        arguments = (verdict_for(True) if other_tool.endswith("review")
                     else {"lesson": {"title": "x"}})
        return ToolCalls([(other_tool, arguments)])

    model_server.script = script
    with pytest.raises(AuthoringError, match="no lesson passed review"):
        author = ClaudeAuthor(ClaudeOptions(max_retries=1, model="claude-sonnet-4-5"))
        await author.author(request(tmp_path))
    results = [r for req in model_server.model_requests(role) for r in req.tool_results()]
    assert results and all(r.get("is_error") for r in results)  # no such tool there


@asyncio_test
async def test_the_critic_can_review_with_another_model(
    model_server: ModelServer, tmp_path: Path
) -> None:
    author = ClaudeAuthor(ClaudeOptions(model="claude-sonnet-4-5", critic_model="claude-haiku-4-5"))
    authored = await author.author(request(tmp_path))
    assert [(r.role, r.body["model"]) for r in model_server.model_requests()] == [
        ("author", "claude-sonnet-4-5"), ("critic", "claude-haiku-4-5")]
    assert authored.metrics.model == "claude-sonnet-4-5, claude-haiku-4-5"


# --- the run's limit on sessions at once ----------------------------------------------------


@asyncio_test
async def test_a_429_the_cli_retries_halves_the_runs_session_limit(
    model_server: ModelServer, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDE_CODE_MAX_RETRIES", "2")  # the CLI's retries, as in a real run
    happy, refused = scripted(), []

    def script(model_request: ModelRequest) -> Reply:
        if not refused:
            refused.append(model_request)
            return HttpError(429, "rate_limit_error", "Too many requests", retry_after=0.1)
        return happy(model_request)

    model_server.script = script
    caplog.set_level(logging.INFO)
    sessions = tmp_path / "sessions"
    four_workers = ClaudeAuthor(ClaudeOptions(model="claude-sonnet-4-5", processes=4))
    authored = await four_workers.author(replace(request(tmp_path), sessions_dir=sessions))
    assert authored.lesson["cards"]
    lines = [r.getMessage() for r in caplog.records]
    # What the bundled CLI says when it retries a 429: the trace reads it from here.
    assert any("[author #1] SystemMessage api_retry:" in line and '"error_status": 429' in line
               for line in lines)
    assert "[author #1] model session limit lowered from 4 to 2 (at most 4) after a 429" \
           " from the model service" in lines
    assert SessionLimiter(sessions, 4).limit == 2  # for every process of the run


@asyncio_test
async def test_a_lesson_waits_for_a_session_no_longer_than_its_timeout(
    model_server: ModelServer, tmp_path: Path
) -> None:
    sessions = tmp_path / "sessions"
    held = SessionLimiter(sessions, 1).try_acquire()  # another worker's session, meanwhile
    assert held is not None
    timed = replace(request(tmp_path), sessions_dir=sessions, timeout=0.5)
    with pytest.raises(AuthoringError, match=r"timed out after 0\.5s"):
        await AUTHOR.author(timed)
    assert model_server.model_requests() == [] and cli_children(os.getpid()) == []
    held.release(clean=True)
