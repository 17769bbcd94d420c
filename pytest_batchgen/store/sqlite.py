"""The embedded store: the platform's three tables in one SQLite file.

Columns match Appwrite's (`$id`, `$createdAt`, the 15 lesson columns, the
`Authored_SOW` columns), and values are stored encoded as the platform
stores them, so a lesson written here is byte-for-byte what Appwrite would
hold.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_batchgen.lesson import LESSON_COLUMNS, LessonRow
from pytest_batchgen.sow import SowError, SowRecord, record_from_row, select_sow
from pytest_batchgen.store import (
    CourseNotFound,
    ExistingLesson,
    LessonDiagram,
    StoreError,
    WriteResult,
    decide_write,
    existing_lessons,
    stored_order,
)

log = logging.getLogger(__name__)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS Authored_SOW (
    "$id" TEXT PRIMARY KEY,
    "$createdAt" TEXT NOT NULL,
    "$updatedAt" TEXT NOT NULL,
    courseId TEXT NOT NULL,
    version TEXT NOT NULL,
    status TEXT NOT NULL,
    entries TEXT NOT NULL,
    metadata TEXT,
    accessibility_notes TEXT
);
CREATE INDEX IF NOT EXISTS sow_course ON Authored_SOW (courseId);
CREATE TABLE IF NOT EXISTS course_outcomes (
    "$id" TEXT PRIMARY KEY,
    courseId TEXT NOT NULL,
    outcomeId TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_course ON course_outcomes (courseId);
CREATE TABLE IF NOT EXISTS lesson_templates (
    "$id" TEXT PRIMARY KEY,
    "$createdAt" TEXT NOT NULL,
    "$updatedAt" TEXT NOT NULL,
    {", ".join(LESSON_COLUMNS)}
);
CREATE INDEX IF NOT EXISTS lessons_course ON lesson_templates (courseId, sow_order);
CREATE TABLE IF NOT EXISTS lesson_diagrams (
    "$id" TEXT PRIMARY KEY,
    lessonTemplateId TEXT NOT NULL,
    cardId TEXT NOT NULL,
    image_file_id TEXT
);
CREATE INDEX IF NOT EXISTS diagrams_lesson ON lesson_diagrams (lessonTemplateId);
"""
LESSON_SUMMARY = ('"$id", "$createdAt", "$updatedAt", courseId, sow_order, model_version,'
                  " title, status, authored_sow_version")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_id() -> str:
    """Appwrite-style row id: 20 lowercase hex characters."""
    return uuid.uuid4().hex[:20]


