"""`python -m pytest_batchgen merge DIR…`: the batches of a CI matrix as one record.

Each job of a matrix (courses × shards) leaves its batch directories as
artifacts. Merging reads every `batch_summary.json` found under the paths given
and writes, under the output directory:

    batch_<course>_merged/batch_summary.json   one per course, the batch summary's
    batch_<course>_merged/batch_report.html    shape (history and tools read it)
    batch_<course>_audit_merged/…              the same for the course's audits
    catalogue_summary.json                     every course, totals, failures
    batch_report.html                          the same as one page

Generation and audit batches of a course (one log directory holds both as soon
as anyone audits there) are merged apart, each into a directory of its own: an
audit's "passed" is not a generation's "generated".

A lesson run more than once (overlapping shards, a re-run) counts once, with its
result from the latest batch (a re-run's skip of a lesson an earlier batch
authored does not hide that authoring). Summaries of one course from different
plans that disagree about a lesson are refused: they do not describe one course.
A merge replaces only the files a merge writes: nothing else under `--out`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pytest_batchgen.controller.documents import (
    CatalogueCourse,
    CatalogueDocument,
    CatalogueFailure,
    CatalogueTotals,
    DocumentUnreadable,
    MergedSource,
    SummaryDocument,
    read_document,
)
from pytest_batchgen.controller.htmlreport import render, render_catalogue
from pytest_batchgen.controller.summary import Totals, count_fields, spend_fields
from pytest_batchgen.layout import (
    CATALOGUE_FILE,
    SUMMARY_FILE,
    BatchLayout,
    write_json_atomic,
    write_text_atomic,
)
from pytest_batchgen.planning import Mode
from pytest_batchgen.results import LessonResult, Status, format_duration

# Result fields that name a file of the lesson's batch directory.
FILE_FIELDS = ("log_file", "diff_file", "pending_file", "lesson_page")


class MergeError(Exception):
    """One line for the user, exit 2; nothing is written."""


@dataclass(frozen=True)
class Batch:
    """One batch's summary as found among the artifacts."""

    path: Path
    summary: SummaryDocument

    @property
    def name(self) -> str:
        return self.summary.batch_id or self.path.parent.name

    @property
    def sow(self) -> tuple[str, str]:
        sow = self.summary.sow
        return (str(sow.doc_id), str(sow.version)) if sow else ("None", "None")

    @property
    def end(self) -> datetime:
        return self.summary.end_time or self.summary.start_time


def read_batch(file: Path) -> Batch | None:
    """The batch summary in `file`; None for an earlier merge's output (its batches
    are merged from themselves)."""
    try:
        summary = read_document(file, SummaryDocument)
    except DocumentUnreadable as exc:
        raise MergeError(f"{file} {exc}") from None
    return None if summary.merged else Batch(file, summary)


def find_batches(paths: Iterable[Path]) -> list[Batch]:
    """Every batch summary under `paths` (a summary, a batch directory, or any
    directory holding them, such as a CI's downloaded artifacts)."""
    files: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += sorted(path.rglob(SUMMARY_FILE))
        else:
            raise MergeError(f"{path} does not exist")
    batches = [batch for batch in map(read_batch, dict.fromkeys(files)) if batch]
    if not batches:
        raise MergeError(f"no {SUMMARY_FILE} under {', '.join(map(str, paths))}")
    return batches


def check_one_plan(course_id: str, batches: list[Batch]) -> None:
    """Refuse summaries that do not describe one course: plans that give one lesson
    different labels (another SOW, or one edited)."""
    first = batches[0]
    labels = {r.order: (r.label, first) for r in first.summary.results}
    for batch in batches[1:]:
        for result in batch.summary.results:
            label, seen_in = labels.setdefault(result.order, (result.label, batch))
            if label != result.label:
                raise MergeError(
                    f"{course_id}: {seen_in.name} (SOW {' version '.join(seen_in.sow)}) and"
                    f" {batch.name} (SOW {' version '.join(batch.sow)}) disagree about lesson"
                    f" {result.order} ({label!r} vs {result.label!r});"
                    " merge the summaries of one plan")


def _moved(result: LessonResult, batch: Batch, directory: Path) -> LessonResult:
    """A result whose file paths are relative to the merged course's directory, and
    which names the job of the matrix that ran it.

    A lesson's files are in its batch's directory: a path that leads out of it
    (`/etc/passwd`, `../../x`, a link elsewhere) would make the report link to
    whatever it names, so it is left out of the merge."""
    home = batch.path.parent.resolve()
    moved: dict[str, str | None] = {}
    for field in FILE_FIELDS:
        path = getattr(result, field)
        if path:
            target = (home / path).resolve()
            moved[field] = Path(os.path.relpath(target, directory)).as_posix() \
                if target.is_relative_to(home) else None
    return result.model_copy(update={**moved, "shard": batch.summary.shard})


