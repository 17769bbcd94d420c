"""Model requests per lesson and the fixed prompt each lesson pays (Claude author).

Run from the repository root:  python benchmarks/bench_claude_requests.py

Drives the real ClaudeAuthor (SDK + bundled CLI) against the scripted model
server on the happy path (the author submits, the critic passes) and with one
failed review (the author revises, the critic passes). Token sizes are
estimated as characters / 4 of the JSON the CLI sends (the scripted server
cannot tokenize); they compare prompts with each other, not with a bill.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from pytest_batchgen.authors.claude import ClaudeAuthor, ClaudeOptions  # noqa: E402
from tests.support.model_server import (  # noqa: E402
    ModelRequest,
    ModelServer,
    OfflineEnv,
    scripted,
)
from tests.support.processes import cli_children  # noqa: E402
from tests.test_claude_author import request, sow  # noqa: E402


def tokens(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False)) // 4


def fixed_prompt(model_request: ModelRequest) -> tuple[int, int]:
    """(system, tools) size of one request: what every call of that agent repeats."""
    return tokens(model_request.body.get("system")), tokens(model_request.body.get("tools"))


async def author_lessons(count: int, workdir: Path) -> list[float]:
    costs = []
    author = ClaudeAuthor(ClaudeOptions(model="claude-sonnet-4-5"))
    for order in [entry.order for entry in sow().entries][:count]:
        lesson_dir = workdir / f"lesson_{order}"
        lesson_dir.mkdir()
        authored = await author.author(request(lesson_dir, order))
        costs.append(authored.metrics.cost_usd)
        assert cli_children(os.getpid()) == [], "a CLI process outlived its lesson"
    return costs


async def default_tools_request(workdir: Path) -> None:
    """The tools a request carries when the CLI offers its built-ins (no `tools=`)."""
    from claude_agent_sdk import ClaudeAgentOptions, query

    options = ClaudeAgentOptions(setting_sources=[], cwd=str(workdir), max_turns=1,
                                 model="claude-sonnet-4-5")
    with contextlib.suppress(Exception):  # only the recorded request matters
        async for _ in query(prompt="hello", options=options):
            pass


def play(script: Any, lessons: int, tmp: Path) -> tuple[list[ModelRequest], int, list[float]]:
    """(model requests, side requests, costs) of authoring `lessons` with `script`."""
    with ModelServer(script) as server:
        os.environ.update(OfflineEnv(server.url, tmp / "home").values)
        workdir = tmp / f"run_{id(script)}"
        workdir.mkdir()
        costs = asyncio.run(author_lessons(lessons, workdir))
        calls = server.model_requests()
        return calls, len(server.requests) - len(calls), costs


def main() -> None:
    lessons = 3
    with tempfile.TemporaryDirectory() as tmp:
        calls, side, costs = play(scripted(), lessons, Path(tmp))
        # The script's first critic session fails, every later one passes: one lesson.
        revised, _, _ = play(scripted(verdicts=(False, True)), 1, Path(tmp))
        with ModelServer() as server:
            os.environ.update(OfflineEnv(server.url, Path(tmp) / "home").values)
            asyncio.run(default_tools_request(Path(tmp)))
            builtin = server.model_requests()[-1]
    roles = Counter(r.role for r in calls)
    print(f"Happy path, {lessons} lessons (the author submits once, the critic passes once)")
    print(f"  model requests per lesson: {len(calls) / lessons:.1f}"
          f" ({', '.join(f'{role} {n / lessons:.1f}' for role, n in sorted(roles.items()))})"
          "; before the loop in code: 9.0 (orchestrator 3, author 3, critic 3)")
    print(f"  side requests (token counting etc.): {side / lessons:.1f} per lesson")
    for role in ("author", "critic"):
        first = next(r for r in calls if r.role == role)
        system, tool_defs = fixed_prompt(first)
        print(f"  fixed prompt, {role}: ~{system + tool_defs} tokens"
              f" (system ~{system}, tools ~{tool_defs}: {', '.join(first.tools)})")
    print(f"  for comparison, the CLI's default tool set: ~{tokens(builtin.body.get('tools'))}"
          f" tokens ({len(builtin.tools)} tools) in every request")
    total_input = sum(tokens(r.body) for r in calls) / lessons
    print(f"  input per lesson, all requests: ~{total_input:.0f} tokens"
          " (before: ~35,000 with the same entries, outcomes and prompts);"
          f" scripted cost ${sum(costs) / lessons:.4f} per lesson")
    print(f"  CLI processes per lesson: {len(calls) / lessons:.1f} (one per session),"
          " none left after a lesson")
    print(f"One failed review, then a pass: {len(revised)} requests for the lesson"
          f" (+{len(revised) - len(calls) / lessons:.0f}: {', '.join(r.role for r in revised)})")


if __name__ == "__main__":
    main()
