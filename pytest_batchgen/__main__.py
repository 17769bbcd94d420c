"""`python -m pytest_batchgen`: set up and inspect the embedded store.

    load-sow FILE [--course ID] [--status S]   load a SOW JSON file (and its outcomes)
    load-outcomes FILE [--course ID]            load a course's course_outcomes rows
    load-lesson FILE [--course ID]              import lesson rows (one or a list) to audit
    load-demo                                   load the shipped demo course
    show-lesson COURSE ORDER                    print a stored lesson, decoded
    write-pending BATCH_DIR                     write what a batch authored but could
                                                not write (its pending/ rows)
    merge DIR... [--out DIR]                    the batches of a CI matrix (their
          [--allow-incomplete]                  directories, or any directory holding
                                                them) as one record per course and one
                                                catalogue; exit 1 when it has failures
                                                or gaps
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from pytest_batchgen.contract import SOW_ORDER
from pytest_batchgen.controller.documents import DocumentUnreadable, SummaryDocument, read_document
from pytest_batchgen.controller.merge import MergeError, merge
from pytest_batchgen.defaults import DEFAULT_DATABASE, DEFAULT_MCP_CONFIG
from pytest_batchgen.digits import whole_number
from pytest_batchgen.layout import CATALOGUE_FILE, BatchLayout
from pytest_batchgen.lesson import CLAUDE_MODEL_VERSION, LESSON_COLUMNS, row_as_stored
from pytest_batchgen.nodeids import is_course_id, parse_node_id
from pytest_batchgen.results import plural
from pytest_batchgen.settings import DEFAULT_LOG_DIR, DEFAULT_STORE, from_dir, project_setup
from pytest_batchgen.sow import (
    SOW_STATUSES,
    SowError,
    decode_entries_field,
    parse_entries,
    parse_metadata,
)
from pytest_batchgen.store import (
    AppwriteOptions,
    StoreError,
    WriteResult,
    choose_row_to_update,
    lesson_row_id,
)
from pytest_batchgen.store.default import open_default_store
from pytest_batchgen.store.sqlite import SqliteStore
from pytest_batchgen.worker.pending import pending_lessons, refusal, write_pending

DEMO_COURSE = "course_demo1"
# Appwrite's custom row ids. \Z, not `$` (which matches before a final newline): a
# match is whole with .match or .fullmatch alike.
ROW_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,35}\Z")


class CommandError(Exception):
    """One line for the user, exit 2."""


def sow_row_from_document(
    document: Any, course: str | None, status: str | None
) -> dict[str, Any]:
    """Both shapes found in the wild: an `Authored_SOW` row export or `{metadata, entries}`."""
    if not isinstance(document, dict) or "entries" not in document:
        raise CommandError("the file is not a SOW: expected an object with 'entries'")
    course_id = course or document.get("courseId")
    if not course_id:
        raise CommandError("the file names no courseId: pass --course ID")
    check_course_id(course_id)
    entries = decode_entries_field(document["entries"])
    parse_entries(entries)  # refuse a SOW the batch could not use, before storing it
    version = document.get("version", "1")
    if isinstance(version, bool) or not isinstance(version, str | int) or not str(version):
        raise CommandError(f"version must be text or a whole number, got {version!r}")
    status = status or document.get("status") or "published"
    if status not in SOW_STATUSES:
        raise CommandError(f"status must be one of {', '.join(SOW_STATUSES)}, got {status!r}")
    metadata = document.get("metadata") or {}
    if not isinstance(metadata, dict | str):
        raise CommandError(f"metadata must be an object, got {type(metadata).__name__}")
    parse_metadata(metadata)  # refuse what every later run of the course would fail to read
    # A file loaded under another course is a copy: its row ids are the other course's.
    row_id = (None if moved_from(document, course_id) else document.get("$id")) \
        or f"sow_{course_id}"
    if not isinstance(row_id, str) or not ROW_ID.fullmatch(row_id):
        raise CommandError(f"$id must be a row id (up to 36 of A-Z a-z 0-9 . _ -), got"
                           f" {row_id!r}")
    return {
        "$id": row_id,
        "courseId": course_id,
        "version": str(version),
        "status": status,
        "entries": json.dumps(entries, ensure_ascii=False),
        "metadata": metadata,
        "accessibility_notes": str(document.get("accessibility_notes") or ""),
    }


def pytest_setting(name: str, default: str, *, path: bool = True) -> str:
    """An option's value as pytest run from here takes it when its command line gives
    none: the ini key, else the default; a path from the ini file's directory (else
    the rootdir). So `load-sow` in a subdirectory fills the store pytest reads, and
    write-pending writes to the store the batches use."""
    try:
        directory, ini = project_setup(Path.cwd())
    except pytest.UsageError as exc:  # an ini file pytest itself could not read
        raise CommandError(str(exc)) from None
    value = ini.get(name, default)
    return from_dir(value, directory) if path else value


def check_course_id(course_id: Any) -> str:
    if not is_course_id(course_id):
        raise CommandError(f"{course_id!r} is not a course id (course_ + ASCII letters and"
                           " digits)")
    return course_id


def moved_from(row: dict[str, Any], course_id: str) -> bool:
    """Whether a row of a file names another course than the one it is loaded for."""
    return row.get("courseId") not in (None, "", course_id)


def outcome_rows(rows: Any, course: str | None, where: str) -> dict[str, list[dict[str, Any]]]:
    """`course_outcomes` rows grouped by course: each an object with an outcomeId and,
    unless --course names it, its courseId."""
    if isinstance(rows, dict) and isinstance(rows.get("outcomes"), list):
        rows = rows["outcomes"]  # the shape the Claude author's workspace holds
    if not isinstance(rows, list) or not rows:
        raise CommandError(f"{where} must be a non-empty list of course_outcomes rows")
    grouped: dict[str, list[dict[str, Any]]] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("outcomeId"), str) \
                or not row["outcomeId"].strip():
            raise CommandError(f"{where}[{index}] is not a course_outcomes row (an object"
                               " with an outcomeId)")
        course_id = check_course_id(course or row.get("courseId"))
        if moved_from(row, course_id):  # a copy for another course gets its own row ids
            row = {key: value for key, value in row.items() if key != "$id"}
        grouped.setdefault(course_id, []).append({**row, "courseId": course_id})
    return grouped


def load_document(store: SqliteStore, document: Any, course: str | None,
                  status: str | None) -> str:
    row = sow_row_from_document(document, course, status)
    course_id = row["courseId"]
    outcomes = None
    if document.get("outcomes") is not None:
        # The SOW's own course id wins over any the rows name: they come with it.
        outcomes = outcome_rows(document["outcomes"], course_id, "outcomes")[course_id]
    store.save_sow(row, outcomes)  # the SOW and its outcomes, or neither
    entries = json.loads(row["entries"])
    return (f"Loaded SOW {row['$id']} for {course_id}: {len(entries)} entries,"
            f" status {row['status']}, version {row['version']}"
            + (f", {len(outcomes)} outcomes" if outcomes else "")
            + f" -> {store.description}")


def read_json_file(name: str) -> Any:
    try:
        return json.loads(Path(name).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"cannot read {name}: {exc.strerror}") from exc
    except (ValueError, RecursionError) as exc:
        raise CommandError(f"{name} is not valid JSON: {exc}") from exc


def command_load_sow(args: argparse.Namespace, store: SqliteStore) -> str:
    document = read_json_file(args.file)
    if isinstance(document, list):
        raise CommandError(f"{args.file} is a list, not a SOW; for course_outcomes rows use"
                           f" load-outcomes {args.file}")
    return load_document(store, document, args.course, args.status)


def command_load_outcomes(args: argparse.Namespace, store: SqliteStore) -> str:
    grouped = outcome_rows(read_json_file(args.file), args.course, args.file)
    store.save_outcomes(grouped)
    return "; ".join(
        f"Loaded {len(rows)} outcomes for {course_id}"
        f" (outcome ids: {', '.join(sorted({r['outcomeId'] for r in rows}))})"
        for course_id, rows in grouped.items()) + f" -> {store.description}"


def lesson_rows_of(document: Any, course: str | None,
                   where: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Exported `lesson_templates` rows (one object or a list; JSON columns decoded, as
    the platform's lesson example has them, or encoded as stored), encoded as stored;
    and the keys that are no column of the table (left out).

    Only what ties a row to its SOW entry must be right (its course and order); the
    rest is kept as it is, broken or not, for the audit to judge. A row without a `$id`
    gets its lesson's fixed row id, so loading a file again replaces, never duplicates.
    """
    rows = document if isinstance(document, list) else [document]
    if not rows:
        raise CommandError(f"{where} holds no lesson rows")
    loaded: dict[str, dict[str, Any]] = {}
    for index, row in enumerate(rows):
        at = f"{where}[{index}]" if isinstance(document, list) else where
        if not isinstance(row, dict):
            raise CommandError(f"{at} is not a lesson row (an object)")
        try:
            course_id = check_course_id(course or row.get("courseId"))
        except CommandError as exc:
            raise CommandError(f"{exc}; pass --course ID to load it under another course"
                               ) from None
        order = row.get("sow_order")
        if isinstance(order, bool) or not isinstance(order, int) or not (
                SOW_ORDER.low <= order <= SOW_ORDER.high):
            raise CommandError(f"{at}: sow_order must be a whole number from {SOW_ORDER.low} to"
                               f" {SOW_ORDER.high},"
                               f" got {order!r}")
        row_id = row.get("$id") or lesson_row_id(course_id, order)
        if not isinstance(row_id, str) or not ROW_ID.fullmatch(row_id):
            raise CommandError(f"{at}: $id must be a row id (up to 36 of A-Z a-z 0-9 . _ -),"
                               f" got {row_id!r}")
        if row_id in loaded:
            raise CommandError(f"{at}: a second row for {course_id} order {order} without"
                               " its own $id; give each row its $id")
        loaded[row_id] = {**row_as_stored({**row, "courseId": course_id}), "$id": row_id,
                          **{key: row[key] for key in ("$createdAt", "$updatedAt")
                             if isinstance(row.get(key), str)}}
    ignored = {key for row in rows for key in row
               if key not in LESSON_COLUMNS and not key.startswith("$")}
    return list(loaded.values()), sorted(ignored)


