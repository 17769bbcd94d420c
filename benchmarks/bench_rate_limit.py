"""Four workers against a key that allows two requests at once: wall time and 429s.

Run from the repository root:  python benchmarks/bench_rate_limit.py

8 lessons of the real Claude author (SDK + bundled CLI, 2 model requests a lesson),
`-n 4`, against the scripted model server answering each request after 2 s and
refusing any request beyond 2 at once with a 429 (retry-after 1 s). The CLI retries
as it would against the real service (CLAUDE_CODE_MAX_RETRIES=10 here, 0 in the
tests). Three runs: no shared limit (each CLI retrying on its own, as before
--batch-max-sessions), the adaptive limit (no --batch-max-sessions: it starts at the
4 workers and falls on the first 429), and --batch-max-sessions=2. The ideal is the
requests' own time at the key's concurrency: 8 x 2 x 2 s / 2 = 16 s. A first run
with a model that answers at once and allows any number of requests shows what the
run costs besides waiting for the model on this machine (pytest, four workers, 16
CLI sessions starting): part of it overlaps the waits, part (start-up) cannot.
Prints ratios; nothing asserts on them. About 2 minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_batchgen.__main__ import sow_row_from_document  # noqa: E402
from pytest_batchgen.layout import BatchLayout, batch_directories  # noqa: E402
from pytest_batchgen.store.sqlite import SqliteStore  # noqa: E402
from tests.conftest import legacy_sow  # noqa: E402
from tests.support.lessons import OUTCOMES  # noqa: E402
from tests.support.model_server import ModelServer, OfflineEnv  # noqa: E402

LESSONS = 8
REQUESTS = 2  # per lesson: the author's submission, the critic's verdict
DELAY = 2.0
CAPACITY = 2
WORKERS = 4
COURSE = "course_bench8"

# Today's behaviour, for comparison: the author's requests carry no shared directory,
# so no session waits for another (each CLI retries its 429s on its own).
NO_LIMIT_PLUGIN = '''
import dataclasses

import pytest

from pytest_batchgen.plugin import pytest_batchgen_make_author as make_default


class Unlimited:
    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def author(self, request):
        return await self.inner.author(dataclasses.replace(request, sessions_dir=None))


@pytest.hookimpl(tryfirst=True)
def pytest_batchgen_make_author(config, settings):
    return Unlimited(make_default(config, settings))
'''


def run(directory: Path, name: str, args: list[str], env: dict[str, str]
        ) -> tuple[float, dict]:
    directory.mkdir()
    store = directory / "store.sqlite3"
    seed = SqliteStore(store)
    seed.save_sow(sow_row_from_document(legacy_sow(LESSONS, COURSE), None, "published"),
                  OUTCOMES)
    seed.close()
    (directory / "no_limit_plugin.py").write_text(NO_LIMIT_PLUGIN)
    logs = directory / "logs"
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", "/dev/null", "-p", "no:cacheprovider", "-q",
         "-o", "asyncio_default_fixture_loop_scope=function", "--batch-author=claude",
         f"--batch-course={COURSE}", f"--batch-store=sqlite:///{store}",
         f"--batch-log-dir={logs}", "-n", str(WORKERS), *args],
        cwd=directory, env={**env, "PYTHONPATH": str(directory)}, capture_output=True,
        text=True, check=False,
    )
    elapsed = time.perf_counter() - started
    batches = batch_directories(logs)
    if not batches:
        raise SystemExit(f"{name}: no batch ran\n{completed.stdout}{completed.stderr}")
    summary = json.loads(BatchLayout(batches[0]).summary.read_text())
    return elapsed, summary


def main() -> None:
    ideal = LESSONS * REQUESTS * DELAY / CAPACITY
    cases = [
        ("no limit (each CLI retries alone)", ["-p", "no_limit_plugin"]),
        ("adaptive (no --batch-max-sessions)", []),
        ("--batch-max-sessions=2", ["--batch-max-sessions=2"]),
    ]
    print(f"{LESSONS} lessons x {REQUESTS} requests of {DELAY:g} s, -n {WORKERS}, a key"
          f" allowing {CAPACITY} requests at once (429, retry-after 1 s beyond);"
          f" ideal {ideal:g} s ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory() as tmp:
        with ModelServer() as server:
            env = {**os.environ, **OfflineEnv(server.url, Path(tmp) / "home").values}
            overhead, _ = run(Path(tmp) / "idle", "idle", [], env)
        print(f"  the same run with a model that answers at once: {overhead:.1f} s")
        for index, (name, args) in enumerate(cases):
            with ModelServer(delay=DELAY, capacity=CAPACITY, retry_after=1.0) as server:
                home = Path(tmp) / f"home{index}"
                env = {**os.environ, **OfflineEnv(server.url, home).values,
                       "CLAUDE_CODE_MAX_RETRIES": "10"}
                elapsed, summary = run(Path(tmp) / f"run{index}", name, args, env)
                refused = server.refused
                assert server.first_admitted is not None and server.last_answered is not None
                phase = server.last_answered - server.first_admitted
            shutil.rmtree(home, ignore_errors=True)
            print(f"  {name:36} {elapsed:5.1f} s wall, {elapsed / ideal:.2f}x the ideal;"
                  f" with the model (first request to last answer) {phase:5.1f} s,"
                  f" {phase / ideal:.2f}x; {refused:2d} requests refused,"
                  f" {summary['failed']} lessons failed ({summary['generated']} written)")


if __name__ == "__main__":
    main()
