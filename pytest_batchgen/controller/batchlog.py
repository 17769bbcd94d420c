"""`batch_execution.log`: one course's batch told as progress a person reads."""

from __future__ import annotations

import logging

from pytest_batchgen.batch import CourseBatch
from pytest_batchgen.controller.documents import SummaryDocument
from pytest_batchgen.logfiles import BANNER, LOG_FORMAT, RULE, QuietFileHandler
from pytest_batchgen.planning import Action, Mode, PlannedLesson, count_actions
from pytest_batchgen.results import LessonResult, Status, format_duration, plural


class BatchLog:
    """A logger of its own for the batch log, which stays out of lesson logs.

    It does not propagate, so the per-lesson root handler never sees the
    orchestration lines and pytest's own log capture is not flooded.
    """

    def __init__(self, batch: CourseBatch) -> None:
        self.batch = batch
        self.logger = logging.getLogger(f"pytest_batchgen.batch.{batch.batch_id}")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        handler = QuietFileHandler(batch.layout.batch_log, encoding="utf-8")
        handler.setFormatter(logging.Formatter(LOG_FORMAT.replace(" - %(name)s", "")))
        self.logger.addHandler(handler)

    def started(self, *, force: bool, author: str, mcp_config: str | None,
                max_retries: int) -> None:
        """The batch's opening block; `mcp_config` only when the run reads it (Appwrite)."""
        batch = self.batch
        counts = count_actions(batch.plan)
        existing = [p.order for p in batch.plan if p.existing]
        for line in [
            BANNER, "Batch Lesson Generation Starting", BANNER,
            f"Batch ID: {batch.batch_id}",
            f"Course ID: {batch.course_id}",
            f"Force Mode: {'Yes' if force else 'No'}",
            "Dry Run: No",
            f"Store: {batch.store_description}",
            f"Author: {author}",
            *([f"MCP Config: {mcp_config}"] if mcp_config else []),
            f"Max Retries: {max_retries}",
            f"Log Directory: {batch.directory}/",
            RULE,
            f"Using SOW {batch.sow.describe()}",
            f"Found {batch.total} SOW entries for {batch.course_id}",
            *([f"Shard {batch.shard[0]} of {batch.shard[1]}: {plural(len(batch.plan), 'lesson')}"
               " here,"
               f" {len(batch.other_shards)} left to the other shards"] if batch.shard else []),
            f"Found {plural(len(existing), 'existing lesson')}"
            + (f" (orders: {', '.join(map(str, existing))})" if existing else ""),
            f"Audit Plan: Audit {counts[Action.AUDIT]}, Skip {counts[Action.SKIP]} (no lesson)"
            if batch.mode is Mode.AUDIT else
            f"Generation Plan: Skip {counts[Action.SKIP]}, Generate {counts[Action.GENERATE]},"
            f" Replace {counts[Action.REPLACE]}, Overwrite {counts[Action.OVERWRITE]}",
            RULE,
        ]:
            self.logger.info(line)
        if force:
            self.logger.warning("Force mode enabled - will overwrite all lessons")

    def lesson_started(self, lesson: PlannedLesson) -> None:
        batch, logger = self.batch, self.logger
        logger.info(RULE)
        logger.info("[%d/%d] Order %d (%s): GENERATING%s", batch.position(lesson.order),
                    batch.total, lesson.order, lesson.label,
                    f" ({lesson.describe()})" if lesson.existing else "")
        logger.info("Log file: %s", batch.layout.name(batch.layout.lesson_log(lesson.order)))

    def result(self, result: LessonResult) -> None:
        batch, logger = self.batch, self.logger
        where = f"[{batch.position(result.order)}/{batch.total}] Order {result.order}"
        if result.status == Status.NOT_STARTED:
            logger.warning("%s (%s): NOT STARTED - %s", where, result.label, result.error)
            return
        if result.status == Status.SKIPPED:
            logger.info("%s (%s): SKIP - %s", where, result.label, result.error or
                        f"Already exists (doc: {result.existing_doc_id})")
            return
        if result.action == Action.AUDIT:
            say = logger.info if result.status == Status.PASSED else logger.error
            say("%s (%s): %s - row %s", where, result.label, result.status.upper(),
                result.doc_id)
            for violation in result.violations:
                say("  %s", violation)
            return
        say = logger.info if result.status == Status.SUCCESS else logger.error
        if result.status == Status.SUCCESS:
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

    def finished(self, document: SummaryDocument) -> None:
        """The closing summary, from the summary file's own figures."""
        layout = self.batch.layout
        for line in [
            BANNER,
            "Batch Generation Interrupted" if document.interrupted
            else "Batch Generation Complete",
            BANNER,
            "Summary:",
            f"  Total SOW entries: {document.total_sow_entries}",
            f"  Skipped: {document.skipped}",
            f"  Passed: {document.done}" if document.audit else
            f"  Generated (success): {document.done}",
            f"  Failed: {document.failed}",
            *([f"  Stale (written from an older SOW version): {document.stale}"]
              if document.stale else []),
            *([f"  Not started: {len(document.not_started)}"
               f" ({document.stopped_early})"] if document.not_started else []),
            f"  Not run: {len(document.not_run)}",
            *([f"  Deselected: {len(document.deselected)} (-k, --lf or node ids)"]
              if document.deselected else []),
            f"  Total Duration: {document.duration_human}",
            f"  Total Cost: ${document.total_cost_usd:.4f} USD",
            f"  Total Tokens: {document.total_tokens}",
            f"Summary saved to: {layout.name(layout.summary)}",
            f"Log directory: {self.batch.directory}/",
        ]:
            self.logger.info(line)

    def close(self) -> None:
        for handler in list(self.logger.handlers):
            self.logger.removeHandler(handler)
            handler.close()