def command_load_lesson(args: argparse.Namespace, store: SqliteStore) -> str:
    rows, ignored = lesson_rows_of(read_json_file(args.file), args.course, args.file)
    store.save_lessons(rows)
    lessons = ", ".join(f"{row['courseId']} order {row['sow_order']} (row {row['$id']})"
                        for row in rows)
    return (f"Loaded {plural(len(rows), 'lesson row')}: {lessons}"
            + (f"; not lesson_templates columns, left out: {', '.join(ignored)}"
               if ignored else "")
            + f" -> {store.description}; audit with pytest --batch-course=ID --batch-audit")


def command_load_demo(args: argparse.Namespace, store: SqliteStore) -> str:
    text = resources.files("pytest_batchgen.demo").joinpath(f"{DEMO_COURSE}.json").read_text(
        encoding="utf-8"
    )
    return load_document(store, json.loads(text), None, None)


def lesson_named(args: argparse.Namespace) -> tuple[str, int]:
    """The lesson `show-lesson` names: `COURSE ORDER`, or the node id a run prints
    (`course_x::lesson_006`)."""
    if args.order is None:
        parsed = parse_node_id(args.course)
        if parsed is None:
            raise CommandError(f"{args.course!r} names no lesson: give COURSE ORDER or a node"
                               " id such as course_c84874::lesson_006")
        return check_course_id(parsed[0]), parsed[1]
    order = whole_number(args.order)
    if order is None:
        raise CommandError(f"ORDER must be a whole number, got {args.order!r}")
    return check_course_id(args.course), order


