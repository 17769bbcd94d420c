"""The production store: the platform's Appwrite database, through the official SDK.

Everything goes through `appwrite` 27.x (`TablesDB`, `Storage`, `Query`);
what the SDK lacks is added around it, not by replacing it:

* a timeout on every request (the SDK sends none: a hung server would hang
  the batch), by a `Client` subclass whose `call` sends on a pooled session;
* retries with capped exponential backoff and jitter for 429, 5xx and
  network failures; other 4xx fail at once;
* cursor paging on every list (the reference implementation's worst bug was
  reading only the first 25 rows);
* idempotent writes: one row per (courseId, sow_order), created under an id
  derived from that pair so a concurrent duplicate create collides (409)
  instead of adding a second row.

The API key is held by the SDK client only; no message, log line, repr or
description built here contains it, and error texts are scrubbed of it in
case a server echoes it back.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests
from appwrite.client import Client
from appwrite.encoders.value_class_encoder import ValueClassEncoder
from appwrite.exception import AppwriteException
from appwrite.query import Query
from appwrite.services.storage import Storage
from appwrite.services.tables_db import TablesDB
from pydantic import ValidationError

from pytest_batchgen.defaults import DEFAULT_DATABASE
from pytest_batchgen.lesson import LESSON_COLUMNS, LessonRow
from pytest_batchgen.sow import STORAGE_BUCKET, SowError, SowRecord, record_from_row, select_sow
from pytest_batchgen.store import (
    AppwriteOptions,
    CourseNotFound,
    ExistingLesson,
    LessonDiagram,
    StoreError,
    WriteResult,
    decide_write,
    existing_lessons,
    lesson_row_id,
)

log = logging.getLogger(__name__)

SOW_TABLE = "Authored_SOW"
LESSON_TABLE = "lesson_templates"
OUTCOME_TABLE = "course_outcomes"
DIAGRAM_TABLE = "lesson_diagrams"
#: The platform's images bucket, where each diagram's picture lives.
DIAGRAM_BUCKET = "6907775a001b754c19a6"
#: Values one Appwrite query may hold.
QUERY_VALUES = 100

ENV_KEYS = ("APPWRITE_ENDPOINT", "APPWRITE_PROJECT_ID", "APPWRITE_API_KEY")
MCP_SERVER = "appwrite"

#: Rows per list request; Appwrite's default is 25, which is how lessons went missing.
PAGE_SIZE = 100

# What planning needs of a lesson row; selecting it keeps a 105-lesson listing
# from carrying every lesson's cards.
LESSON_SUMMARY_COLUMNS = (
    "$id", "$createdAt", "$updatedAt", "courseId", "sow_order", "model_version", "title",
    "status", "authored_sow_version",
)
DIAGRAM_COLUMNS = ("$id", "lessonTemplateId", "cardId", "image_file_id")
SOW_SUMMARY_COLUMNS = ("$id", "$updatedAt", "courseId", "version", "status")

T = TypeVar("T")


# --- credentials ---------------------------------------------------------------


@dataclass(frozen=True)
class AppwriteCredentials:
    endpoint: str
    project_id: str
    api_key: str = field(repr=False)
    #: Where the values came from, for messages ("environment", ".mcp.json", …).
    source: str = "environment"


def _config_values(mcp_config: Path) -> tuple[dict[str, str], str | None]:
    """The APPWRITE_* values in the MCP config's `appwrite` entry, and why there are none."""
    try:
        text = mcp_config.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, f"{mcp_config} does not exist"
    except OSError as exc:
        return {}, f"{mcp_config} cannot be read ({exc.strerror})"
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        # The decoder's message names a position, never the file's content.
        return {}, f"{mcp_config} is not valid JSON ({exc})"
    servers = document.get("mcpServers") if isinstance(document, dict) else None
    entry = servers.get(MCP_SERVER) if isinstance(servers, dict) else None
    if not isinstance(entry, dict):
        return {}, f"{mcp_config} has no mcpServers.{MCP_SERVER} entry"
    values: dict[str, str] = {}
    args = entry.get("args")
    for arg in args if isinstance(args, list) else []:
        name, sep, value = str(arg).partition("=")
        if sep and name in ENV_KEYS and value:
            values[name] = value
    env = entry.get("env")
    for name, value in (env if isinstance(env, dict) else {}).items():
        if name in ENV_KEYS and isinstance(value, str) and value:
            values.setdefault(name, value)
    return values, None


