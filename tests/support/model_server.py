"""A scripted Anthropic Messages server: plays the model for the real Claude CLI.

The claude-agent-sdk's bundled CLI is pointed at this server (see
`offline_cli_env`), so the real SDK, CLI, MCP tools and subagents run with no
key and no network. Every request is recorded; a *script* chooses each reply
from the request, and speaks in `Text`, `ToolCalls`, `HttpError` and `Drop`.

Who is asking is read from the tools the request offers: the author's session
has `submit_lesson`, the critic's `submit_review`, the researcher's WebSearch
(see pytest_batchgen/authors/claude.py). Each session's inputs arrive inline in
its first message, as `<sow_entry>`, `<course_outcomes>`, `<lesson>`… blocks.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from pytest_batchgen.authors.outline import draft_lesson
from pytest_batchgen.authors.review import FIDELITY_PARTS, QUALITY_PARTS
from pytest_batchgen.entries import read_entry
from pytest_batchgen.requirements import requirements_for

MODEL = "claude-sonnet-4-5"
SUBMIT_LESSON = "mcp__batchgen__submit_lesson"
SUBMIT_REVIEW = "mcp__batchgen__submit_review"


# --- what a script answers ------------------------------------------------------


@dataclass
class Text:
    text: str


@dataclass
class RawInput:
    """A tool call's input as JSON text the server sends as it is: for inputs Python's
    own JSON could not build (nested past its recursion limit)."""

    text: str


@dataclass
class ToolCalls:
    calls: list[tuple[str, dict[str, Any] | RawInput]]
    text: str = ""


@dataclass
class HttpError:
    status: int
    kind: str = "api_error"
    message: str = "scripted failure"
    #: Seconds for a `retry-after` header (a 429's), which the CLI honours when it retries.
    retry_after: float | None = None


@dataclass
class Drop:
    """Start streaming, then close the connection mid-message."""


@dataclass
class Hang:
    """Answer nothing for `seconds` (a model that takes too long), then say so."""

    seconds: float


Reply = Text | ToolCalls | HttpError | Drop | Hang


# --- what a script sees -----------------------------------------------------------


@dataclass
class ModelRequest:
    body: dict[str, Any]
    path: str
    headers: dict[str, str]

    @property
    def tools(self) -> list[str]:
        return [tool.get("name", "") for tool in self.body.get("tools", [])]

    @property
    def role(self) -> str:
        """author | critic | researcher | side (a CLI housekeeping call)."""
        tools = self.tools
        if SUBMIT_LESSON in tools:
            return "author"
        if SUBMIT_REVIEW in tools:
            return "critic"
        if "WebSearch" in tools:
            return "researcher"
        return "side"

    @property
    def system(self) -> str:
        system = self.body.get("system", "")
        if isinstance(system, list):
            return "\n".join(block.get("text", "") for block in system)
        return str(system)

    def text(self) -> str:
        """Everything in the messages, as text (for assertions)."""
        return json.dumps(self.body.get("messages", []), ensure_ascii=False)

    def blocks(self, role: str, kind: str) -> list[dict[str, Any]]:
        """Content blocks of one kind sent by one role so far, oldest first."""
        found = []
        for message in self.body.get("messages", []):
            content = message.get("content")
            if message.get("role") == role and isinstance(content, list):
                found += [b for b in content if b.get("type") == kind]
        return found

    def tool_results(self) -> list[dict[str, Any]]:
        return self.blocks("user", "tool_result")

    def tool_uses(self) -> list[dict[str, Any]]:
        return self.blocks("assistant", "tool_use")

    def last_result(self) -> dict[str, Any] | None:
        last = self.body.get("messages", [])[-1:]
        if not last or not isinstance(last[0].get("content"), list):
            return None
        results = [b for b in last[0]["content"] if b.get("type") == "tool_result"]
        return results[-1] if results else None

    def calls_of(self, name: str) -> list[dict[str, Any]]:
        return [use for use in self.tool_uses() if use.get("name") == name]


Script = Callable[[ModelRequest], Reply]


# --- the server -----------------------------------------------------------------------


class ModelServer:
    """Serve `POST /v1/messages` from a script on 127.0.0.1; record every request."""

    def __init__(self, script: Script | None = None, *, delay: float = 0.0,
                 capacity: int | None = None, retry_after: float = 1.0) -> None:
        self.script: Script = script or happy_path()
        self.delay = delay
        #: Model requests answered at once, as a key's rate limit allows: beyond it a
        #: request is refused with a 429 saying to retry after `retry_after` seconds.
        self.capacity = capacity
        self.retry_after = retry_after
        #: How many requests were refused for the capacity.
        self.refused = 0
        #: When the first model request was admitted and the last one answered
        #: (time.monotonic): the run's time with the model, start-up left out.
        self.first_admitted: float | None = None
        self.last_answered: float | None = None
        self._in_flight = 0
        self.requests: list[ModelRequest] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> ModelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def model_requests(self, role: str | None = None) -> list[ModelRequest]:
        """The /v1/messages calls (not token counting), optionally of one role."""
        calls = [r for r in self.requests if r.path.split("?")[0] == "/v1/messages"]
        return [r for r in calls if role is None or r.role == role]

    def _admit(self) -> bool:
        """Whether a request may be answered now (one more in flight if so)."""
        with self._lock:
            if self.capacity is not None and self._in_flight >= self.capacity:
                self.refused += 1
                return False
            self._in_flight += 1
            if self.first_admitted is None:
                self.first_admitted = time.monotonic()
            return True

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}_{next(self._ids):04d}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the recorded requests are the log."""

            def do_GET(self) -> None:
                self._json(404, {"type": "error", "error": {"type": "not_found_error",
                                                            "message": self.path}})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except RecursionError:  # a conversation holding a RawInput: nothing to script
                    self._json(400, {"type": "error", "error": {
                        "type": "invalid_request_error", "message": "nested too deeply"}})
                    return
                request = ModelRequest(body, self.path, dict(self.headers))
                with server._lock:
                    server.requests.append(request)
                route = self.path.split("?")[0]
                if route == "/v1/messages/count_tokens":
                    self._json(200, {"input_tokens": len(json.dumps(body)) // 4})
                    return
                if route != "/v1/messages":
                    self._json(404, {"type": "error", "error": {"type": "not_found_error",
                                                                "message": route}})
                    return
                if not server._admit():
                    self._json(429, {"type": "error", "error": {
                        "type": "rate_limit_error", "message": "Too many requests at once"}},
                        {"retry-after": f"{server.retry_after:g}"})
                    return
                try:
                    self._serve(request, body)
                finally:
                    with server._lock:
                        server._in_flight -= 1
                        server.last_answered = time.monotonic()

            def _serve(self, request: ModelRequest, body: dict[str, Any]) -> None:
                reply = Text("ok") if request.role == "side" else server.script(request)
                if server.delay:
                    time.sleep(server.delay)
                if isinstance(reply, Hang):
                    time.sleep(reply.seconds)
                    reply = Text("Sorry, that took too long.")
                if isinstance(reply, HttpError):
                    headers = ({} if reply.retry_after is None
                               else {"retry-after": f"{reply.retry_after:g}"})
                    self._json(reply.status, {"type": "error", "error": {
                        "type": reply.kind, "message": reply.message}}, headers)
                    return
                self._answer(body, reply)

            def _json(self, status: int, data: dict[str, Any],
                      headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

            def _answer(self, body: dict[str, Any], reply: Reply) -> None:
                blocks = _blocks(reply, server._next_id)
                usage = {"input_tokens": len(json.dumps(body)) // 4,
                         "output_tokens": max(1, len(json.dumps(
                             blocks, default=lambda raw: raw.text)) // 4)}
                stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
                message = {"id": server._next_id("msg"), "type": "message", "role": "assistant",
                           "model": body.get("model", MODEL), "content": blocks,
                           "stop_reason": stop, "stop_sequence": None, "usage": usage}
                if not body.get("stream"):
                    if isinstance(reply, Drop):  # the CLI's non-streaming fallback
                        self.close_connection = True
                        return
                    self._json(200, message)
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("connection", "close")
                self.end_headers()
                for event in _events(message):
                    self.wfile.write(event)
                    self.wfile.flush()
                    if isinstance(reply, Drop) and b"content_block_delta" in event:
                        self.close_connection = True
                        return  # the connection closes with the message half sent

        return Handler


def _blocks(reply: Reply, next_id: Callable[[str], str]) -> list[dict[str, Any]]:
    if isinstance(reply, Drop):
        return [{"type": "text", "text": "This answer is cut off in the middle of a"}]
    if isinstance(reply, Text):
        return [{"type": "text", "text": reply.text}]
    assert isinstance(reply, ToolCalls)
    blocks: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
    blocks += [{"type": "tool_use", "id": next_id("toolu"), "name": name, "input": data}
               for name, data in reply.calls]
    return blocks


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _events(message: dict[str, Any]) -> list[bytes]:
    """A message as the Messages API streams it."""
    head = {**message, "content": [], "stop_reason": None,
            "usage": {**message["usage"], "output_tokens": 1}}
    events = [_sse("message_start", {"type": "message_start", "message": head})]
    for index, block in enumerate(message["content"]):
        start: dict[str, Any]
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            start = {**block, "input": {}}
            given = block["input"]
            delta = {"type": "input_json_delta", "partial_json": given.text
                     if isinstance(given, RawInput) else json.dumps(given)}
        events += [
            _sse("content_block_start", {"type": "content_block_start", "index": index,
                                         "content_block": start}),
            _sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                         "delta": delta}),
            _sse("content_block_stop", {"type": "content_block_stop", "index": index}),
        ]
    events += [
        _sse("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": message["stop_reason"],
                                         "stop_sequence": None},
                               "usage": {"output_tokens": message["usage"]["output_tokens"]}}),
        _sse("message_stop", {"type": "message_stop"}),
    ]
    return events


# --- ready-made scripts ---------------------------------------------------------------


def inline(request: ModelRequest, name: str) -> Any:
    """The `<name>` block of the session's first message, parsed (None when absent)."""
    messages = request.body.get("messages", [])
    content = messages[0].get("content") if messages else ""
    text = content if isinstance(content, str) else "".join(
        block.get("text", "") for block in content or [] if isinstance(block, dict))
    match = re.search(rf"<{name}>\n(.*?)\n</{name}>", text, re.DOTALL)
    if match is None:
        return None
    try:
        return json.loads(match.group(1))
    except ValueError:
        return match.group(1)


def lesson_for(request: ModelRequest) -> dict[str, Any]:
    """The lesson a diligent author writes: the outline draft of the entry it was
    given, with the outcome refs resolved against the course outcomes it was given."""
    entry, outcomes = inline(request, "sow_entry"), inline(request, "course_outcomes")
    assert entry is not None and outcomes is not None, "the author's inputs must be inline"
    view = read_entry(entry)
    return draft_lesson(view, requirements_for(view, outcomes))


def slipped(lesson: dict[str, Any]) -> dict[str, Any]:
    """The same lesson with every fact of its entry mistyped, as a model might: the
    outcome refs, lesson type, calculator policy and engagement tags."""
    return {**lesson, "outcomeRefs": ["SKILL_MADE_UP", "O9"], "lesson_type": "revision",
            "policy": {"calculator_allowed": not lesson["policy"]["calculator_allowed"]},
            "engagement_tags": ["a tag the entry never named"]}


def broken(lesson: dict[str, Any]) -> dict[str, Any]:
    """The same lesson breaking five rules only the platform's frontend and admin editor
    declare: a short explainer, no misconception, a numeric answer given as text, a key
    the card schema does not allow, and an outcome ref session start cannot resolve."""
    cards = [dict(card) for card in lesson["cards"]]
    cards[0] = {**cards[0], "explainer": "Percentages are parts of a hundred, so 50% is half.",
                "misconceptions": []}
    cards[-1] = {**cards[-1], "notes": "teacher only",  # the second card, or the only one
                 "cfu": {"type": "numeric", "id": f"q{len(cards):03d}",
                         "stem": "What is 25% of £16?", "expected": "4", "tolerance": 0.01,
                         "rubric": {"total_points": 1, "criteria": [
                             {"description": "Finds a quarter of £16", "points": 1}]}}}
    return {**lesson, "outcomeRefs": ["1", *lesson["outcomeRefs"][1:]], "cards": cards}


def author(request: ModelRequest, *, first_broken: bool = False, slips: bool = False) -> Reply:
    """Submit the lesson; a rejected one is fixed and submitted again in the same session."""
    last = request.last_result()
    submissions = request.calls_of(SUBMIT_LESSON)
    if submissions and last is not None and not last.get("is_error"):
        return Text("Lesson submitted and accepted.")  # only if the session went on
    lesson = lesson_for(request)
    if slips:
        lesson = slipped(lesson)
    if first_broken and not submissions and inline(request, "previous_lesson") is None:
        lesson = broken(lesson)
    return ToolCalls([(SUBMIT_LESSON, {"lesson": lesson})], text="Submitting the lesson.")


def verdict_for(passes: bool, title: str = "the lesson") -> dict[str, Any]:
    """A well-formed verdict whose sums add up: every fidelity sub-score 0.95 and every
    quality sub-score 0.9 (a pass, overall 0.9375) or 0.6 (a fail, quality too low)."""
    quality = 0.9 if passes else 0.6
    return {
        "pass": passes,
        "gates": {"schema": True, "factual": True},
        "factual_errors": [],
        "scores": {**dict.fromkeys(FIDELITY_PARTS, 0.95), **dict.fromkeys(QUALITY_PARTS, quality),
                   "sow_fidelity": 0.95, "basic_quality": quality,
                   "overall": round(0.75 * 0.95 + 0.25 * quality, 4)},
        "feedback": {"sow_fidelity": "follows the card plan.",
                     "basic_quality": "clear." if passes else "cards lack Scottish context.",
                     "revision": f"{title}: " + ("no change needed." if passes
                                                 else "name a real Scottish place in each card.")},
    }


def critic(request: ModelRequest, *, verdict: bool = True) -> Reply:
    """Judges the lesson it was given, and names it in its verdict."""
    if request.calls_of(SUBMIT_REVIEW):
        return Text("review passed" if verdict else "review failed: needs work")
    lesson = inline(request, "lesson")
    assert lesson is not None, "the critic's lesson must be inline"
    return ToolCalls([(SUBMIT_REVIEW, verdict_for(
        verdict, f"'{lesson['title']}' ({len(lesson['cards'])} cards)"))])


def researcher(request: ModelRequest) -> Reply:
    return Text("Brief: SQA assesses percentages of amounts without a calculator; learners"
                " divide by 100 instead of 10 for 10%; context: ScotRail fares.")


def scripted(*, first_broken: bool = False, verdict: bool = True,
             verdicts: tuple[bool, ...] = (), fail: Reply | None = None,
             fail_orders: tuple[int, ...] = (), slips: bool = False) -> Script:
    """The standard play. `verdicts` gives the critic sessions' verdicts in turn (the last
    repeats; default: always `verdict`); `fail` replaces the first author session's first
    answer (for the lessons in `fail_orders` only, when given); `slips`: the author
    mistypes every fact of the entry."""
    critic_sessions = itertools.count()
    lock = threading.Lock()

    def failing(request: ModelRequest) -> bool:
        if fail is None or request.tool_uses() or inline(request, "previous_lesson"):
            return False
        entry = inline(request, "sow_entry") or {}
        return not fail_orders or entry.get("order") in fail_orders

    def script(request: ModelRequest) -> Reply:
        role = request.role
        if role == "author":
            if failing(request):
                assert fail is not None
                return fail
            return author(request, first_broken=first_broken, slips=slips)
        if role == "critic":
            if request.calls_of(SUBMIT_REVIEW):
                return critic(request, verdict=verdict)
            with lock:
                session = next(critic_sessions)
            said = verdicts[min(session, len(verdicts) - 1)] if verdicts else verdict
            return critic(request, verdict=said)
        if role == "researcher":
            return researcher(request)
        return Text("nothing to do")

    return script


def unreadable_revision() -> Script:
    """A first round answered and paid for (its review fails); then the revision's
    submission is nested past what Python's JSON reader takes (a RecursionError)."""
    revise = scripted(verdicts=(False, True))

    def script(request: ModelRequest) -> Reply:
        if request.role == "author" and inline(request, "previous_lesson") is not None \
                and not request.tool_uses():
            return ToolCalls([(SUBMIT_LESSON, RawInput(
                '{"lesson": ' + "[" * 5000 + "]" * 5000 + "}"))])
        return revise(request)

    return script


def happy_path() -> Script:
    return scripted()


@dataclass
class OfflineEnv:
    """Environment for running the bundled CLI against a ModelServer."""

    API_KEY: ClassVar[str] = "sk-test-offline"

    base_url: str
    home: Path
    values: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.values = {
            "ANTHROPIC_BASE_URL": self.base_url,
            "ANTHROPIC_API_KEY": self.API_KEY,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CONFIG_DIR": str(self.home / "claude"),
            "XDG_CACHE_HOME": str(self.home / "cache"),
            "CLAUDE_CODE_MAX_RETRIES": "0",
            "API_TIMEOUT_MS": "30000",
            "CLAUDE_BYTE_STREAM_IDLE_TIMEOUT_MS": "10000",
            "CLAUDE_CODE_DISABLE_BACKGROUND_TASKS": "1",
            "ENABLE_TOOL_SEARCH": "false",
        }
