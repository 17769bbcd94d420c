"""How many HTTP requests the Appwrite store makes: a dry-run read and a written lesson.

Run from the repo root: `python benchmarks/bench_appwrite_requests.py`.
Counts come from the in-repo Appwrite test server, driven by the real SDK;
they are properties of the code, not of a machine, so no timings are shown.

Target: a dry-run read (fetch_sow + list_lessons) of an N-entry course with
N existing lessons takes ceil(N/100) + a small constant requests; a write
takes a constant number per lesson.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_batchgen.lesson import LessonRow
from pytest_batchgen.store.appwrite import AppwriteStore
from tests.support.appwrite_server import AppwriteTestServer
from tests.support.rows import lesson_row

COURSE = "course_bench1"


def lesson(order: int) -> LessonRow:
    return lesson_row(order, course=COURSE)


def dry_run_read(entries: int, encoding: str) -> tuple[int, int]:
    """(requests for fetch_sow, requests for list_lessons) with every lesson present."""
    with AppwriteTestServer() as server:
        sow = [{"order": n, "label": f"Lesson {n}"} for n in range(1, entries + 1)]
        server.add_sow(COURSE, sow, encoding=encoding)
        for order in range(1, entries + 1):
            server.add_lesson(lesson(order))
        store = AppwriteStore(server.url, server.project, server.api_key)
        try:
            store.fetch_sow(COURSE)
            sow_requests = server.count()
            assert len(store.list_lessons(COURSE)) == entries
            return sow_requests, server.count() - sow_requests
        finally:
            store.close()


def writes(lessons: int) -> tuple[int, int]:
    """Requests to write `lessons` new lessons, then to rewrite them all."""
    with AppwriteTestServer() as server:
        store = AppwriteStore(server.url, server.project, server.api_key)
        try:
            for order in range(1, lessons + 1):
                store.write_lesson(lesson(order))
            created = server.count()
            for order in range(1, lessons + 1):
                store.write_lesson(lesson(order))
            return created, server.count() - created
        finally:
            store.close()


def diagrams_and_audit(lessons: int, per_lesson: int) -> tuple[int, int, int]:
    """(requests to count the diagrams of `lessons` rows for the plan, requests to remove
    one lesson's `per_lesson` diagrams after its overwrite, audit requests per lesson)."""
    with AppwriteTestServer() as server:
        rows = [server.add_lesson(lesson(order)) for order in range(1, lessons + 1)]
        for row in rows:
            for card in range(1, per_lesson + 1):
                server.add_diagram(row, f"card_{card:03d}")
        store = AppwriteStore(server.url, server.project, server.api_key)
        try:
            server.reset_counts()
            assert len(store.list_diagrams(rows)) == lessons * per_lesson
            plan = server.count()
            server.reset_counts()
            store.delete_diagrams(store.list_diagrams(rows[:1]))
            removal = server.count()
            server.reset_counts()
            for order in range(1, lessons + 1):
                store.lesson_rows(COURSE, order)
            return plan, removal, server.count() // lessons
        finally:
            store.close()


def main() -> None:
    print("Dry-run read: fetch_sow + list_lessons, every lesson already stored")
    print(f"{'N':>6} {'entries':>13} {'fetch_sow':>10} {'list':>6} {'total':>6}"
          f" {'ceil(N/100)':>12} {'overhead':>9}")
    for entries in (10, 105, 1000):
        for encoding in ("json", "storage"):
            sow, listing = dry_run_read(entries, encoding)
            pages = math.ceil(entries / 100)
            total = sow + listing
            print(f"{entries:>6} {encoding:>13} {sow:>10} {listing:>6} {total:>6}"
                  f" {pages:>12} {total - pages:>+9}")
    lessons = 50
    created, rewritten = writes(lessons)
    print()
    print(f"Writes: {lessons} lessons")
    print(f"  new lessons:       {created} requests = {created / lessons:.2f} per lesson"
          " (list the pair + create)")
    print(f"  rewritten lessons: {rewritten} requests = {rewritten / lessons:.2f} per lesson"
          " (list the pair + update)")
    print()
    print("Diagrams of overwritten lessons, and the audit")
    for count in (50, 250):
        plan, removal, audit = diagrams_and_audit(count, 3)
        print(f"  plan counting the {count * 3} diagrams of {count} rows to overwrite: {plan}"
              f" requests (one paged query per 100 rows, 100 diagrams a page)")
    print(f"  removing one lesson's 3 diagrams: {removal} requests (list 1 + image and row"
          " per diagram)")
    print(f"  audit: {audit} request per lesson (its rows, decoded and checked locally)")


if __name__ == "__main__":
    main()
