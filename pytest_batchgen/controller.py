"""BatchReporter: the controller's record of a batch, built from test reports.

Registered only on the controller of a real (not dry) run. It writes each
course's `batch_execution.log`, rewrites `batch_summary.json` after every
lesson, renders `batch_report.html` at the end and adds the status words and
the terminal summary. Because it works from reports alone, xdist workers need
none of it.
"""

from __future__ import annotations

import logging
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
    BUDGET_REACHED,
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
            f"Using SOW {batch.sow.doc_id} (version {batch.sow.version}, {batch.sow.status})",
            f"Found {batch.total} SOW entries for {batch.course_id}",
            f"Found {len(existing)} existing lessons"
            + (f" (orders: {', '.join(map(str, existing))})" if existing else ""),
            f"Audit Plan: Audit {counts[Action.AUDIT]}, Skip {counts[Action.SKIP]} (no lesson)"
            if batch.mode == "audit" else
            f"Generation Plan: Skip {counts[Action.SKIP]}, Generate {counts[Action.GENERATE]},"
            f" Overwrite {counts[Action.OVERWRITE]}",
            RULE,
        ]:
            logger.info(line)
        if self.settings.force:
            logger.warning("Force mode enabled - will overwrite all lessons")
        self.summaries[batch.course_id].write()

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        for item in items:
            if isinstance(item, LessonItem):
                self.summaries[item.batch.course_id].deselected.add(item.lesson.order)

    def record_selection(self, nodeids: list[str]) -> None:
        """Under xdist: lessons missing from a worker's collection were deselected."""
        selected = set()
        for nodeid in nodeids:
            if found := self._lesson_of(nodeid):
                selected.add((found[0].batch.course_id, found[1].order))
        for course_id, summary in self.summaries.items():
            summary.deselected = {
                p.order for p in summary.batch.plan if (course_id, p.order) not in selected
            }

    # --- reporting on the controller, from the reports ---------------------------

    def _lesson_of(self, nodeid: str) -> tuple[BatchSummary, PlannedLesson] | None:
        """The summary and planned lesson of a node id `course::lesson_NNN`."""
        parsed = parse_node_id(nodeid)
        if parsed is None or parsed[0] not in self.summaries:
            return None
        summary = self.summaries[parsed[0]]
        return summary, next(p for p in summary.batch.plan if p.order == parsed[1])

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
        summary.write()

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
        done = [r for s in self.summaries.values() for r in s.results.values()
                if r.status != "skipped"]
        remaining = sum(1 for s in self.summaries.values() for p in s.not_run()
                        if p.runs_author)
        workers = int(getattr(config.option, "numprocesses", 0) or 1)
        average = sum(r.duration_seconds for r in done) / len(done)
        spent, tokens = sum(r.cost_usd for r in done), sum(r.tokens for r in done)
        # An author without a model (outline) has no spend worth a column of zeros.
        word = f"GENERATED in {format_duration(result.duration_seconds)}" + (
            f", ${result.cost_usd:.4f} | spent ${spent:.4f}, {tokens} tokens,"
            if spent or tokens else " |"
        ) + f" {remaining} to go, ETA {format_duration(remaining * average / workers)}"
        return report.outcome, ".", (word, {"green": True})

    def _log_result(self, batch: CourseBatch, result: LessonResult) -> None:
        logger = self.batch_logs[batch.course_id]
        where = f"[{batch.position(result.order)}/{batch.total}] Order {result.order}"
        if result.reason == BUDGET_REACHED:
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
            s.budget_reached for s in self.summaries.values()
        ):
            # Lessons left unwritten for lack of budget: the batch is not done.
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        finished: list[tuple[dict[str, Any], Path]] = []
        for course_id, summary in self.summaries.items():
            if interrupted:
                self._reconcile(summary)
            document = summary.write(finished=True, interrupted=interrupted)
            write_report(document, summary.batch.directory)
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
        for summary in self.summaries.values():
            counts = summary.counts()
            generated = [r for r in summary.results.values() if r.status != "skipped"]
            if summary.batch.mode == "audit":
                terminalreporter.write_line(
                    f"{summary.batch.course_id}: audited {counts['passed'] + counts['failed']},"
                    f" passed {counts['passed']}, failed {counts['failed']},"
                    f" skipped {counts['skipped']} (no lesson)")
            else:
                terminalreporter.write_line(
                    f"{summary.batch.course_id}: generated {counts['success']},"
                    f" skipped {counts['skipped']}, failed {counts['failed']}"
                    f" | cost ${sum(r.cost_usd for r in generated):.4f},"
                    f" tokens {sum(r.tokens for r in generated)}"
                )
            terminalreporter.write_line(f"  summary: {summary.path}")
            terminalreporter.write_line(f"  report:  {summary.batch.directory / REPORT_FILE}")
            if summary.budget_reached:
                terminalreporter.write_line(
                    f"  budget of ${self.settings.max_cost:.2f} reached:"
                    f" {summary.counts()[BUDGET_REACHED]} lessons not started", red=True)
        if len(self.summaries) > 1:
            results = [r for s in self.summaries.values() for r in s.results.values()]
            totals = Counter[str]()
            for summary in self.summaries.values():
                totals.update(summary.counts())
            terminalreporter.write_line(
                f"all {len(self.summaries)} courses: generated {totals['success']},"
                f" skipped {totals['skipped']}, failed {totals['failed']}"
                f" | cost ${sum(r.cost_usd for r in results):.4f},"
                f" tokens {sum(r.tokens for r in results)}")
