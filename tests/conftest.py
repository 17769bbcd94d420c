"""Fixtures for driving real pytest runs of the plugin against a SQLite store."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_batchgen.__main__ import sow_row_from_document
from pytest_batchgen.layout import BatchLayout
from pytest_batchgen.lesson import CLAUDE_MODEL_VERSION
from pytest_batchgen.store import LessonDiagram
from pytest_batchgen.store.sqlite import SqliteStore
from tests.support.appwrite_server import AppwriteTestServer
from tests.support.lessons import OUTCOMES
from tests.support.rows import lesson_row

FIXTURES = Path(__file__).parent / "fixtures"
SUPPORT = Path(__file__).parent / "support"
COURSE = "course_c84874"
# The legacy-format SOW of fixtures/sow_legacy_row.json, and the course on Appwrite.
COURSE_LEGACY = "course_c84774"


@dataclass
class BatchRun:
    result: pytest.RunResult
    log_dir: Path
    # Batch dirs of earlier runs in the same project, not this run's.
    earlier: frozenset[Path] = frozenset()

    @property
    def ret(self) -> int:
        return int(self.result.ret)

    def batch_dirs(self) -> list[Path]:
        found = self.log_dir.glob("batch_*") if self.log_dir.exists() else []
        return sorted(set(found) - self.earlier)

    @property
    def batch_dir(self) -> Path:
        dirs = self.batch_dirs()
        assert len(dirs) == 1, f"expected one batch dir, found {dirs}"
        return dirs[0]

    @property
    def layout(self) -> BatchLayout:
        return BatchLayout(self.batch_dir)

    def summary(self, directory: Path | None = None) -> dict[str, Any]:
        layout = BatchLayout(directory) if directory else self.layout
        return json.loads(layout.summary.read_text())

    def plan(self) -> dict[str, Any]:
        return json.loads(self.layout.plan.read_text())

    def output(self) -> str:
        return self.result.stdout.str() + "\n" + self.result.stderr.str()


class BatchProject:
    """A pytester directory with a SQLite store and the scripted author plugin."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.store_path = pytester.path / "store.sqlite3"
        self.log_dir = pytester.path / "logs" / "batch_runs"
        pytester.makepyfile(fake_plugin=(SUPPORT / "fake_plugin.py").read_text())
        pytester.syspathinsert()

    def store(self) -> SqliteStore:
        return SqliteStore(self.store_path)

    def load(self, document: dict[str, Any] | str, course: str | None = COURSE,
             status: str | None = "published", outcomes: list[dict[str, Any]] = OUTCOMES
             ) -> None:
        """A SOW and the course's outcomes (pass [] for a course without any)."""
        if isinstance(document, str):
            document = json.loads((FIXTURES / document).read_text())
        store = self.store()
        row = sow_row_from_document(document, course, status)
        store.save_sow(row, outcomes or None)
        store.close()

    def add_lessons(self, course: str, orders: list[int],
                    model_version: str = CLAUDE_MODEL_VERSION) -> list[str]:
        store = self.store()
        ids = [store.write_lesson(lesson_row(o, course=course, model_version=model_version)).doc_id
               for o in orders]
        store.close()
        return ids

    def publish(self, doc_id: str) -> None:
        """Mark a stored lesson published, as a teacher on the platform would."""
        with sqlite3.connect(self.store_path) as db:
            db.execute('UPDATE lesson_templates SET status = ? WHERE "$id" = ?',
                       ("published", doc_id))

    def add_diagrams(self, doc_id: str, *cards: str) -> list[str]:
        """Diagram rows for a stored lesson's cards, as the platform's diagram step adds them."""
        diagrams = [LessonDiagram(f"dgm_{doc_id[:8]}_{card}", doc_id, card, f"img_{card}")
                    for card in cards]
        store = self.store()
        store.add_diagrams(diagrams)
        store.close()
        return [d.doc_id for d in diagrams]

    def diagrams(self) -> list[str]:
        with sqlite3.connect(self.store_path) as db:
            return sorted(r[0] for r in db.execute('SELECT "$id" FROM lesson_diagrams'))

    def rows(self, course: str = COURSE) -> list[dict[str, Any]]:
        with sqlite3.connect(self.store_path) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(
                "SELECT * FROM lesson_templates WHERE courseId = ? ORDER BY sow_order", (course,))]

    def args(self, *args: str, author: str | None = "scripted") -> list[str]:
        """The store and log options, and the author: `scripted` (the fake plugin's),
        a --batch-author name, or None for none at all."""
        base = [f"--batch-store=sqlite:///{self.store_path}", f"--batch-log-dir={self.log_dir}"]
        if author == "scripted":
            base.append("-pfake_plugin")
        elif author is not None:
            base.append(f"--batch-author={author}")
        return [*base, *args]

    def start(self, *args: str, author: str | None = "scripted",
              env: dict[str, str] | None = None,
              ignore_sigint: bool = False) -> subprocess.Popen[bytes]:
        """A batch in a process of its own, left running (for signals, concurrent runs);
        `ignore_sigint` starts it as `cmd &` in a script or `nohup` would."""
        environ = {k: v for k, v in os.environ.items() if k != "CI"} | (env or {})
        return subprocess.Popen([sys.executable, "-m", "pytest", *self.args(*args, author=author)],
                                cwd=self.pytester.path, env=environ,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                preexec_fn=ignore_sigint_in_child if ignore_sigint else None)

    def run(self, *args: str, author: str | None = "scripted",
            subprocess: bool = False) -> BatchRun:
        full = self.args(*args, author=author)
        earlier = frozenset(self.log_dir.glob("batch_*")) if self.log_dir.exists() else frozenset()
        if subprocess:
            result = self.pytester.runpytest_subprocess(*full)
        else:
            result = self.pytester.runpytest_inprocess(*full)
        return BatchRun(result, self.log_dir, earlier)


