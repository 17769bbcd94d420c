"""The start of a batch, on the controller: read the store once, plan every course,
confirm a force run, then claim the batch directories.

Everything here happens before pytest's session starts, so a problem is one
line and exit 2 with nothing written.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from pytest_batchgen.authors import LessonAuthor
from pytest_batchgen.batch import CourseBatch, batch_id_for
from pytest_batchgen.controller.planfile import estimate_lines, replacing_lines
from pytest_batchgen.controller.summary import History, load_history
from pytest_batchgen.layout import claim_batch_directory
from pytest_batchgen.nodeids import lesson_node_name
from pytest_batchgen.planning import (
    DEFAULT_ESTIMATE,
    Action,
    Estimate,
    Mode,
    PlannedLesson,
    estimate,
    plan_audit,
    plan_lessons,
    shard_of,
    split_shard,
)
from pytest_batchgen.results import plural
from pytest_batchgen.settings import Settings
from pytest_batchgen.store import LessonStore


class BatchError(Exception):
    """A batch-level problem: one readable line, exit 2, nothing written."""


class BatchStop(Exception):
    """End the run before the session starts, with this line and exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def keyword_matcher(config: pytest.Config) -> Callable[[str, int, str], bool]:
    """`-k` as pytest will apply it to a lesson item (course, node name, label), for
    decisions made before collection. Built on pytest's own matcher; should that
    ever move, every lesson counts, and collection still applies -k."""
    expression = (config.option.keyword or "").strip()
    try:
        from _pytest.mark import KeywordMatcher
        from _pytest.mark.expression import Expression

        compiled = Expression.compile(expression) if expression else None
    except Exception:  # an unknown pytest, or a bad -k that collection will report
        compiled = None
    if compiled is None:
        return lambda course, order, label: True

    def matches(course: str, order: int, label: str) -> bool:
        return compiled.evaluate(KeywordMatcher({course, lesson_node_name(order), label}))

    return matches


def no_outcomes_message(course_id: str, store: LessonStore) -> str:
    """A course without outcomes: no lesson's outcome refs could resolve."""
    how = ("load them with: python -m pytest_batchgen load-outcomes FILE (a JSON list of"
           " course_outcomes rows)" if not store.shared else
           "add the course's rows to the course_outcomes table")
    return (f"course {course_id} has no course_outcomes rows in {store.description}, so no"
            f" lesson's outcome refs can be checked (a learner's session needs them); {how}")


