"""BatchSession: the plugin object registered when `--batch-course` is given.

It joins the two sides. On the controller it has the batch planned and
confirmed (controller.prepare), claims the batch directories and registers
what keeps the record: the dry run's plan, or the reporter. On an xdist
worker it only rebuilds the items from the shipped plan. Wherever items run,
it hands each lesson to the worker side's runner, its log going to its file.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import cast

import pytest

from pytest_batchgen import redact
from pytest_batchgen.authors import AuthorUnavailable, LessonAuthor
from pytest_batchgen.backends import Backends
from pytest_batchgen.batch import CourseBatch
from pytest_batchgen.controller.planfile import DryRunReport
from pytest_batchgen.controller.prepare import (
    BatchError,
    BatchPlanner,
    BatchStop,
    claim_directories,
    release_directories,
)
from pytest_batchgen.controller.reporter import BatchReporter, XdistLines
from pytest_batchgen.items import CourseCollector, LessonItem
from pytest_batchgen.logfiles import capture_lesson_log
from pytest_batchgen.planning import Mode
from pytest_batchgen.settings import Settings
from pytest_batchgen.store import LessonStore, StoreError
from pytest_batchgen.worker.reruns import ServiceReruns
from pytest_batchgen.worker.runner import LessonRunner

WORKERINPUT_KEY = "batchgen_batches"
TAIL_LINES = 8


def tail(text: str, log_file: object) -> str:
    """The last lines of captured output, and where the rest is."""
    lines = text.rstrip("\n").splitlines()
    if len(lines) <= TAIL_LINES:
        return text
    return "\n".join([f"… {len(lines) - TAIL_LINES} earlier lines; the whole log: {log_file}",
                      *lines[-TAIL_LINES:]]) + "\n"


def is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


class BatchSession:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.batches: list[CourseBatch] = []
        self.reporter: BatchReporter | None = None
        self.backends = Backends(self._make_store, self._make_author)
        self.runner = LessonRunner(self.backends, settings)
        # In every process of the run: no log it writes holds a known secret.
        redact.install(settings.mcp_config)
        self.reruns: ServiceReruns | None = None
        if settings.retry_errors and not (settings.audit or settings.dry_run):
            self.reruns = ServiceReruns(settings.retry_errors, settings.retry_pause,
                                        self.runner.service_streak.passed)
            config.pluginmanager.register(self.reruns, "batchgen-reruns")

    # --- factories (through our own hooks, so conftests can swap them) ----------

    def _make_store(self) -> LessonStore:
        store: LessonStore = self.config.hook.pytest_batchgen_make_store(
            config=self.config, settings=self.settings
        )
        return store

    def _make_author(self) -> LessonAuthor:
        author: LessonAuthor = self.config.hook.pytest_batchgen_make_author(
            config=self.config, settings=self.settings
        )
        return author

    @property
    def author_name(self) -> str:
        """Who writes this run's lessons: an audit runs no author (and makes none)."""
        return Mode.AUDIT.value if self.settings.audit else self.backends.author.name

    # --- start: plan on the controller, receive it on workers ---------------------

    def prepare(self) -> None:
        """On the controller: read the store once, plan, confirm; BatchStop ends the run."""
        settings = self.settings
        try:
            author = None if settings.audit else self.backends.author
            planner = BatchPlanner(self.config, settings, self.backends.store, author)
            batches = planner.plan()
            planner.confirm_force(batches)
        except (BatchError, StoreError, AuthorUnavailable) as exc:
            raise BatchStop(f"batchgen: {exc}", 2) from exc
        except KeyboardInterrupt:
            # Before the session exists pytest has no interrupt handling of its
            # own: Ctrl-C here (a slow store, the prompt) would be a traceback.
            raise BatchStop("batchgen: interrupted before the batch started;"
                            " nothing was written", 2) from None
        # Only now, with everything validated and confirmed, does anything get written:
        # the batch directories, and in them the batch log and a first summary. What
        # cannot be written there (a full disk) ends the run before any lesson starts,
        # and takes with it what it had created.
        try:
            self.batches = claim_directories(settings.log_dir, batches)
            if settings.dry_run:
                self.config.pluginmanager.register(DryRunReport(
                    self.batches, force=settings.force, keep_diagrams=settings.keep_diagrams,
                    estimate=planner.estimate), "batchgen-dry-run")
            else:
                self.reporter = BatchReporter(
                    settings, self.batches, store=self.backends.store,
                    author_name=planner.author_name,
                    model_version=None if author is None else author.model_version)
        except OSError as exc:
            if self.reporter is not None:
                self.reporter.close()
            release_directories(self.batches)
            raise BatchStop(f"batchgen: cannot write under {settings.log_dir}: {exc}",
                            2) from None

    def close(self) -> None:
        """A run that ends before its session starts: nothing to unconfigure."""
        self.runner.close()
        self.backends.close()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if is_xdist_worker(self.config):
            wire = self.config.workerinput[WORKERINPUT_KEY]  # type: ignore[attr-defined]
            self.batches = [CourseBatch.from_wire(data) for data in wire]
        elif self.reporter is not None:
            self.config.pluginmanager.register(self.reporter, "batchgen-reporter")
            terminal = self.config.pluginmanager.get_plugin("terminalreporter")
            if terminal is not None and self.config.getoption("numprocesses", None) \
                    and self.config.option.verbose > 0:
                self.config.pluginmanager.register(XdistLines(self.config, terminal),
                                                   "batchgen-xdist-lines")
        if self.batches:
            # The one directory every process of the run knows alike: the first batch's.
            self.runner.sessions_dir = self.batches[0].layout.sessions

    # --- collection: the plan becomes items ---------------------------------------

    def pytest_collection(self, session: pytest.Session) -> bool:
        hook = session.config.hook
        items: list[pytest.Item] = []
        for batch in self.batches:
            collector = CourseCollector.from_parent(
                session, name=batch.course_id, nodeid=batch.course_id,
                batch=batch, runner=self.runner,
            )
            items.extend(session.genitems(collector))
        if self.settings.selection:
            # Positional node ids narrow the batch as they narrow any pytest run;
            # the rest count as deselected, like -k, in the summary.
            chosen: list[pytest.Item] = []
            dropped: list[pytest.Item] = []
            for item in items:
                assert isinstance(item, LessonItem)
                selected = self.settings.selects(item.batch.course_id, item.lesson.order)
                (chosen if selected else dropped).append(item)
            hook.pytest_deselected(items=dropped)
            items = chosen
        hook.pytest_collection_modifyitems(session=session, config=session.config, items=items)
        session.items = items
        session.testscollected = len(items)
        hook.pytest_collection_finish(session=session)
        return True

    # --- running: per-lesson log capture -----------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        if not isinstance(item, LessonItem) or not item.lesson.runs_author:
            return (yield)
        path = item.batch.layout.lesson_log(item.lesson.order)
        # A rerun of a lesson the service failed adds to the log of its first run.
        rerun = self.reruns is not None and self.reruns.round > 0
        with capture_lesson_log(path, self.settings.log_level, append=rerun):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """A failed lesson's report shows its reason and the end of its log, not the
        agent's whole trace (kilobytes per lesson); the full trace is in its log file."""
        report = yield
        if isinstance(item, LessonItem) and report.skipped and isinstance(report.longrepr,
                                                                          tuple):
            # pytest names where skip() was called (a line of items.py): the lesson's
            # own node id says which lesson the reason is about.
            # No line number: pytest's summary then prints "node id: reason".
            report.longrepr = cast(tuple[str, int, str], (item.nodeid, None,
                                                          report.longrepr[2]))
        if isinstance(item, LessonItem) and report.failed:
            path = item.batch.layout.lesson_log(item.lesson.order)
            report.sections = [(title, tail(text, path)) if title.startswith("Captured log")
                               else (title, text) for title, text in report.sections]
        return report

    def pytest_unconfigure(self) -> None:
        # After every sessionfinish (the reporter may read the store then).
        self.close()
