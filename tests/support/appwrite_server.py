"""A small Appwrite REST server for tests: the subset the store uses, spoken over real HTTP.

The Appwrite server cannot run here (no Docker), and mocking the SDK would
test our idea of the SDK. So the real `appwrite` SDK talks to this server,
which mimics what the real one does where it matters to us:

* TablesDB rows: list (queries equal, notEqual, limit, offset, cursorAfter,
  cursorBefore, orderAsc, orderDesc, select; default limit 25; `total`),
  get, create (409 on a taken id), update (PATCH), upsert (PUT);
* TablesDB row delete (DELETE, 404 when gone);
* Storage file download, served with the file's own content type, and delete;
* auth: `X-Appwrite-Project` and `X-Appwrite-Key` checked, 401 JSON error;
* `lesson_templates` has a schema: an unknown or mistyped column is a 400
  `document_invalid_structure`, as Appwrite answers.

Test hooks: `inject()` faults (status codes, dropped connections, slow
answers) and `count()` requests per route. Seeding helpers add SOW rows in
each `entries` encoding, files, outcomes and lesson rows.

Standalone: `python -m tests.support.appwrite_server --port 8123 --seed seed.json`.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import itertools
import json
import re
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pytest_batchgen.lesson import LESSON_COLUMNS, LessonRow
from pytest_batchgen.store.appwrite import DIAGRAM_BUCKET

PROJECT = "test-project"
API_KEY = "test-secret-key-0123456789abcdef"
DATABASE = "default"
DEFAULT_LIMIT = 25  # what real Appwrite returns when no limit is given
MAX_LIMIT = 5000
VERSION = "1.8.0"

INT_COLUMNS = {"sow_order", "version", "estMinutes"}
SCHEMAS: dict[str, dict[str, type]] = {
    "lesson_templates": {name: int if name in INT_COLUMNS else str for name in LESSON_COLUMNS},
}
SYSTEM_COLUMNS = ("$id", "$sequence", "$tableId", "$databaseId", "$createdAt", "$updatedAt",
                  "$permissions")
ROW_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,35}$")

ROUTES = (
    ("list_rows", "GET", re.compile(r"^/v1/tablesdb/([^/]+)/tables/([^/]+)/rows$")),
    ("create_row", "POST", re.compile(r"^/v1/tablesdb/([^/]+)/tables/([^/]+)/rows$")),
    ("get_row", "GET", re.compile(r"^/v1/tablesdb/([^/]+)/tables/([^/]+)/rows/([^/]+)$")),
    ("update_row", "PATCH", re.compile(r"^/v1/tablesdb/([^/]+)/tables/([^/]+)/rows/([^/]+)$")),
    ("upsert_row", "PUT", re.compile(r"^/v1/tablesdb/([^/]+)/tables/([^/]+)/rows/([^/]+)$")),
    ("delete_row", "DELETE", re.compile(r"^/v1/tablesdb/([^/]+)/tables/([^/]+)/rows/([^/]+)$")),
    ("download", "GET", re.compile(r"^/v1/storage/buckets/([^/]+)/files/([^/]+)/download$")),
    ("delete_file", "DELETE", re.compile(r"^/v1/storage/buckets/([^/]+)/files/([^/]+)$")),
)


class ApiError(Exception):
    """An Appwrite error response: status code, `type`, message."""

    def __init__(self, code: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.kind = kind
        self.message = message


@dataclass
class Fault:
    path: re.Pattern[str]
    kind: str  # an HTTP status ("429", "500", "400"…), "drop", "drop_after", "slow", "hook"
    times: int
    method: str | None = None
    body: re.Pattern[str] | None = None
    delay: float = 5.0
    action: Callable[[], None] | None = None
    hits: int = 0

    def matches(self, method: str, path: str, body: str) -> bool:
        return (
            self.times > 0
            and (self.method is None or self.method == method)
            and self.path.search(path) is not None
            and (self.body is None or self.body.search(body) is not None)
        )


@dataclass(frozen=True)
class Hit:
    method: str
    path: str
    route: str
    table: str
    fault: str | None = None
    query: str = ""


@dataclass
class State:
    """Everything the server holds; guarded by `lock`."""

    tables: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    files: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sequence: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    # A fixed, strictly increasing clock: rows get distinct, ordered timestamps
    # without the tests depending on wall-clock time.
    clock: datetime = datetime(2025, 1, 1, tzinfo=UTC)

    def tick(self) -> str:
        self.clock += timedelta(milliseconds=1)
        return self.clock.isoformat(timespec="milliseconds")

    def table(self, database: str, table: str) -> dict[str, dict[str, Any]]:
        return self.tables.setdefault((database, table), {})


# --- queries -------------------------------------------------------------------------


def parse_queries(params: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The SDK flattens `queries` to `queries[0]=…&queries[1]=…`, each a JSON object."""
    indexed = []
    for key, values in params.items():
        match = re.fullmatch(r"queries\[(\d+)\]", key)
        if match:
            indexed.append((int(match.group(1)), values[0]))
    queries = []
    for _, text in sorted(indexed):
        try:
            query = json.loads(text)
        except ValueError:
            raise ApiError(400, "general_query_invalid", f"Invalid query: {text}") from None
        if not isinstance(query, dict) or "method" not in query:
            raise ApiError(400, "general_query_invalid", f"Invalid query: {text}")
        queries.append(query)
    return queries