def load_credentials(
    mcp_config: Path, environ: Mapping[str, str] | None = None
) -> AppwriteCredentials:
    """Env vars win, each on its own; the rest comes from the MCP config's `appwrite` entry.

    A missing piece is one line naming the piece and both places to set it.
    """
    environ = os.environ if environ is None else environ
    values = {name: environ[name] for name in ENV_KEYS if environ.get(name)}
    problem = None
    source = "environment"
    if len(values) < len(ENV_KEYS):
        from_file, problem = _config_values(mcp_config)
        if from_file:
            source = str(mcp_config) if not values else f"environment and {mcp_config}"
        values = {**from_file, **values}
    missing = [name for name in ENV_KEYS if not values.get(name)]
    if missing:
        where = (
            f"set {' and '.join(missing)} in the environment or as"
            f" {missing[0]}=... in the args or env of mcpServers.{MCP_SERVER} in {mcp_config}"
            " (--batch-mcp-config)"
        )
        reason = f": {problem}" if problem else ""
        raise StoreError(f"Appwrite settings incomplete{reason}; {where}")
    endpoint = values["APPWRITE_ENDPOINT"].rstrip("/")
    if not endpoint.startswith(("http://", "https://")):
        raise StoreError(
            f"APPWRITE_ENDPOINT ({source}) must start with http:// or https://, got {endpoint!r}"
        )
    return AppwriteCredentials(
        endpoint=endpoint,
        project_id=values["APPWRITE_PROJECT_ID"],
        api_key=values["APPWRITE_API_KEY"],
        source=source,
    )


# --- the SDK client, with a timeout -----------------------------------------------


class TimedClient(Client):  # type: ignore[misc]  # the SDK ships no type hints
    """`appwrite.client.Client` whose requests time out and share a connection pool.

    The SDK (27.x) sends every request with `requests.request(...)`: a new
    connection each time and no timeout, so a hung server would hang the batch.
    Every service method goes through the public `Client.call(method, path,
    headers, params, response_type)`; this subclass implements it for what this
    store sends (JSON in; JSON, or a file's bytes, out) on one pooled session
    with a timeout, and raises the SDK's own `AppwriteException` as the SDK does.
    The SDK is pinned to its major version (pyproject.toml), and a test fails
    when its `Client.call` changes, so a new SDK is read before it is trusted.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.session = requests.Session()
        self.timeout = timeout
        self.endpoint = ""

    def set_endpoint(self, endpoint: str) -> TimedClient:
        super().set_endpoint(endpoint)
        self.endpoint = endpoint
        return self

    def call(self, method: str, path: str = "", headers: dict[str, str] | None = None,
             params: dict[str, Any] | None = None, response_type: str = "json") -> Any:
        headers = {**self.get_headers(), **(headers or {})}
        params = params or {}
        if method == "get":
            query, body = self.flatten(params), None
        elif headers["content-type"].startswith("application/json"):
            query, body = {}, json.dumps(params, cls=ValueClassEncoder)
        else:  # uploads: this store sends none
            raise NotImplementedError(f"{method} {path} with {headers['content-type']!r}")
        try:
            response = self.session.request(method, self.endpoint + path, params=query,
                                            data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise AppwriteException(exc) from None  # no code: the network
        is_json = response.headers.get("Content-Type", "").startswith("application/json")
        if response.status_code >= 400:
            payload = response.json() if is_json else {}
            raise AppwriteException(payload.get("message", response.text), response.status_code,
                                    payload.get("type"), response.text)
        return response.json() if is_json else response.content

    def close(self) -> None:
        self.session.close()


# --- errors and retries ----------------------------------------------------------


class AppwriteRequestError(StoreError):
    """A request Appwrite refused (or that never got an answer); `code` 0 is the network."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _is_transient(code: int) -> bool:
    return code == 0 or code == 429 or code >= 500


def _code_of(exc: AppwriteException) -> int:
    try:
        return int(exc.code or 0)
    except (TypeError, ValueError):
        return 0


# --- the store ---------------------------------------------------------------------


