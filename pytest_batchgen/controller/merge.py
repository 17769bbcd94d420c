"""`python -m pytest_batchgen merge DIR…`: the batches of a CI matrix as one record.

Each job of a matrix (courses × shards) leaves its batch directories as
artifacts. Merging reads every `batch_summary.json` found under the paths given
and writes, under the output directory:

    batch_<course>_merged/batch_summary.json   one per course, the batch summary's
    batch_<course>_merged/batch_report.html    shape (history and tools read it)
    catalogue_summary.json                     every course, totals, failures
    batch_report.html                          the same as one page

A lesson run more than once (overlapping shards, a re-run) counts once, with its
result from the latest batch (a re-run's skip of a lesson an earlier batch
authored does not hide that authoring). Summaries of one course from different plans that
disagree about a lesson are refused: they do not describe one course.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_batchgen.controller.htmlreport import render, render_catalogue
from pytest_batchgen.controller.summary import Totals
from pytest_batchgen.layout import (
    CATALOGUE_FILE,
    SUMMARY_FILE,
    BatchLayout,
    write_json_atomic,
    write_text_atomic,
)
from pytest_batchgen.results import LessonResult, Status, format_duration

# Result fields that name a file of the lesson's batch directory.
FILE_FIELDS = ("log_file", "diff_file", "pending_file")


class MergeError(Exception):
    """One line for the user, exit 2; nothing is written."""


@dataclass(frozen=True)
class Batch:
    """One batch's summary as found among the artifacts."""

    path: Path
    document: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.document.get("batch_id") or self.path.parent.name)

    @property
    def sow(self) -> tuple[str, str]:
        sow = self.document.get("sow") or {}
        return str(sow.get("doc_id")), str(sow.get("version"))

    def orders(self, key: str) -> set[int]:
        return {int(order) for order in self.document.get(key) or []}


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
    batches = []
    for file in dict.fromkeys(files):
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise MergeError(f"{file} cannot be read as JSON ({type(exc).__name__})") from None
        if not (isinstance(document, dict) and isinstance(document.get("courseId"), str)
                and isinstance(document.get("results"), list) and "start_time" in document):
            raise MergeError(f"{file} is not a batch summary")
        if "merged_from" in document:
            continue  # an earlier merge's output: its batches are merged from themselves
        batches.append(Batch(file, document))
    if not batches:
        raise MergeError(f"no {SUMMARY_FILE} under {', '.join(map(str, paths))}")
    return batches


def check_one_plan(course_id: str, batches: list[Batch]) -> None:
    """Refuse summaries that do not describe one course: an audit beside a generation,
    or plans that give one lesson different labels (another SOW, or one edited)."""
    first = batches[0]
    labels = {r["order"]: (r.get("label"), first) for r in first.document["results"]}
    for batch in batches[1:]:
        if batch.document.get("mode") != first.document.get("mode"):
            raise MergeError(f"{course_id}: {first.name} is a {first.document.get('mode')} run"
                             f" and {batch.name} a {batch.document.get('mode')} run;"
                             " merge the summaries of one kind")
        for result in batch.document["results"]:
            label, seen_in = labels.setdefault(result["order"], (result.get("label"), batch))
            if label != result.get("label"):
                raise MergeError(
                    f"{course_id}: {seen_in.name} (SOW {' version '.join(seen_in.sow)}) and"
                    f" {batch.name} (SOW {' version '.join(batch.sow)}) disagree about lesson"
                    f" {result['order']} ({label!r} vs {result.get('label')!r});"
                    " merge the summaries of one plan")


def _moved(result: dict[str, Any], batch: Batch, directory: Path) -> dict[str, Any]:
    """A result whose file paths are relative to the merged course's directory."""
    moved = dict(result)
    for field in FILE_FIELDS:
        if moved.get(field):
            moved[field] = Path(os.path.relpath(batch.path.parent / moved[field],
                                                directory)).as_posix()
    return moved