def _check_attribute(table: str, attribute: str) -> None:
    schema = SCHEMAS.get(table)
    if schema is not None and not attribute.startswith("$") and attribute not in schema:
        raise ApiError(400, "general_query_invalid",
                       f"Invalid query: Attribute not found in schema: {attribute}")


class _Reverse:
    """Sort key wrapper that inverts order (for orderDesc)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Reverse) -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reverse) and self.value == other.value

    __hash__ = None  # type: ignore[assignment]


def _sortable(value: Any) -> tuple[int, Any]:
    # None first, then numbers, then text: mixed types never compare directly.
    if value is None:
        return (0, 0)
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value))


def run_query(table: str, rows: list[dict[str, Any]], queries: list[dict[str, Any]],
              all_rows: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Apply Appwrite queries: (the page, total matching before paging)."""
    limit, offset = DEFAULT_LIMIT, 0
    cursor: tuple[str, str] | None = None
    orders: list[tuple[str, bool]] = []
    select: list[str] | None = None
    for query in queries:
        method = query["method"]
        attribute = str(query.get("attribute"))
        values = query.get("values") or []
        if method in ("equal", "notEqual"):
            _check_attribute(table, attribute)
            wanted = values
            keep = method == "equal"
            rows = [r for r in rows if (r.get(attribute) in wanted) == keep]
        elif method == "limit":
            limit = int(values[0])
            if not 0 < limit <= MAX_LIMIT:
                raise ApiError(400, "general_query_invalid",
                               f"Invalid limit param: Value must be between 1 and {MAX_LIMIT}")
        elif method == "offset":
            offset = int(values[0])
        elif method in ("cursorAfter", "cursorBefore"):
            cursor = (method, str(values[0]))
        elif method in ("orderAsc", "orderDesc"):
            _check_attribute(table, attribute)
            orders.append((attribute, method == "orderDesc"))
        elif method == "select":
            for name in values:
                _check_attribute(table, name)
            select = list(values)
        else:
            raise ApiError(400, "general_query_invalid",
                           f"Invalid query method: {method} (not supported by the test server)")

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        parts: list[Any] = []
        for attribute, descending in orders:
            value = _sortable(row.get(attribute))
            parts.append(_Reverse(value) if descending else value)
        parts.append(int(row["$sequence"]))  # ties broken by insertion order, as Appwrite
        return tuple(parts)

    rows = sorted(rows, key=key)
    total = len(rows)
    if cursor is not None:
        method, row_id = cursor
        anchor = all_rows.get(row_id)
        if anchor is None:
            raise ApiError(400, "general_cursor_not_found",
                           f'Cursor row with id "{row_id}" could not be found.')
        anchor_key = key(anchor)
        if method == "cursorAfter":
            rows = [r for r in rows if anchor_key < key(r)]
        else:
            rows = [r for r in rows if key(r) < anchor_key][::-1][:limit][::-1]
    page = rows[offset: offset + limit]
    if select is not None:
        # Since Appwrite 1.4 a select returns only what it names, system columns included.
        page = [{name: r[name] for name in select if name in r} for r in page]
    return page, total


