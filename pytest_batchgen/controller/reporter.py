"""BatchReporter: the controller's record of a batch, built from test reports.

Registered only on the controller of a real (not dry) run. It keeps each
course's `batch_execution.log` and `batch_summary.json`, renders
`batch_report.html` at the end and adds the status words and the terminal
summary. Because it works from reports alone, xdist workers need none of it.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pytest_batchgen.batch import CourseBatch
from pytest_batchgen.controller.batchlog import BatchLog
from pytest_batchgen.controller.documents import SummaryDocument
from pytest_batchgen.controller.htmlreport import write_report
from pytest_batchgen.controller.summary import BatchSummary, Totals, total
from pytest_batchgen.nodeids import parse_node_id
from pytest_batchgen.planning import Action, Mode, PlannedLesson
from pytest_batchgen.results import LessonResult, Status, Why, format_duration, plural
from pytest_batchgen.settings import Settings
from pytest_batchgen.store import LessonStore, StoreError


class BatchReporter:
    def __init__(self, settings: Settings, batches: list[CourseBatch], *, store: LessonStore,
                 author_name: str, model_version: str | None) -> None:
        """`store` is read once more after Ctrl-C; `model_version` marks the rows this
        run's author writes (None: an audit, which writes none)."""
        self.settings = settings
        self.batches = batches
        self.store = store
        self.author_name = author_name
        self.model_version = model_version
        self.summaries: dict[str, BatchSummary] = {}
        self.batch_logs: dict[str, BatchLog] = {}
        for batch in batches:
            self.batch_logs[batch.course_id] = batch_log = BatchLog(batch)
            batch_log.started(force=settings.force, author=author_name,
                              mcp_config=str(settings.mcp_config)
                              if settings.store_url == "appwrite" else None,
                              max_retries=settings.max_retries)
            summary = BatchSummary(batch, force=settings.force, author=author_name,
                                   max_cost=settings.max_cost)
            self.summaries[batch.course_id] = summary
            summary.write()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """What this process collected is the selection, whatever narrowed it (-k, --lf,
        node ids, a plugin that drops items without saying so, such as pytest-shard).
        Under xdist the controller collects nothing; the workers' collections say it."""
        if not session.config.pluginmanager.has_plugin("dsession"):
            self.record_selection([item.nodeid for item in session.items])

    def record_selection(self, nodeids: list[str]) -> None:
        """Planned lessons missing from a collection were deselected."""
        selected = set()
        for nodeid in nodeids:
            if found := self._lesson_of(nodeid):
                selected.add((found[0].batch.course_id, found[1].order))
        for course_id, summary in self.summaries.items():
            summary.deselect({p.order for p in summary.batch.plan
                              if (course_id, p.order) not in selected})

    # --- reporting on the controller, from the reports ---------------------------

    def _lesson_of(self, nodeid: str) -> tuple[BatchSummary, PlannedLesson] | None:
        """The summary and planned lesson of a node id `course::lesson_NNN`."""
        parsed = parse_node_id(nodeid)
        if parsed is None or parsed[0] not in self.summaries:
            return None
        summary = self.summaries[parsed[0]]
        return summary, summary.batch.lesson(parsed[1])

    def pytest_runtest_logstart(self, nodeid: str, location: object) -> None:
        found = self._lesson_of(nodeid)
        if found is not None and found[1].runs_author:
            self.batch_logs[found[0].batch.course_id].lesson_started(found[1])

    @pytest.hookimpl(tryfirst=True)  # before the terminal asks for the status line
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown" or (report.when == "setup" and report.passed):
            return
        found = self._lesson_of(report.nodeid)
        if found is None:
            return
        summary, lesson = found
        result = LessonResult.from_properties(report.user_properties)
        if result is None:  # failed before the lesson could record (e.g. setup error)
            result = LessonResult(order=lesson.order, label=lesson.label, status=Status.FAILED,
                                  action=lesson.action.value, error=str(report.longrepr))
        summary.record(result)
        self.batch_logs[summary.batch.course_id].result(result)
        summary.lesson_recorded()

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        """The verbose status of an authored lesson carries its figures and the
        running totals; built from reports, so it reads the same under xdist."""
        found = self._lesson_of(report.nodeid)
        if report.when != "call" or found is None:
            return None
        result = found[0].results.get(found[1].order)
        if result is not None and result.reason == Why.SERVICE_ERROR:
            # The model service failed, not the lesson: told apart from a failed review.
            return report.outcome, "E", ("SERVICE ERROR", {"red": True})
        # Failures keep pytest's own word: the short summary reuses it verbatim.
        if result is None or result.status != Status.SUCCESS:
            return None
        summaries = list(self.summaries.values())
        totals = total(summaries)
        remaining = sum(s.authoring_left for s in summaries)
        workers = int(getattr(config.option, "numprocesses", 0) or 1)
        # An author without a model (outline) has no spend worth a column of zeros.
        done = WRITTEN_WORDS.get(Action(result.action), "GENERATED")
        word = f"{done} in {format_duration(result.duration_seconds)}" + (
            f", ${result.cost_usd:.4f} | spent ${totals.cost_usd:.4f}, {totals.tokens} tokens,"
            if totals.cost_usd or totals.tokens else " |"
        ) + (f" {remaining} to go,"
             f" ETA {format_duration(remaining * totals.average_seconds / workers)}")
        return report.outcome, ".", (word, {"green": True})

    # --- the end ---------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        if exitstatus == pytest.ExitCode.OK and any(
            s.not_started() for s in self.summaries.values()
        ):
            # Lessons not started (budget spent, store failing): the batch is not done.
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and self.summaries and all(
            not s.batch.plan and s.batch.shard for s in self.summaries.values()
        ):
            # A shard with no lessons (a short course in a matrix sized for long ones)
            # did all it was asked; a CI job must not fail for it.
            session.exitstatus = pytest.ExitCode.OK
        finished: list[tuple[SummaryDocument, Path]] = []
        for course_id, summary in self.summaries.items():
            self._interrupted_spend(summary)
            if interrupted:
                self._reconcile(summary)
            try:
                document = summary.write(finished=True, interrupted=interrupted)
                write_report(document, summary.batch.layout)
            except OSError as exc:
                document = summary.document(finished=True, interrupted=interrupted)
                summary.write_error = exc
            if summary.write_error is not None:
                # The run's record is incomplete: a batch-level error, in one line.
                session.exitstatus = pytest.ExitCode.INTERRUPTED
                print(unsaved_message(summary, summary.write_error), file=sys.stderr)
            self.batch_logs[course_id].finished(document)
            self.batch_logs[course_id].close()
            finished.append((document, summary.batch.directory))
        # Only once every course's files are complete does user code run.
        for document, directory in finished:
            session.config.hook.pytest_batchgen_batch_finished(
                config=session.config, summary=document, directory=directory)

    def close(self) -> None:
        """Release the batch logs (a run that ends before its session starts)."""
        for batch_log in self.batch_logs.values():
            batch_log.close()

    @staticmethod
    def _interrupted_spend(summary: BatchSummary) -> None:
        """Lessons a Ctrl-C or SIGTERM stopped while they were being authored: their
        reports never came, but their processes kept what they had spent."""
        for path in summary.batch.layout.interrupted_files():
            try:
                result = LessonResult.model_validate_json(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # cut short by the same interrupt: nothing to count
            if result.order not in summary.results and any(
                    lesson.order == result.order for lesson in summary.not_run()):
                summary.record(result)

    def _reconcile(self, summary: BatchSummary) -> None:
        """After Ctrl-C, ask the store which unreported lessons were written anyway.

        An xdist worker can finish a write whose report the interrupted
        controller never receives; one store read keeps the summary true.
        """
        batch = summary.batch
        pending = {p.order: p for p in summary.not_run() if p.runs_author}
        if not pending or self.model_version is None:
            return
        try:
            rows = self.store.list_lessons(batch.course_id)
        except StoreError as exc:
            self.batch_logs[batch.course_id].logger.warning("Could not check the store: %s",
                                                            exc)
            return
        for row in rows:
            lesson = pending.get(row.sow_order)
            if (lesson and row.model_version == self.model_version
                    and row.updated_at and datetime.fromisoformat(row.updated_at) >= batch.started):
                summary.record(LessonResult(
                    order=lesson.order, label=lesson.label, status=Status.SUCCESS,
                    action=lesson.action.value, doc_id=row.doc_id,
                    log_file=batch.layout.name(batch.layout.lesson_log(lesson.order)),
                    note="written before the interrupt; its report was lost"))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.summaries:
            return
        terminalreporter.ensure_newline()  # else the first line follows a blank one
        terminalreporter.section("batchgen")
        summaries = list(self.summaries.values())
        for summary in summaries:
            shard = summary.batch.shard
            name = summary.batch.course_id + (f" (shard {shard[0]}/{shard[1]})" if shard else "")
            terminalreporter.write_line(f"{name}: {tally(summary.totals, summary.batch.mode)}")
            terminalreporter.write_line(f"  summary: {summary.path}")
            terminalreporter.write_line(f"  report:  {summary.batch.layout.report}")
            if summary.not_started():
                terminalreporter.write_line(
                    f"  {plural(len(summary.not_started()), 'lesson')} not started:"
                    f" {summary.stopped}",
                    red=True)
        if len(summaries) > 1:
            # One run's courses share its mode (an audit or not), so their total
            # reads as each course's line does.
            terminalreporter.write_line(f"all {len(summaries)} courses:"
                                        f" {tally(total(summaries), summaries[0].batch.mode)}")


def unsaved_message(summary: BatchSummary, error: OSError) -> str:
    """One line for a summary that could not be saved, and where the truth is."""
    statuses = summary.totals.statuses
    return (f"batchgen: could not write the summary of {summary.batch.course_id} under"
            f" {summary.batch.directory} ({error.strerror or error}):"
            f" {plural(statuses[Status.SUCCESS], 'lesson')} written,"
            f" {statuses[Status.NOT_STARTED]} not started;"
            " the store has the lessons written")


class XdistLines:
    """A lesson's line under xdist as without it: one line a lesson, with a skip's
    reason. pytest's verbose xdist output writes each test's location when it starts
    and its result on a line of its own (two lines a lesson), and names no reason for a
    skip."""

    def __init__(self, config: pytest.Config, terminal: Any) -> None:
        self.config = config
        self.terminal = terminal

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logstart(self, nodeid: str, location: object) -> Generator[None]:
        if parse_node_id(nodeid) is None:
            return (yield)
        # The terminal reads the verbosity as it writes: quiet for this call only, it
        # writes no location line, and the result line that follows says it all.
        verbose = self.config.option.verbose
        self.config.option.verbose = -1
        try:
            return (yield)
        finally:
            self.config.option.verbose = verbose

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if (report.skipped and hasattr(report, "node") and parse_node_id(report.nodeid)
                and isinstance(report.longrepr, tuple)):
            reason = str(report.longrepr[2]).removeprefix("Skipped: ")
            self.terminal.write(f"({reason})", yellow=True)  # the line ends in a space


# How a written lesson's line reads, by what the plan did to its row.
WRITTEN_WORDS = {Action.GENERATE: "GENERATED", Action.REPLACE: "REPLACED",
                 Action.OVERWRITE: "OVERWRITTEN"}


def tally(totals: Totals, mode: str) -> str:
    """A course's line in the terminal summary, or the courses' total."""
    statuses = totals.statuses
    if mode == Mode.AUDIT:
        return (f"audited {statuses[Status.PASSED] + statuses[Status.FAILED]},"
                f" passed {statuses[Status.PASSED]}, failed {statuses[Status.FAILED]},"
                f" skipped {statuses[Status.SKIPPED]} (no lesson)"
                + (f", stale {totals.stale} (older SOW version)" if totals.stale else ""))
    return (f"generated {statuses[Status.SUCCESS]}, skipped {statuses[Status.SKIPPED]},"
            f" failed {statuses[Status.FAILED]} | cost ${totals.cost_usd:.4f},"
            f" tokens {totals.tokens}")