def latest_results(batches: list[Batch]) -> dict[int, tuple[LessonResult, Batch]]:
    """Each lesson's result from the latest batch that ran it, by order; `batches`
    oldest first."""
    latest: dict[int, tuple[LessonResult, Batch]] = {}
    for batch in batches:
        for result in batch.summary.results:
            earlier = latest.get(result.order)
            # A re-run that skipped a lesson an earlier batch authored only found it
            # there: the authoring is the result to report.
            if (earlier and result.status == Status.SKIPPED
                    and earlier[0].status == Status.SUCCESS):
                continue
            latest[result.order] = (result, batch)
    return dict(sorted(latest.items()))


def _orders(batches: list[Batch], *lists: str) -> set[int]:
    """The lessons some batch's summary lists under any of `lists` (not_run, …)."""
    return {order for batch in batches for name in lists
            for order in getattr(batch.summary, name)}


def merge_course(course_id: str, batches: list[Batch], directory: Path) -> SummaryDocument:
    """The course's batches as one summary, in the batch summary's shape."""
    batches = sorted(batches, key=lambda b: b.summary.start_time)
    check_one_plan(course_id, batches)
    latest = latest_results(batches)
    lessons = [_moved(result, batch, directory) for result, batch in latest.values()]
    totals = Totals()
    for lesson in lessons:
        totals.count(lesson)
    run = set(latest)
    not_run = _orders(batches, "not_run") - run
    deselected = _orders(batches, "deselected") - run - not_run
    mentioned = run | _orders(batches, "not_run", "deselected", "in_other_shards")
    # Left to other shards by every batch given: a shard whose artifact is missing.
    not_covered = mentioned - run - not_run - deselected
    not_started = [r for r in lessons if r.status == Status.NOT_STARTED]
    newest = batches[-1].summary
    start = batches[0].summary.start_time
    end = max(b.end for b in batches)
    seconds = (end - start).total_seconds()
    interrupted = any(b.summary.interrupted for b in batches)
    return SummaryDocument(
        batch_id=directory.name,
        courseId=course_id,
        start_time=start,
        end_time=end,
        duration_seconds=round(seconds),
        duration_human=format_duration(seconds),
        force_mode=any(b.summary.force_mode for b in batches),
        dry_run=False,
        mode=newest.mode,
        author=", ".join(sorted({str(b.summary.author) for b in batches})),
        complete=not (not_run or not_started or not_covered or interrupted),
        interrupted=interrupted,
        store=", ".join(sorted({str(b.summary.store) for b in batches})),
        sow=newest.sow,
        total_sow_entries=max(len(mentioned), newest.total_sow_entries),
        # These add up: skipped + generated (or passed) + failed + not_started + not_run
        # + deselected + not_covered = total_sow_entries.
        **count_fields(totals, newest.mode),
        not_started=[r.order for r in not_started],
        not_run=sorted(not_run),
        deselected=sorted(deselected),
        not_covered=sorted(not_covered),
        stopped_early=not_started[0].error if not_started else None,
        changed_lessons=[r.order for r in lessons if r.changed],
        diagrams_removed=sum(len(r.removed_diagrams) for r in lessons),
        pending_files=sorted(r.pending_file for r in lessons if r.pending_file),
        results=lessons,
        # Labels of the lessons no result names (not covered, not run), newest SOW last.
        sow_labels={order: label for b in batches for order, label in b.summary.sow_labels.items()},
        **spend_fields(totals),
        total_cost_usd_all_runs=round(sum(b.summary.total_cost_usd for b in batches), 4),
        lesson_seconds=round(totals.authored_seconds),
        critic_overall_avg=_average([r.critic_overall for r in lessons
                                     if r.critic_overall is not None]),
        log_directory=str(directory),
        merged_from=[MergedSource(batch_id=b.name, summary=str(b.path), shard=b.summary.shard,
                                  start_time=b.summary.start_time) for b in batches],
    )


