"""A process's store and author: made on first use through the plugin's hooks (so a
conftest can swap them), each made once, the store closed once at the end.

The controller plans with them and the worker side runs lessons with them;
neither makes its own. A dry run never makes an author, an audit never one.
"""

from __future__ import annotations

from collections.abc import Callable

from pytest_batchgen.authors import LessonAuthor
from pytest_batchgen.store import LessonStore


class Backends:
    def __init__(self, make_store: Callable[[], LessonStore],
                 make_author: Callable[[], LessonAuthor]) -> None:
        self._make_store = make_store
        self._make_author = make_author
        self._store: LessonStore | None = None
        self._author: LessonAuthor | None = None

    @property
    def store(self) -> LessonStore:
        if self._store is None:
            self._store = self._make_store()
        return self._store

    @property
    def author(self) -> LessonAuthor:
        if self._author is None:
            self._author = self._make_author()
        return self._author

    @property
    def made_author(self) -> LessonAuthor | None:
        """The author, if this process has made one (nothing to release otherwise)."""
        return self._author

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