def merge_course(course_id: str, batches: list[Batch], directory: Path) -> dict[str, Any]:
    """The course's batches as one summary, in the batch summary's shape."""
    batches = sorted(batches, key=lambda b: str(b.document["start_time"]))
    check_one_plan(course_id, batches)
    latest: dict[int, tuple[dict[str, Any], Batch]] = {}
    for batch in batches:  # oldest first: a later batch's result replaces an earlier one...
        for result in batch.document["results"]:
            earlier = latest.get(int(result["order"]))
            # ...but a re-run that skipped a lesson an earlier batch authored only found
            # it there: the authoring is the result to report.
            if (earlier and result["status"] == Status.SKIPPED
                    and earlier[0]["status"] == Status.SUCCESS):
                continue
            latest[int(result["order"])] = (result, batch)
    results = {order: _moved(result, batch, directory)
               for order, (result, batch) in sorted(latest.items())}
    totals = Totals()
    for result in results.values():
        totals.count(LessonResult.model_validate(result))
    run = set(results)
    not_run = set().union(*(b.orders("not_run") for b in batches)) - run
    deselected = set().union(*(b.orders("deselected") for b in batches)) - run - not_run
    mentioned = run | set().union(*(b.orders(key) for b in batches for key in (
        "not_run", "deselected", "in_other_shards")))
    # Left to other shards by every batch given: a shard whose artifact is missing.
    not_covered = mentioned - run - not_run - deselected
    not_started = sorted(o for o, r in results.items() if r["status"] == Status.NOT_STARTED)
    newest = batches[-1].document
    start = min(str(b.document["start_time"]) for b in batches)
    end = max(str(b.document.get("end_time") or b.document["start_time"]) for b in batches)
    seconds = (_instant(end) - _instant(start)).total_seconds()
    authors = sorted({str(b.document.get("author")) for b in batches})
    statuses = totals.statuses
    return {
        "batch_id": directory.name,
        "courseId": course_id,
        "start_time": start,
        "end_time": end,
        "duration_seconds": round(seconds),
        "duration_human": format_duration(seconds),
        "force_mode": any(b.document.get("force_mode") for b in batches),
        "dry_run": False,
        "mode": newest.get("mode", "generate"),
        "author": ", ".join(authors),
        "complete": not (not_run or not_started or not_covered)
        and not any(b.document.get("interrupted") for b in batches),
        "interrupted": any(b.document.get("interrupted") for b in batches),
        "store": ", ".join(sorted({str(b.document.get("store")) for b in batches})),
        "sow": newest.get("sow"),
        "total_sow_entries": newest.get("total_sow_entries", len(mentioned)),
        # These add up: skipped + generated (or passed) + failed + not_started + not_run
        # + deselected + not_covered = total_sow_entries.
        "skipped": statuses[Status.SKIPPED],
        "generated": statuses[Status.SUCCESS],
        **({"passed": statuses[Status.PASSED]} if newest.get("mode") == "audit" else {}),
        "failed": statuses[Status.FAILED],
        "not_started": not_started,
        "not_run": sorted(not_run),
        "deselected": sorted(deselected),
        "not_covered": sorted(not_covered),
        "stopped_early": next((r.get("error") for r in results.values()
                               if r["status"] == Status.NOT_STARTED), None),
        "changed_lessons": sorted(o for o, r in results.items() if r.get("changed")),
        "diagrams_removed": sum(len(r.get("removed_diagrams", [])) for r in results.values()),
        "pending_files": sorted(r["pending_file"] for r in results.values()
                                if r.get("pending_file")),
        "results": list(results.values()),
        "total_cost_usd": round(totals.cost_usd, 4),
        # What every merged batch spent, lessons run twice included.
        "total_cost_usd_all_runs": round(sum(float(b.document.get("total_cost_usd") or 0)
                                             for b in batches), 4),
        "total_tokens": totals.tokens,
        "lesson_seconds": round(totals.authored_seconds),
        "avg_cost_per_lesson_usd": round(totals.average_cost, 4),
        "avg_duration_per_lesson_seconds": round(totals.average_seconds),
        "critic_overall_avg": _average(r.get("critic_overall") for r in results.values()),
        "log_directory": str(directory),
        "merged_from": [{"batch_id": b.name, "summary": str(b.path),
                         "shard": b.document.get("shard"), "start_time": b.document["start_time"]}
                        for b in batches],
    }


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _average(values: Iterable[Any]) -> float | None:
    numbers = [float(v) for v in values if isinstance(v, int | float)]
    return round(sum(numbers) / len(numbers), 3) if numbers else None


