"""BatchSession: the plugin object registered when `--batch-course` is given.

On the controller it reads the store once, plans, asks for confirmation,
creates the batch directories, turns the plan into items and hands the
record keeping to a BatchReporter. On an xdist worker it only rebuilds the
items from the shipped plan and runs them, each lesson logging to its file.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Generator
from datetime import datetime
from pathlib import Path

import pytest

from pytest_batchgen.authors import AuthorUnavailable, LessonAuthor
from pytest_batchgen.batch import CourseBatch, batch_id_for
from pytest_batchgen.controller import BatchReporter
from pytest_batchgen.items import CourseCollector, LessonItem
from pytest_batchgen.lessonlog import capture_lesson_log
from pytest_batchgen.nodeids import lesson_node_name
from pytest_batchgen.planning import (
    DEFAULT_ESTIMATE,
    Action,
    Estimate,
    PlannedLesson,
    estimate,
    plan_audit,
    plan_lessons,
)
from pytest_batchgen.reporting import (
    PLAN_FILE,
    create_batch_directory,
    estimate_lines,
    lesson_log_name,
    load_history,
    plan_document,
    plan_table,
    replacing_lines,
    write_json_atomic,
)
from pytest_batchgen.runner import LessonRunner
from pytest_batchgen.settings import Settings
from pytest_batchgen.store import LessonStore, StoreError

WORKERINPUT_KEY = "batchgen_batches"


class BatchError(Exception):
    """A batch-level problem: one readable line, exit 2, nothing written."""


TAIL_LINES = 8


def tail(text: str, log_file: Path) -> str:
    """The last lines of captured output, and where the rest is."""
    lines = text.rstrip("\n").splitlines()
    if len(lines) <= TAIL_LINES:
        return text
    return "\n".join([f"… {len(lines) - TAIL_LINES} earlier lines; the whole log: {log_file}",
                      *lines[-TAIL_LINES:]]) + "\n"


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


class BatchStop(Exception):
    """End the run before the session starts, with this line and exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


