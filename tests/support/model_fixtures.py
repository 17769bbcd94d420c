"""Fixtures for the Claude author: a scripted model server and the offline CLI environment.

Registered by the top-level conftest.py (`pytest_plugins`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.model_server import ModelServer, OfflineEnv


@pytest.fixture
def model_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelServer]:
    """A running scripted server (happy path unless the test sets `.script`), with the
    environment pointing the CLI at it; pytester subprocesses inherit that environment."""
    with ModelServer() as server:
        for name, value in OfflineEnv(server.url, tmp_path / "cli_home").values.items():
            monkeypatch.setenv(name, value)
        yield server
