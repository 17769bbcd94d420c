"""Per-lesson log capture: everything logged while one lesson runs, in its own file.

The reference implementation's lesson logs ended up empty because the agent
reconfigured root logging (`basicConfig(force=True)` removes and closes every
root handler). Here the handler is pinned: while the lesson runs the root
logger's handler list refuses to drop it and `close()` is deferred, so a
library that resets logging cannot silence the file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


class _PinnedHandlers(list):  # type: ignore[type-arg]
    """The root logger's handler list while a lesson runs: ours cannot be removed."""

    def __init__(self, items: list[logging.Handler], pinned: logging.Handler) -> None:
        super().__init__(items)
        self.pinned = pinned

    def remove(self, value: Any) -> None:
        if value is not self.pinned:
            super().remove(value)

    def clear(self) -> None:
        super().clear()
        self.append(self.pinned)


class LessonFileHandler(logging.FileHandler):
    """A file handler whose close() waits until the lesson is over."""

    pinned = True

    def close(self) -> None:
        if not self.pinned:
            super().close()


@contextmanager
def capture_lesson_log(path: Path, level: int) -> Iterator[LessonFileHandler]:
    """Send every record at `level` or above, from any logger, to `path`."""
    # Not delayed: a generated lesson always has its file, even when quiet.
    handler = LessonFileHandler(path, mode="w", encoding="utf-8")
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    saved_level = root.level
    saved_handlers = root.handlers
    root.handlers = _PinnedHandlers([*saved_handlers, handler], handler)
    root.setLevel(min(level, saved_level))
    try:
        yield handler
    finally:
        # Whatever the lesson did to the root logger, hand back what it had:
        # handlers added during the lesson must not leak into the next one.
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        handler.pinned = False
        handler.close()
