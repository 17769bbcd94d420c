"""The Claude author: one claude-agent-sdk agent per lesson.

An orchestrator delegates to an author and a critic subagent (and, when
asked, a researcher). Both submit through two in-process MCP tools, so the
lesson never travels as free text: `submit_lesson` validates with the same
models as the item's schema gate and answers with the precise errors;
`submit_review` records the critic's verdict. The lesson returned is the
latest accepted lesson whose latest review passed — whichever agent called
the tools, in whatever order.

Every message of the stream (subagents included) and the CLI's stderr go to
the `pytest_batchgen.authors.claude` logger, which the plugin routes into the
lesson's log file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_batchgen.authors import (
    AuthoredLesson,
    AuthoringError,
    AuthorMetrics,
    AuthorRequest,
    AuthorUnavailable,
)
from pytest_batchgen.contract import Lesson
from pytest_batchgen.lesson import CLAUDE_MODEL_VERSION
from pytest_batchgen.requirements import EntryRequirements
from pytest_batchgen.settings import Settings

log = logging.getLogger(__name__)

SERVER_KEY = "batchgen"
SUBMIT_LESSON = f"mcp__{SERVER_KEY}__submit_lesson"
SUBMIT_REVIEW = f"mcp__{SERVER_KEY}__submit_review"
AUTH_VARIABLES = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN",
                  "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX")
# Overrides the CLI the SDK would use (its bundled one, else `claude` on PATH).
CLI_VARIABLE = "BATCHGEN_CLAUDE_CLI"
WORKSPACE_FILES = ("sow_entry_input.json", "lesson_requirements.json", "sow_context.json",
                   "course_outcomes.json")
# Each subagent starts with a fresh context: the critic reads the lesson it
# reviews, and the author the lesson it revises, from this workspace file.
SUBMISSION_FILE = "lesson_submission.json"
# Seconds a timed-out agent gets to report its spend once interrupted.
STOP_GRACE = 10.0


def prompt(name: str) -> str:
    return resources.files("pytest_batchgen.authors.prompts").joinpath(f"{name}.md").read_text(
        encoding="utf-8")


# --- the tool contract --------------------------------------------------------------


# The platform critic's pass rule: two hard gates (the contract, which the tool
# enforces, and factual correctness), then weighted scores over thresholds.
FIDELITY_WEIGHT, QUALITY_WEIGHT = 0.75, 0.25
FIDELITY_MIN, QUALITY_MIN, OVERALL_MIN = 0.90, 0.80, 0.85
SCORE_NAMES = ("sow_fidelity", "basic_quality")


def judge_verdict(arguments: dict[str, Any]) -> tuple[dict[str, float], str | None]:
    """The verdict's scores (with `overall`), and why it is refused, if it is.

    A verdict whose `pass` contradicts its own scores and factual errors is
    refused: the pass rule is the platform critic's, not the model's mood.
    """
    verdict, scores, errors = (arguments.get("pass"), arguments.get("scores"),
                               arguments.get("factual_errors", []))
    usage = ('Expected {"pass": true|false, "feedback": "...", "scores": {"sow_fidelity": 0-1,'
             ' "basic_quality": 0-1}, "factual_errors": ["..."]}.')
    if not isinstance(verdict, bool) or not isinstance(scores, dict) or not (
            isinstance(errors, list) and all(isinstance(e, str) for e in errors)):
        return {}, usage
    values = {name: scores.get(name) for name in SCORE_NAMES}
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1
               for v in values.values()):
        return {}, f"Both scores must be numbers from 0 to 1. {usage}"
    fidelity, quality = float(values["sow_fidelity"] or 0), float(values["basic_quality"] or 0)
    overall = round(FIDELITY_WEIGHT * fidelity + QUALITY_WEIGHT * quality, 4)
    judged = {"sow_fidelity": fidelity, "basic_quality": quality, "overall": overall}
    passes = (not errors and fidelity >= FIDELITY_MIN and quality >= QUALITY_MIN
              and overall >= OVERALL_MIN)
    if verdict and not passes:
        return judged, (
            "Verdict refused: a pass needs no factual error, sow_fidelity >= 0.90,"
            f" basic_quality >= 0.80 and overall (0.75*fidelity + 0.25*quality) >= 0.85; these"
            f" scores give overall {overall:.3f} with {len(errors)} factual error(s).")
    if not verdict and passes:
        return judged, (
            "Verdict refused: these scores pass every threshold and no factual error is"
            " listed; to fail the lesson, list the factual errors or score what falls short.")
    return judged, None


@dataclass
class Submissions:
    """One lesson's submissions and reviews, and its retry budget.

    A round is a rejected submission, a refused verdict or a failed review;
    more than `max_rounds` of them ends the lesson without a result.
    """

    max_rounds: int
    #: The contract plus what this entry asks: the same check as the item's gate.
    requirements: EntryRequirements
    #: Where the latest accepted lesson is saved for the other agents to read.
    workspace: Path | None = None
    latest: Lesson | None = None
    latest_review: dict[str, float] | None = None
    latest_passed: bool = False
    rounds: int = 0
    accepted: int = 0
    reviews: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exhausted(self) -> bool:
        return self.rounds > self.max_rounds

    @property
    def result(self) -> Lesson | None:
        return self.latest if self.latest_passed else None

    def _spend_round(self, reason: str) -> str:
        self.rounds += 1
        if self.exhausted:
            return (f"{reason}\nThe retry budget of {self.max_rounds} rounds is exhausted:"
                    " stop now and do not call any tool again.")
        return f"{reason}\n(round {self.rounds} of {self.max_rounds})"

    def submit_lesson(self, arguments: dict[str, Any]) -> tuple[bool, str]:
        lesson = arguments.get("lesson")
        if not isinstance(lesson, dict):
            return False, self._spend_round('Expected {"lesson": {...}} with the lesson object.')
        violations = self.requirements.check(lesson)
        if violations:
            log.warning("submit_lesson rejected: %d violations", len(violations))
            return False, self._spend_round(
                f"The lesson was NOT accepted: {len(violations)} violation(s) of the lesson"
                " contract. Fix all of them and submit the whole lesson again:\n- "
                + "\n- ".join(map(str, violations)))
        self.latest, self.latest_passed, self.latest_review = lesson, False, None
        self.accepted += 1
        log.info("submit_lesson accepted (#%d): %s, %d cards", self.accepted, lesson["title"],
                 len(lesson["cards"]))
        if self.workspace is None:
            return True, "accepted: the lesson is valid and awaits review."
        saved = self.workspace / SUBMISSION_FILE
        saved.write_text(json.dumps(lesson, indent=2, ensure_ascii=False), encoding="utf-8")
        return True, (f"accepted: the lesson is valid, saved as {SUBMISSION_FILE} in the"
                      " workspace, and awaits review.")

    def submit_review(self, arguments: dict[str, Any]) -> tuple[bool, str]:
        if self.latest is None:
            return False, "There is no accepted lesson to review yet."
        scores, refused = judge_verdict(arguments)
        if refused:
            log.warning("submit_review refused: %s", refused)
            return False, self._spend_round(refused)
        verdict = bool(arguments["pass"])
        self.reviews.append(arguments)
        self.latest_passed, self.latest_review = verdict, scores
        log.info("submit_review: %s; scores %s; factual errors %s; feedback: %s",
                 "PASS" if verdict else "FAIL", json.dumps(scores),
                 json.dumps(arguments.get("factual_errors", [])), arguments.get("feedback", ""))
        if verdict:
            return True, "review recorded: the lesson passed and will be written."
        return True, self._spend_round("review recorded: the lesson failed; the author must"
                                       " revise it using the feedback.")


def tool_server(submissions: Submissions) -> Any:
    """The in-process MCP server `batchgen` bound to one lesson's submissions."""
    from claude_agent_sdk import create_sdk_mcp_server, tool

    def answer(ok: bool, text: str) -> dict[str, Any]:
        return {"content": [{"type": "text", "text": text}], "is_error": not ok}

    # Loose input schemas on purpose: the SDK would reject a malformed lesson with
    # its first JSON-schema error; our handler answers with every problem at once.
    @tool("submit_lesson", "Submit the complete lesson for validation. Answers 'accepted' or"
          " the exact problems to fix.", {"type": "object",
                                          "properties": {"lesson": {"type": "object"}},
                                          "required": ["lesson"]})
    async def submit_lesson(arguments: dict[str, Any]) -> dict[str, Any]:
        return answer(*submissions.submit_lesson(arguments))

    @tool("submit_review", "Record the critic's verdict on the latest accepted lesson:"
          " pass, feedback, scores {sow_fidelity, basic_quality} from 0 to 1, and the"
          " factual errors found (none: an empty list).",
          {"type": "object", "properties": {"pass": {"type": "boolean"},
                                            "feedback": {"type": "string"},
                                            "scores": {"type": "object"},
                                            "factual_errors": {"type": "array",
                                                               "items": {"type": "string"}}},
           "required": ["pass", "feedback", "scores"]})
    async def submit_review(arguments: dict[str, Any]) -> dict[str, Any]:
        return answer(*submissions.submit_review(arguments))

    return create_sdk_mcp_server(SERVER_KEY, tools=[submit_lesson, submit_review])