def ignore_sigint_in_child() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# A test that hangs is a failure with its stack, not a CI run killed at its limit.
# Set here, not in pyproject.toml: the README's demo runs in this directory with the
# runtime install only, where a `timeout` ini key would be unknown (an error there).
TEST_TIMEOUT = 300


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.pluginmanager.hasplugin("timeout") and not config.getoption("timeout", None):
        for item in items:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT))


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> BatchProject:
    # CI sets CI=true; tests decide about prompts themselves.
    monkeypatch.delenv("CI", raising=False)
    for name in ("BATCHGEN_FAKE_FAIL", "BATCHGEN_FAKE_CRASH", "BATCHGEN_FAKE_INVALID",
                 "BATCHGEN_FAKE_INTERRUPT", "BATCHGEN_FAKE_RESET_LOGGING",
                 "BATCHGEN_FAKE_WRITE_FAIL", "BATCHGEN_FAKE_WRITE_CRASH",
                 "BATCHGEN_FAKE_INTERRUPT_PARENT", "BATCHGEN_FAKE_SLOW",
                 "BATCHGEN_FAKE_SYSTEM_EXIT", "BATCHGEN_FAKE_CANCELLED"):
        monkeypatch.delenv(name, raising=False)
    return BatchProject(pytester)


def legacy_sow(entries: int, course: str = COURSE_LEGACY) -> dict[str, Any]:
    """An `Authored_SOW` row export in the legacy shape, `entries` long."""
    template = json.loads((FIXTURES / "sow_legacy_row.json").read_text())
    base = template["entries"]
    rows = []
    for order in range(1, entries + 1):
        entry = dict(base[(order - 1) % len(base)])
        entry.update(order=order, label=f"{entry['label']} (part {order})",
                     lessonTemplateRef=f"AUTO_TBD_{order}")
        rows.append(entry)
    return {**template, "courseId": course, "entries": rows}


class AppwriteProject:
    """A pytester project whose store is the Appwrite test server."""

    def __init__(self, project: BatchProject, server: AppwriteTestServer) -> None:
        self.project = project
        self.server = server
        # A config file that is not there: the run must take everything from the env.
        self.mcp_config = project.pytester.path / "no-such.mcp.json"

    def load(self, entries: int, *, encoding: str = "json", existing: range = range(0),
             model_version: str = CLAUDE_MODEL_VERSION) -> list[dict[str, Any]]:
        document = legacy_sow(entries, COURSE_LEGACY)
        self.server.add_sow(COURSE_LEGACY, document["entries"], version="3", encoding=encoding,
                            row_id="sow-legacy-v3")
        self.server.add_outcomes(COURSE_LEGACY, [{"outcomeId": "O1", "outcomeTitle": "Numeracy"}])
        for order in existing:
            self.server.add_lesson(lesson_row(order, course=COURSE_LEGACY,
                                              model_version=model_version))
        return list(document["entries"])

    def args(self, *args: str, author: str, drafts: bool = True) -> list[str]:
        """The course on the Appwrite server; the outline author may write its drafts there
        (--batch-allow-drafts) unless `drafts` is False."""
        allow = ["--batch-allow-drafts"] if drafts and author == "outline" else []
        return [f"--batch-course={COURSE_LEGACY}", "--batch-store=appwrite",
                f"--batch-mcp-config={self.mcp_config}", *allow, *args]

    def run(self, *args: str, author: str = "outline", subprocess: bool = False,
            drafts: bool = True) -> BatchRun:
        return self.project.run(*self.args(*args, author=author, drafts=drafts),
                                author=author, subprocess=subprocess)

    def start(self, *args: str, author: str = "outline") -> subprocess.Popen[bytes]:
        return self.project.start(*self.args(*args, author=author), author=author,
                                  env=self.server.env())

    def rows(self, **equal: Any) -> list[dict[str, Any]]:
        return sorted(self.server.rows("lesson_templates", courseId=COURSE_LEGACY, **equal),
                      key=lambda r: (r["sow_order"], r["$createdAt"]))


@pytest.fixture
def appwrite_project(project: BatchProject, appwrite_server: AppwriteTestServer,
                     appwrite_env: dict[str, str]) -> AppwriteProject:
    return AppwriteProject(project, appwrite_server)


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Poll until `condition` holds; the deadline is a safety net, not a measurement."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)