class BatchSession:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.batches: list[CourseBatch] = []
        self.reporter: BatchReporter | None = None
        self.history: list[tuple[float, float]] = []
        self.runner = LessonRunner(self._make_store, self._make_author, settings)
        level = config.getoption("log_level") or config.getini("log_level") or "INFO"
        self.log_level = logging.getLevelName(str(level).upper())
        if not isinstance(self.log_level, int):
            raise pytest.UsageError(f"--log-level: unknown level {level!r}")

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

    # --- start: plan on the controller, receive it on workers ---------------------

    def prepare(self) -> None:
        """On the controller: read the store once, plan, confirm; BatchStop ends the run."""
        try:
            batches = self._plan_batches()
            self._confirm_force(batches)
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
            for batch in batches:
                directory = create_batch_directory(self.settings.log_dir, batch.batch_id)
                self.batches.append(dataclasses.replace(
                    batch, batch_id=directory.name, directory=directory))
            if not self.settings.dry_run:
                self.reporter = BatchReporter(self.settings, self.batches, self.runner,
                                              self.author_name)
        except OSError as exc:
            if self.reporter is not None:
                self.reporter.close()
            for batch in self.batches:
                shutil.rmtree(batch.directory, ignore_errors=True)
            raise BatchStop(f"batchgen: cannot write under {self.settings.log_dir}: {exc}",
                            2) from None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if is_xdist_worker(self.config):
            wire = self.config.workerinput[WORKERINPUT_KEY]  # type: ignore[attr-defined]
            self.batches = [CourseBatch.from_wire(data) for data in wire]
            return
        if self.reporter is not None:
            self.config.pluginmanager.register(self.reporter, "batchgen-reporter")

    @property
    def author_name(self) -> str:
        """Who writes this run's lessons: an audit runs no author (and makes none)."""
        return "audit" if self.settings.audit else self.runner.author.name

    def _plan_batches(self) -> list[CourseBatch]:
        settings = self.settings
        store = self.runner.store
        author = None if settings.audit else self.runner.author
        if author is not None and not settings.dry_run:
            author.check_ready()
            # Before any lesson is paid for: a store that cannot take one is exit 2.
            # (A store a conftest made before this check existed may lack it.)
            getattr(store, "check_writable", lambda: None)()
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
                plan = self._with_diagram_counts(store, plan_lessons(
                    sow.entries, rows, model_version=author.model_version,
                    any_row_counts=author.any_row_counts, force=settings.force))
            self._check_selection(course_id, plan)
            started = datetime.now().astimezone()
            batch_id = batch_id_for(course_id, started)
            batches.append(CourseBatch(
                course_id=course_id,
                sow=sow,
                outcomes=outcomes,
                plan=tuple(plan),
                started=started,
                batch_id=batch_id,
                directory=settings.log_dir / batch_id,  # claimed once confirmed
                store_description=store.description,
                mode="audit" if settings.audit else "generate",
            ))
        return batches

    @staticmethod
    def _with_diagram_counts(store: LessonStore, plan: list[PlannedLesson]
                             ) -> list[PlannedLesson]:
        """How many diagrams hang on each row the run will overwrite (for the plan and
        the prompt); one store read, only when something is overwritten."""
        rows = [p.existing.doc_id for p in plan if p.replaces_row and p.existing]
        if not rows:
            return plan
        counts = Counter(diagram.lesson_row_id for diagram in store.list_diagrams(rows))
        return [dataclasses.replace(p, diagrams=counts[p.existing.doc_id])
                if p.replaces_row and p.existing else p for p in plan]

    def _check_selection(self, course_id: str, plan: list[PlannedLesson]) -> None:
        orders = {p.order for p in plan}
        for course, order in self.settings.selection:
            if course == course_id and order is not None and order not in orders:
                raise BatchError(
                    f"{course_id}::{lesson_node_name(order)} is not in the SOW of {course_id}"
                    f" (lessons {plan[0].order}-{plan[-1].order})"
                )

    def _estimate(self, lessons: int) -> Estimate:
        """From this author's earlier lessons here; without any, from the author's own
        figures (the outline author takes no time and costs nothing)."""
        author = None if self.settings.audit else self.runner.author
        defaults = getattr(author, "default_estimate", None) or DEFAULT_ESTIMATE
        return estimate(lessons, self.history, defaults)

    def _confirm_force(self, batches: list[CourseBatch]) -> None:
        """Spec §2.3: list what will be overwritten and ask, unless --batch-yes."""
        if not self.settings.force or self.settings.dry_run or self.settings.yes:
            return
        # Only what this run will touch: node ids and -k narrow it. Collection (and
        # with it pytest's own -k) comes later, so -k is matched here as pytest will.
        matches = keyword_matcher(self.config)
        chosen = [(b, [p for p in b.plan if self._in_selection(b.course_id, p.order)
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
                f"Will overwrite: {to_author} lessons (including {len(lessons)} existing)",
                *replacing_lines(plan, self.settings.keep_diagrams),
                *estimate_lines(self._estimate(to_author)),
                "",
            ]
        capture = self.config.pluginmanager.getplugin("capturemanager")
        # Capture replaces stdin (down to fd 0): look at the real one.
        capture.suspend_global_capture(in_=True)
        try:
            if not sys.stdin.isatty() or os.environ.get("CI"):
                raise BatchError(
                    "--batch-force would overwrite existing lessons and there is no terminal"
                    " to confirm on; pass --batch-yes to confirm"
                )
            print("\n".join(lines))
            answer = input("Are you ABSOLUTELY SURE you want to proceed? [y/N]: ")
        except EOFError:
            answer = ""
        except KeyboardInterrupt:
            print()  # end the prompt's line before prepare() reports
            raise
        finally:
            capture.resume_global_capture()
        if answer.strip().lower() not in ("y", "yes"):
            raise BatchStop("Cancelled: nothing was written", 0)

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
                selected = self._in_selection(item.batch.course_id, item.lesson.order)
                (chosen if selected else dropped).append(item)
            hook.pytest_deselected(items=dropped)
            items = chosen
        hook.pytest_collection_modifyitems(session=session, config=session.config, items=items)
        session.items = items
        session.testscollected = len(items)
        hook.pytest_collection_finish(session=session)
        return True

    def _in_selection(self, course_id: str, order: int) -> bool:
        return not self.settings.selection or any(
            course == course_id and named in (None, order)
            for course, named in self.settings.selection)

    def _as_collected(self, batch: CourseBatch, items: list[pytest.Item]) -> CourseBatch:
        """The batch as this run will touch it: only the lessons collected and selected
        (node ids, -k, --lf, --deselect), so the plan and its estimates describe them."""
        orders = {item.lesson.order for item in items
                  if isinstance(item, LessonItem) and item.batch.course_id == batch.course_id}
        return dataclasses.replace(batch, plan=tuple(p for p in batch.plan if p.order in orders))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not self.settings.dry_run or is_xdist_worker(self.config):
            return
        for batch in self.batches:
            shown = self._as_collected(batch, session.items)
            document = plan_document(shown, self.settings.force, self._estimate(shown.to_author))
            document["deselected"] = sorted({p.order for p in batch.plan}
                                            - {p.order for p in shown.plan})
            write_json_atomic(batch.directory / PLAN_FILE, document)

    def pytest_report_collectionfinish(self, config: pytest.Config,
                                       items: list[pytest.Item]) -> list[str]:
        if not self.settings.dry_run:
            return []
        lines = []
        for batch in self.batches:
            shown = self._as_collected(batch, items)
            lines += [
                "",
                "╔" + "═" * 64 + "╗",
                "║" + "Batch Generation Plan - DRY RUN".center(64) + "║",
                "╚" + "═" * 64 + "╝",
                "",
                *plan_table(shown, self.settings.force, self._estimate(shown.to_author),
                            self.settings.keep_diagrams),
                *([f"Deselected: {batch.total - len(shown.plan)} lessons (node ids, -k, --lf)"]
                  if len(shown.plan) < batch.total else []),
                "",
                f"✓ Dry-run plan saved to: {batch.directory / PLAN_FILE}",
            ]
        lines += ["", "No lessons were generated (dry-run mode)."]
        return lines

    # --- running: per-lesson log capture -----------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        if not isinstance(item, LessonItem) or not item.lesson.runs_author:
            return (yield)
        path = item.batch.directory / lesson_log_name(item.lesson.order)
        with capture_lesson_log(path, self.log_level):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """A failed lesson's report shows its reason and the end of its log, not the
        agent's whole trace (kilobytes per lesson); the full trace is in its log file."""
        report = yield
        if isinstance(item, LessonItem) and report.failed:
            path = item.batch.directory / lesson_log_name(item.lesson.order)
            report.sections = [(title, tail(text, path)) if title.startswith("Captured log")
                               else (title, text) for title, text in report.sections]
        return report

    def pytest_unconfigure(self) -> None:
        # After every sessionfinish (the reporter may read the store then).
        self.runner.close()