# --- the author ---------------------------------------------------------------------


class ClaudeAuthor:
    """`LessonAuthor` backed by claude-agent-sdk (and its bundled Claude Code CLI)."""

    name = "claude"
    model_version = CLAUDE_MODEL_VERSION
    any_row_counts = False
    uses_workspace = True
    #: (minutes, USD) per lesson for estimates before there is any history (the spec's).
    default_estimate = (7.0, 0.17)
    #: Honours `request.timeout` itself, reporting the spend of a stopped agent.
    stops_at_timeout = True

    def __init__(self, *, model: str = "", max_retries: int = 10,
                 max_cost_per_lesson: float | None = None, research: bool = False,
                 cli_path: str | None = None) -> None:
        self.model = model
        self.max_retries = max_retries
        self.max_cost_per_lesson = max_cost_per_lesson
        self.research = research
        self.cli_path = cli_path

    @classmethod
    def from_settings(cls, settings: Settings) -> ClaudeAuthor:
        return cls(model=settings.model, max_retries=settings.max_retries,
                   max_cost_per_lesson=settings.max_cost_per_lesson,
                   research=settings.research, cli_path=os.environ.get(CLI_VARIABLE) or None)

    def check_ready(self) -> None:
        if not has_login(os.environ):
            raise AuthorUnavailable(
                "the claude author needs ANTHROPIC_API_KEY (or another Claude Code login);"
                " set it, or use --batch-author=outline for offline drafts")
        if self.cli_path is not None:
            if not (Path(self.cli_path).is_file() or shutil.which(self.cli_path)):
                raise AuthorUnavailable(f"Claude Code CLI not found at {self.cli_path}"
                                        f" ({CLI_VARIABLE})")
            return
        if find_cli() is None:
            raise AuthorUnavailable("Claude Code CLI not found: reinstall claude-agent-sdk"
                                    f" or set {CLI_VARIABLE}")

    async def aclose(self) -> None:
        """Each lesson's agent process ends with its lesson; nothing is held."""

    def _options(self, request: AuthorRequest, submissions: Submissions,
                 trace: Trace) -> Any:
        from claude_agent_sdk import AgentDefinition, ClaudeAgentOptions

        assert request.workspace is not None  # uses_workspace: the runner made one

        subagent_tools = ["Read", SUBMIT_LESSON]
        agents = {
            "lesson_author": AgentDefinition(
                description="Writes the lesson from the SOW entry and submits it.",
                prompt=prompt("lesson_author"), tools=subagent_tools),
            "lesson_critic": AgentDefinition(
                description="Reviews the latest accepted lesson and records a verdict.",
                prompt=prompt("lesson_critic"), tools=["Read", SUBMIT_REVIEW]),
        }
        tools = ["Read", "Agent"]
        if self.research:
            agents["lesson_researcher"] = AgentDefinition(
                description="Researches SQA expectations and Scottish contexts on the web.",
                prompt=prompt("lesson_researcher"), tools=["WebSearch", "WebFetch"])
            tools += ["WebSearch", "WebFetch"]
        research_line = ("- `lesson_researcher` finds SQA expectations and Scottish contexts;"
                         " ask it before the author when the topic needs it.\n"
                         if self.research else "")
        return ClaudeAgentOptions(
            system_prompt=prompt("orchestrator").replace("{research_line}", research_line),
            agents=agents,
            mcp_servers={SERVER_KEY: tool_server(submissions)},
            # Only what the agents need: safer, and fewer tokens in every request.
            tools=tools,
            allowed_tools=[*tools, SUBMIT_LESSON, SUBMIT_REVIEW],
            setting_sources=[],
            cwd=str(request.workspace),
            model=self.model or None,
            max_budget_usd=self.max_cost_per_lesson,
            env={
                # MCP tools must be offered directly, not deferred behind a search tool.
                "ENABLE_TOOL_SEARCH": "false",
                # The CLI's own scratch files (task outputs, probes) stay in the
                # workspace: kept with it for debugging, or removed with it (NF6).
                "TMPDIR": str(scratch_dir(request.workspace)),
            },
            stderr=trace.stderr,
            cli_path=tied_cli(self.cli_path, scratch_dir(request.workspace)),
        )

    async def author(self, request: AuthorRequest) -> AuthoredLesson:
        from claude_agent_sdk import ClaudeSDKClient, ClaudeSDKError

        assert request.workspace is not None
        write_workspace(request)
        submissions = Submissions(max_rounds=self.max_retries,
                                  requirements=request.requirements,
                                  workspace=request.workspace)
        trace = Trace()
        log.info("Claude agent starting: model %s, max %d rounds, budget %s",
                 self.model or "(CLI default)", self.max_retries,
                 f"${self.max_cost_per_lesson}" if self.max_cost_per_lesson else "none")
        try:
            async with ClaudeSDKClient(self._options(request, submissions, trace)) as client:
                await client.query(task_prompt(request))
                try:
                    async with asyncio.timeout(request.timeout):
                        async for message in client.receive_response():
                            trace.record(message)
                            if submissions.exhausted and not trace.interrupted:
                                log.warning("Retry budget exhausted after %d rounds; stopping"
                                            " the agent", submissions.rounds)
                                trace.interrupted = True
                                await client.interrupt()
                except TimeoutError:
                    # Stop the agent ourselves, so the CLI reports what it spent (the
                    # budget counts it) and is idle when the client closes.
                    log.warning("Timed out after %gs: interrupting the agent", request.timeout)
                    await stop_and_drain(client, trace)
                    raise AuthoringError(f"timed out after {request.timeout:g}s; the author"
                                         " was stopped", trace.metrics(self.model)) from None
        except ClaudeSDKError as exc:
            raise AuthoringError(f"Claude agent failed: {one_line(exc)}",
                                 trace.metrics(self.model)) from exc
        metrics = trace.metrics(self.model)
        lesson = submissions.result
        if lesson is not None:
            log.info("Lesson accepted and reviewed after %d submissions, %d reviews",
                     submissions.accepted, len(submissions.reviews))
            return AuthoredLesson(lesson=lesson, metrics=metrics,
                                  review=submissions.latest_review)
        raise AuthoringError(failure_reason(submissions, trace), metrics)