def catalogue(courses: list[dict[str, Any]], out: Path, sources: list[Path]) -> dict[str, Any]:
    """The catalogue: a line per course, the totals, and every failure with its log."""
    keys = ("generated", "skipped", "failed", "passed")
    lists = ("not_started", "not_run", "not_covered")
    rows = [{"courseId": c["courseId"], "summary": f"{c['batch_id']}/{SUMMARY_FILE}",
             "complete": c["complete"], **{k: c[k] for k in keys if k in c},
             **{k: len(c[k]) for k in lists}, "total_cost_usd": c["total_cost_usd"],
             "total_tokens": c["total_tokens"], "lesson_seconds": c["lesson_seconds"],
             "critic_overall_avg": c["critic_overall_avg"],
             "batches": len(c["merged_from"])} for c in courses]
    failures = [{"courseId": c["courseId"], "order": r["order"], "label": r["label"],
                 "error": r.get("error"),
                 "log_file": f"{c['batch_id']}/{r['log_file']}" if r.get("log_file") else None}
                for c in courses for r in c["results"] if r["status"] == Status.FAILED]
    return {
        "merged_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "sources": [str(path) for path in sources],
        "output": str(out),
        "complete": all(c["complete"] for c in courses),
        "courses": rows,
        "totals": {
            "courses": len(courses),
            "lessons": sum(c["total_sow_entries"] for c in courses),
            **{k: sum(r.get(k, 0) for r in rows) for k in (*keys, *lists)},
            "total_cost_usd": round(sum(c["total_cost_usd"] for c in courses), 4),
            "total_cost_usd_all_runs": round(sum(c["total_cost_usd_all_runs"]
                                                 for c in courses), 4),
            "total_tokens": sum(c["total_tokens"] for c in courses),
            "lesson_seconds": sum(c["lesson_seconds"] for c in courses),
        },
        "failures": failures,
    }


def merge(paths: list[Path], out: Path) -> dict[str, Any]:
    """Merge the batches under `paths` into `out` (replacing an earlier merge there);
    the catalogue document. OSError when `out` cannot be written, and then `out` is
    as it was."""
    if out.exists() and any(out.iterdir()) and not (out / CATALOGUE_FILE).is_file():
        raise MergeError(f"{out} exists and is not the output of a merge; choose --out")
    batches = find_batches(paths)
    by_course: dict[str, list[Batch]] = {}
    for batch in batches:
        by_course.setdefault(batch.document["courseId"], []).append(batch)
    # Everything is built and checked before anything is written.
    courses = [merge_course(course_id, found, out / f"batch_{course_id}_merged")
               for course_id, found in sorted(by_course.items())]
    document = catalogue(courses, out, paths)
    # Written beside `out` and renamed into place: a merge is there whole or not at all
    # (paths inside are relative, so they hold after the rename).
    # A staging directory of this process's own: two merges at once never write into
    # each other's (one left by a killed merge of the same pid is stale).
    staging = out.with_name(f".{out.name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for course in courses:
            layout = BatchLayout(staging / Path(course["log_directory"]).name)
            layout.directory.mkdir(parents=True)
            write_json_atomic(layout.summary, course)
            write_text_atomic(layout.report, render(course))
        write_json_atomic(staging / CATALOGUE_FILE, document)
        write_text_atomic(BatchLayout(staging).report, render_catalogue(document))
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return document