def path_from_url(url: str) -> Path:
    """`sqlite:///relative/path` or `sqlite:////absolute/path`."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise StoreError(f"not a SQLite store URL: {url!r} (expected sqlite:///PATH)")
    return Path(url[len(prefix) :])


def _of_order(rows: list[dict[str, Any]], sow_order: int) -> list[dict[str, Any]]:
    """A lesson's rows among its course's, read as planning reads them: a row an older
    tool wrote with its order as text ('4') is lesson 4's here too, so a write updates
    it rather than creating a second row beside it, and the audit finds it. (SQLite
    keeps a value's type; Appwrite's integer column holds no text.)"""
    return [row for row in rows if stored_order(row.get("sow_order")) == sow_order]


class _RollBack(Exception):
    """Ends a transaction that was only a probe."""


class SqliteStore:
    """The `LessonStore` on one SQLite file; safe for several processes at once."""

    #: Only this plugin reads the embedded store.
    shared = False

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        self.description = f"sqlite:///{path}"
        if not create and not path.is_file():
            # Reading from a store nobody loaded would only leave an empty file
            # behind and report every course as unknown.
            raise StoreError(
                f"the SQLite store {path} does not exist: load a SOW into it first"
                " (python -m pytest_batchgen load-sow FILE, or load-demo)"
                " or point to another store"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # autocommit mode: transactions are explicit (BEGIN IMMEDIATE) where
            # read-then-write must be atomic across xdist workers.
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            # WAL: readers never block the one writer (xdist workers share the
            # file), and a commit needs no fsync of the whole database.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open SQLite store {path}: {exc}") from None

    def _migrate(self) -> None:
        """Bring a store an older version made up to the current schema: add the
        columns it lacks (an older lesson_templates had no authored_sow_id)."""
        reference = sqlite3.connect(":memory:")
        try:
            reference.executescript(SCHEMA)
            tables = [r[0] for r in reference.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                have = {r[1] for r in self._db.execute(f'PRAGMA table_info("{table}")')}
                for _, column, kind, *_ in reference.execute(f'PRAGMA table_info("{table}")'):
                    if column not in have:
                        self._db.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {kind}')
                        log.info("Store %s: added column %s.%s", self.path, table, column)
        finally:
            reference.close()

    def check_writable(self) -> None:
        """Prove a write would succeed (a read-only file, a locked or full disk) without
        leaving a trace: a write inside a transaction that is rolled back."""
        try:
            with self._transaction() as db:
                db.execute("CREATE TABLE batchgen_write_probe (x)")
                raise _RollBack
        except _RollBack:
            return
        except sqlite3.Error as exc:
            raise StoreError(f"the SQLite store {self.path} cannot be written: {exc}") from None

    @classmethod
    def from_url(cls, url: str, *, create: bool = True) -> SqliteStore:
        return cls(path_from_url(url), create=create)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; sqlite3 errors come out as one-line StoreErrors
        (a read-only file, a locked or full disk), and nothing half-done stays."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise StoreError(f"SQLite store {self.path}: {exc}") from None

    def _query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        try:
            return [dict(row) for row in self._db.execute(sql, params)]
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: {exc}") from exc

    # --- reads ---------------------------------------------------------------

    def fetch_sow(self, course_id: str, *, status: str = "published") -> SowRecord:
        rows = self._query('SELECT * FROM Authored_SOW WHERE courseId = ?', course_id)
        try:
            chosen, same_version = select_sow(rows, course_id, status)
            return record_from_row(chosen, same_version=same_version)
        except SowError as exc:
            raise CourseNotFound(str(exc)) from exc

    def fetch_outcomes(self, course_id: str) -> list[dict[str, Any]]:
        rows = self._query(
            'SELECT "$id", data FROM course_outcomes WHERE courseId = ?'
            ' ORDER BY outcomeId, "$id"',
            course_id,
        )
        outcomes = []
        for row in rows:
            try:
                outcome = json.loads(row["data"])
            except (TypeError, ValueError, RecursionError):
                outcome = None
            if not isinstance(outcome, dict):
                raise StoreError(f"course_outcomes row {row['$id']} of {course_id} in"
                                 f" {self.path} is not a JSON object; load the outcomes again"
                                 " (python -m pytest_batchgen load-outcomes FILE)")
            outcomes.append(outcome)
        return outcomes

    def list_lessons(self, course_id: str) -> list[ExistingLesson]:
        rows = self._query(
            f"SELECT {LESSON_SUMMARY} FROM lesson_templates WHERE courseId = ?"
            ' ORDER BY sow_order, "$createdAt"',
            course_id,
        )
        return existing_lessons(rows)

    def lesson_rows(self, course_id: str, sow_order: int) -> list[dict[str, Any]]:
        rows = self._query(
            f'SELECT "$id", {", ".join(LESSON_COLUMNS)} FROM lesson_templates'
            ' WHERE courseId = ? ORDER BY "$createdAt", "$id"', course_id)
        return _of_order(rows, sow_order)

    def list_diagrams(self, lesson_row_ids: Collection[str]) -> list[LessonDiagram]:
        ids = sorted(set(lesson_row_ids))
        if not ids:
            return []
        rows = self._query(
            'SELECT "$id", lessonTemplateId, cardId, image_file_id FROM lesson_diagrams'
            f" WHERE lessonTemplateId IN ({', '.join('?' * len(ids))})"
            ' ORDER BY lessonTemplateId, cardId, "$id"', *ids)
        return [LessonDiagram(doc_id=r["$id"], lesson_row_id=r["lessonTemplateId"],
                              card_id=r["cardId"], image_file_id=r["image_file_id"] or "")
                for r in rows]

    def delete_diagrams(self, diagrams: Sequence[LessonDiagram]) -> None:
        # The embedded store keeps no image files: the rows are all there is.
        try:
            with self._transaction() as db:
                db.executemany('DELETE FROM lesson_diagrams WHERE "$id" = ?',
                               [(d.doc_id,) for d in diagrams])
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: {exc}") from exc

    def read_lesson(self, doc_id: str) -> LessonRow | None:
        rows = self._query('SELECT * FROM lesson_templates WHERE "$id" = ?', doc_id)
        if not rows:
            return None
        return LessonRow.model_validate({name: rows[0][name] for name in LESSON_COLUMNS})

    # --- writes --------------------------------------------------------------

    def write_lesson(self, row: LessonRow, planned: ExistingLesson | None = None, *,
                     drafting: bool = False) -> WriteResult:
        columns = row.columns()
        stamp = now_iso()
        # BEGIN IMMEDIATE: the decision and the write are one step for every
        # process sharing the file.
        with self._transaction() as db:
            found = existing_lessons(_of_order([dict(r) for r in db.execute(
                f"SELECT {LESSON_SUMMARY} FROM lesson_templates WHERE courseId = ?",
                (row.courseId,))], row.sow_order))
            decision = decide_write(found, planned, model_version=row.model_version,
                                    drafting=drafting)
            if (skipped := decision.skip_result()) is not None:
                return skipped
            if decision.action == "create":
                doc_id = new_id()
                names = ['"$id"', '"$createdAt"', '"$updatedAt"', *LESSON_COLUMNS]
                db.execute(
                    f"INSERT INTO lesson_templates ({', '.join(names)})"
                    f" VALUES ({', '.join('?' * len(names))})",
                    (doc_id, stamp, stamp, *columns.values()),
                )
                return WriteResult(doc_id=doc_id, created=True)
            target = decision.target
            assert target is not None
            assignments = ", ".join(f"{name} = ?" for name in LESSON_COLUMNS)
            db.execute(
                f'UPDATE lesson_templates SET "$updatedAt" = ?, {assignments} WHERE "$id" = ?',
                (stamp, *columns.values(), target.doc_id),
            )
        return WriteResult(
            doc_id=target.doc_id,
            created=False,
            duplicates=tuple(r.doc_id for r in found if r.doc_id != target.doc_id),
            replaced_model_version=target.model_version,
        )

    # --- loading (the embedded store's own setup path) ------------------------

    def save_sow(self, row: dict[str, Any],
                 outcomes: list[dict[str, Any]] | None = None) -> str:
        """Insert or replace one `Authored_SOW` row (entries stored as given) and, when
        given, replace the course's outcomes: both or neither."""
        doc_id = str(row.get("$id") or new_id())
        entries = row["entries"]
        metadata = row.get("metadata") or {}
        stamp = now_iso()
        with self._transaction() as db:
            self._refuse_other_course(db, "Authored_SOW", [doc_id], row["courseId"])
            if outcomes is not None:
                self._replace_outcomes(db, row["courseId"], outcomes)
            db.execute('DELETE FROM Authored_SOW WHERE "$id" = ?', (doc_id,))
            db.execute(
                'INSERT INTO Authored_SOW ("$id", "$createdAt", "$updatedAt", courseId, version,'
                " status, entries, metadata, accessibility_notes) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    doc_id,
                    stamp,
                    stamp,
                    row["courseId"],
                    str(row.get("version", "1")),
                    row.get("status", "published"),
                    entries if isinstance(entries, str) else json.dumps(entries),
                    metadata if isinstance(metadata, str) else json.dumps(metadata),
                    row.get("accessibility_notes") or "",
                ),
            )
        return doc_id

    def save_outcomes(self, outcomes_by_course: dict[str, list[dict[str, Any]]]) -> None:
        """Replace each named course's outcomes, all courses in one transaction."""
        with self._transaction() as db:
            for course_id, outcomes in outcomes_by_course.items():
                self._replace_outcomes(db, course_id, outcomes)

    def _refuse_other_course(self, db: sqlite3.Connection, table: str, ids: list[str],
                             course_id: str) -> None:
        """A load never takes over another course's row by its id."""
        if not ids:
            return
        marks = ", ".join("?" * len(ids))
        taken = db.execute(f'SELECT "$id", courseId FROM {table} WHERE "$id" IN ({marks})'
                           " AND courseId != ?", (*ids, course_id)).fetchone()
        if taken is not None:
            raise StoreError(f"{table} row {taken[0]} belongs to {taken[1]} in {self.path};"
                             f" loading it for {course_id} would take it from that course:"
                             " give the row another $id")

    def _replace_outcomes(self, db: sqlite3.Connection, course_id: str,
                          outcomes: list[dict[str, Any]]) -> None:
        self._refuse_other_course(db, "course_outcomes",
                                  [str(o["$id"]) for o in outcomes if o.get("$id")], course_id)
        db.execute("DELETE FROM course_outcomes WHERE courseId = ?", (course_id,))
        for outcome in outcomes:
            db.execute(
                'INSERT INTO course_outcomes ("$id", courseId, outcomeId, data)'
                " VALUES (?, ?, ?, ?)",
                (
                    str(outcome.get("$id") or new_id()),
                    course_id,
                    str(outcome.get("outcomeId", "")),
                    json.dumps({**outcome, "courseId": course_id}, ensure_ascii=False),
                ),
            )

    def save_lessons(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or replace `lesson_templates` rows exactly as given (`$id` and the
        columns, encoded as stored): lessons another tool wrote, imported for an audit."""
        stamp = now_iso()
        names = ['"$id"', '"$createdAt"', '"$updatedAt"', *LESSON_COLUMNS]
        with self._transaction() as db:
            db.executemany(
                f"INSERT OR REPLACE INTO lesson_templates ({', '.join(names)})"
                f" VALUES ({', '.join('?' * len(names))})",
                [(row["$id"], row.get("$createdAt") or stamp, row.get("$updatedAt") or stamp,
                  *(row.get(name) for name in LESSON_COLUMNS)) for row in rows])

    def add_diagrams(self, diagrams: Sequence[LessonDiagram]) -> None:
        """Diagram rows as the platform's diagram step leaves them (for tests and demos)."""
        with self._transaction() as db:
            db.executemany(
                'INSERT INTO lesson_diagrams ("$id", lessonTemplateId, cardId, image_file_id)'
                " VALUES (?, ?, ?, ?)",
                [(d.doc_id, d.lesson_row_id, d.card_id, d.image_file_id) for d in diagrams])

    def close(self) -> None:
        self._db.close()