def command_show_lesson(args: argparse.Namespace, store: SqliteStore) -> str:
    course_id, order = lesson_named(args)
    rows = [row for row in store.list_lessons(course_id) if row.sow_order == order]
    if not rows:
        raise CommandError(f"no lesson for {course_id} order {order} in {store.description}")
    # Of several rows, the one a batch of the Claude author would update.
    chosen = choose_row_to_update(rows, CLAUDE_MODEL_VERSION)
    if len(rows) > 1:
        print(f"{len(rows)} rows for this lesson; showing {chosen.doc_id}, not"
              f" {', '.join(r.doc_id for r in rows if r is not chosen)}", file=sys.stderr)
    row = store.read_lesson(chosen.doc_id)
    if row is None:
        raise CommandError(f"lesson row {chosen.doc_id} went away while being read")
    try:
        # The row id first: what the platform, the summary and JUnit call the lesson.
        return json.dumps({"$id": chosen.doc_id, **row.decoded()}, indent=2,
                          ensure_ascii=False)
    except (ValueError, RecursionError) as exc:
        raise CommandError(f"the lesson {course_id} order {order} cannot be decoded"
                           f" ({exc}); --batch-audit lists what else it breaks") from None


def batch_of(directory: Path) -> tuple[str, str]:
    """The course and SOW status a batch directory's summary names."""
    layout = BatchLayout(directory)
    try:
        summary = read_document(layout.summary, SummaryDocument)
    except DocumentUnreadable as exc:
        raise CommandError(f"{directory} is not a batch directory: {layout.summary} {exc}"
                           ) from None
    status = summary.sow.status if summary.sow else None
    if not is_course_id(summary.courseId) or status not in SOW_STATUSES:
        raise CommandError(f"{layout.summary} names no course and SOW")
    return summary.courseId, str(status)


