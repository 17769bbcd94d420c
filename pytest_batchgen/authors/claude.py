"""The Claude author: the author–critic loop in code, one claude-agent-sdk session per step.

The control flow is Python, not a model's: an author session writes the lesson
and submits it through `submit_lesson`; a fresh critic session reviews it
through `submit_review`; on a failed review the author revises with the
critic's feedback, verbatim, and the critic reviews again, until a review
passes or --batch-max-retries rounds are spent. Each session is one CLI
process offered only its own tool, with everything it needs inline in its
first message, and it ends as soon as its tool has answered (a PostToolUse
hook stops it: no closing request). The lesson written is the latest accepted
one whose latest review passed (see review.py).

Every message of every session (tagged `author #1`, `critic #1`, …) and the
CLI's stderr go to the `pytest_batchgen.authors.claude` logger, which the
plugin routes into the lesson's log file.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pytest_batchgen.authors import (
    STOP_GRACE,
    AuthoredLesson,
    AuthoringError,
    AuthorRequest,
    AuthorUnavailable,
)
from pytest_batchgen.authors.prompting import RESEARCH_BRIEF_MAX, render
from pytest_batchgen.authors.review import (
    SERVER_KEY,
    SUBMIT_LESSON,
    SUBMIT_REVIEW,
    Submissions,
    tool_server,
)
from pytest_batchgen.authors.sessions import Change, SessionLimiter, Slot
from pytest_batchgen.authors.trace import Trace, one_line
from pytest_batchgen.contract import Lesson, outcome_ids_of
from pytest_batchgen.defaults import DEFAULT_MAX_RETRIES
from pytest_batchgen.lesson import CLAUDE_MODEL_VERSION
from pytest_batchgen.planning import DEFAULT_ESTIMATE
from pytest_batchgen.sow import SowEntry

log = logging.getLogger(__name__)

AUTH_VARIABLES = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN",
                  "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX")
# Overrides the CLI the SDK would use (its bundled one, else `claude` on PATH).
CLI_VARIABLE = "BATCHGEN_CLAUDE_CLI"
# The inputs, also written to the workspace: what the agents were given, for debugging.
WORKSPACE_FILES = ("sow_entry_input.json", "lesson_requirements.json", "sow_context.json",
                   "course_outcomes.json")
# The largest message of the CLI's the SDK reads (its default is 1 MB). A model's
# answer past it killed the SDK's reader, and the paid request was never recorded;
# an oversized lesson is the contract's to refuse, with its cost counted.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Role:
    """One kind of session, everything that sets it apart in one record."""

    #: Tags its sessions in the trace (`author #2`) and numbers them.
    name: str
    #: Its system prompt, prompts/<prompt>.md.
    prompt: str
    #: The one MCP tool it alone is offered (an author cannot review, a critic cannot
    #: submit); None for a session that only talks.
    tool: str | None = None
    #: The CLI's own tools it may use (no file tool, for anyone: see _options).
    builtin: tuple[str, ...] = ()
    #: Whether it runs on the critic's model (--batch-critic-model).
    reviews: bool = False


AUTHOR = Role("author", "lesson_author", tool=SUBMIT_LESSON)
CRITIC = Role("critic", "lesson_critic", tool=SUBMIT_REVIEW, reviews=True)
RESEARCHER = Role("researcher", "lesson_researcher", builtin=("WebSearch", "WebFetch"))
ROLES = (AUTHOR, CRITIC, RESEARCHER)


@dataclass(frozen=True)
class ClaudeOptions:
    """What the Claude author takes from a run's options."""

    #: "" lets the CLI choose.
    model: str = ""
    #: "" reviews with the author's model.
    critic_model: str = ""
    #: Author–critic rounds a lesson may take.
    max_retries: int = DEFAULT_MAX_RETRIES
    max_cost_per_lesson: float | None = None
    research: bool = False
    #: None runs the SDK's bundled CLI (else `claude` on PATH).
    cli_path: str | None = None
    #: --batch-max-sessions: sessions talking to the model at once over the whole run.
    max_sessions: int | None = None
    #: The run's processes that author lessons (xdist workers): as many sessions as can
    #: ever run at once, where the limit starts without --batch-max-sessions.
    processes: int = 1

    @property
    def session_ceiling(self) -> int:
        """The most sessions at once the run's limit ever allows."""
        return min(self.max_sessions or self.processes, self.processes)

    @property
    def reviewing_model(self) -> str:
        return self.critic_model or self.model