def check_structure(table: str, data: dict[str, Any], *, complete: bool) -> None:
    schema = SCHEMAS.get(table)
    if schema is None:
        return
    for name, value in data.items():
        if name not in schema:
            raise ApiError(400, "document_invalid_structure",
                           f'Invalid document structure: Unknown attribute: "{name}"')
        wanted = schema[name]
        if not isinstance(value, wanted) or isinstance(value, bool):
            kind = "integer" if wanted is int else "string"
            raise ApiError(
                400, "document_invalid_structure",
                f'Invalid document structure: Attribute "{name}" has invalid type.'
                f" Value must be a valid {kind}",
            )
    if complete:
        missing = [name for name in schema if name not in data]
        if missing:
            raise ApiError(400, "document_invalid_structure",
                           f'Invalid document structure: Missing required attribute "{missing[0]}"')


def encode_entries(entries: list[dict[str, Any]], encoding: str) -> str:
    """The `entries` column as real rows hold it: json, gzip (prefixed) or legacy (bare)."""
    text = json.dumps(entries, ensure_ascii=False)
    if encoding == "json":
        return text
    if encoding in ("gzip", "legacy"):
        packed = base64.b64encode(gzip.compress(text.encode("utf-8"))).decode("ascii")
        return f"gzip:{packed}" if encoding == "gzip" else packed
    raise ValueError(f"unknown entries encoding {encoding!r}")


# --- HTTP ---------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    # HTTP/1.0: one request per connection, so no idle keep-alive sockets
    # outlive a test (and request counts never depend on connection reuse).
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        owner = self.server.owner
        url = urlsplit(self.path)
        path = unquote(url.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else ""
        route, table = "unknown", ""
        for name, route_method, pattern in ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                route, table = name, match.group(2)
                break
        fault = owner._take_fault(method, path, body)
        with owner.state.lock:
            owner.state.hits.append(Hit(method, path, route, table, fault.kind if fault else None,
                                        unquote(url.query)))
        if fault is not None and fault.kind == "hook":
            assert fault.action is not None
            fault.action()  # e.g. another client's write landing just before this one
            fault = None
        if fault is not None and fault.kind != "drop_after":
            if fault.kind == "drop":
                # Close without a word, as a crashed proxy would.
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault.kind == "slow":
                owner._stopping.wait(fault.delay)
            else:
                code = int(fault.kind)
                kind = {429: "general_rate_limit_exceeded", 401: "user_unauthorized",
                        400: "general_argument_invalid"}.get(code, "general_server_error")
                self._send_json(code, _error_body(code, kind, f"Injected fault {code}"))
                return
        try:
            owner._check_auth(self.headers)
            params = parse_qs(url.query, keep_blank_values=True)
            payload = json.loads(body) if body else {}
            status, result = owner._dispatch(route, method, path, params, payload)
        except ApiError as exc:
            self._send_json(exc.code, _error_body(exc.code, exc.kind, exc.message))
            return
        except ValueError as exc:
            self._send_json(400, _error_body(400, "general_argument_invalid", str(exc)))
            return
        if fault is not None:  # drop_after: the work is done, the answer is lost
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if isinstance(result, tuple):
            blob, mime = result
            self._send(status, blob, mime)
        elif status == 204:
            self._send(status, b"", "text/plain")  # no body: the SDK returns b""
        else:
            self._send_json(status, result)

    def _send_json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode("utf-8"), "application/json; charset=utf-8")

    def _send(self, status: int, blob: bytes, mime: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", mime)
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test); nothing to answer


