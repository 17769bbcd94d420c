"""Which processes are running, read from /proc (Linux), for the tests that prove the
agent's CLI processes end with their lesson, their session or their batch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Process:
    pid: int
    parent: int
    cwd: str
    cmdline: str
    #: The stat line's state letter: Z for a process that has ended but not been reaped.
    state: str = ""


def processes() -> Iterator[Process]:
    """Every process this user may read; those that end while being read are passed over."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            # The command name in the stat line may hold spaces and ")"; fields follow the last.
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            yield Process(pid=int(proc.name), parent=int(fields[1]), state=fields[0],
                          cwd=str((proc / "cwd").readlink()),
                          cmdline=(proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, IndexError, ValueError):
            continue


def processes_in(directory: Path) -> list[int]:
    """Processes still running with their working directory under `directory`: the
    agent's CLI runs in the lesson's workspace, so a leaked one would be found here
    even after its parent (the pytest run) has exited."""
    return [p.pid for p in processes() if p.cwd.startswith(str(directory))]


def cli_children(parent: int) -> list[str]:
    """Command lines of `parent`'s children that are the Claude CLI."""
    return [p.cmdline for p in processes() if p.parent == parent and "claude" in p.cmdline]


def running(pids: list[int]) -> list[int]:
    """Those of `pids` still running: an orphan that has ended may stay a zombie for a
    while, until whatever adopted it reaps it."""
    wanted = set(pids)
    return [p.pid for p in processes() if p.pid in wanted and p.state != "Z"]