class ClaudeAuthor:
    """`LessonAuthor` backed by claude-agent-sdk (and its bundled Claude Code CLI)."""

    name = "claude"
    model_version = CLAUDE_MODEL_VERSION
    any_row_counts = False
    uses_workspace = True
    #: (minutes, USD) per lesson for estimates before there is any history (the spec's).
    default_estimate = DEFAULT_ESTIMATE
    #: Honours `request.timeout` itself, reporting the spend of a stopped agent.
    stops_at_timeout = True

    def __init__(self, options: ClaudeOptions | None = None) -> None:
        self.options = options or ClaudeOptions()

    def check_ready(self) -> None:
        if not has_login(os.environ):
            raise AuthorUnavailable(
                "the claude author needs ANTHROPIC_API_KEY (or another Claude Code login);"
                " set it, or use --batch-author=outline for offline drafts")
        cli_path = self.options.cli_path
        if cli_path is not None:
            if not (Path(cli_path).is_file() or shutil.which(cli_path)):
                raise AuthorUnavailable(f"Claude Code CLI not found at {cli_path}"
                                        f" ({CLI_VARIABLE})")
            return
        if find_cli() is None:
            raise AuthorUnavailable("Claude Code CLI not found: reinstall claude-agent-sdk"
                                    f" or set {CLI_VARIABLE}")

    async def aclose(self) -> None:
        """Each session's process ends with its session; nothing is held."""

    async def author(self, request: AuthorRequest) -> AuthoredLesson:
        assert request.workspace is not None  # uses_workspace: the runner made one
        write_workspace(request)
        options = self.options
        run = LessonRun(options, request)
        log.info("Claude author starting: model %s, critic %s, max %d rounds, budget %s",
                 options.model or "(CLI default)", options.reviewing_model or "(CLI default)",
                 options.max_retries,
                 f"${options.max_cost_per_lesson}" if options.max_cost_per_lesson else "none")
        try:
            lesson = await run.loop()
        except TimedOut:
            raise AuthoringError(f"timed out after {request.timeout:g}s; the author was"
                                 " stopped", run.trace.metrics(options.model)) from None
        metrics = run.trace.metrics(options.model)
        if lesson is None:
            raise AuthoringError(run.failure_reason(), metrics)
        log.info("Lesson accepted and reviewed after %d submissions, %d reviews, %d sessions",
                 run.submissions.accepted, len(run.submissions.reviews), run.trace.sessions)
        return AuthoredLesson(lesson=lesson, metrics=metrics,
                              review=run.submissions.latest_review,
                              feedback=run.submissions.feedback or None)


class TimedOut(Exception):
    """--batch-timeout passed; the running session was stopped and its spend read."""