def command_write_pending(args: argparse.Namespace) -> tuple[str, int]:
    """Write what a batch authored but could not write; (report, exit code).

    Each row passes the gate every lesson passes before a write (the contract, the
    course's outcomes, what its entry asks, read from the store now), as its batch's
    course and lesson only; then the write-time decision. The store is the one the
    command line or the ini names, as for the batch: never the one the file names."""
    directory = Path(args.batch_dir)
    if not directory.is_dir():
        raise CommandError(f"{directory} is not a batch directory")
    try:
        found = pending_lessons(BatchLayout(directory))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if not found:
        return f"no pending lessons in {directory}", 0
    course_id, status = batch_of(directory)
    store = open_default_store(
        args.store or pytest_setting("batch_store", DEFAULT_STORE),
        AppwriteOptions(database=args.appwrite_database or pytest_setting(
                            "batch_appwrite_database", DEFAULT_DATABASE, path=False),
                        mcp_config=Path(args.mcp_config or pytest_setting(
                            "batch_mcp_config", DEFAULT_MCP_CONFIG))))
    lines, kept = [], 0
    try:
        drafts = [path.name for path, lesson in found if lesson.drafting]
        if drafts and store.shared and not args.allow_drafts:
            raise CommandError(
                f"{', '.join(drafts)} {'hold' if len(drafts) > 1 else 'holds'} outline"
                " drafts, and the platform reads"
                f" {store.description} as finished lessons; pass --allow-drafts to write"
                " drafts there, as --batch-allow-drafts lets a batch")
        sow = store.fetch_sow(course_id, status=status)
        outcomes = store.fetch_outcomes(course_id)
        for path, lesson in found:
            refused = refusal(path, lesson, course_id, sow, outcomes)
            written = (write_pending(store, path, lesson) if not refused
                       else WriteResult(doc_id="", created=False, skipped=f"refused: {refused}"))
            kept += bool(written.skipped)
            lines.append(f"{path.name}: " + (f"kept: {written.skipped}" if written.skipped else
                                             ("created" if written.created else "updated")
                                             + f" row {written.doc_id}"))
    finally:
        store.close()
    lines.append(f"{len(found) - kept} written, {kept} kept -> {store.description}")
    return "\n".join(lines), 1 if kept else 0


