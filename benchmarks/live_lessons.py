"""Two lessons written by a real model: the figures a team needs before a batch of 800.

Run from the repository root, with a key:
    ANTHROPIC_API_KEY=... python benchmarks/live_lessons.py [MODEL]

Authors lesson 1 of the bundled demo course (unit-based, National 4) and lesson 1 of
the skills-based National 5 fixture with the Claude author, as a batch would, and
prints for each: cost, tokens, turns, the critic's scores and sub-scores, and whether
the lesson passes the whole contract and its entry. Without a key (or another Claude
Code login) it says so and exits 0: it never runs in the test suite.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_batchgen.authors import AuthoringError, AuthorRequest  # noqa: E402
from pytest_batchgen.authors.claude import ClaudeAuthor, ClaudeOptions, has_login  # noqa: E402
from pytest_batchgen.requirements import requirements_for  # noqa: E402
from pytest_batchgen.sow import SowRecord, record_from_row  # noqa: E402

SAMPLES = (
    (ROOT / "pytest_batchgen/demo/course_demo1.json", None),
    (ROOT / "tests/fixtures/sow_skills_unified.json",
     ROOT / "tests/fixtures/outcomes_skills_n5.json"),
)


def sample(sow_file: Path, outcomes_file: Path | None) -> tuple[SowRecord, list[dict[str, Any]]]:
    document = json.loads(sow_file.read_text(encoding="utf-8"))
    record = record_from_row({"$id": document.get("$id", "sow_live"),
                              "courseId": document["courseId"],
                              "version": str(document.get("version", "1")),
                              "status": "published", "entries": document["entries"]})
    outcomes = (json.loads(outcomes_file.read_text(encoding="utf-8")) if outcomes_file
                else document["outcomes"])
    return record, outcomes


async def author_one(author: ClaudeAuthor, record: SowRecord, outcomes: list[dict[str, Any]],
                     workspace: Path) -> None:
    entry = record.entries[0]
    requirements = requirements_for(entry.view, outcomes)
    request = AuthorRequest(record.course_id, entry, record, outcomes, requirements, workspace)
    started = time.monotonic()
    print(f"{record.course_id} lesson {entry.order}: {entry.label}")
    try:
        authored = await author.author(request)
    except AuthoringError as exc:
        metrics = exc.metrics
        print(f"  FAILED: {exc}")
        print(f"  cost ${metrics.cost_usd:.4f}, {metrics.tokens} tokens, {metrics.turns} turns")
        return
    metrics, review = authored.metrics, authored.review or {}
    lesson, _ = requirements.apply(authored.lesson)
    violations = requirements.check(lesson)
    print(f"  {time.monotonic() - started:.0f}s, cost ${metrics.cost_usd:.4f},"
          f" {metrics.tokens} tokens, {metrics.turns} turns, model {metrics.model}")
    print("  critic: " + ", ".join(f"{name} {score:.2f}" for name, score in review.items()))
    print(f"  contract and entry: {violations or 'pass'}")
    print(f"  {len(lesson['cards'])} cards: "
          + "; ".join(card["title"] for card in lesson["cards"]))


def main() -> int:
    if not has_login(os.environ):
        print("skipped: no ANTHROPIC_API_KEY (or other Claude Code login) is set; set one to"
              " author two lessons with a real model")
        return 0
    model = sys.argv[1] if len(sys.argv) > 1 else ""
    author = ClaudeAuthor(ClaudeOptions(model=model, max_retries=3))
    with tempfile.TemporaryDirectory() as tmp:
        for index, (sow_file, outcomes_file) in enumerate(SAMPLES):
            workspace = Path(tmp) / f"lesson_{index}"
            workspace.mkdir()
            record, outcomes = sample(sow_file, outcomes_file)
            asyncio.run(author_one(author, record, outcomes, workspace))
    return 0


if __name__ == "__main__":
    sys.exit(main())
