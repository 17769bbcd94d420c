"""BatchReporter: the controller's record of a batch, built from test reports.

Registered only on the controller of a real (not dry) run. It writes each
course's `batch_execution.log`, rewrites `batch_summary.json` after every
lesson, renders `batch_report.html` at the end and adds the status words and
the terminal summary. Because it works from reports alone, xdist workers need
none of it.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pytest_batchgen.batch import CourseBatch
from pytest_batchgen.htmlreport import REPORT_FILE, write_report
from pytest_batchgen.items import LessonItem
from pytest_batchgen.nodeids import parse_node_id
from pytest_batchgen.planning import Action, PlannedLesson, count_actions
from pytest_batchgen.reporting import (
    BANNER,
    RULE,
    BatchSummary,
    LessonResult,
    close_batch_log,
    format_duration,
    lesson_log_name,
    open_batch_log,
)
from pytest_batchgen.runner import LessonRunner
from pytest_batchgen.settings import Settings
from pytest_batchgen.store import StoreError


class BatchReporter:
    def __init__(self, settings: Settings, batches: list[CourseBatch],
                 runner: LessonRunner, author_name: str) -> None:
        self.settings = settings
        self.batches = batches
        # For the author's marker and the store read after Ctrl-C.
        self.runner = runner
        self.author_name = author_name
        self.summaries: dict[str, BatchSummary] = {}
        self.batch_logs: dict[str, logging.Logger] = {}
        for batch in batches:
            self._start_batch_log(batch)

    def _start_batch_log(self, batch: CourseBatch) -> None:
        logger = open_batch_log(batch)
        self.batch_logs[batch.course_id] = logger
        self.summaries[batch.course_id] = BatchSummary(
            batch, force=self.settings.force, author=self.author_name,
            max_cost=self.settings.max_cost)
        counts = count_actions(batch.plan)
        existing = [p.order for p in batch.plan if p.existing]
        for line in [
            BANNER, "Batch Lesson Generation Starting", BANNER,
            f"Batch ID: {batch.batch_id}",
            f"Course ID: {batch.course_id}",
            f"Force Mode: {'Yes' if self.settings.force else 'No'}",
            "Dry Run: No",
            f"Store: {batch.store_description}",
            f"Author: {self.author_name}",
            f"MCP Config: {self.settings.mcp_config}",
            f"Max Retries: {self.settings.max_retries}",
            f"Log Directory: {batch.directory}/",
            RULE,
            f"Using SOW {batch.sow.describe()}",
            f"Found {batch.total} SOW entries for {batch.course_id}",
            f"Found {len(existing)} existing lessons"
            + (f" (orders: {', '.join(map(str, existing))})" if existing else ""),
            f"Audit Plan: Audit {counts[Action.AUDIT]}, Skip {counts[Action.SKIP]} (no lesson)"
            if batch.mode == "audit" else
            f"Generation Plan: Skip {counts[Action.SKIP]}, Generate {counts[Action.GENERATE]},"
            f" Replace {counts[Action.REPLACE]}, Overwrite {counts[Action.OVERWRITE]}",
            RULE,
        ]:
            logger.info(line)
        if self.settings.force:
            logger.warning("Force mode enabled - will overwrite all lessons")
        self.summaries[batch.course_id].write()

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        for item in items:
            if isinstance(item, LessonItem):
                summary = self.summaries[item.batch.course_id]
                summary.deselect(summary.deselected | {item.lesson.order})

    def record_selection(self, nodeids: list[str]) -> None:
        """Under xdist: lessons missing from a worker's collection were deselected."""
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
        if found is None or not found[1].runs_author:
            return
        summary, lesson = found
        batch = summary.batch
        logger = self.batch_logs[batch.course_id]
        logger.info(RULE)
        logger.info("[%d/%d] Order %d (%s): GENERATING%s", batch.position(lesson.order),
                    batch.total, lesson.order, lesson.label,
                    f" ({lesson.describe()})" if lesson.existing else "")
        logger.info("Log file: %s", lesson_log_name(lesson.order))

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
            result = LessonResult(order=lesson.order, label=lesson.label, status="failed",
                                  action=lesson.action.value, error=str(report.longrepr))
        summary.record(result)
        self._log_result(summary.batch, result)
        summary.lesson_recorded()

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        """NF4: the verbose status of an authored lesson carries its figures and the
        running totals; built from reports, so it reads the same under xdist."""
        found = self._lesson_of(report.nodeid)
        if report.when != "call" or found is None:
            return None
        result = found[0].results.get(found[1].order)
        # Failures keep pytest's own word: the short summary reuses it verbatim.
        if result is None or result.status != "success":
            return None
        summaries = self.summaries.values()
        remaining = sum(s.authoring_left for s in summaries)
        workers = int(getattr(config.option, "numprocesses", 0) or 1)
        average = sum(s.authored_seconds for s in summaries) / max(
            1, sum(s.authored for s in summaries))
        spent, tokens = sum(s.cost_usd for s in summaries), sum(s.tokens for s in summaries)
        # An author without a model (outline) has no spend worth a column of zeros.
        word = f"GENERATED in {format_duration(result.duration_seconds)}" + (
            f", ${result.cost_usd:.4f} | spent ${spent:.4f}, {tokens} tokens,"
            if spent or tokens else " |"
        ) + f" {remaining} to go, ETA {format_duration(remaining * average / workers)}"
        return report.outcome, ".", (word, {"green": True})

    def _log_result(self, batch: CourseBatch, result: LessonResult) -> None:
        logger = self.batch_logs[batch.course_id]
        where = f"[{batch.position(result.order)}/{batch.total}] Order {result.order}"
        if result.status == "not_started":
            logger.warning("%s (%s): NOT STARTED - %s", where, result.label, result.error)
            return
        if result.status == "skipped":
            logger.info("%s (%s): SKIP - %s", where, result.label, result.error or
                        f"Already exists (doc: {result.existing_doc_id})")
            return
        if result.action == Action.AUDIT:
            say = logger.info if result.status == "passed" else logger.error
            say("%s (%s): %s - row %s", where, result.label, result.status.upper(),
                result.doc_id)
            for violation in result.violations:
                say("  %s", violation)
            return
        say = logger.info if result.status == "success" else logger.error
        if result.status == "success":
            say("%s - ✅ SUCCESS", where)
            say("  Document ID: %s", result.doc_id)
        else:
            say("%s - ❌ FAILED", where)
            say("  Error: %s", result.error)
        say("  Duration: %s", format_duration(result.duration_seconds))
        say("  Cost: $%.4f USD", result.cost_usd)
        say("  Tokens: %d", result.tokens)
        if result.duplicate_doc_ids:
            logger.warning("  Duplicate rows left untouched: %s",
                           ", ".join(result.duplicate_doc_ids))

    # --- the end ---------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        if exitstatus == pytest.ExitCode.OK and any(
            s.not_started() for s in self.summaries.values()
        ):
            # Lessons not started (budget spent, store failing): the batch is not done.
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        finished: list[tuple[dict[str, Any], Path]] = []
        for course_id, summary in self.summaries.items():
            if interrupted:
                self._reconcile(summary)
            try:
                document = summary.write(finished=True, interrupted=interrupted)
                write_report(document, summary.batch.directory)
            except OSError as exc:
                document = summary.document(finished=True, interrupted=interrupted)
                summary.write_error = exc
            if summary.write_error is not None:
                # The run's record is incomplete: a batch-level error, in one line.
                session.exitstatus = pytest.ExitCode.INTERRUPTED
                print(unsaved_message(summary, summary.write_error), file=sys.stderr)
            logger = self.batch_logs[course_id]
            for line in [
                BANNER,
                "Batch Generation Interrupted" if interrupted else "Batch Generation Complete",
                BANNER,
                "Summary:",
                f"  Total SOW entries: {document['total_sow_entries']}",
                f"  Skipped: {document['skipped']}",
                f"  Passed: {document['passed']}" if "passed" in document else
                f"  Generated (success): {document['generated']}",
                f"  Failed: {document['failed']}",
                *([f"  Not started: {len(document['not_started'])}"
                   f" ({document['stopped_early']})"] if document["not_started"] else []),
                f"  Not run: {len(document['not_run'])}",
                *([f"  Deselected: {len(document['deselected'])} (-k, --lf or node ids)"]
                  if document["deselected"] else []),
                f"  Total Duration: {document['duration_human']}",
                f"  Total Cost: ${document['total_cost_usd']:.4f} USD",
                f"  Total Tokens: {document['total_tokens']}",
                f"Summary saved to: {summary.path.name}",
                f"Log directory: {summary.batch.directory}/",
            ]:
                logger.info(line)
            close_batch_log(logger)
            finished.append((document, summary.batch.directory))
        # Only once every course's files are complete does user code run.
        for document, directory in finished:
            session.config.hook.pytest_batchgen_batch_finished(
                config=session.config, summary=document, directory=directory)

    def close(self) -> None:
        """Release the batch logs (a run that ends before its session starts)."""
        for logger in self.batch_logs.values():
            close_batch_log(logger)

    def _reconcile(self, summary: BatchSummary) -> None:
        """After Ctrl-C, ask the store which unreported lessons were written anyway.

        An xdist worker can finish a write whose report the interrupted
        controller never receives; one store read keeps the summary true.
        """
        batch = summary.batch
        pending = {p.order: p for p in summary.not_run() if p.runs_author}
        if not pending:
            return
        try:
            rows = self.runner.store.list_lessons(batch.course_id)
        except StoreError as exc:
            self.batch_logs[batch.course_id].warning("Could not check the store: %s", exc)
            return
        for row in rows:
            lesson = pending.get(row.sow_order)
            if (lesson and row.model_version == self.runner.author.model_version
                    and row.updated_at and datetime.fromisoformat(row.updated_at) >= batch.started):
                summary.record(LessonResult(
                    order=lesson.order, label=lesson.label, status="success",
                    action=lesson.action.value, doc_id=row.doc_id,
                    log_file=lesson_log_name(lesson.order),
                    note="written before the interrupt; its report was lost"))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.summaries:
            return
        terminalreporter.ensure_newline()  # else the first line follows a blank one
        terminalreporter.section("batchgen")
        summaries = list(self.summaries.values())
        for summary in summaries:
            terminalreporter.write_line(f"{summary.batch.course_id}: {tally(summary)}")
            terminalreporter.write_line(f"  summary: {summary.path}")
            terminalreporter.write_line(f"  report:  {summary.batch.directory / REPORT_FILE}")
            if summary.not_started():
                terminalreporter.write_line(
                    f"  {len(summary.not_started())} lessons not started: {summary.stopped}",
                    red=True)
        if len(summaries) > 1:
            statuses = sum((s.statuses for s in summaries), Counter[str]())
            terminalreporter.write_line(
                f"all {len(summaries)} courses: generated {statuses['success']},"
                f" skipped {statuses['skipped']}, failed {statuses['failed']}"
                f" | cost ${sum(s.cost_usd for s in summaries):.4f},"
                f" tokens {sum(s.tokens for s in summaries)}")


def unsaved_message(summary: BatchSummary, error: OSError) -> str:
    """One line for a summary that could not be saved, and where the truth is."""
    statuses = summary.statuses
    return (f"batchgen: could not write the summary of {summary.batch.course_id} under"
            f" {summary.batch.directory} ({error.strerror or error}):"
            f" {statuses['success']} lessons written, {statuses['not_started']} not started;"
            " the store has the lessons written")


def tally(summary: BatchSummary) -> str:
    """One course's line in the terminal summary."""
    statuses = summary.statuses
    if summary.batch.mode == "audit":
        return (f"audited {statuses['passed'] + statuses['failed']},"
                f" passed {statuses['passed']}, failed {statuses['failed']},"
                f" skipped {statuses['skipped']} (no lesson)")
    return (f"generated {statuses['success']}, skipped {statuses['skipped']},"
            f" failed {statuses['failed']} | cost ${summary.cost_usd:.4f},"
            f" tokens {summary.tokens}")