class LessonRun:
    """One lesson's loop: its sessions, their shared tools' state, their trace."""

    def __init__(self, options: ClaudeOptions, request: AuthorRequest) -> None:
        assert request.workspace is not None
        self.options = options
        self.request = request
        self.workspace = request.workspace
        self.submissions = Submissions(max_rounds=options.max_retries,
                                       requirements=request.requirements,
                                       workspace=request.workspace)
        self.trace = Trace()
        #: The run's shared limit on sessions at once; None outside a run.
        self.limiter = (None if request.sessions_dir is None else
                        SessionLimiter(request.sessions_dir, options.session_ceiling))
        self.numbers = dict.fromkeys(ROLES, 0)
        # Where each role's running session started (see _done).
        self._starts = dict.fromkeys(self.numbers, 0)
        loop = asyncio.get_running_loop()
        #: When --batch-timeout ends the lesson, whichever session is running then.
        self.deadline = loop.time() + request.timeout if request.timeout else None

    async def loop(self) -> Lesson | None:
        """author → critic → (revision → critic)… until a review passes or the rounds run
        out; the latest accepted lesson whose latest review passed, or None."""
        brief = await self._research() if self.options.research else ""
        state = self.submissions
        while not state.exhausted:
            if not await self._session(AUTHOR, author_message(self.request, brief, state)):
                if not state.exhausted:
                    log.warning(state.spend_round("The author's session ended without an"
                                                  " accepted lesson."))
                continue
            while not state.exhausted:
                if await self._session(CRITIC, critic_message(self.request, state.latest)):
                    break
                if not state.exhausted:
                    log.warning(state.spend_round("The critic's session ended without a"
                                                  " verdict."))
            if state.result is not None:
                return state.result
        return None

    async def _research(self) -> str:
        await self._session(RESEARCHER, research_message(self.request))
        brief = self.trace.last_text
        if len(brief) > RESEARCH_BRIEF_MAX:  # its prompt asks for less; hold it to that
            log.warning("Research brief of %d characters cut to %d", len(brief),
                        RESEARCH_BRIEF_MAX)
        return brief[:RESEARCH_BRIEF_MAX]

    def _progress(self, role: Role) -> int:
        """What grows when a session of `role` has done its job (its tool's answer)."""
        return self.submissions.answered(role.tool) if role.tool else 0

    def _done(self, role: Role) -> bool:
        """The running session of `role` has done its job, or the rounds are spent."""
        return self._progress(role) > self._starts[role] or self.submissions.exhausted

    async def _session(self, role: Role, message: str) -> bool:
        """One CLI session of `role`, stopped by a hook as soon as its tool has done the
        job (an accepted lesson, a recorded verdict) or the rounds are spent; whether it
        did the job. An API error or a spent budget fails the lesson."""
        from claude_agent_sdk import ClaudeSDKClient, ClaudeSDKError

        if self.deadline is not None and asyncio.get_running_loop().time() >= self.deadline:
            raise TimedOut  # no session starts past the timeout
        self.numbers[role] += 1
        label = f"{role.name} #{self.numbers[role]}"
        self.trace.begin(label)
        self._starts[role] = self._progress(role)
        client = ClaudeSDKClient(self._options(role, label))
        slot: Slot | None = None
        ended = False
        try:
            await client.connect()
            # The slot is taken once the CLI has started (it asks the model nothing
            # before its query): the time a slot is held is the time spent with the model.
            slot = await self._slot(label)
            await client.query(message)
            try:
                async with asyncio.timeout_at(self.deadline):
                    async for received in client.receive_response():
                        self.trace.record(received)
                        self._report_spend()
                        if slot is not None and self.trace.rate_limited:
                            self._limit_changed(label, slot.rate_limited())
            except TimeoutError:
                log.warning("Timed out: the %s session is stopped", label)
                await self._stop(client)
                raise TimedOut from None
            ended = True
        except ClaudeSDKError as exc:  # the CLI or its connection to the service
            raise AuthoringError(f"Claude agent failed: {one_line(exc)}",
                                 self.trace.metrics(self.options.model), service=True) from exc
        except (RecursionError, ValueError) as exc:
            # The service answered, but the SDK could not read the answer (a JSON
            # nested past its parser): the lesson fails with what it spent so far.
            raise AuthoringError(f"Claude agent failed: its answer could not be read"
                                 f" ({type(exc).__name__})",
                                 self.trace.metrics(self.options.model)) from exc
        finally:  # one process per session, ended with it
            if slot is not None:
                self._limit_changed(label, slot.release(clean=ended and not self.trace.error))
            await client.disconnect()
        if self.trace.error:
            raise AuthoringError(f"Claude agent failed: {self.trace.error}",
                                 self.trace.metrics(self.options.model),
                                 service=self.trace.service_failed)
        return self._progress(role) > self._starts[role]

    def _report_spend(self) -> None:
        if self.request.report_spend is not None:
            self.request.report_spend(self.trace.metrics(self.options.model))

    async def _slot(self, label: str) -> Slot | None:
        """A place under the run's limit on sessions at once, waited for until the
        lesson's timeout at most; None when there is no limit (outside a run)."""
        if self.limiter is None:
            return None
        try:
            async with asyncio.timeout_at(self.deadline):
                slot = await self.limiter.acquire()
        except TimeoutError:
            log.warning("Timed out waiting for a model session (%s): at most %d at once",
                        label, self.limiter.limit)
            raise TimedOut from None
        if slot.waited:
            log.info("[%s] waited %.1f s for a model session: at most %d at once", label,
                     slot.waited, slot.admitted_under)
        return slot

    @staticmethod
    def _limit_changed(label: str, change: Change | None) -> None:
        if change is not None:
            log.log(logging.WARNING if change.lowered else logging.INFO, "[%s] %s", label,
                    change)

    async def _stop(self, client: Any) -> None:
        """Interrupt the session and read on to its result (what it spent), for at most
        STOP_GRACE seconds: a CLI that does not answer dies with its client."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(STOP_GRACE):
                await client.interrupt()
                async for received in client.receive_response():
                    self.trace.record(received)

    def _options(self, role: Role, label: str) -> Any:
        from claude_agent_sdk import ClaudeAgentOptions, HookMatcher

        options = self.options
        tool = role.tool
        # No file tool for anyone: every input is inline, and a file tool would let a
        # model (or an instruction planted in SOW text) read .mcp.json's Appwrite key.
        builtin = list(role.builtin)
        hooks: dict[Any, list[HookMatcher]] = {}
        if tool is not None:
            async def stop_when_done(data: Any, tool_use_id: str | None,
                                     context: Any) -> dict[str, Any]:
                # Its tool has answered and the session's job is done: end it here,
                # before the model is asked for a closing remark nobody reads.
                return {"continue_": False, "stopReason": "done"} if self._done(role) else {}

            matcher = [HookMatcher(matcher=tool, hooks=[cast(Any, stop_when_done)])]
            hooks = {"PostToolUse": matcher, "PostToolUseFailure": matcher}
        left = (None if options.max_cost_per_lesson is None
                else max(options.max_cost_per_lesson - self.trace.cost_usd, 0.0))
        return ClaudeAgentOptions(
            system_prompt=render(role.prompt),
            # Only its own tool: an author cannot review, a critic cannot submit.
            mcp_servers={SERVER_KEY: tool_server(self.submissions, tool)} if tool else {},
            tools=builtin,
            allowed_tools=[*builtin, *([tool] if tool else [])],
            hooks=hooks,
            setting_sources=[],
            cwd=str(self.workspace),
            model=(options.reviewing_model if role.reviews else options.model) or None,
            # --batch-max-cost-per-lesson spans the lesson's sessions: each gets what is left.
            max_budget_usd=left,
            max_buffer_size=MAX_MESSAGE_BYTES,
            env={
                # MCP tools must be offered directly, not deferred behind a search tool.
                "ENABLE_TOOL_SEARCH": "false",
                # The CLI's own scratch files and its MCP logs stay in the workspace:
                # kept with it for debugging, or removed with it.
                "TMPDIR": str(scratch_dir(self.workspace)),
                "XDG_CACHE_HOME": str(scratch_dir(self.workspace) / "cache"),
            },
            stderr=lambda line: log.info("[%s] CLI stderr: %s", label, line.rstrip()),
            cli_path=tied_cli(options.cli_path, scratch_dir(self.workspace)),
            # No transcript under the CLI's config directory (full prompts and lessons,
            # kept for a month): the lesson log has the whole trace already.
            extra_args={"no-session-persistence": None},
        )

    def failure_reason(self) -> str:
        state = self.submissions
        if state.exhausted:
            return (f"no lesson passed review within --batch-max-retries={state.max_rounds}"
                    f" ({state.accepted} accepted, {len(state.reviews)} reviewed)")
        return "the author finished without a lesson that passed review"


# --- what each session is told --------------------------------------------------------


def _block(name: str, value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"<{name}>\n{text}\n</{name}>"


def course_outcomes(request: AuthorRequest) -> list[dict[str, Any]]:
    """Every outcome of the course by id and title: the lesson's surroundings. Its own
    outcomes come in full in `standards_and_skills`; the rest would only cost tokens."""
    return [{key: outcome[key] for key in ("outcomeId", "outcomeTitle") if key in outcome}
            for outcome in request.outcomes]


def standards_and_skills(request: AuthorRequest) -> list[dict[str, Any]]:
    """Each standard or skill the entry addresses, with the course outcome it links the
    lesson to: its title, standards and teacher guidance, which the lesson must serve."""
    by_id = {str(outcome.get("outcomeId")): outcome for outcome in request.outcomes}
    linked = []
    for standard, outcome_id in request.requirements.refs.links:
        item: dict[str, Any] = {"addresses": standard.text()}
        outcome = by_id.get(outcome_id)
        if outcome is not None:
            item["outcomeId"] = outcome_id
            item |= {key: outcome[key] for key in
                     ("outcomeTitle", "assessmentStandards", "teacherGuidance")
                     if outcome.get(key)}
        linked.append(item)
    return linked


def _heading(verb: str, request: AuthorRequest) -> str:
    view = request.entry.view
    return (f"{verb} lesson {view.order} of course {request.course_id}: \"{view.label}\""
            f" ({view.lesson_type}).")


def author_message(request: AuthorRequest, brief: str, state: Submissions) -> str:
    """The author's first message: everything it needs, inline (no Read round trip)."""
    parts = [
        _heading("Write", request),
        _block("sow_entry", request.entry.view.document()),
        _block("lesson_requirements", request.requirements.document()),
        _block("standards_and_skills", standards_and_skills(request)),
        _block("course_context", course_context(request)),
        _block("course_outcomes", course_outcomes(request)),
    ]
    if brief:
        parts.append(_block("research_brief", brief))
    if state.latest is not None and state.reviews:
        parts += [
            "Your previous lesson failed review. Revise it as the critic's feedback says"
            " and submit the whole lesson again.",
            _block("previous_lesson", state.latest),
            _block("critic_feedback", state.feedback),
        ]
    return "\n\n".join(parts)


