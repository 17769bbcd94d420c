"""Log files: each lesson's own (everything logged while it runs) and the batch log's
handler, which share a format and the way they meet a full disk.

The reference implementation's lesson logs ended up empty because the agent
reconfigured root logging (`basicConfig(force=True)` removes and closes every
root handler). Here the handler is pinned: while the lesson runs the root
logger's handler list refuses to drop it and `close()` is deferred, so a
library that resets logging cannot silence the file.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pytest_batchgen.redact import scrubbed

LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
# The rules that frame a lesson in its log and a batch's sections in the batch log.
RULE = "─" * 59
BANNER = "═" * 59


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


class QuietFileHandler(logging.FileHandler):
    """A log file that cannot be written (a full disk) keeps its first error for the
    batch to act on, instead of printing a traceback for every record. It writes no
    known secret (see redact.py)."""

    error: OSError | None = None

    def __init__(self, path: Path, mode: str = "a", encoding: str = "utf-8") -> None:
        super().__init__(path, mode=mode, encoding=encoding)
        scrubbed(self)

    def handleError(self, record: logging.LogRecord) -> None:  # logging's name
        error = sys.exc_info()[1]
        if self.error is None and isinstance(error, OSError):
            self.error = error
        elif not isinstance(error, OSError):
            super().handleError(record)

    def close(self) -> None:
        try:
            super().close()
        except OSError as exc:  # the last flush, on a full disk
            self.error = self.error or exc


class LessonFileHandler(QuietFileHandler):
    """A lesson's log file, whose close() waits until the lesson is over."""

    pinned = True

    def close(self) -> None:
        if not self.pinned:
            super().close()


# The lesson log of the lesson this process runs now (one at a time per process).
_current: LessonFileHandler | None = None


def lesson_log_error() -> OSError | None:
    """Why the running lesson's log cannot be written, if it cannot."""
    if _current is None:
        return None
    with contextlib.suppress(OSError):
        _current.flush()
    return _current.error


@contextmanager
def capture_lesson_log(path: Path, level: int, *,
                       append: bool = False) -> Iterator[LessonFileHandler]:
    """Send every record at `level` or above, from any logger, to `path` (after what
    it holds, when `append`: a lesson run again)."""
    global _current
    # Not delayed: a generated lesson always has its file, even when quiet.
    handler = LessonFileHandler(path, mode="a" if append else "w", encoding="utf-8")
    _current = handler
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
        _current = None
        handler.close()
