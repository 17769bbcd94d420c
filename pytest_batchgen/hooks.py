"""pytest-batchgen's own hooks, for a conftest or plugin.

`make_store` and `make_author` swap a part: they are `firstresult` (the first
implementation returning non-None wins) and the plugin's own defaults run last.
`batch_finished` is for what follows a batch: notify, upload, page someone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_batchgen.authors import LessonAuthor
    from pytest_batchgen.controller.documents import SummaryDocument
    from pytest_batchgen.settings import Settings
    from pytest_batchgen.store import LessonStore


@pytest.hookspec(firstresult=True)
def pytest_batchgen_make_store(config: pytest.Config, settings: Settings) -> LessonStore | None:
    """Return the store for this run (default: from --batch-store)."""


@pytest.hookspec(firstresult=True)
def pytest_batchgen_make_author(config: pytest.Config, settings: Settings) -> LessonAuthor | None:
    """Return the lesson author for this run (default: from --batch-author)."""


@pytest.hookspec
def pytest_batchgen_batch_finished(
    config: pytest.Config, summary: SummaryDocument, directory: Path
) -> None:
    """A course's batch has ended (completed, failed or interrupted; not a dry run).

    Called once per course, on the controller only (also under xdist), after
    `batch_summary.json` and the report are written: `summary` is that file's
    content as its typed model (`summary.failed`, `summary.complete`,
    `summary.results`; `summary.to_json()` is the file's JSON), `directory` the
    batch directory.
    """
