"""`python -m pytest_batchgen`: set up and inspect the embedded store.

    load-sow FILE [--course ID] [--status S]   load a SOW JSON file
    load-demo                                   load the shipped demo course
    show-lesson COURSE ORDER                    print a stored lesson, decoded
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_batchgen.settings import DEFAULT_STORE
from pytest_batchgen.sow import SowError, decode_entries_field, parse_entries
from pytest_batchgen.store import StoreError
from pytest_batchgen.store.sqlite import SqliteStore

DEMO_COURSE = "course_demo1"


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
    entries = decode_entries_field(document["entries"])
    parse_entries(entries)  # refuse a SOW the batch could not use, before storing it
    return {
        "$id": document.get("$id") or f"sow_{course_id}",
        "courseId": course_id,
        "version": str(document.get("version", "1")),
        "status": status or document.get("status") or "published",
        "entries": json.dumps(entries, ensure_ascii=False),
        "metadata": document.get("metadata") or {},
        "accessibility_notes": document.get("accessibility_notes") or "",
    }


def load_document(store: SqliteStore, document: Any, course: str | None,
                  status: str | None) -> str:
    row = sow_row_from_document(document, course, status)
    store.save_sow(row)
    outcomes = document.get("outcomes") or []
    if outcomes:
        store.save_outcomes(row["courseId"], outcomes)
    entries = json.loads(row["entries"])
    return (f"Loaded SOW {row['$id']} for {row['courseId']}: {len(entries)} entries,"
            f" status {row['status']}, version {row['version']}"
            + (f", {len(outcomes)} outcomes" if outcomes else "")
            + f" -> {store.description}")


def command_load_sow(args: argparse.Namespace, store: SqliteStore) -> str:
    try:
        document = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from exc
    except ValueError as exc:
        raise CommandError(f"{args.file} is not valid JSON: {exc}") from exc
    return load_document(store, document, args.course, args.status)


def command_load_demo(args: argparse.Namespace, store: SqliteStore) -> str:
    text = resources.files("pytest_batchgen.demo").joinpath(f"{DEMO_COURSE}.json").read_text(
        encoding="utf-8"
    )
    return load_document(store, json.loads(text), None, None)


def command_show_lesson(args: argparse.Namespace, store: SqliteStore) -> str:
    row = store.read_lesson(args.course, args.order)
    if row is None:
        raise CommandError(f"no lesson for {args.course} order {args.order} in {store.description}")
    return json.dumps(row.decoded(), indent=2, ensure_ascii=False)


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m pytest_batchgen", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    main.add_argument("--store", default=DEFAULT_STORE,
                      help=f"SQLite store URL (default {DEFAULT_STORE})")
    commands = main.add_subparsers(dest="command", required=True)
    load = commands.add_parser("load-sow", help="load a SOW JSON file into the store")
    load.add_argument("file")
    load.add_argument("--course", help="course id, when the file names none")
    load.add_argument("--status", choices=("published", "draft", "archived"),
                      help="store with this status instead of the file's")
    load.set_defaults(run=command_load_sow)
    demo = commands.add_parser("load-demo", help=f"load the shipped demo course {DEMO_COURSE}")
    demo.set_defaults(run=command_load_demo)
    show = commands.add_parser("show-lesson", help="print a stored lesson with cards decoded")
    show.add_argument("course")
    show.add_argument("order", type=int)
    show.set_defaults(run=command_show_lesson)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        store = SqliteStore.from_url(args.store, create=args.run is not command_show_lesson)
        try:
            print(args.run(args, store))
        finally:
            store.close()
    except (CommandError, SowError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