async def stop_and_drain(client: Any, trace: Trace) -> None:
    """Interrupt the agent and read on to its result message (what it spent), for at
    most STOP_GRACE seconds: a CLI that does not answer is killed when the client closes."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(STOP_GRACE):
            trace.interrupted = True
            await client.interrupt()
            async for message in client.receive_response():
                trace.record(message)


def has_login(environ: Mapping[str, str]) -> bool:
    """Whether the CLI has credentials: a key or token in the environment, or the
    login `claude /login` saves in the CLI's config directory. On macOS that login
    lives in the Keychain, out of sight: an existing config directory must do."""
    if any(environ.get(name) for name in AUTH_VARIABLES):
        return True
    config_dir = Path(environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")
    if (config_dir / ".credentials.json").is_file():
        return True
    return sys.platform == "darwin" and config_dir.is_dir()


def find_cli() -> str | None:
    """The CLI the SDK would run: its bundled one, else `claude` on PATH."""
    import claude_agent_sdk

    bundled = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    return str(bundled) if bundled.is_file() else shutil.which("claude")


LAUNCHER = """#!{python} -S
# Runs the Claude Code CLI so that it dies with the batch process that started it,
# even when that process is killed with SIGKILL and can clean nothing up.
import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
if os.getppid() != {parent}:
    sys.exit("the batch process is gone")  # it died before the line above
