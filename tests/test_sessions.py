"""The run-wide limit on model sessions at once: real file locks, real processes.

Holders are separate Python processes, as xdist workers are; each says on stdout when
it holds a slot and lets it go when its stdin closes (or is killed)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_batchgen.authors.sessions import LIMIT_FILE, SessionLimiter

ROOT = Path(__file__).parent.parent

HOLDER = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from pytest_batchgen.authors.sessions import SessionLimiter

    async def main() -> None:
        slot = await SessionLimiter(Path(sys.argv[1]), int(sys.argv[2]), poll=0.01).acquire()
        print("held", flush=True)
        sys.stdin.read()  # until the test closes our stdin
        slot.release(clean=True)

    asyncio.run(main())
""")

# Many sessions in several processes: each counts the holders at once in a file of its
# own (under its own lock), so the most there ever were is read afterwards.
CROWD = textwrap.dedent("""
    import asyncio, fcntl, json, sys
    from pathlib import Path
    from pytest_batchgen.authors.sessions import SessionLimiter

    directory, ceiling, count = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])

    def bump(step: int) -> None:
        with open(count, "r+") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            now, most = json.loads(file.read())
            now += step
            file.seek(0), file.truncate(), file.write(json.dumps([now, max(most, now)]))

    async def main() -> None:
        limiter = SessionLimiter(directory, ceiling, poll=0.005)
        for _ in range(10):
            slot = await limiter.acquire()
            bump(1)
            await asyncio.sleep(0.01)  # a session talking to the model
            bump(-1)
            slot.release(clean=True)

    asyncio.run(main())
""")


def holder(directory: Path, ceiling: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(directory), str(ceiling)],
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


@pytest.fixture
def holders(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


def hold(holders: list[subprocess.Popen[str]], directory: Path, ceiling: int
         ) -> subprocess.Popen[str]:
    """A process that holds a slot once this returns."""
    process = holder(directory, ceiling)
    holders.append(process)
    assert process.stdout is not None
    assert process.stdout.readline() == "held\n"
    return process


def test_never_more_holders_than_the_limit_across_processes(tmp_path: Path) -> None:
    directory, count = tmp_path / "sessions", tmp_path / "count.json"
    count.write_text("[0, 0]")
    crowd = [subprocess.Popen([sys.executable, "-c", CROWD, str(directory), "2", str(count)],
                              cwd=ROOT) for _ in range(5)]
    assert [process.wait() for process in crowd] == [0] * 5
    now, most = json.loads(count.read_text())
    assert now == 0 and 1 <= most <= 2


def test_a_full_limit_admits_no_one_until_a_holder_leaves_or_is_killed(
    tmp_path: Path, holders: list[subprocess.Popen[str]]
) -> None:
    directory = tmp_path / "sessions"
    limiter = SessionLimiter(directory, 2)
    first = hold(holders, directory, 2)
    second = hold(holders, directory, 2)
    assert limiter.try_acquire() is None
    second.kill()  # kill -9: no release ran, the kernel dropped its lock
    second.wait()
    slot = limiter.try_acquire()
    assert slot is not None and limiter.try_acquire() is None
    slot.release(clean=True)
    assert first.stdin is not None
    first.stdin.close()  # a holder that ends its session releases its slot
    first.wait()
    both = [limiter.try_acquire(), limiter.try_acquire()]
    assert all(both) and limiter.try_acquire() is None


def test_a_429_halves_the_limit_for_every_process_and_clean_sessions_raise_it(
    tmp_path: Path, holders: list[subprocess.Popen[str]]
) -> None:
    directory = tmp_path / "sessions"
    limiter = SessionLimiter(directory, 4, recover_after=2)
    slots = [limiter.try_acquire() for _ in range(3)]
    assert all(slots) and limiter.limit == 4
    first, second, third = (slot for slot in slots if slot is not None)
    change = first.rate_limited()
    assert change is not None and (change.old, change.new) == (4, 2)
    assert "lowered from 4 to 2" in str(change)
    # Admitted together, they collided together: one halving, not one each.
    assert second.rate_limited() is None and first.rate_limited() is None
    assert limiter.limit == 2
    # Three sessions still run under the old limit; none is admitted until one ends.
    assert hold_elsewhere_fails(directory)
    for slot in (first, second, third):
        slot.release(clean=True)
    # first and second met a 429; third is the one clean session so far.
    assert json.loads((directory / LIMIT_FILE).read_text())["clean"] == 1
    another = SessionLimiter(directory, 4, recover_after=2)  # another process's view
    assert another.limit == 2
    slot = another.try_acquire()
    assert slot is not None
    change = slot.release(clean=True)
    assert change is not None and (change.old, change.new) == (2, 3)
    assert "raised from 2 to 3" in str(change)
    # A failed session does not count towards recovery; the limit never passes the ceiling.
    failed = limiter.try_acquire()
    assert failed is not None and failed.release(clean=False) is None
    for _ in range(6):
        slot = limiter.try_acquire()
        assert slot is not None
        slot.release(clean=True)
    assert limiter.limit == 4
    # Halving rounds up and stops at one.
    for expected in (2, 1, 1):
        slot = limiter.try_acquire()
        assert slot is not None
        slot.rate_limited()
        slot.release(clean=False)
        assert limiter.limit == expected


def hold_elsewhere_fails(directory: Path) -> bool:
    """Whether another process, now, is refused a slot."""
    probe = ("import sys; from pathlib import Path;"
             " from pytest_batchgen.authors.sessions import SessionLimiter;"
             " sys.exit(SessionLimiter(Path(sys.argv[1]), 4).try_acquire() is not None)")
    return subprocess.run([sys.executable, "-c", probe, str(directory)], cwd=ROOT,
                          check=False).returncode == 0


def test_waiting_for_a_slot_ends_with_its_task(
    tmp_path: Path, holders: list[subprocess.Popen[str]]
) -> None:
    directory = tmp_path / "sessions"
    hold(holders, directory, 1)
    limiter = SessionLimiter(directory, 1, poll=0.01)

    async def wait_briefly() -> None:
        async with asyncio.timeout(0.2):
            await limiter.acquire()

    with pytest.raises(TimeoutError):
        asyncio.run(wait_briefly())
    # The wait took nothing with it: the slot frees as soon as its holder goes.
    holders[0].kill()
    holders[0].wait()
    asyncio.run(limiter.acquire()).release(clean=True)


def test_a_ceiling_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SessionLimiter(tmp_path, 0)