class AppwriteStore:
    """The `LessonStore` on the platform's Appwrite project."""

    #: The platform's frontend reads these rows: what is written reaches learners.
    shared = True

    def __init__(
        self,
        endpoint: str,
        project_id: str,
        api_key: str,
        *,
        database: str = DEFAULT_DATABASE,
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        page_size: int = PAGE_SIZE,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.endpoint = endpoint.rstrip("/")
        self.project_id = project_id
        self.database = database
        self.description = f"appwrite {self.endpoint} project {project_id} database {database}"
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.page_size = page_size
        self._sleep = sleep
        self._secret = api_key
        self._client = TimedClient(timeout)
        try:
            self._client.set_endpoint(self.endpoint)
        except AppwriteException as exc:
            raise StoreError(f"APPWRITE_ENDPOINT: {exc.message}") from None
        self._client.set_project(project_id).set_key(api_key)
        self._tables = TablesDB(self._client)
        self._storage = Storage(self._client)

    @classmethod
    def from_credentials(cls, credentials: AppwriteCredentials, **options: Any) -> AppwriteStore:
        return cls(credentials.endpoint, credentials.project_id, credentials.api_key, **options)

    def __repr__(self) -> str:
        return f"AppwriteStore({self.description})"

    def check_writable(self) -> None:
        """Appwrite cannot be asked whether the key may write without writing (and a
        probe write would disturb the rows other runs compare); the read that
        planning made already proved the key and the server."""

    # --- plumbing ------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "[redacted]") if self._secret else text

    def _backoff(self, attempt: int) -> float:
        """Capped exponential, with jitter so parallel workers do not retry in step."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _error(self, what: str, exc: AppwriteException, attempts: int) -> AppwriteRequestError:
        code = _code_of(exc)
        kind = str(exc.type or "")
        if code == 0:
            cause = exc.message
            reason = type(cause).__name__ if isinstance(cause, BaseException) else str(cause)
            message = (
                f"Appwrite {what}: cannot reach {self.endpoint} ({reason})"
                f" after {attempts} attempt{'s' if attempts != 1 else ''}"
            )
        elif code == 401:
            message = (
                f"Appwrite {what}: {self.endpoint} rejected the API key for project"
                f" {self.project_id} (401 {kind or 'unauthorized'}); check APPWRITE_API_KEY"
            )
        else:
            detail = " ".join(str(exc.message).split())
            tried = f" after {attempts} attempts" if attempts > 1 else ""
            message = f"Appwrite {what}: {code} {kind or 'error'}{tried}: {detail}"
        return AppwriteRequestError(self._scrub(message), code)

    def _call(self, what: str, request: Callable[[], T]) -> T:
        """One SDK request, retried while the failure is transient."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return request()
            except AppwriteException as exc:
                failure = exc
            except requests.RequestException as exc:  # the SDK wraps these; belt and braces
                failure = AppwriteException(exc, 0)
            except (KeyError, ValueError) as exc:
                # The SDK reading a response that is not Appwrite's (a proxy's page).
                raise AppwriteRequestError(
                    self._scrub(f"Appwrite {what}: unexpected response from {self.endpoint}"
                                f" ({type(exc).__name__}: {exc})"), 0) from None
            code = _code_of(failure)
            if not _is_transient(code) or attempt == self.max_attempts:
                raise self._error(what, failure, attempt) from None
            delay = self._backoff(attempt)
            log.warning(
                "Appwrite %s: %s; retry %d/%d in %.2fs",
                what, f"HTTP {code}" if code else "network failure",
                attempt, self.max_attempts - 1, delay,
            )
            self._sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _list_all(self, table: str, what: str, queries: list[str]) -> list[dict[str, Any]]:
        """Every row matching `queries`, one page of `page_size` per request, by cursor."""
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page_queries = [*queries, Query.limit(self.page_size)]
            if cursor is not None:
                page_queries.append(Query.cursor_after(cursor))
            page = self._call(what, functools.partial(
                self._tables.list_rows, self.database, table, queries=page_queries))
            batch = [_plain(row) for row in page.rows]
            rows.extend(batch)
            # The first page's total saves the request for an empty last page.
            if len(batch) < self.page_size or len(rows) >= int(page.total):
                return rows
            cursor = batch[-1]["$id"]
            if not cursor:
                raise StoreError(f"Appwrite {what}: rows came back without $id; cannot page")

    def _download(self, file_id: str) -> bytes:
        blob = self._call(
            f"download SOW entries file {file_id}",
            lambda: self._storage.get_file_download(STORAGE_BUCKET, file_id),
        )
        # The SDK parses a JSON-typed download for us; give the decoder bytes back.
        if isinstance(blob, bytes):
            return blob
        if isinstance(blob, str):
            return blob.encode("utf-8")
        return json.dumps(blob, ensure_ascii=False).encode("utf-8")

    # --- reads -----------------------------------------------------------------------

    def fetch_sow(self, course_id: str, *, status: str = "published") -> SowRecord:
        # Choose among the course's SOW rows by their small columns, then fetch
        # only the chosen row's entries (which can be hundreds of kB per version).
        what = f"read SOW of {course_id}"
        summaries = self._list_all(
            SOW_TABLE, what,
            [Query.equal("courseId", course_id), Query.select(list(SOW_SUMMARY_COLUMNS))],
        )
        try:
            chosen, same_version = select_sow(summaries, course_id, status)
            row = _plain(self._call(
                what, lambda: self._tables.get_row(self.database, SOW_TABLE, chosen["$id"])
            ))
            record = record_from_row(row, download=self._download, same_version=same_version)
        except SowError as exc:
            raise CourseNotFound(f"{exc} ({self.description})") from exc
        log.info(
            "course %s: using %s SOW %s version %s (%d entries; %d SOW rows for the course)",
            course_id, record.status, record.doc_id, record.version, len(record.entries),
            len(summaries),
        )
        return record

    def fetch_outcomes(self, course_id: str) -> list[dict[str, Any]]:
        rows = self._list_all(
            OUTCOME_TABLE, f"read outcomes of {course_id}", [Query.equal("courseId", course_id)]
        )
        outcomes = [
            {key: value for key, value in row.items() if key == "$id" or not key.startswith("$")}
            for row in rows
        ]
        return sorted(outcomes, key=lambda o: (str(o.get("outcomeId", "")), str(o["$id"])))

    def list_lessons(self, course_id: str) -> list[ExistingLesson]:
        rows = self._list_all(
            LESSON_TABLE, f"list lessons of {course_id}",
            [Query.equal("courseId", course_id), Query.select(list(LESSON_SUMMARY_COLUMNS))],
        )
        lessons = existing_lessons(rows)
        return sorted(lessons, key=lambda lesson: (lesson.sow_order, lesson.created_at))

    def _lesson_rows(self, course_id: str, sow_order: int) -> list[ExistingLesson]:
        rows = self._list_all(
            LESSON_TABLE, f"find lesson {course_id} #{sow_order}",
            [
                Query.equal("courseId", course_id),
                Query.equal("sow_order", sow_order),
                Query.select(list(LESSON_SUMMARY_COLUMNS)),
            ],
        )
        return existing_lessons(rows)

    def lesson_rows(self, course_id: str, sow_order: int) -> list[dict[str, Any]]:
        rows = self._list_all(
            LESSON_TABLE, f"read lesson {course_id} #{sow_order}",
            [Query.equal("courseId", course_id), Query.equal("sow_order", sow_order)],
        )
        return [{key: value for key, value in row.items()
                 if key == "$id" or not key.startswith("$")} for row in rows]

    def list_diagrams(self, lesson_row_ids: Collection[str]) -> list[LessonDiagram]:
        ids = sorted(set(lesson_row_ids))
        rows: list[dict[str, Any]] = []
        for start in range(0, len(ids), QUERY_VALUES):
            try:
                rows += self._list_all(
                    DIAGRAM_TABLE, f"list diagrams of {len(ids)} lessons",
                    [Query.equal("lessonTemplateId", ids[start:start + QUERY_VALUES]),
                     Query.select(list(DIAGRAM_COLUMNS))],
                )
            except AppwriteRequestError as exc:
                if exc.code != 404:
                    raise
                # A database without the diagram table has no diagrams to go stale.
                log.info("No %s table in database %s: no diagrams", DIAGRAM_TABLE,
                         self.database)
                return []
        return [LessonDiagram(doc_id=str(row["$id"]),
                              lesson_row_id=str(row.get("lessonTemplateId") or ""),
                              card_id=str(row.get("cardId") or ""),
                              image_file_id=str(row.get("image_file_id") or ""))
                for row in rows]

    def delete_diagrams(self, diagrams: Sequence[LessonDiagram]) -> None:
        for diagram in diagrams:
            # The image first: a row left without its image is what a retry can still find.
            if diagram.image_file_id:
                self._delete(f"delete diagram image {diagram.image_file_id}", functools.partial(
                    self._storage.delete_file, DIAGRAM_BUCKET, diagram.image_file_id))
            self._delete(f"delete diagram {diagram.doc_id}", functools.partial(
                self._tables.delete_row, self.database, DIAGRAM_TABLE, diagram.doc_id))

    def _delete(self, what: str, request: Callable[[], Any]) -> None:
        """A delete whose target is gone already has done its job."""
        try:
            self._call(what, request)
        except AppwriteRequestError as exc:
            if exc.code != 404:
                raise

    def read_lesson(self, doc_id: str) -> LessonRow | None:
        try:
            row = _plain(self._call(f"read lesson row {doc_id}", lambda: self._tables.get_row(
                self.database, LESSON_TABLE, doc_id)))
        except AppwriteRequestError as exc:
            if exc.code == 404:
                return None
            raise
        try:
            return LessonRow.model_validate({name: row.get(name) for name in LESSON_COLUMNS})
        except ValidationError as exc:
            raise StoreError(f"lesson row {doc_id} is not a valid lesson_templates row:"
                             f" {exc.error_count()} problem(s)") from None

    # --- writes ------------------------------------------------------------------------

    def write_lesson(self, row: LessonRow, planned: ExistingLesson | None = None, *,
                     drafting: bool = False) -> WriteResult:
        """Decide against the rows read right before the write (see decide_write).

        Appwrite has no conditional update: between that read and the update
        another writer can still land; the README says what remains possible.
        A create uses the lesson's fixed row id, so two creates never make two
        rows: the second gets 409 and decides again against the row now there.
        """
        what = f"write lesson {row.courseId} #{row.sow_order}"
        columns = row.columns()  # exactly the 15 columns: Appwrite rejects any other
        row_id = lesson_row_id(row.courseId, row.sow_order)
        for _ in range(2):
            found = self._lesson_rows(row.courseId, row.sow_order)
            decision = decide_write(found, planned, model_version=row.model_version,
                                    drafting=drafting)
            if (skipped := decision.skip_result()) is not None:
                return skipped
            if decision.action == "update":
                assert decision.target is not None
                return self._update(what, decision.target, found, columns)
            try:
                self._call(what, lambda: self._tables.create_row(
                    self.database, LESSON_TABLE, row_id, columns))
                return WriteResult(doc_id=row_id, created=True)
            except AppwriteRequestError as exc:
                if exc.code != 409:
                    if _is_transient(exc.code) and self._landed(row_id, columns):
                        # Every answer was lost, yet the first create landed: the
                        # lesson is written, not pending beside its own row.
                        return WriteResult(doc_id=row_id, created=True)
                    raise
            if self._holds(row_id, columns):
                # Our own create landed, its answer was lost and the retry collided.
                return WriteResult(doc_id=row_id, created=True)
            log.info("%s: row %s appeared meanwhile; deciding again", what, row_id)
        raise StoreError(f"Appwrite {what}: row id {row_id} is taken by a row that is not"
                         " this lesson")

    def _landed(self, row_id: str, columns: dict[str, Any]) -> bool:
        """Whether a create that got no answer holds all the same (False when even the
        look cannot be had: the write is then reported failed, and kept)."""
        try:
            return self._holds(row_id, columns)
        except StoreError:
            return False

    def _holds(self, row_id: str, columns: dict[str, Any]) -> bool:
        """Whether the stored row `row_id` holds exactly these columns."""
        stored = _plain(self._call(f"read lesson row {row_id}", lambda: self._tables.get_row(
            self.database, LESSON_TABLE, row_id)))
        return all(stored.get(name) == value for name, value in columns.items())

    def _update(self, what: str, target: ExistingLesson, found: list[ExistingLesson],
                columns: dict[str, Any]) -> WriteResult:
        self._call(what, lambda: self._tables.update_row(
            self.database, LESSON_TABLE, target.doc_id, columns))
        duplicates = tuple(r.doc_id for r in found if r.doc_id != target.doc_id)
        if duplicates:
            log.warning(
                "%s: %d other row(s) exist for this lesson, left untouched: %s (updated %s)",
                what, len(duplicates), ", ".join(duplicates), target.doc_id,
            )
        return WriteResult(doc_id=target.doc_id, created=False, duplicates=duplicates,
                           replaced_model_version=target.model_version)

    def close(self) -> None:
        self._client.close()


def _plain(row: Any) -> dict[str, Any]:
    """An SDK `Row` (or a dict) as one flat dict: system columns and data together."""
    if isinstance(row, dict):
        return row
    return {
        "$id": row.id,
        "$createdAt": row.createdat,
        "$updatedAt": row.updatedat,
        **(row.data if isinstance(row.data, dict) else {}),
    }


def open_appwrite_store(
    options: AppwriteOptions, *, environ: Mapping[str, str] | None = None, **store_options: Any
) -> AppwriteStore:
    """The store `--batch-store=appwrite` names; `store_options` go to `AppwriteStore`."""
    credentials = load_credentials(options.mcp_config, environ)
    store = AppwriteStore.from_credentials(credentials, database=options.database,
                                           **store_options)
    log.info("Appwrite settings from %s: %s", credentials.source, store.description)
    return store