def _error_body(code: int, kind: str, message: str) -> dict[str, Any]:
    return {"message": message, "code": code, "type": kind, "version": VERSION}


class _HttpServer(ThreadingHTTPServer):
    owner: AppwriteTestServer
    daemon_threads = False  # joined on close, so no thread outlives the fixture


class AppwriteTestServer:
    """The server, its data, and the test hooks. Use as a context manager or start()/stop()."""

    def __init__(self, *, project: str = PROJECT, api_key: str = API_KEY,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.project = project
        self.api_key = api_key
        self.state = State()
        self._stopping = threading.Event()
        self._httpd = _HttpServer((host, port), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The endpoint, as APPWRITE_ENDPOINT takes it."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def env(self, *, api_key: str | None = None) -> dict[str, str]:
        """APPWRITE_* variables pointing at this server."""
        return {"APPWRITE_ENDPOINT": self.url, "APPWRITE_PROJECT_ID": self.project,
                "APPWRITE_API_KEY": self.api_key if api_key is None else api_key}

    def start(self) -> AppwriteTestServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes slow-fault handlers
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> AppwriteTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test hooks ------------------------------------------------------------

    def inject(self, path: str, kind: str | int, times: int = 1, *, method: str | None = None,
               body: str | None = None, delay: float = 5.0,
               action: Callable[[], None] | None = None) -> Fault:
        """Fail the next `times` requests whose path (and body) match these regexes.

        kind: an HTTP status (429, 500, 400, …), "drop" (close the connection
        unanswered), "drop_after" (do the work, then close unanswered: a lost
        answer), "slow" (answer after `delay` seconds, or at shutdown) or
        "hook" (run `action`, then answer normally: a race, staged).
        """
        fault = Fault(re.compile(path), str(kind), times, method=method,
                      body=re.compile(body) if body else None, delay=delay, action=action)
        with self.state.lock:
            self.state.faults.append(fault)
        return fault

    def _take_fault(self, method: str, path: str, body: str) -> Fault | None:
        with self.state.lock:
            for fault in self.state.faults:
                if fault.matches(method, path, body):
                    fault.times -= 1
                    fault.hits += 1
                    return fault
        return None

    def clear_faults(self) -> None:
        with self.state.lock:
            self.state.faults.clear()

    @property
    def hits(self) -> list[Hit]:
        with self.state.lock:
            return list(self.state.hits)

    def count(self, route: str | None = None, table: str | None = None,
              method: str | None = None) -> int:
        """Requests received (faulted ones included), filtered by route name/table/method."""
        return sum(
            1 for hit in self.hits
            if (route is None or hit.route == route)
            and (table is None or hit.table == table)
            and (method is None or hit.method == method)
        )

    def reset_counts(self) -> None:
        with self.state.lock:
            self.state.hits.clear()

    # --- seeding and inspection --------------------------------------------------

    def add_row(self, table: str, data: dict[str, Any], *, row_id: str | None = None,
                created_at: str | None = None, database: str = DATABASE) -> str:
        """Insert a row directly (no schema check: seeds may hold what old tools wrote)."""
        with self.state.lock:
            return self._insert(database, table, row_id or secrets.token_hex(10), data,
                                created_at=created_at)

    def _insert(self, database: str, table: str, row_id: str, data: dict[str, Any], *,
                created_at: str | None = None) -> str:
        rows = self.state.table(database, table)
        if row_id in rows:
            raise ApiError(409, "row_already_exists",
                           "Row with the requested ID already exists. Try again with a different"
                           " ID or use ID.unique() to generate a unique ID.")
        stamp = self.state.tick()
        clean = {k: v for k, v in data.items() if not k.startswith("$")}
        rows[row_id] = {
            "$id": row_id,
            "$sequence": str(next(self.state.sequence)),
            "$tableId": table,
            "$databaseId": database,
            "$createdAt": created_at or stamp,
            "$updatedAt": created_at or stamp,
            "$permissions": [],
            **clean,
        }
        return row_id

    def add_sow(self, course_id: str, entries: list[dict[str, Any]], *, version: str = "1",
                status: str = "published", encoding: str = "json", row_id: str | None = None,
                metadata: dict[str, Any] | None = None, database: str = DATABASE) -> str:
        """An `Authored_SOW` row with entries in one of the real encodings:
        json, gzip (prefixed), legacy (bare base64 gzip), storage, storage-gzip."""
        row_id = row_id or f"sow_{course_id}_v{version}_{status}"[:36]
        text = json.dumps(entries, ensure_ascii=False)
        if encoding in ("storage", "storage-gzip"):
            file_id = f"entries_{row_id}"[:36]
            if encoding == "storage":
                self.add_file("authored_sow_entries", file_id, text.encode("utf-8"),
                              "application/json")
            else:
                self.add_file("authored_sow_entries", file_id, gzip.compress(text.encode()),
                              "application/gzip")
            value = f"storage:{file_id}"
        else:
            value = encode_entries(entries, encoding)
        return self.add_row("Authored_SOW", {
            "courseId": course_id, "version": str(version), "status": status, "entries": value,
            "metadata": json.dumps(metadata or {}), "accessibility_notes": "",
        }, row_id=row_id, database=database)

    def add_file(self, bucket: str, file_id: str, data: bytes, mime: str) -> None:
        with self.state.lock:
            self.state.files[(bucket, file_id)] = (data, mime)

    def add_outcomes(self, course_id: str, outcomes: Iterable[dict[str, Any]]) -> list[str]:
        return [self.add_row("course_outcomes", {**outcome, "courseId": course_id},
                             row_id=outcome.get("$id")) for outcome in outcomes]

    def add_lesson(self, row: LessonRow | dict[str, Any], *, row_id: str | None = None,
                   created_at: str | None = None) -> str:
        """A `lesson_templates` row; several for one (courseId, sow_order) are allowed here."""
        data = row.columns() if isinstance(row, LessonRow) else dict(row)
        return self.add_row("lesson_templates", data, row_id=row_id, created_at=created_at)

    def add_diagram(self, lesson_row_id: str, card_id: str, *, image: bytes = b"\x89PNG",
                    row_id: str | None = None) -> str:
        """A `lesson_diagrams` row and its image, as the platform's diagram step leaves them."""
        file_id = f"dgm_image_{secrets.token_hex(4)}"
        self.add_file(DIAGRAM_BUCKET, file_id, image, "image/png")
        return self.add_row("lesson_diagrams", {
            "lessonTemplateId": lesson_row_id, "cardId": card_id, "image_file_id": file_id,
            "diagram_type": "geometry", "diagram_context": "lesson", "jsxgraph_json": "{}",
        }, row_id=row_id)

    def files(self, bucket: str) -> list[str]:
        with self.state.lock:
            return sorted(file_id for (name, file_id) in self.state.files if name == bucket)

    def rows(self, table: str, database: str = DATABASE, **equal: Any) -> list[dict[str, Any]]:
        """Stored rows (copies), in insertion order, filtered by column equality."""
        with self.state.lock:
            rows = list(self.state.table(database, table).values())
        return [dict(r) for r in rows if all(r.get(k) == v for k, v in equal.items())]

    def seed(self, document: dict[str, Any]) -> None:
        """Load `{"tables": {table: [row, …]}, "files": [{bucket, id, mime, base64}]}`."""
        for table, rows in document.get("tables", {}).items():
            for row in rows:
                self.add_row(table, row, row_id=row.get("$id"), created_at=row.get("$createdAt"))
        for item in document.get("files", []):
            self.add_file(item["bucket"], item["id"], base64.b64decode(item["base64"]),
                          item.get("mime", "application/octet-stream"))

    # --- the API -----------------------------------------------------------------

    def _check_auth(self, headers: Any) -> None:
        if headers.get("X-Appwrite-Project") != self.project:
            raise ApiError(404, "project_not_found",
                           "Project with the requested ID could not be found.")
        if headers.get("X-Appwrite-Key") != self.api_key:
            # Like the real server: the key itself is never echoed.
            raise ApiError(401, "user_unauthorized",
                           "The current user is not authorized to perform the requested action.")

    def _dispatch(self, route: str, method: str, path: str, params: dict[str, list[str]],
                  payload: dict[str, Any]) -> tuple[int, Any]:
        match = next((p.match(path) for name, _, p in ROUTES if name == route), None)
        if match is None:
            raise ApiError(404, "general_route_not_found", "The requested route was not found.")
        if route in ("download", "delete_file"):
            key = (match.group(1), match.group(2))  # bucket, file
            with self.state.lock:
                found = (self.state.files.pop(key, None) if route == "delete_file"
                         else self.state.files.get(key))
            if found is None:
                raise ApiError(404, "storage_file_not_found",
                               "The requested file could not be found.")
            return (200, found) if route == "download" else (204, None)
        database, table = match.group(1), match.group(2)
        with self.state.lock:
            rows = self.state.table(database, table)
            if route == "list_rows":
                queries = parse_queries(params)
                page, total = run_query(table, list(rows.values()), queries, rows)
                if params.get("total", ["true"])[0] == "false":
                    total = 0
                return 200, {"total": total, "rows": page}
            if route == "create_row":
                row_id = str(payload.get("rowId", ""))
                if row_id == "unique()":
                    row_id = secrets.token_hex(10)
                if not ROW_ID.match(row_id):
                    raise ApiError(400, "general_argument_invalid",
                                   'Invalid `rowId` param: Parameter must contain at most 36 chars.'
                                   ' Valid chars are a-z, A-Z, 0-9, period, hyphen, and'
                                   " underscore. Can't start with a special char")
                data = payload.get("data") or {}
                check_structure(table, data, complete=True)
                self._insert(database, table, row_id, data)  # 409 if the id is taken
                return 201, rows[row_id]
            row_id = match.group(3)
            if route == "get_row":
                if row_id not in rows:
                    raise ApiError(404, "row_not_found",
                                   "Row with the requested ID could not be found.")
                queries = parse_queries(params)
                page, _ = run_query(table, [rows[row_id]], queries, rows)
                return 200, page[0]
            if route == "delete_row":
                if rows.pop(row_id, None) is None:
                    raise ApiError(404, "row_not_found",
                                   "Row with the requested ID could not be found.")
                return 204, None
            data = payload.get("data") or {}
            if route == "update_row":
                if row_id not in rows:
                    raise ApiError(404, "row_not_found",
                                   "Row with the requested ID could not be found.")
                check_structure(table, data, complete=False)
                rows[row_id].update({k: v for k, v in data.items() if not k.startswith("$")})
                rows[row_id]["$updatedAt"] = self.state.tick()
                return 200, rows[row_id]
            if route == "upsert_row":
                if row_id in rows:
                    check_structure(table, data, complete=False)
                    rows[row_id].update(data)
                    rows[row_id]["$updatedAt"] = self.state.tick()
                    return 200, rows[row_id]
                check_structure(table, data, complete=True)
                self._insert(database, table, row_id, data)
                return 201, rows[row_id]
        raise ApiError(404, "general_route_not_found", "The requested route was not found.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.appwrite_server",
                                     description="Serve the Appwrite test API until Ctrl-C.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--project", default=PROJECT)
    parser.add_argument("--key", default=API_KEY)
    parser.add_argument("--seed", type=Path, help="JSON: {tables: {name: [rows]}, files: [...]}")
    args = parser.parse_args(argv)
    server = AppwriteTestServer(project=args.project, api_key=args.key, port=args.port)
    if args.seed:
        server.seed(json.loads(args.seed.read_text(encoding="utf-8")))
    server.start()
    print(f"APPWRITE_ENDPOINT={server.url} APPWRITE_PROJECT_ID={args.project}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