def command_merge(args: argparse.Namespace) -> tuple[str, int]:
    """The merge's lines, and its exit code: 1 when the catalogue cannot be published as
    it is (a lesson failed, or lacks a result) unless --allow-incomplete."""
    out = Path(args.out) if args.out else (
        Path(pytest_setting("batch_log_dir", DEFAULT_LOG_DIR))
        / f"merged_{datetime.now().strftime('%Y%m%d_%H%M%S')}")
    try:
        document = merge([Path(path) for path in args.paths], out)
    except MergeError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"cannot write the merge under {out}: {exc.strerror or exc}"
                           ) from None
    lines = []
    for course in document.courses:
        done = (f"passed {course.passed}" if course.passed is not None
                else f"generated {course.generated}")
        lines.append(f"{course.courseId}: {done}, skipped {course.skipped},"
                     f" failed {course.failed}, not run"
                     f" {course.not_started + course.not_run}, not covered"
                     f" {course.not_covered} | cost ${course.total_cost_usd:.4f},"
                     f" tokens {course.total_tokens} ({course.batches} batches)")
    totals = document.totals
    lines += [f"{plural(totals.courses, 'course')}, {plural(totals.lessons, 'lesson')}:"
              f" {'complete' if document.complete else 'incomplete'};"
              f" {len(document.failures)} failed",
              f"catalogue: {out / CATALOGUE_FILE}",
              f"report:    {BatchLayout(out).report}"]
    unfinished = bool(document.failures) or not document.complete
    return "\n".join(lines), int(unfinished and not args.allow_incomplete)


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m pytest_batchgen", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    main.add_argument("--store", help=f"store URL (default {DEFAULT_STORE}, from the pytest"
                      " ini file's directory as pytest takes it; write-pending: the store"
                      " the batch used)")
    commands = main.add_subparsers(dest="command", required=True)
    load = commands.add_parser("load-sow", help="load a SOW JSON file into the store")
    load.add_argument("file", help="an Authored_SOW row export, or {metadata, entries} (JSON)")
    load.add_argument("--course", help="course id, when the file names none")
    load.add_argument("--status", choices=SOW_STATUSES,
                      help="store with this status instead of the file's")
    load.set_defaults(run=command_load_sow)
    outcomes = commands.add_parser(
        "load-outcomes", help="load course_outcomes rows (a JSON list) into the store")
    outcomes.add_argument("file", help="a JSON list of course_outcomes rows")
    outcomes.add_argument("--course", help="course id for every row (default: each row's)")
    outcomes.set_defaults(run=command_load_outcomes)
    lessons = commands.add_parser(
        "load-lesson", help="import lesson_templates rows (a JSON object or list) to audit")
    lessons.add_argument("file", help="lesson_templates rows: one JSON object or a list")
    lessons.add_argument("--course", help="course id for every row (default: each row's)")
    lessons.set_defaults(run=command_load_lesson)
    demo = commands.add_parser("load-demo", help=f"load the shipped demo course {DEMO_COURSE}")
    demo.set_defaults(run=command_load_demo)
    show = commands.add_parser("show-lesson", help="print a stored lesson with cards decoded")
    show.add_argument("course", metavar="COURSE|NODE_ID",
                      help="a course id (then ORDER), or a lesson's node id as a run prints it"
                      " (course_c84874::lesson_006)")
    show.add_argument("order", nargs="?", metavar="ORDER", help="the lesson's order in the SOW")
    show.set_defaults(run=command_show_lesson)
    pending = commands.add_parser(
        "write-pending", help="write the lessons a batch authored but could not write")
    pending.add_argument("batch_dir", help="the batch directory whose pending/ rows to write")
    pending.add_argument("--mcp-config",
                         help="Appwrite settings, as --batch-mcp-config (default: the ini's"
                         f" batch_mcp_config, else {DEFAULT_MCP_CONFIG})")
    pending.add_argument("--allow-drafts", action="store_true",
                         help="write outline drafts to a store the platform reads (Appwrite),"
                         " as --batch-allow-drafts")
    pending.add_argument("--appwrite-database",
                         help="Appwrite database id (default: the ini's"
                         f" batch_appwrite_database, else {DEFAULT_DATABASE!r})")
    pending.set_defaults(run=command_write_pending)
    merged = commands.add_parser(
        "merge", help="merge the batches of several jobs into one record per course")
    merged.add_argument("paths", nargs="+", metavar="DIR",
                        help="batch directories, summaries, or directories holding them")
    merged.add_argument("--out", help="where to write (default"
                        f" {DEFAULT_LOG_DIR}/merged_YYYYMMDD_HHMMSS)")
    merged.add_argument("--allow-incomplete", action="store_true",
                        help="exit 0 even when a lesson failed or has no result (default:"
                        " exit 1, so a CI job does not publish a catalogue with gaps)")
    merged.set_defaults(run=command_merge)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.run in (command_write_pending, command_merge):
            text, code = args.run(args)
            print(text)
            return int(code)
        store = SqliteStore.from_url(args.store or pytest_setting("batch_store", DEFAULT_STORE),
                                     create=args.run is not command_show_lesson)
        try:
            print(args.run(args, store))
        finally:
            store.close()
    except (CommandError, SowError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `show-lesson … | head`: the reader has what it wanted; no traceback.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  # flushed at exit, not closed
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
