"""The Appwrite store beyond the contract: retries, timeouts, errors, credentials, request counts.

The real `appwrite` SDK talks HTTP to the in-repo test server; faults are
injected on the server. Backoff delays are recorded, never slept.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import json
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from appwrite.client import Client
from appwrite.exception import AppwriteException
from appwrite.services.tables_db import TablesDB

from pytest_batchgen.lesson import CLAUDE_MODEL_VERSION
from pytest_batchgen.store import AppwriteOptions, StoreError
from pytest_batchgen.store.appwrite import (
    AppwriteStore,
    lesson_row_id,
    load_credentials,
    open_appwrite_store,
)
from pytest_batchgen.store.default import open_default_store
from tests.support.appwrite_server import AppwriteTestServer
from tests.support.rows import lesson_row

COURSE = "course_c84874"
LESSONS = "/tables/lesson_templates/rows$"
SECRET = "sk-live-do-not-print-0123456789"


def seed_lessons(server: AppwriteTestServer, count: int, course: str = COURSE) -> None:
    for order in range(1, count + 1):
        server.add_lesson(lesson_row(order, course=course))


# --- retries ------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["429", "500", "503", "drop"])
def test_transient_failures_are_retried(
    appwrite_server: AppwriteTestServer, appwrite_store: AppwriteStore, appwrite_sleeps,
    fault: str,
) -> None:
    seed_lessons(appwrite_server, 3)
    appwrite_server.inject(LESSONS, fault, times=2, method="GET")

    assert len(appwrite_store.list_lessons(COURSE)) == 3
    assert appwrite_server.count("list_rows") == 3
    assert len(appwrite_sleeps.delays) == 2


def test_a_lost_create_answer_is_recognised_as_our_own_row(
    appwrite_server: AppwriteTestServer, appwrite_store: AppwriteStore
) -> None:
    # The create succeeds but its answer never arrives; the retried create
    # collides (409) with a row holding exactly what we wrote: it is ours.
    appwrite_server.inject(LESSONS, "drop_after", method="POST")

    result = appwrite_store.write_lesson(lesson_row(2))

    assert (result.doc_id, result.created, result.skipped) == (
        lesson_row_id(COURSE, 2), True, "")
    assert len(appwrite_server.rows("lesson_templates", courseId=COURSE, sow_order=2)) == 1
    assert appwrite_server.count("create_row") == 2
    assert appwrite_server.count("update_row") == 0


def test_a_create_whose_every_answer_is_lost_is_written_not_pending(
    appwrite_server: AppwriteTestServer, make_appwrite_store: Callable[..., AppwriteStore]
) -> None:
    # The first create lands, then its answer and every retry's answer are lost: the
    # retries end in a network failure, never in the 409 that would tell us.
    store = make_appwrite_store(max_attempts=3)
    appwrite_server.inject(LESSONS, "drop_after", method="POST")
    appwrite_server.inject(LESSONS, "drop", times=2, method="POST")

    result = store.write_lesson(lesson_row(2))

    assert (result.doc_id, result.created, result.skipped) == (
        lesson_row_id(COURSE, 2), True, "")
    assert len(appwrite_server.rows("lesson_templates", courseId=COURSE, sow_order=2)) == 1


@pytest.mark.parametrize(("theirs", "outcome"), [
    (CLAUDE_MODEL_VERSION, "skipped"),  # another run's finished lesson: kept
    ("batchgen_outline", "updated"),  # a draft: the real lesson replaces it
])
def test_a_concurrent_create_decides_again(
    appwrite_server: AppwriteTestServer, appwrite_store: AppwriteStore, theirs: str,
    outcome: str,
) -> None:
    # Another run creates the lesson between our listing and our create: the fixed
    # id makes our create collide (409), and we decide again against its row.
    appwrite_server.inject(LESSONS, "hook", method="POST", action=lambda: (
        appwrite_server.add_lesson({**lesson_row(1, model_version=theirs).columns(),
                                    "title": "Another run's lesson, written meanwhile"},
                                   row_id=lesson_row_id(COURSE, 1))))

    result = appwrite_store.write_lesson(lesson_row(1))

    assert result.doc_id == lesson_row_id(COURSE, 1) and not result.created
    assert bool(result.skipped) is (outcome == "skipped")
    [row] = appwrite_server.rows("lesson_templates", courseId=COURSE)
    assert row["model_version"] == (theirs if outcome == "skipped" else CLAUDE_MODEL_VERSION)
    assert [h.route for h in appwrite_server.hits] == [
        "list_rows", "create_row", "get_row", "list_rows",
        *(["update_row"] if outcome == "updated" else [])]


def test_an_id_taken_by_another_lesson_is_an_error(
    appwrite_server: AppwriteTestServer, appwrite_store: AppwriteStore
) -> None:
    appwrite_server.add_lesson(lesson_row(2), row_id=lesson_row_id(COURSE, 1))

    with pytest.raises(StoreError, match="is taken by a row that is not this lesson"):
        appwrite_store.write_lesson(lesson_row(1))


def test_backoff_grows_and_is_capped(
    appwrite_server: AppwriteTestServer, make_appwrite_store: Callable[..., AppwriteStore],
    appwrite_sleeps,
) -> None:
    store = make_appwrite_store(backoff_base=1.0, backoff_cap=4.0, max_attempts=6)
    appwrite_server.inject(LESSONS, 500, times=5)

    store.list_lessons(COURSE)

    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(appwrite_sleeps.delays) == len(ceilings)
    for delay, ceiling in zip(appwrite_sleeps.delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling


def test_persistent_server_errors_give_up_after_max_attempts(
    appwrite_server: AppwriteTestServer, make_appwrite_store: Callable[..., AppwriteStore]
) -> None:
    store = make_appwrite_store(max_attempts=3)
    appwrite_server.inject(LESSONS, 500, times=10)

    with pytest.raises(StoreError, match=r"500 general_server_error after 3 attempts"):
        store.list_lessons(COURSE)
    assert appwrite_server.count("list_rows") == 3


def test_a_client_error_fails_at_once(
    appwrite_server: AppwriteTestServer, appwrite_store: AppwriteStore, appwrite_sleeps
) -> None:
    appwrite_server.inject(LESSONS, 400, method="POST")

    with pytest.raises(StoreError) as raised:
        appwrite_store.write_lesson(lesson_row(1))

    assert str(raised.value).startswith(f"Appwrite write lesson {COURSE} #1: 400")
    assert appwrite_server.count("create_row") == 1
    assert appwrite_sleeps.delays == []


def test_the_server_rejects_columns_the_table_does_not_define(
    appwrite_server: AppwriteTestServer
) -> None:
    # What makes "write exactly the 15 columns" testable: the SDK, unassisted,
    # gets Appwrite's own refusal.
    tables = TablesDB(Client().set_endpoint(appwrite_server.url)
                      .set_project(appwrite_server.project).set_key(appwrite_server.api_key))
    row_id = appwrite_server.add_lesson(lesson_row(1))

    with pytest.raises(AppwriteException) as raised:
        tables.update_row("default", "lesson_templates", row_id, {"extra": 1})
    assert (raised.value.code, raised.value.type) == (400, "document_invalid_structure")
    with pytest.raises(AppwriteException) as raised:
        tables.create_row("default", "lesson_templates", "x1", {**lesson_row(2).columns(),
                                                                "sow_order": "2"})
    assert "invalid type" in raised.value.message
    with pytest.raises(AppwriteException) as raised:
        tables.create_row("default", "lesson_templates", row_id, lesson_row(3).columns())
    assert raised.value.code == 409


def test_a_hung_server_times_out_and_is_retried(
    appwrite_server: AppwriteTestServer, make_appwrite_store: Callable[..., AppwriteStore]
) -> None:
    store = make_appwrite_store(timeout=0.2)
    seed_lessons(appwrite_server, 2)
    # Answers only at shutdown: without a timeout the store would hang here.
    appwrite_server.inject(LESSONS, "slow", method="GET", delay=60)

    assert len(store.list_lessons(COURSE)) == 2
    assert appwrite_server.count("list_rows") == 2


def test_the_timed_client_follows_the_sdk_it_was_written_for() -> None:
    """TimedClient implements the SDK's `Client.call`: a new SDK must be read first.

    Fails when the installed SDK's major version or its `call` is not the one
    TimedClient was written against (27.0.0): compare the two, adapt TimedClient,
    then record the new fingerprint here and the new bound in pyproject.toml.
    """
    source = inspect.getsource(Client.call).encode()
    assert importlib.metadata.version("appwrite").split(".")[0] == "27"
    assert hashlib.sha256(source).hexdigest()[:16] == "f35e3621fa27a487"


# --- start-up errors --------------------------------------------------------------------


def test_wrong_key_is_one_line_without_the_key(
    appwrite_server: AppwriteTestServer, make_appwrite_store: Callable[..., AppwriteStore],
    appwrite_sleeps, caplog: pytest.LogCaptureFixture,
) -> None:
    store = make_appwrite_store(api_key=SECRET)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(StoreError) as raised:
        store.fetch_sow(COURSE)

    message = str(raised.value)
    assert "rejected the API key" in message and "401" in message
    assert "\n" not in message
    assert SECRET not in message + caplog.text + repr(store) + store.description
    assert appwrite_sleeps.delays == []  # a 401 is not retried


def test_unreachable_endpoint_is_a_store_error(
    make_appwrite_store: Callable[..., AppwriteStore], appwrite_sleeps
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = make_appwrite_store(endpoint=f"http://127.0.0.1:{port}/v1", max_attempts=3)

    with pytest.raises(StoreError, match=r"cannot reach http://127\.0\.0\.1:\d+/v1 .*3 attempts"):
        store.list_lessons(COURSE)
    assert len(appwrite_sleeps.delays) == 2


def test_plugin_store_url_opens_appwrite_from_the_environment(
    appwrite_server: AppwriteTestServer, appwrite_env: dict[str, str], tmp_path: Path
) -> None:
    appwrite_server.add_sow(COURSE, [{"order": 1, "label": "One"}])
    store = open_default_store("appwrite", AppwriteOptions(mcp_config=tmp_path / ".mcp.json"))
    try:
        assert isinstance(store, AppwriteStore)
        assert store.fetch_sow(COURSE).doc_id == f"sow_{COURSE}_v1_published"
        assert store.description == (
            f"appwrite {appwrite_server.url} project {appwrite_server.project} database default")
    finally:
        store.close()


# --- credentials ------------------------------------------------------------------------


def write_mcp(path: Path, entry: dict[str, Any] | None, *, name: str = "appwrite") -> Path:
    servers = {} if entry is None else {name: {"command": "npx", **entry}}
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


ARGS = ["-y", "mcp-server-appwrite", "APPWRITE_ENDPOINT=https://cloud.example/v1/",
        "APPWRITE_PROJECT_ID=proj1", f"APPWRITE_API_KEY={SECRET}"]


def test_credentials_from_mcp_args(tmp_path: Path) -> None:
    config = write_mcp(tmp_path / ".mcp.json", {"args": ARGS})

    creds = load_credentials(config, environ={})

    assert (creds.endpoint, creds.project_id, creds.api_key) == (
        "https://cloud.example/v1", "proj1", SECRET)
    assert SECRET not in repr(creds)


def test_credentials_from_mcp_env_block(tmp_path: Path) -> None:
    config = write_mcp(tmp_path / ".mcp.json", {"args": [], "env": {
        "APPWRITE_ENDPOINT": "https://e/v1", "APPWRITE_PROJECT_ID": "p",
        "APPWRITE_API_KEY": SECRET}})

    assert load_credentials(config, environ={}).project_id == "p"


def test_environment_wins_value_by_value(tmp_path: Path) -> None:
    config = write_mcp(tmp_path / ".mcp.json", {"args": ARGS})

    creds = load_credentials(config, environ={"APPWRITE_PROJECT_ID": "from_env"})

    assert (creds.project_id, creds.api_key) == ("from_env", SECRET)


def test_full_environment_needs_no_file(tmp_path: Path) -> None:
    env = {"APPWRITE_ENDPOINT": "http://h/v1", "APPWRITE_PROJECT_ID": "p",
           "APPWRITE_API_KEY": SECRET}

    assert load_credentials(tmp_path / "absent.json", environ=env).endpoint == "http://h/v1"


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("no_file", r"absent\.json does not exist; set APPWRITE_ENDPOINT and APPWRITE_PROJECT_ID"
                    r" and APPWRITE_API_KEY in the environment"),
        ("bad_json", r"\.mcp\.json is not valid JSON \(.*line 1 column"),
        ("no_entry", r"\.mcp\.json has no mcpServers\.appwrite entry"),
        ("no_key", r"incomplete; set APPWRITE_API_KEY in the environment or as"
                   r" APPWRITE_API_KEY=\.\.\. in the args or env of mcpServers\.appwrite in"),
        ("bad_endpoint", r"APPWRITE_ENDPOINT \(.*\) must start with http:// or https://"),
    ],
)
def test_missing_settings_are_one_line_naming_the_piece(
    tmp_path: Path, setup: str, expected: str
) -> None:
    config = tmp_path / ".mcp.json"
    if setup == "no_file":
        config = tmp_path / "absent.json"
    elif setup == "bad_json":
        config.write_text('{"mcpServers": {"appwrite": {"args": ["APPWRITE_API_KEY=' + SECRET)
    elif setup == "no_entry":
        write_mcp(config, {"args": ARGS}, name="github")
    elif setup == "no_key":
        write_mcp(config, {"args": ARGS[:-1]})
    else:
        write_mcp(config, {"args": [*ARGS[2:], "APPWRITE_ENDPOINT=cloud.example"][1:]})

    with pytest.raises(StoreError, match=expected) as raised:
        load_credentials(config, environ={})

    message = str(raised.value)
    assert "\n" not in message and SECRET not in message


def test_open_appwrite_store_reads_the_options_mcp_config(
    appwrite_server: AppwriteTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("APPWRITE_ENDPOINT", "APPWRITE_PROJECT_ID", "APPWRITE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    config = write_mcp(tmp_path / "custom.json", {
        "args": [f"{k}={v}" for k, v in appwrite_server.env().items()]})

    store = open_appwrite_store(AppwriteOptions(mcp_config=config))
    try:
        assert store.list_lessons(COURSE) == []
    finally:
        store.close()


# --- request counts ----------------------------------------------------------------------


@pytest.mark.parametrize(("lessons", "requests"), [(0, 1), (99, 1), (100, 1), (105, 2), (250, 3)])
def test_listing_takes_one_request_per_hundred_lessons(
    appwrite_server: AppwriteTestServer, appwrite_store: AppwriteStore, lessons: int,
    requests: int,
) -> None:
    seed_lessons(appwrite_server, lessons)
    seed_lessons(appwrite_server, 7, course="course_other1")

    assert len(appwrite_store.list_lessons(COURSE)) == lessons
    assert appwrite_server.count("list_rows", table="lesson_templates") == requests
    assert appwrite_server.count() == requests


def test_listing_selects_only_the_planning_columns(
    appwrite_server: AppwriteTestServer, appwrite_store: AppwriteStore
) -> None:
    seed_lessons(appwrite_server, 1)

    appwrite_store.list_lessons(COURSE)

    query = appwrite_server.hits[0].query
    assert '"method":"select"' in query and "cards" not in query
    assert '"method":"limit","values":[100]' in query


def test_reading_a_sow_takes_two_requests_plus_a_download(
    appwrite_server: AppwriteTestServer, appwrite_store: AppwriteStore
) -> None:
    entries = [{"order": n, "label": f"Lesson {n}"} for n in range(1, 106)]
    appwrite_server.add_sow(COURSE, entries, encoding="json")
    appwrite_server.add_sow("course_b", entries, encoding="storage")

    appwrite_store.fetch_sow(COURSE)
    assert appwrite_server.count() == 2
    appwrite_store.fetch_sow("course_b")
    assert appwrite_server.count() == 5
    assert appwrite_server.count("download") == 1


def test_a_write_takes_two_requests(
    appwrite_server: AppwriteTestServer, appwrite_store: AppwriteStore
) -> None:
    appwrite_store.write_lesson(lesson_row(1))
    assert [h.route for h in appwrite_server.hits] == ["list_rows", "create_row"]
    [planned] = appwrite_store.list_lessons(COURSE)
    appwrite_server.reset_counts()

    appwrite_store.write_lesson(lesson_row(1), planned)  # force: the row the plan saw
    assert [h.route for h in appwrite_server.hits] == ["list_rows", "update_row"]


def test_duplicate_rows_are_logged_as_a_warning(
    appwrite_server: AppwriteTestServer, appwrite_store: AppwriteStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    legacy = lesson_row(1, model_version="legacy")
    first = appwrite_server.add_lesson(legacy, created_at="2024-01-01T00:00:00Z")
    second = appwrite_server.add_lesson(legacy, created_at="2024-02-01T00:00:00Z")

    result = appwrite_store.write_lesson(lesson_row(1))

    assert (result.doc_id, result.duplicates) == (first, (second,))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and second in warnings[0].getMessage()
    assert warnings[0].name == "pytest_batchgen.store.appwrite"


def test_the_row_id_is_deterministic_and_valid() -> None:
    row_id = lesson_row_id("course_c84874", 12)

    assert row_id == lesson_row_id("course_c84874", 12) != lesson_row_id("course_c84874", 13)
    assert len(row_id) <= 36 and row_id.replace("_", "").isalnum()
