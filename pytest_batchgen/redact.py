"""Known secret values, kept out of every log a batch writes: a second line of defence.

The first line is that nothing reads a secret into a message: the Appwrite store
scrubs its own key from its errors, and no agent is offered a file tool that could
read `.mcp.json`. Should a secret reach a log record all the same (a model quoting
its environment, a key pasted into SOW text), the `REDACTOR` filter replaces it
before any handler writes the record: it sits on the Claude author's logger (the
agents' whole trace, so pytest's own log capture and JUnit get it scrubbed too)
and on the lesson and batch log files.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TypeVar

# Where keys and tokens live in the environment of a batch.
SECRET_VARIABLES = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN",
                    "APPWRITE_API_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# Shorter values would redact ordinary words ("true", a port number) from every log.
MIN_SECRET = 8
REDACTED = "[redacted]"
# The logger every agent's trace goes to (see authors/claude.py).
TRACE_LOGGER = "pytest_batchgen.authors.claude"


def config_values(mcp_config: Path) -> set[str]:
    """Every value an MCP config hands its servers (each server's `env` values, and the
    VALUE of every `NAME=VALUE` argument): the platform keeps its keys there."""
    try:
        document = json.loads(mcp_config.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return set()
    servers = document.get("mcpServers") if isinstance(document, dict) else None
    values: set[str] = set()
    for server in servers.values() if isinstance(servers, dict) else []:
        if not isinstance(server, dict):
            continue
        env = server.get("env")
        values.update(v for v in (env.values() if isinstance(env, dict) else [])
                      if isinstance(v, str))
        args = server.get("args")
        values.update(str(arg).partition("=")[2] for arg in
                      (args if isinstance(args, list) else []) if "=" in str(arg))
    return values


def known_secrets(mcp_config: Path | None,
                  environ: Mapping[str, str] | None = None) -> set[str]:
    environ = os.environ if environ is None else environ
    values = {environ[name] for name in SECRET_VARIABLES if environ.get(name)}
    if mcp_config is not None:
        values |= config_values(mcp_config)
    return {value for value in values if len(value.strip()) >= MIN_SECRET}


class Redactor(logging.Filter):
    """Replaces every known secret in a record's message and traceback."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: tuple[str, ...] = ()

    def remember(self, secrets: Iterable[str]) -> None:
        # Longest first: a secret that contains another is replaced whole.
        self.secrets = tuple(sorted({*self.secrets, *secrets}, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        scrubbed = self.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True


#: The one redactor of this process: the secrets of the run, on every log it writes.
REDACTOR = Redactor()


def install(mcp_config: Path | None) -> None:
    """Remember this run's secrets and scrub the agents' trace at its source."""
    REDACTOR.remember(known_secrets(mcp_config))
    trace = logging.getLogger(TRACE_LOGGER)
    if REDACTOR not in trace.filters:
        trace.addFilter(REDACTOR)


Handler = TypeVar("Handler", bound=logging.Handler)


def scrubbed(handler: Handler) -> Handler:
    """`handler`, writing no known secret."""
    handler.addFilter(REDACTOR)
    return handler