def _average(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def catalogue(courses: list[SummaryDocument], out: Path, sources: list[Path]
              ) -> CatalogueDocument:
    """The catalogue: a line per course, the totals, and every failure with its log."""
    rows = [CatalogueCourse(
        courseId=c.courseId, mode=c.mode, summary=f"{c.batch_id}/{SUMMARY_FILE}",
        complete=c.complete, generated=c.generated, skipped=c.skipped, failed=c.failed,
        **({"passed": c.passed} if c.passed is not None else {}),
        not_started=len(c.not_started), not_run=len(c.not_run),
        not_covered=len(c.not_covered), total_cost_usd=c.total_cost_usd,
        total_tokens=c.total_tokens, lesson_seconds=c.lesson_seconds,
        critic_overall_avg=c.critic_overall_avg, batches=len(c.merged_from or []))
        for c in courses]
    failures = [CatalogueFailure(
        courseId=c.courseId, mode=c.mode, order=r.order, label=r.label, error=r.error,
        log_file=f"{c.batch_id}/{r.log_file}" if r.log_file else None,
        lesson_page=f"{c.batch_id}/{r.lesson_page}" if r.lesson_page else None)
        for c in courses for r in c.results if r.status == Status.FAILED]
    return CatalogueDocument(
        merged_at=datetime.now(UTC),
        sources=[str(path) for path in sources],
        output=str(out),
        complete=all(c.complete for c in courses),
        courses=rows,
        totals=CatalogueTotals(
            courses=len(courses),
            lessons=sum(c.total_sow_entries for c in courses),
            generated=sum(r.generated for r in rows),
            skipped=sum(r.skipped for r in rows),
            failed=sum(r.failed for r in rows),
            passed=sum(r.passed or 0 for r in rows),
            not_started=sum(r.not_started for r in rows),
            not_run=sum(r.not_run for r in rows),
            not_covered=sum(r.not_covered for r in rows),
            total_cost_usd=round(sum(c.total_cost_usd for c in courses), 4),
            total_cost_usd_all_runs=round(sum(c.total_cost_usd_all_runs for c in courses), 4),
            total_tokens=sum(c.total_tokens for c in courses),
            lesson_seconds=sum(c.lesson_seconds for c in courses)),
        failures=failures,
    )


def earlier_merge_files(out: Path) -> set[Path]:
    """The per-course files an earlier merge wrote into `out`, as its catalogue lists
    them: the only files there, beside the catalogue's own, a merge may replace."""
    try:
        courses = read_document(out / CATALOGUE_FILE, CatalogueDocument).courses
    except DocumentUnreadable:
        return set()
    files: set[Path] = set()
    for course in courses:
        directory = (out / course.summary).parent
        if directory.parent == out and directory.name.startswith("batch_") \
                and directory.name.endswith("_merged"):
            files |= {BatchLayout(directory).summary, BatchLayout(directory).report}
    return files


def replace_earlier_merge(out: Path, staging: Path, written: list[Path]) -> None:
    """Put the files staged for `out` in place of an earlier merge's, one whole file
    at a time (the catalogue last), and remove the earlier merge's files of courses
    this one does not have. Nothing else in `out` is touched: a user's notes, or the
    very inputs of this merge, stay."""
    stale = earlier_merge_files(out)
    for file in written:
        target = out / file.relative_to(staging)
        target.parent.mkdir(exist_ok=True)
        os.replace(file, target)
        stale.discard(target)
    for file in stale:
        file.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # still holds what the merge did not write
            file.parent.rmdir()


def merged_directory(course_id: str, mode: Mode) -> str:
    """A merged course's directory: its generation's, or its audits' beside it."""
    return f"batch_{course_id}_merged" if mode == Mode.GENERATE else \
        f"batch_{course_id}_{mode}_merged"


def merge(paths: list[Path], out: Path) -> CatalogueDocument:
    """Merge the batches under `paths` into `out` (replacing an earlier merge's files
    there, and nothing else); the catalogue document. OSError when `out` cannot be
    written."""
    out = out.resolve()  # `--out .` has no name to stage a directory beside
    if out.exists() and any(out.iterdir()) and not (out / CATALOGUE_FILE).is_file():
        raise MergeError(f"{out} exists and is not the output of a merge; choose --out")
    batches = find_batches(paths)
    by_course: dict[tuple[str, Mode], list[Batch]] = {}
    for batch in batches:
        by_course.setdefault((batch.summary.courseId, batch.summary.mode), []).append(batch)
    # Everything is built and checked before anything is written.
    courses = [merge_course(course_id, found, out / merged_directory(course_id, mode))
               for (course_id, mode), found in sorted(by_course.items())]
    document = catalogue(courses, out, paths)
    # Written beside `out` first: a new `out` is renamed into place, there whole or not
    # at all (paths inside are relative, so they hold after the rename); into an
    # existing one the files move one by one (see replace_earlier_merge).
    # A staging directory of this process's own: two merges at once never write into
    # each other's (one left by a killed merge of the same pid is stale).
    staging = out.with_name(f".{out.name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        written: list[Path] = []
        for course in courses:
            layout = BatchLayout(staging / Path(course.log_directory).name)
            layout.directory.mkdir(parents=True)
            write_json_atomic(layout.summary, course.to_json())
            write_text_atomic(layout.report, render(course))
            written += [layout.summary, layout.report]
        write_json_atomic(staging / CATALOGUE_FILE, document.to_json())
        write_text_atomic(BatchLayout(staging).report, render_catalogue(document))
        written += [staging / CATALOGUE_FILE, BatchLayout(staging).report]
        if out.exists():
            replace_earlier_merge(out, staging, written)
        else:
            staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return document
