"""Speed-up of `-n 4` over `-n 0` for a 16-lesson course, and per-lesson overhead.

Run from the repository root:
    python benchmarks/bench_parallel.py [DELAY_SECONDS]            # scripted author
    python benchmarks/bench_parallel.py --claude [DELAY_SECONDS]   # the Claude author

Scripted: each lesson's author answers after a fixed delay (default 4 s).
--claude: the real Claude author (SDK + CLI, 2 model requests a lesson) against
the scripted model server answering each request after a fixed delay (default
2 s, still well under a real lesson-sized answer). The rest of each lesson's
wall time is the plugin's, the CLI's and, under xdist, the workers' start-up.
Prints ratios; nothing asserts on them. About 8 minutes with the defaults.
"""

from __future__ import annotations

import json
import logging
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

LESSONS = 16
COURSE = "course_bench16"


def run(directory: Path, workers: int, delay: float, claude_env: dict[str, str] | None
        ) -> tuple[float, dict]:
    directory.mkdir(exist_ok=True)
    shutil.copy(ROOT / "tests" / "support" / "fake_plugin.py", directory)
    store = directory / f"store_n{workers}.sqlite3"
    seed = SqliteStore(store)
    seed.save_sow(sow_row_from_document(legacy_sow(LESSONS, COURSE), None, "published"),
                  OUTCOMES)
    seed.close()
    logs = directory / f"logs_n{workers}"
    env = {**os.environ, "BATCHGEN_FAKE_DELAY": str(delay), "PYTHONPATH": str(directory),
           **(claude_env or {})}
    author = ["--batch-author=claude"] if claude_env else ["-p", "fake_plugin"]
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", "/dev/null", "-p", "no:cacheprovider", "-q",
         "-o", "asyncio_default_fixture_loop_scope=function", *author,
         f"--batch-course={COURSE}", f"--batch-store=sqlite:///{store}",
         f"--batch-log-dir={logs}", "-n", str(workers)],
        cwd=directory, env=env, capture_output=True, text=True, check=False,
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(completed.stdout + completed.stderr)
    [batch_dir] = batch_directories(logs)
    summary = json.loads(BatchLayout(batch_dir).summary.read_text())
    return elapsed, summary


def main() -> None:
    # The scripted model drafts with the outline author, which logs its warnings.
    logging.disable(logging.WARNING)
    claude = "--claude" in sys.argv
    numbers = [a for a in sys.argv[1:] if a != "--claude"]
    delay = float(numbers[0]) if numbers else (2.0 if claude else 4.0)
    with tempfile.TemporaryDirectory() as tmp, ModelServer(delay=delay) as server:
        directory = Path(tmp)
        claude_env = OfflineEnv(server.url, directory / "home").values if claude else None
        author_delay = 0 if claude else delay
        serial, summary = run(directory / "timed", 0, author_delay, claude_env)
        parallel, _ = run(directory / "timed", 4, author_delay, claude_env)
        requests = len(server.model_requests())
        # The same two runs with an instant author: what -n 4 costs before any
        # lesson starts (execnet bootstrap, four interpreters importing pytest
        # and the plugin), which bounds the speed-up of a short benchmark.
        idle_serial, _ = run(directory / "idle", 0, 0, None)
        idle_parallel, _ = run(directory / "idle", 4, 0, None)
    per_lesson = sum(r["duration_seconds"] for r in summary["results"]) / LESSONS
    per_lesson_requests = requests / (2 * LESSONS)
    # What a lesson waits for by design: the author's delay, or the model's per request.
    waited = per_lesson_requests * delay if claude else delay
    if claude:
        print(f"{LESSONS} lessons, Claude author, model answers after {delay:g} s;"
              f" {per_lesson_requests:.1f} model requests per lesson")
    else:
        print(f"{LESSONS} lessons, author delay {delay:g} s each")
    print(f"  -n 0: {serial:.1f} s wall   -n 4: {parallel:.1f} s wall"
          f"   ({os.cpu_count()} CPUs)")
    print(f"  speed-up: {serial / parallel:.2f}x (ideal 4x)")
    start_up = idle_parallel - idle_serial
    lesson_phase = (serial - idle_serial) / (parallel - idle_parallel)
    print(f"  start-up of 4 workers (instant author): +{start_up:.1f} s;"
          f" speed-up of the lesson phase: {lesson_phase:.2f}x")
    # The most -n 4 could gain here if a lesson cost nothing but its wait: the
    # workers' start-up is paid whatever the lessons do.
    bound = (LESSONS * waited + idle_serial) / (LESSONS / 4 * waited + idle_parallel)
    print(f"  bound for lessons that only wait {waited:g} s: {bound:.2f}x")
    print(f"  wall per lesson beyond the {waited:g} s it waits, -n 0: "
          f"{((serial - idle_serial) / LESSONS - waited) * 1000:.0f} ms"
          f" (pytest start-up excluded)")
    print(f"  lesson duration as recorded: {per_lesson:.2f} s")


if __name__ == "__main__":
    main()
