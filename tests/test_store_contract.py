"""The store contract: SQLite and Appwrite behave the same for everything the batch does.

Each test runs against both stores. A backend adapter seeds data the way
that backend really holds it (SQLite tables; Appwrite rows over REST) and
reads rows back behind the store's back, so the checks are on the data,
not only on what the store says it did.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from pytest_batchgen.lesson import CLAUDE_MODEL_VERSION, LESSON_COLUMNS, LessonRow
from pytest_batchgen.store import (
    CourseNotFound,
    ExistingLesson,
    LessonDiagram,
    LessonStore,
    choose_row_to_update,
)
from pytest_batchgen.store.appwrite import DIAGRAM_BUCKET, AppwriteStore
from pytest_batchgen.store.sqlite import SqliteStore, new_id
from tests.support.appwrite_server import AppwriteTestServer, encode_entries
from tests.support.rows import insert_lesson, lesson_row

COURSE = "course_c84874"
OTHER = "course_other1"


class Backend(Protocol):
    name: str
    store: LessonStore

    def add_sow(self, course: str, entries: list[dict[str, Any]], *, version: str = "1",
                status: str = "published", encoding: str = "json",
                row_id: str | None = None) -> str: ...

    def add_outcomes(self, course: str, outcomes: list[dict[str, Any]]) -> None: ...

    def add_lesson(self, row: LessonRow, *, created_at: str) -> str: ...

    def add_diagram(self, lesson_row_id: str, card_id: str) -> str: ...

    def diagram_rows(self) -> list[str]: ...

    def images(self) -> list[str] | None: ...

    def lesson_rows(self, course: str, order: int | None = None) -> list[dict[str, Any]]: ...


class SqliteBackend:
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store = SqliteStore(path)

    def add_sow(self, course: str, entries: list[dict[str, Any]], *, version: str = "1",
                status: str = "published", encoding: str = "json",
                row_id: str | None = None) -> str:
        if encoding.startswith("storage"):
            pytest.skip("the SQLite store has no file storage")
        return self.store.save_sow({  # type: ignore[attr-defined]
            "$id": row_id or f"sow_{course}_v{version}_{status}", "courseId": course,
            "version": version, "status": status, "entries": encode_entries(entries, encoding),
        })

    def add_outcomes(self, course: str, outcomes: list[dict[str, Any]]) -> None:
        self.store.save_outcomes({course: outcomes})  # type: ignore[attr-defined]

    def add_diagram(self, lesson_row_id: str, card_id: str) -> str:
        diagram = LessonDiagram(new_id(), lesson_row_id, card_id, f"dgm_image_{card_id}")
        self.store.add_diagrams([diagram])  # type: ignore[attr-defined]
        return diagram.doc_id

    def diagram_rows(self) -> list[str]:
        with sqlite3.connect(self.path) as db:
            rows = [r[0] for r in db.execute('SELECT "$id" FROM lesson_diagrams')]
        db.close()
        return rows

    def images(self) -> list[str] | None:
        return None  # the embedded store keeps no image files

    def add_lesson(self, row: LessonRow, *, created_at: str) -> str:
        # Raw insert, as an older tool would have: duplicates are possible here.
        return insert_lesson(self.path, row, created_at=created_at)

    def lesson_rows(self, course: str, order: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM lesson_templates WHERE courseId = ?"
        params: list[Any] = [course]
        if order is not None:
            sql += " AND sow_order = ?"
            params.append(order)
        with sqlite3.connect(self.path) as db:
            db.row_factory = sqlite3.Row
            rows = [dict(r) for r in db.execute(sql, params)]
        db.close()
        return rows


class AppwriteBackend:
    name = "appwrite"

    def __init__(self, server: AppwriteTestServer, store: AppwriteStore) -> None:
        self.server = server
        self.store = store

    def add_sow(self, course: str, entries: list[dict[str, Any]], *, version: str = "1",
                status: str = "published", encoding: str = "json",
                row_id: str | None = None) -> str:
        return self.server.add_sow(course, entries, version=version, status=status,
                                   encoding=encoding, row_id=row_id)

    def add_outcomes(self, course: str, outcomes: list[dict[str, Any]]) -> None:
        self.server.add_outcomes(course, outcomes)

    def add_diagram(self, lesson_row_id: str, card_id: str) -> str:
        return self.server.add_diagram(lesson_row_id, card_id)

    def diagram_rows(self) -> list[str]:
        return [row["$id"] for row in self.server.rows("lesson_diagrams")]

    def images(self) -> list[str] | None:
        return self.server.files(DIAGRAM_BUCKET)

    def add_lesson(self, row: LessonRow, *, created_at: str) -> str:
        return self.server.add_lesson(row, created_at=created_at)

    def lesson_rows(self, course: str, order: int | None = None) -> list[dict[str, Any]]:
        where: dict[str, Any] = {"courseId": course}
        if order is not None:
            where["sow_order"] = order
        return self.server.rows("lesson_templates", **where)


@pytest.fixture(params=["sqlite", "appwrite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        sqlite_backend = SqliteBackend(tmp_path / "store.sqlite3")
        yield sqlite_backend
        sqlite_backend.store.close()
    else:
        server: AppwriteTestServer = request.getfixturevalue("appwrite_server")
        make: Callable[..., AppwriteStore] = request.getfixturevalue("make_appwrite_store")
        yield AppwriteBackend(server, make())


def entries(count: int) -> list[dict[str, Any]]:
    return [
        {"order": order, "label": f"Lesson {order}: fractions — part {order}",
         "lesson_type": "teach", "outcomeRefs": ["O1"], "estMinutes": 50}
        for order in range(1, count + 1)
    ]


# --- fetch_sow -------------------------------------------------------------------------


def test_fetch_sow_takes_the_highest_published_version(backend: Backend) -> None:
    backend.add_sow(COURSE, entries(3), version="2", row_id="sow_v2")
    backend.add_sow(COURSE, entries(4), version="10", row_id="sow_v10")  # 10 > 2, not "10" < "2"
    backend.add_sow(COURSE, entries(5), version="11", status="draft", row_id="sow_v11_draft")
    backend.add_sow(OTHER, entries(6), version="99", row_id="sow_other")

    sow = backend.store.fetch_sow(COURSE)

    assert (sow.doc_id, sow.version, sow.status) == ("sow_v10", "10", "published")
    assert sow.course_id == COURSE
    assert [e.order for e in sow.entries] == [1, 2, 3, 4]


def test_fetch_sow_can_use_a_draft(backend: Backend) -> None:
    backend.add_sow(COURSE, entries(3), row_id="sow_pub")
    backend.add_sow(COURSE, entries(2), version="2", status="draft", row_id="sow_draft")

    sow = backend.store.fetch_sow(COURSE, status="draft")

    assert (sow.doc_id, sow.status, len(sow.entries)) == ("sow_draft", "draft", 2)


def test_no_published_sow_names_the_statuses_found(backend: Backend) -> None:
    backend.add_sow(COURSE, entries(3), status="draft", row_id="sow_d")
    backend.add_sow(COURSE, entries(3), version="2", status="archived", row_id="sow_a")

    with pytest.raises(CourseNotFound) as raised:
        backend.store.fetch_sow(COURSE)

    message = str(raised.value)
    assert COURSE in message and "statuses found: archived, draft" in message
    assert "\n" not in message


def test_unknown_course_is_course_not_found(backend: Backend) -> None:
    backend.add_sow(OTHER, entries(3))

    with pytest.raises(CourseNotFound, match="no SOW found for course 'course_c84874'"):
        backend.store.fetch_sow(COURSE)


@pytest.mark.parametrize("encoding", ["json", "gzip", "legacy", "storage", "storage-gzip"])
def test_entries_in_every_encoding(backend: Backend, encoding: str) -> None:
    expected = entries(7)
    expected[2]["lesson_plan"] = {"summary": "Añadir fracciones", "card_structure": []}
    backend.add_sow(COURSE, expected, encoding=encoding)

    sow = backend.store.fetch_sow(COURSE)

    assert [entry.data for entry in sow.entries] == expected


def test_undecodable_entries_are_course_not_found(backend: Backend) -> None:
    backend.add_sow(COURSE, entries(1))
    # Corrupt the stored column behind the store's back.
    if isinstance(backend, AppwriteBackend):
        backend.server.state.tables[("default", "Authored_SOW")][
            f"sow_{COURSE}_v1_published"]["entries"] = "gzip:not-base64!"
    else:
        with sqlite3.connect(backend.path) as db:  # type: ignore[attr-defined]
            db.execute("UPDATE Authored_SOW SET entries = 'gzip:not-base64!'")
        db.close()

    with pytest.raises(CourseNotFound, match="entries cannot be decoded"):
        backend.store.fetch_sow(COURSE)


# --- list_lessons -------------------------------------------------------------------------


def test_list_lessons_returns_every_row_past_the_first_pages(backend: Backend) -> None:
    for order in range(1, 131):
        backend.add_lesson(lesson_row(order),
                           created_at=f"2024-01-01T00:00:{order % 60:02d}.000+00:00")
    backend.add_lesson(lesson_row(1, course=OTHER), created_at="2024-01-01T00:00:00.000+00:00")

    found = backend.store.list_lessons(COURSE)

    assert [row.sow_order for row in found] == list(range(1, 131))
    assert {row.course_id for row in found} == {COURSE}
    assert {row.model_version for row in found} == {CLAUDE_MODEL_VERSION}
    assert len({row.doc_id for row in found}) == 130
    assert all(row.created_at and row.updated_at and row.title for row in found)


def test_list_lessons_of_a_course_without_lessons_is_empty(backend: Backend) -> None:
    assert backend.store.list_lessons(COURSE) == []


# --- write_lesson / read_lesson ----------------------------------------------------------


def planned(backend: Backend, order: int) -> ExistingLesson:
    """The row a plan made now would replace (the one write_lesson would choose)."""
    rows = [r for r in backend.store.list_lessons(COURSE) if r.sow_order == order]
    return choose_row_to_update(rows, CLAUDE_MODEL_VERSION)


def test_write_creates_then_updates_the_same_row(backend: Backend) -> None:
    first = backend.store.write_lesson(lesson_row(3))
    better = "A better title for lesson three, rewritten"
    second = backend.store.write_lesson(lesson_row(3, title=better), planned(backend, 3))

    assert first.created and not second.created
    assert second.doc_id == first.doc_id
    assert second.duplicates == ()
    assert second.replaced_model_version == CLAUDE_MODEL_VERSION
    rows = backend.lesson_rows(COURSE, 3)
    assert len(rows) == 1
    assert rows[0]["title"] == better


def test_write_replaces_a_row_of_another_generator(backend: Backend) -> None:
    old_id = backend.add_lesson(lesson_row(4, model_version="legacy_v1"),
                                created_at="2024-01-01T00:00:00.000+00:00")

    result = backend.store.write_lesson(lesson_row(4))

    assert (result.doc_id, result.created) == (old_id, False)
    assert result.replaced_model_version == "legacy_v1"
    rows = backend.lesson_rows(COURSE, 4)
    assert [(r["$id"], r["model_version"]) for r in rows] == [(old_id, CLAUDE_MODEL_VERSION)]


def test_duplicates_are_reported_and_never_multiplied(backend: Backend) -> None:
    legacy = backend.add_lesson(lesson_row(5, model_version="legacy_v1"),
                                created_at="2024-01-01T00:00:00.000+00:00")
    ours = backend.add_lesson(lesson_row(5), created_at="2024-02-01T00:00:00.000+00:00")

    for _ in range(2):
        result = backend.store.write_lesson(lesson_row(5), planned(backend, 5))
        assert (result.doc_id, result.created, result.duplicates) == (ours, False, (legacy,))

    rows = {r["$id"]: r["model_version"] for r in backend.lesson_rows(COURSE, 5)}
    assert rows == {legacy: "legacy_v1", ours: CLAUDE_MODEL_VERSION}


def test_of_two_foreign_rows_the_oldest_is_updated(backend: Backend) -> None:
    newer = backend.add_lesson(lesson_row(6, model_version="v2"),
                               created_at="2024-03-01T00:00:00.000+00:00")
    older = backend.add_lesson(lesson_row(6, model_version="v1"),
                               created_at="2024-01-01T00:00:00.000+00:00")

    result = backend.store.write_lesson(lesson_row(6))

    assert (result.doc_id, result.duplicates, result.replaced_model_version) == (
        older, (newer,), "v1")


@pytest.mark.parametrize(
    ("stored", "plan_saw_it", "drafting", "outcome"),
    [
        ("ours", False, False, "skipped"),  # a finished lesson written meanwhile
        ("ours", True, False, "updated"),  # force, the row as the plan saw it
        ("legacy_v1", False, False, "updated"),  # another generator's: replaced, as planned
        ("legacy_v1", False, True, "skipped"),  # a draft never writes over any row
        ("batchgen_outline", True, True, "updated"),  # a forced draft over its own draft
    ],
)
def test_the_write_decides_against_the_row_as_it_is_then(
    backend: Backend, stored: str, plan_saw_it: bool, drafting: bool, outcome: str
) -> None:
    version = CLAUDE_MODEL_VERSION if stored == "ours" else stored
    row_id = backend.add_lesson(lesson_row(8, model_version=version),
                                created_at="2024-01-01T00:00:00.000+00:00")
    seen = planned(backend, 8) if plan_saw_it else None
    mine = "batchgen_outline" if drafting else CLAUDE_MODEL_VERSION

    result = backend.store.write_lesson(lesson_row(8, model_version=mine, title="T" * 40), seen,
                                        drafting=drafting)

    rows = backend.lesson_rows(COURSE, 8)
    assert len(rows) == 1 and rows[0]["$id"] == row_id == result.doc_id
    if outcome == "skipped":
        assert result.skipped.startswith("written meanwhile by another run")
        assert rows[0]["model_version"] == version and rows[0]["title"] != "T" * 40
    else:
        assert not result.skipped and rows[0]["title"] == "T" * 40


def test_a_row_changed_since_the_plan_is_not_overwritten(backend: Backend) -> None:
    backend.add_lesson(lesson_row(9), created_at="2024-01-01T00:00:00.000+00:00")
    seen = planned(backend, 9)
    backend.store.write_lesson(lesson_row(9, title="Another run's lesson, written meanwhile"),
                               seen)  # another run, same plan, wrote first

    result = backend.store.write_lesson(lesson_row(9, title="T" * 40), seen)

    assert result.skipped.startswith("changed meanwhile by another run")
    assert backend.lesson_rows(COURSE, 9)[0]["title"].startswith("Another run's lesson")


def test_read_lesson_round_trips_the_written_row(backend: Backend) -> None:
    written = lesson_row(7)
    row_id = backend.store.write_lesson(written).doc_id
    backend.store.write_lesson(lesson_row(8))

    read = backend.store.read_lesson(row_id)

    assert read == written
    assert read is not None and read.decoded()["cards"][0]["title"].startswith("Équivalent")
    assert set(backend.lesson_rows(COURSE, 7)[0]) >= set(LESSON_COLUMNS)


def test_read_lesson_of_a_missing_lesson_is_none(backend: Backend) -> None:
    backend.store.write_lesson(lesson_row(1))

    assert backend.store.read_lesson("lt_no_such_row") is None


def test_written_rows_hold_exactly_the_platform_columns(backend: Backend) -> None:
    backend.store.write_lesson(lesson_row(9))

    row = backend.lesson_rows(COURSE, 9)[0]

    assert {k: v for k, v in row.items() if not k.startswith("$")} == lesson_row(9).columns()


# --- outcomes ----------------------------------------------------------------------------


def test_fetch_outcomes_returns_the_course_outcomes(backend: Backend) -> None:
    outcomes = [
        {"outcomeId": "O2", "outcomeTitle": "Use geometric skills",
         "assessmentStandards": json.dumps([{"code": "AS2.1"}]), "teacherGuidance": "",
         "keywords": "[]"},
        {"outcomeId": "O1", "outcomeTitle": "Use operational skills",
         "assessmentStandards": json.dumps([{"code": "AS1.1"}]), "teacherGuidance": "notes",
         "keywords": '["fractions"]'},
    ]
    backend.add_outcomes(COURSE, outcomes)
    backend.add_outcomes(OTHER, [{"outcomeId": "O9", "outcomeTitle": "Elsewhere"}])

    found = backend.store.fetch_outcomes(COURSE)

    assert [o["outcomeId"] for o in found] == ["O1", "O2"]
    for got, want in zip(found, sorted(outcomes, key=lambda o: o["outcomeId"]), strict=True):
        assert {k: v for k, v in got.items() if not k.startswith("$")} == {
            **want, "courseId": COURSE}


def test_fetch_outcomes_reads_a_course_of_more_than_a_page(backend: Backend) -> None:
    # National 5 Maths has 46 skills and topics; larger skills-based courses exist.
    backend.add_outcomes(COURSE, [{"outcomeId": f"SKILL_NUMBER_{n:03d}",
                                   "outcomeTitle": f"Skill number {n}"} for n in range(1, 151)])

    found = backend.store.fetch_outcomes(COURSE)

    assert [o["outcomeId"] for o in found] == [f"SKILL_NUMBER_{n:03d}" for n in range(1, 151)]


def test_list_lessons_says_which_sow_version_each_was_written_from(backend: Backend) -> None:
    backend.add_lesson(lesson_row(1).model_copy(update={"authored_sow_version": "3"}),
                       created_at="2024-01-01T00:00:01.000+00:00")

    [found] = backend.store.list_lessons(COURSE)

    assert found.sow_version == "3"


def test_description_names_the_store(backend: Backend) -> None:
    assert backend.store.description.startswith(backend.name)


def test_description_and_sharing(backend: Backend) -> None:
    # Appwrite is the platform's own store: drafts written there reach learners.
    assert backend.store.shared is (backend.name == "appwrite")


# --- what the audit reads, and diagrams ---------------------------------------------------


def test_lesson_rows_are_every_row_of_the_lesson_as_stored(backend: Backend) -> None:
    first = backend.add_lesson(lesson_row(4), created_at="2025-01-01T00:00:00.000+00:00")
    second = backend.add_lesson(lesson_row(4, title="A second row for the same lesson, as left"),
                                created_at="2025-01-02T00:00:00.000+00:00")
    backend.add_lesson(lesson_row(5), created_at="2025-01-01T00:00:00.000+00:00")

    rows = backend.store.lesson_rows(COURSE, 4)

    assert [r["$id"] for r in rows] == [first, second]
    assert {k: v for k, v in rows[0].items() if k != "$id"} == lesson_row(4).columns()
    assert backend.store.lesson_rows(COURSE, 6) == []
    assert [r.status for r in backend.store.list_lessons(COURSE)] == ["draft"] * 3


def test_diagrams_are_listed_by_lesson_row_and_deleted_with_their_images(
    backend: Backend
) -> None:
    row = backend.add_lesson(lesson_row(1), created_at="2025-01-01T00:00:00.000+00:00")
    other = backend.add_lesson(lesson_row(2), created_at="2025-01-01T00:00:00.000+00:00")
    first, second = backend.add_diagram(row, "card_001"), backend.add_diagram(row, "card_002")
    kept = backend.add_diagram(other, "card_001")

    found = backend.store.list_diagrams([row])

    assert sorted(d.doc_id for d in found) == sorted([first, second])
    assert {d.card_id for d in found} == {"card_001", "card_002"}
    assert backend.store.list_diagrams([]) == []
    backend.store.delete_diagrams(found)
    backend.store.delete_diagrams(found)  # gone already: nothing to do, no error
    assert backend.diagram_rows() == [kept]
    images = backend.images()
    assert images is None or images == [d.image_file_id for d in
                                        backend.store.list_diagrams([other])]
