"""Model sessions at once over a whole run: one limit every process of the run shares.

The CLI retries each 429 on its own, so workers that together ask more of a key than
it allows keep colliding: each retry is refused again while the others hold the
key's capacity, and the retries back off ever longer. A run's processes (xdist
workers are separate processes) share its first batch directory, so they share a
limit there instead:

- Each slot is a file, `slot_NNN`, held with an exclusive `flock` for as long as a
  session talks to the model. The kernel drops a lock when its holder's file is
  closed, whatever ended the process (kill -9 included), so no slot is ever lost.
- The limit is `limit.json` beside them, changed only under `limit.lock` and written
  by rename, so a reader never sees half a file. It starts at the ceiling (the
  --batch-max-sessions given, else the processes running lessons), is halved
  (rounded up, so never below 1) when a session meets a 429, and rises by one after
  RECOVER_AFTER sessions in a row end without one, never above the ceiling: additive
  increase, multiplicative decrease, as promptfoo's adaptive concurrency does.
- A slot is taken under `limit.lock` only while fewer slots are held than the limit,
  so however the limit moves, sessions admitted under it never outnumber it; sessions
  admitted before it fell finish what they started.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pytest_batchgen.layout import write_json_atomic

#: Sessions in a row without a 429 before the limit rises by one.
RECOVER_AFTER = 4
#: Seconds between looks for a free slot: small beside a session (seconds to minutes).
POLL = 0.05
LIMIT_FILE = "limit.json"
LOCK_FILE = "limit.lock"


@dataclass(frozen=True)
class Change:
    """The shared limit moved: from `old` to `new` sessions at once, and why."""

    old: int
    new: int
    ceiling: int
    why: str

    @property
    def lowered(self) -> bool:
        return self.new < self.old

    def __str__(self) -> str:
        verb = "lowered" if self.lowered else "raised"
        return (f"model session limit {verb} from {self.old} to {self.new} (at most"
                f" {self.ceiling}) after {self.why}")


@dataclass
class _State:
    limit: int
    #: Sessions ended without a 429 since the limit last moved.
    clean: int = 0


class Slot:
    """One session's hold on the limit, from admission to release."""

    def __init__(self, limiter: SessionLimiter, fd: int, admitted_under: int) -> None:
        self._limiter = limiter
        self._fd: int | None = fd
        #: The limit when this session was admitted.
        self.admitted_under = admitted_under
        #: Seconds it waited for a slot (0.0: one was free at once).
        self.waited = 0.0
        #: Whether this session has met a 429.
        self.throttled = False

    def rate_limited(self) -> Change | None:
        """The session met a 429: halve the limit, unless it has already fallen since this
        session was admitted (the sessions that collided together report one collision,
        not one each). Only its first 429 counts: the CLI's retries are the same one."""
        if self.throttled:
            return None
        self.throttled = True
        limiter = self._limiter
        with limiter.state() as state:
            if state.limit < self.admitted_under:
                return None
            old = state.limit
            state.limit, state.clean = max(1, (old + 1) // 2), 0
        if state.limit == old:
            return None
        return Change(old, state.limit, limiter.ceiling, "a 429 from the model service")

    def release(self, *, clean: bool) -> Change | None:
        """Free the slot; a session that ended well without a 429 counts towards raising
        the limit again."""
        if self._fd is None:
            return None
        limiter = self._limiter
        try:
            if not clean or self.throttled:
                return None
            with limiter.state() as state:
                state.clean += 1
                if state.clean < limiter.recover_after:
                    return None
                state.clean = 0
                if state.limit >= limiter.ceiling:
                    return None
                state.limit += 1
            return Change(state.limit - 1, state.limit, limiter.ceiling,
                          f"{limiter.recover_after} sessions in a row without a 429")
        finally:
            os.close(self._fd)  # the lock goes with the file
            self._fd = None


class SessionLimiter:
    """The run's limit on model sessions at once, kept in `directory` (shared by every
    process of the run); `ceiling` is the most it ever allows."""

    def __init__(self, directory: Path, ceiling: int, *, recover_after: int = RECOVER_AFTER,
                 poll: float = POLL) -> None:
        if ceiling < 1:
            raise ValueError(f"the session ceiling must be at least 1, got {ceiling}")
        self.directory = directory
        self.ceiling = ceiling
        self.recover_after = recover_after
        self.poll = poll
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def limit(self) -> int:
        """The limit now (it may move as soon as it is read)."""
        with self.state() as state:
            return state.limit

    @contextlib.contextmanager
    def state(self) -> Iterator[_State]:
        """The shared state, read and (when changed) written back under the lock file.
        The lock is held for a file read and a rename: blocking on it is brief."""
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            state = self._read()
            before = (state.limit, state.clean)
            yield state
            if (state.limit, state.clean) != before:
                write_json_atomic(self.directory / LIMIT_FILE,
                                  {"limit": state.limit, "clean": state.clean,
                                   "ceiling": self.ceiling})
        finally:
            os.close(fd)

    def _read(self) -> _State:
        try:
            data = json.loads((self.directory / LIMIT_FILE).read_text(encoding="utf-8"))
            return _State(min(max(1, int(data["limit"])), self.ceiling), int(data["clean"]))
        except (OSError, ValueError, KeyError, TypeError):
            return _State(self.ceiling)  # the run's first session: nothing has moved it

    def try_acquire(self) -> Slot | None:
        """A slot, if fewer are held than the limit now; else None. Never waits.

        Counting the held slots and taking a free one happen under the lock file, which
        every admission takes: two processes cannot both see the last free place."""
        with self.state() as state:
            held, free = 0, None
            try:
                for index in range(self.ceiling):
                    fd = self._take(index)
                    if fd is None:
                        held += 1
                    elif free is None:
                        free = fd  # kept, locked, in case the limit admits this session
                    else:
                        os.close(fd)
                if free is not None and held < state.limit:
                    slot, free = Slot(self, free, state.limit), None
                    return slot
                return None
            finally:
                if free is not None:
                    os.close(free)

    def _take(self, index: int) -> int | None:
        """Slot file `index`, opened and locked; None when another file holds its lock."""
        fd = os.open(self.directory / f"slot_{index:03d}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return fd

    async def acquire(self) -> Slot:
        """A slot, waiting for one as long as it takes: cancel the task (a timeout) to
        stop waiting."""
        slot = self.try_acquire()
        if slot is not None:
            return slot
        loop = asyncio.get_running_loop()
        started = loop.time()
        while slot is None:
            await asyncio.sleep(self.poll)
            slot = self.try_acquire()
        slot.waited = loop.time() - started
        return slot
