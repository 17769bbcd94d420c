"""Fixtures for the Appwrite store: a live test server and stores pointed at it.

Registered by the top-level conftest.py (`pytest_plugins`); import
nothing from here in test modules (the plugin must be imported by pytest first,
for assertion rewriting).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_batchgen.store.appwrite import AppwriteStore
from tests.support.appwrite_server import AppwriteTestServer


@pytest.fixture
def appwrite_server() -> Iterator[AppwriteTestServer]:
    """A fresh server on a free 127.0.0.1 port; stopped (threads joined) afterwards."""
    with AppwriteTestServer() as server:
        yield server


@dataclasses.dataclass
class Sleeps:
    """Backoff delays the store asked for, recorded instead of slept: tests never wait."""

    delays: list[float] = dataclasses.field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def appwrite_sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_appwrite_store(
    appwrite_server: AppwriteTestServer, appwrite_sleeps: Sleeps
) -> Iterator[Callable[..., AppwriteStore]]:
    """`make_appwrite_store(**options)`: a store on the server, closed at teardown."""
    stores: list[AppwriteStore] = []

    def make(**options: Any) -> AppwriteStore:
        options.setdefault("sleep", appwrite_sleeps)
        options.setdefault("timeout", 10.0)
        store = AppwriteStore(
            options.pop("endpoint", appwrite_server.url),
            options.pop("project_id", appwrite_server.project),
            options.pop("api_key", appwrite_server.api_key),
            **options,
        )
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def appwrite_store(make_appwrite_store: Callable[..., AppwriteStore]) -> AppwriteStore:
    return make_appwrite_store()


@pytest.fixture
def appwrite_env(
    appwrite_server: AppwriteTestServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """APPWRITE_* env vars pointing at the server (seen by pytester subprocess runs too)."""
    env = appwrite_server.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
