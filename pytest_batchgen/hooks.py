"""pytest-batchgen's own hooks: swap the store or the author from a conftest or plugin.

Both are `firstresult`: the first implementation returning non-None wins,
and the plugin's own defaults run last.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_batchgen.authors import LessonAuthor
    from pytest_batchgen.settings import Settings
    from pytest_batchgen.store import LessonStore


@pytest.hookspec(firstresult=True)
def pytest_batchgen_make_store(config: pytest.Config, settings: Settings) -> LessonStore | None:
    """Return the store for this run (default: from --batch-store)."""


@pytest.hookspec(firstresult=True)
def pytest_batchgen_make_author(config: pytest.Config, settings: Settings) -> LessonAuthor | None:
    """Return the lesson author for this run (default: from --batch-author)."""
