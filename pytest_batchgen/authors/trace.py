"""Every message of a lesson's agent sessions into the lesson log, and what they cost.

One Trace follows a lesson through all its sessions (author #1, critic #1,
author #2…): each message is logged with its session's name, and the metrics
are the sum over the sessions' result messages (a stopped session that never
sent one counts the tokens of the answers it received).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pytest_batchgen.authors import AuthorMetrics

log = logging.getLogger("pytest_batchgen.authors.claude")

#: HTTP status of a request refused for the key's rate limits.
RATE_LIMITED = 429
USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens",
              "cache_creation_input_tokens")
MODEL_USAGE_KEYS = ("inputTokens", "outputTokens", "cacheReadInputTokens",
                    "cacheCreationInputTokens")


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:500]


class Trace:
    """Logs each message of the stream and keeps what the metrics need."""

    def __init__(self) -> None:
        self.count = 0
        self.session = ""
        self.sessions = 0
        self.results: list[Any] = []
        self.models: list[str] = []
        #: Why the current session failed (an API error, a budget), or "".
        self.error = ""
        #: Whether that was the model service failing (not the lesson or its budget).
        self.service_failed = False
        #: The current session's last text: a researcher's brief.
        self.last_text = ""
        #: Whether the current session met a 429, retried by the CLI or not.
        self.rate_limited = False
        # Tokens of answers seen in sessions that ended without a result message.
        self._tokens_unaccounted = 0
        self._tokens_seen = 0
        self._result: Any = None

    def begin(self, session: str) -> None:
        """A new session (`author #2`): its messages are tagged with this name."""
        self._end_session()
        self.session, self.error, self.last_text = session, "", ""
        self.service_failed = self.rate_limited = False
        self.sessions += 1
        log.info("--- %s", session)

    def _end_session(self) -> None:
        if self._result is None:  # no result message: count the answers it saw
            self._tokens_unaccounted += self._tokens_seen
        self._tokens_seen, self._result = 0, None

    def record(self, message: Any) -> None:
        from claude_agent_sdk import (
            AssistantMessage,
            ResultMessage,
            SystemMessage,
            TextBlock,
            UserMessage,
        )

        self.count += 1
        head = f"#{self.count} [{self.session}] {type(message).__name__}"
        if isinstance(message, SystemMessage):
            if message.subtype == "init" and message.data.get("model"):
                self.models.append(str(message.data["model"]))
            # The CLI says so each time it retries a request the service refused.
            if (message.subtype == "api_retry"
                    and message.data.get("error_status") == RATE_LIMITED):
                self.rate_limited = True
            log.info("%s %s: %s", head, message.subtype, _json(message.data))
        elif isinstance(message, AssistantMessage):
            self._tokens_seen += sum(int((message.usage or {}).get(k, 0) or 0)
                                     for k in USAGE_KEYS)
            if message.error:
                self.rate_limited |= message.error == "rate_limit"
                self.error = f"API error ({message.error})"
                self.service_failed = True
                log.error("%s error: %s", head, message.error)
            for block in message.content:
                if isinstance(block, TextBlock) and block.text.strip():
                    self.last_text = block.text
                log.info("%s %s", head, _block(block))
        elif isinstance(message, UserMessage):
            blocks: list[Any] = (message.content if isinstance(message.content, list)
                                 else [message.content])
            for block in blocks:
                log.info("%s %s", head, _block(block))
        elif isinstance(message, ResultMessage):
            self.results.append(message)
            self._result = message
            if message.is_error:
                status = message.api_error_status
                self.rate_limited |= status == RATE_LIMITED
                detail = one_line(Exception(message.result or "; ".join(message.errors or [])))
                self.error = f"HTTP {status}: {detail}" if status else detail
                # The CLI's own words for a request that got no usable answer.
                self.service_failed |= bool(status) or detail.startswith("API Error")
            log.info("%s %s: turns %s, cost $%s, duration %s ms, usage %s, models %s", head,
                     message.subtype, message.num_turns, message.total_cost_usd,
                     message.duration_ms, _json(message.usage), _json(message.model_usage))
        else:
            log.debug("%s %r", head, message)

    @property
    def cost_usd(self) -> float:
        return sum(float(r.total_cost_usd or 0.0) for r in self.results)

    def metrics(self, model: str) -> AuthorMetrics:
        """The lesson's spend over every session so far (the running session's too)."""
        tokens = self._tokens_unaccounted + (self._tokens_seen if self._result is None else 0)
        for result in self.results:
            counted = sum(int(usage.get(key, 0) or 0) for usage in
                          (result.model_usage or {}).values() for key in MODEL_USAGE_KEYS)
            tokens += counted or sum(int((result.usage or {}).get(k, 0) or 0)
                                     for k in USAGE_KEYS)
        models = list(dict.fromkeys(
            name for result in self.results for name in (result.model_usage or {})))
        return AuthorMetrics(
            cost_usd=self.cost_usd, tokens=tokens,
            turns=sum(int(r.num_turns or 0) for r in self.results),
            model=", ".join(models or list(dict.fromkeys(self.models)) or [model]))


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