os.execv({cli!r}, [{cli!r}, *sys.argv[1:]])
"""


def tied_cli(cli_path: str | None, directory: Path) -> str | None:
    """A launcher for the CLI that ties its life to this process (Linux: a
    parent-death signal); elsewhere, or when no CLI is found, the CLI itself."""
    cli = cli_path if cli_path and Path(cli_path).is_file() else (
        shutil.which(cli_path) if cli_path else find_cli())
    if not sys.platform.startswith("linux") or cli is None or " " in sys.executable:
        return cli_path
    launcher = directory / "claude"
    launcher.write_text(LAUNCHER.format(python=sys.executable, parent=os.getpid(),
                                        cli=str(Path(cli).absolute())), encoding="utf-8")
    launcher.chmod(0o700)
    return str(launcher)


def scratch_dir(workspace: Path) -> Path:
    path = workspace / "cli_tmp"
    path.mkdir(exist_ok=True)
    return path


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:500]


def failure_reason(submissions: Submissions, trace: Trace) -> str:
    if submissions.exhausted:
        return (f"no lesson passed review within --batch-max-retries={submissions.max_rounds}"
                f" ({submissions.accepted} accepted, {len(submissions.reviews)} reviewed)")
    if trace.error:
        return f"Claude agent failed: {trace.error}"
    if submissions.latest is None:
        return "the agent finished without an accepted lesson"
    return "the agent finished without a passing review of its latest lesson"


# --- the trace: every message into the lesson log ----------------------------------------


class Trace:
    """Logs each message of the stream and keeps what the metrics need."""

    def __init__(self) -> None:
        self.count = 0
        self.result: Any = None
        self.model = ""
        self.error = ""
        self.interrupted = False
        # Tokens of the answers seen, for a stopped agent that never sent its result.
        self.tokens_seen = 0

    def stderr(self, line: str) -> None:
        log.info("CLI stderr: %s", line.rstrip())

    def record(self, message: Any) -> None:
        from claude_agent_sdk import (
            AssistantMessage,
            ResultMessage,
            SystemMessage,
            UserMessage,
        )

        self.count += 1
        head = f"#{self.count} {type(message).__name__}"
        if isinstance(message, AssistantMessage | UserMessage) and message.parent_tool_use_id:
            head += f" [subagent of {message.parent_tool_use_id}]"
        if isinstance(message, SystemMessage):
            if message.subtype == "init":
                self.model = str(message.data.get("model", ""))
            log.info("%s %s: %s", head, message.subtype, _json(message.data))
        elif isinstance(message, AssistantMessage):
            self.tokens_seen += _usage_tokens(message.usage or {})
            if message.error:
                self.error = f"API error ({message.error})"
                log.error("%s error: %s", head, message.error)
            for block in message.content:
                log.info("%s %s", head, _block(block))
        elif isinstance(message, UserMessage):
            blocks: list[Any] = (message.content if isinstance(message.content, list)
                                 else [message.content])
            for block in blocks:
                log.info("%s %s", head, _block(block))
        elif isinstance(message, ResultMessage):
            self.result = message
            if message.is_error:
                status = message.api_error_status
                detail = one_line(Exception(message.result or "; ".join(message.errors or [])))
                self.error = f"HTTP {status}: {detail}" if status else detail
            log.info("%s %s: turns %s, cost $%s, duration %s ms, usage %s, models %s", head,
                     message.subtype, message.num_turns, message.total_cost_usd,
                     message.duration_ms, _json(message.usage), _json(message.model_usage))
        else:
            log.debug("%s %r", head, message)

    def metrics(self, model: str) -> AuthorMetrics:
        result = self.result
        if result is None:
            return AuthorMetrics(tokens=self.tokens_seen, model=model or self.model)
        tokens = 0
        for usage in (result.model_usage or {}).values():
            tokens += sum(int(usage.get(key, 0) or 0) for key in (
                "inputTokens", "outputTokens", "cacheReadInputTokens",
                "cacheCreationInputTokens"))
        if not tokens and result.usage:
            tokens = _usage_tokens(result.usage)
        models = list(result.model_usage or {}) or [model or self.model]
        return AuthorMetrics(cost_usd=float(result.total_cost_usd or 0.0), tokens=tokens,
                             turns=int(result.num_turns or 0), model=", ".join(models),
                             detail={"duration_api_ms": result.duration_api_ms})


def _usage_tokens(usage: dict[str, Any]) -> int:
    return sum(int(usage.get(key, 0) or 0) for key in (
        "input_tokens", "output_tokens", "cache_read_input_tokens",
        "cache_creation_input_tokens"))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _block(block: Any) -> str:
    from claude_agent_sdk import TextBlock, ThinkingBlock, ToolResultBlock, ToolUseBlock

    if isinstance(block, str):
        return f"text: {block}"
    if isinstance(block, TextBlock):
        return f"text: {block.text}"
    if isinstance(block, ThinkingBlock):
        return f"thinking: {block.thinking}"
    if isinstance(block, ToolUseBlock):
        return f"tool call {block.name} ({block.id}): {_json(block.input)}"
    if isinstance(block, ToolResultBlock):
        flag = " ERROR" if block.is_error else ""
        return f"tool result{flag} for {block.tool_use_id}: {_json(block.content)}"
    return f"{type(block).__name__}: {block!r}"


# --- the lesson's inputs -----------------------------------------------------------------


def write_workspace(request: AuthorRequest) -> None:
    """The agent's working files (spec §2.4): the entry, what its lesson must carry,
    the course around it, the outcomes."""
    assert request.workspace is not None
    before, after = request.neighbours()
    entry = request.entry.data
    context = {
        "courseId": request.course_id,
        "sow": {"doc_id": request.sow.doc_id, "version": request.sow.version,
                "status": request.sow.status},
        "metadata": request.sow.metadata,
        "accessibility_notes": request.sow.accessibility_notes,
        "total_entries": len(request.sow.entries),
        "previous_lesson": _neighbour(before),
        "next_lesson": _neighbour(after),
        "prerequisites": (entry.get("coherence") or {}).get("prerequisites", []),
    }
    outcomes = {"courseId": request.course_id, "outcomes": request.outcomes}
    documents = (entry, request.requirements.document(), context, outcomes)
    for name, data in zip(WORKSPACE_FILES, documents, strict=True):
        path = request.workspace / name
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        log.info("Workspace file ready: %s (%d bytes)", path, path.stat().st_size)


def _neighbour(entry: Any) -> dict[str, Any] | None:
    if entry is None:
        return None
    data = entry.data
    return {key: data.get(key) for key in ("order", "label", "lesson_type", "outcomeRefs")}


def task_prompt(request: AuthorRequest) -> str:
    """The orchestrator's task: the entry and the outcomes, in full."""
    entry = request.entry
    return (
        f"Author lesson {entry.order} of course {request.course_id}: \"{entry.label}\""
        f" ({entry.lesson_type}).\n\n"
        f"The workspace holds {', '.join(WORKSPACE_FILES)}. The SOW entry:\n"
        f"<sow_entry>\n{json.dumps(entry.data, ensure_ascii=False)}\n</sow_entry>\n"
        f"What the lesson must carry from it (lesson_requirements.json):\n"
        f"<lesson_requirements>\n{json.dumps(request.requirements.document())}\n"
        f"</lesson_requirements>\n"
        f"The course outcomes:\n<course_outcomes>\n"
        f"{json.dumps(request.outcomes, ensure_ascii=False)}\n</course_outcomes>"
    )