class BatchPlanner:
    """Plans a run's courses from the store; `author` is None for an audit."""

    def __init__(self, config: pytest.Config, settings: Settings, store: LessonStore,
                 author: LessonAuthor | None) -> None:
        self.config = config
        self.settings = settings
        self.store = store
        self.author = author
        # An audit runs no author: the records name its mode where an author would be.
        self.author_name = Mode.AUDIT.value if author is None else author.name
        self.history = History()

    def plan(self) -> list[CourseBatch]:
        settings, store, author = self.settings, self.store, self.author
        if author is not None and not settings.dry_run:
            author.check_ready()
            # Before any lesson is paid for: a store that cannot take one is exit 2.
            store.check_writable()
            if author.any_row_counts and store.shared and not settings.allow_drafts:
                raise BatchError(
                    f"the {author.name} author writes drafts, and the platform reads"
                    f" {store.description} as finished lessons (its own tools would never"
                    " author the real ones); pass --batch-allow-drafts to write drafts there")
        self.history = load_history(settings.log_dir, self.author_name)
        batches = []
        for course_id in settings.courses:
            sow = store.fetch_sow(course_id, status=settings.sow_status)
            outcomes = store.fetch_outcomes(course_id)
            if not outcomes:
                raise BatchError(no_outcomes_message(course_id, store))
            rows = store.list_lessons(course_id)
            if author is None:
                plan = plan_audit(sow.entries, rows)
            else:
                plan = self._with_diagram_counts(plan_lessons(
                    sow.entries, rows, model_version=author.model_version,
                    any_row_counts=author.any_row_counts, force=settings.force))
            self._check_selection(course_id, plan)
            plan, other_shards = split_shard(plan, settings.shard)
            started = datetime.now().astimezone()
            batch_id = batch_id_for(course_id, started, settings.shard)
            batches.append(CourseBatch(
                course_id=course_id,
                sow=sow,
                outcomes=outcomes,
                plan=tuple(plan),
                started=started,
                batch_id=batch_id,
                directory=settings.log_dir / batch_id,  # claimed once confirmed
                store_description=store.description,
                mode=Mode.AUDIT if author is None else Mode.GENERATE,
                shard=settings.shard,
                other_shards=other_shards,
            ))
        return batches

    def _with_diagram_counts(self, plan: list[PlannedLesson]) -> list[PlannedLesson]:
        """How many diagrams hang on each row the run will overwrite (for the plan and
        the prompt); one store read, only when something is overwritten."""
        rows = [p.existing.doc_id for p in plan if p.replaces_row and p.existing]
        if not rows:
            return plan
        counts = Counter(diagram.lesson_row_id for diagram in self.store.list_diagrams(rows))
        return [dataclasses.replace(p, diagrams=counts[p.existing.doc_id])
                if p.replaces_row and p.existing else p for p in plan]

    def _check_selection(self, course_id: str, plan: list[PlannedLesson]) -> None:
        """A lesson named on the command line that this run could not run is an error."""
        orders = {p.order for p in plan}
        shard = self.settings.shard
        for course, order in self.settings.selection:
            if course != course_id or order is None:
                continue
            if order not in orders:
                raise BatchError(
                    f"{course_id}::{lesson_node_name(order)} is not in the SOW of {course_id}"
                    f" (lessons {plan[0].order}-{plan[-1].order})"
                )
            if shard and shard_of(order, shard[1]) != shard[0]:
                raise BatchError(
                    f"{course_id}::{lesson_node_name(order)} is in shard"
                    f" {shard_of(order, shard[1])}/{shard[1]}, not in this run's"
                    f" --batch-shard={shard[0]}/{shard[1]}")

    def estimate(self, lessons: int) -> Estimate:
        """From this author's earlier lessons here; without any, from the author's own
        figures (the outline author takes no time and costs nothing)."""
        defaults = DEFAULT_ESTIMATE if self.author is None else self.author.default_estimate
        return dataclasses.replace(estimate(lessons, self.history.lessons, defaults),
                                   passed_over=self.history.passed_over)

    def confirm_force(self, batches: list[CourseBatch]) -> None:
        """List what will be overwritten and ask, unless --batch-yes."""
        settings = self.settings
        if not settings.force or settings.dry_run or settings.yes:
            return
        # Only what this run will touch: node ids and -k narrow it. Collection (and
        # with it pytest's own -k) comes later, so -k is matched here as pytest will.
        matches = keyword_matcher(self.config)
        chosen = [(b, [p for p in b.plan if settings.selects(b.course_id, p.order)
                       and matches(b.course_id, p.order, p.label)]) for b in batches]
        if not any(p.action is Action.OVERWRITE for _, plan in chosen for p in plan):
            return
        lines = ["", "⚠️  WARNING: Force mode will OVERWRITE existing lessons", ""]
        for batch, plan in chosen:
            lessons = [p for p in plan if p.action is Action.OVERWRITE]
            to_author = sum(1 for p in plan if p.runs_author)
            lines += [
                f"Course ID: {batch.course_id}",
                f"Total SOW entries: {batch.total}",
                f"Existing lessons found: {len(lessons)}"
                f" (orders: {', '.join(str(p.order) for p in lessons)})",
                f"Will overwrite: {plural(to_author, 'lesson')} (including {len(lessons)}"
                " existing)",
                *replacing_lines(plan, settings.keep_diagrams),
                *estimate_lines(self.estimate(to_author)),
                "",
            ]
        if input_from_terminal(self.config, "\n".join(lines)) not in ("y", "yes"):
            raise BatchStop("Cancelled: nothing was written", 0)


def input_from_terminal(config: pytest.Config, text: str) -> str:
    """Print `text` and read the answer to the force prompt, lower-cased."""
    capture = config.pluginmanager.getplugin("capturemanager")
    # Capture replaces stdin (down to fd 0): look at the real one. The prompt runs from
    # pytest_cmdline_main, where pytest has already suspended its global capture after
    # loading the initial conftests, and resumes it itself for each phase: resuming it
    # here would capture the terminal for the rest of the run (the session header and
    # every lesson's line were lost after a "y").
    capture.suspend_global_capture(in_=True)
    try:
        if not sys.stdin.isatty() or os.environ.get("CI"):
            raise BatchError(
                "--batch-force would overwrite existing lessons and there is no terminal"
                " to confirm on; pass --batch-yes to confirm"
            )
        print(text)
        answer = input("Are you ABSOLUTELY SURE you want to proceed? [y/N]: ")
    except EOFError:
        answer = ""
    except KeyboardInterrupt:
        print()  # end the prompt's line before the run reports
        raise
    return answer.strip().lower()


def claim_directories(log_dir: Path, batches: list[CourseBatch]) -> list[CourseBatch]:
    """Each batch with the directory it now owns (`_2` when a run in the same second
    has its name). OSError when one cannot be made (a full disk), and then none is left.
    """
    claimed: list[CourseBatch] = []
    try:
        for batch in batches:
            directory = claim_batch_directory(log_dir, batch.batch_id)
            claimed.append(dataclasses.replace(batch, batch_id=directory.name,
                                               directory=directory))
    except OSError:
        release_directories(claimed)
        raise
    return claimed


def release_directories(batches: list[CourseBatch]) -> None:
    for batch in batches:
        shutil.rmtree(batch.directory, ignore_errors=True)
