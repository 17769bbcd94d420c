"""A pytest plugin for the plugin's own tests: a scripted author and store faults.

Loaded into pytester runs with `-p fake_plugin` (the file is copied into the
pytester directory). It swaps the author through pytest-batchgen's own hook
(`pytest_batchgen_make_author`), exactly as a user's conftest could. The
author drafts real lessons with the outline author but writes the Claude
author's `model_version`, so the skip rules under test are the production ones.

Behaviour is chosen with environment variables (orders are comma-separated):
- BATCHGEN_FAKE_FAIL: orders whose authoring raises AuthoringError
- BATCHGEN_FAKE_CRASH: orders whose author raises an unexpected RuntimeError
- BATCHGEN_FAKE_SYSTEM_EXIT, BATCHGEN_FAKE_CANCELLED: orders whose author raises
  SystemExit or asyncio.CancelledError (not Exceptions: a careless conftest's author)
- BATCHGEN_FAKE_INVALID: orders whose lesson breaks the schema
- BATCHGEN_FAKE_INTERRUPT: order at which the process receives SIGINT (Ctrl-C)
- BATCHGEN_FAKE_INTERRUPT_PARENT: order at which the parent (the xdist controller)
  receives SIGINT, as a Ctrl-C in the terminal would reach it
- BATCHGEN_FAKE_SLOW: orders whose author hangs (for --batch-timeout)
- BATCHGEN_FAKE_DELAY: seconds every authoring takes, like a model answering (benchmarks)
- BATCHGEN_FAKE_RESET_LOGGING: orders that call logging.basicConfig(force=True)
- BATCHGEN_FAKE_WRITE_FAIL: orders whose store write raises StoreError
- BATCHGEN_FAKE_WRITE_CRASH: orders whose store write raises an error of no store's
  kind (UnicodeEncodeError), as a store a conftest plugs in might
- BATCHGEN_FAKE_DRAFTING: set, the author is a drafting author (the outline's marker
  and rules) instead of one that writes the Claude author's marker
- BATCHGEN_FAKE_WAIT_FILE: a path every authoring waits for (a run held after its
  plan, while another run writes)
- BATCHGEN_FAKE_FILL_DISK: `ORDER:DIR`: that lesson's authoring fills DIR's filesystem
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

import pytest

from pytest_batchgen.authors import AuthoredLesson, AuthoringError, AuthorMetrics, AuthorRequest
from pytest_batchgen.authors.outline import OUTLINE_MODEL_VERSION, OutlineAuthor
from pytest_batchgen.lesson import CLAUDE_MODEL_VERSION, LessonRow
from pytest_batchgen.planning import DEFAULT_ESTIMATE
from pytest_batchgen.settings import Settings
from pytest_batchgen.store import (
    ExistingLesson,
    LessonStore,
    StoreError,
    WriteResult,
)
from pytest_batchgen.store.default import open_default_store

# A module other than the author, to prove lesson logs catch every logger.
helper_log = logging.getLogger("fake_plugin.helper")


SCRIPTED_REVIEW = {"sow_fidelity": 0.95, "basic_quality": 0.9, "overall": 0.9375}


def _orders(name: str) -> set[int]:
    return {int(part) for part in os.environ.get(name, "").split(",") if part.strip()}


class ScriptedAuthor(OutlineAuthor):
    name = "scripted"
    model_version = CLAUDE_MODEL_VERSION
    any_row_counts = False
    default_estimate = DEFAULT_ESTIMATE  # it stands in for the claude author

    def __init__(self) -> None:
        if os.environ.get("BATCHGEN_FAKE_DRAFTING"):
            self.model_version, self.any_row_counts = OUTLINE_MODEL_VERSION, True

    async def author(self, request: AuthorRequest) -> AuthoredLesson:
        order = request.entry.order
        gate = os.environ.get("BATCHGEN_FAKE_WAIT_FILE")
        while gate and not os.path.exists(gate):
            await asyncio.sleep(0.05)
        if order in _orders("BATCHGEN_FAKE_RESET_LOGGING"):
            logging.basicConfig(force=True, level=logging.WARNING)
        helper_log.debug("DEBUG-MARK helper working on order %d", order)
        helper_log.info("INFO-MARK helper working on order %d", order)
        if order in _orders("BATCHGEN_FAKE_INTERRUPT"):
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(30)
        if order in _orders("BATCHGEN_FAKE_INTERRUPT_PARENT"):
            os.kill(os.getppid(), signal.SIGINT)
            await asyncio.sleep(30)
        fill = os.environ.get("BATCHGEN_FAKE_FILL_DISK", "").partition(":")
        if fill[0] == str(order):
            fill_disk(fill[2])
        if order in _orders("BATCHGEN_FAKE_SLOW"):
            await asyncio.sleep(300)
        await asyncio.sleep(float(os.environ.get("BATCHGEN_FAKE_DELAY", "0")))
        if order in _orders("BATCHGEN_FAKE_FAIL"):
            raise AuthoringError(f"scripted failure for order {order}",
                                 AuthorMetrics(cost_usd=0.05, tokens=1234))
        if order in _orders("BATCHGEN_FAKE_CRASH"):
            raise RuntimeError(f"scripted crash for order {order}")
        if order in _orders("BATCHGEN_FAKE_SYSTEM_EXIT"):
            raise SystemExit(f"scripted exit for order {order}")
        if order in _orders("BATCHGEN_FAKE_CANCELLED"):
            raise asyncio.CancelledError
        authored = await super().author(request)
        metrics = AuthorMetrics(cost_usd=0.1 * order, tokens=1000 * order, turns=3,
                                model="scripted-model")
        lesson = authored.lesson
        if order in _orders("BATCHGEN_FAKE_INVALID"):
            # A careless author: nothing checked what it returns, but the gate.
            lesson["cards"][0]["cfu"]["stem"] = "short"
            lesson["cards"][0]["misconceptions"] = []
        # As a reviewing author would report its critic's scores.
        return AuthoredLesson(lesson=lesson, metrics=metrics, review=dict(SCRIPTED_REVIEW))


def fill_disk(directory: str | os.PathLike[str]) -> None:
    """Write until the filesystem under `directory` has no space left."""
    with open(os.path.join(directory, "filler"), "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass


class FaultyStore:
    """Delegates to the real store; fails the writes of chosen orders."""

    def __init__(self, inner: LessonStore) -> None:
        self.inner = inner
        self.description = inner.description

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write_lesson(self, row: LessonRow, planned: ExistingLesson | None = None, *,
                     drafting: bool = False) -> WriteResult:
        if row.sow_order in _orders("BATCHGEN_FAKE_WRITE_FAIL"):
            raise StoreError(f"scripted write failure for order {row.sow_order}")
        if row.sow_order in _orders("BATCHGEN_FAKE_WRITE_CRASH"):
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return self.inner.write_lesson(row, planned, drafting=drafting)


def pytest_batchgen_make_author(config: pytest.Config, settings: Settings) -> ScriptedAuthor:
    return ScriptedAuthor()


def pytest_batchgen_make_store(config: pytest.Config, settings: Settings) -> LessonStore | None:
    if not (os.environ.get("BATCHGEN_FAKE_WRITE_FAIL")
            or os.environ.get("BATCHGEN_FAKE_WRITE_CRASH")):
        return None
    return FaultyStore(open_default_store(settings.store_url))