def critic_message(request: AuthorRequest, lesson: Lesson | None) -> str:
    return "\n\n".join([
        _heading("Review", request),
        _block("sow_entry", request.entry.view.document()),
        _block("standards_and_skills", standards_and_skills(request)),
        _block("lesson", lesson),
    ])


def research_message(request: AuthorRequest) -> str:
    return "\n\n".join([_heading("Research for", request),
                         _block("sow_entry", request.entry.view.document())])


def course_context(request: AuthorRequest) -> dict[str, Any]:
    """Where the lesson sits in the course (the workspace's sow_context.json)."""
    before, after = request.neighbours()
    return {
        "courseId": request.course_id,
        "sow": {"doc_id": request.sow.doc_id, "version": request.sow.version,
                "status": request.sow.status},
        "metadata": request.sow.metadata,
        "accessibility_notes": request.sow.accessibility_notes,
        "total_entries": len(request.sow.entries),
        "previous_lesson": _neighbour(before),
        "next_lesson": _neighbour(after),
        "prerequisites": list(request.entry.view.prerequisites),
        "course_outcome_ids": sorted(outcome_ids_of(request.outcomes)),
    }


def write_workspace(request: AuthorRequest) -> None:
    """The sessions' inputs as files: what the agents were given, kept
    with the workspace for debugging."""
    assert request.workspace is not None
    outcomes = {"courseId": request.course_id, "outcomes": request.outcomes}
    documents = (request.entry.view.document(), request.requirements.document(),
                 course_context(request), outcomes)
    for name, data in zip(WORKSPACE_FILES, documents, strict=True):
        path = request.workspace / name
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        log.info("Workspace file ready: %s (%d bytes)", path, path.stat().st_size)


def _neighbour(entry: SowEntry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    view = entry.view
    return {"order": view.order, "label": view.label, "lesson_type": view.lesson_type,
            "addresses": [standard.name for standard in view.standards]}


# --- the CLI -------------------------------------------------------------------------


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
    # Located, not imported: importing the SDK costs the controller ~1.5 s that it
    # would spend before any xdist worker starts, and it runs no lesson itself.
    spec = importlib.util.find_spec("claude_agent_sdk")
    origin = spec.origin if spec is not None else None
    bundled = Path(origin).parent / "_bundled" / "claude" if origin else None
    return str(bundled) if bundled is not None and bundled.is_file() else shutil.which("claude")


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
