"""Speed-up of `-n 4` over `-n 0` for a 16-lesson course, and per-lesson overhead.

Run from the repository root:  python benchmarks/bench_parallel.py [DELAY_SECONDS]

Each lesson's author answers after a fixed delay (default 4 s), as a model
would; the rest of each lesson's wall time is the plugin's (and, under xdist,
the workers' start-up). Prints ratios; nothing asserts on them.
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
from pytest_batchgen.store.sqlite import SqliteStore  # noqa: E402
from tests.conftest import legacy_sow  # noqa: E402

LESSONS = 16
COURSE = "course_bench16"


def run(directory: Path, workers: int, delay: float) -> tuple[float, dict]:
    store = directory / f"store_n{workers}.sqlite3"
    seed = SqliteStore(store)
    seed.save_sow(sow_row_from_document(legacy_sow(LESSONS, COURSE), None, "published"))
    seed.close()
    logs = directory / f"logs_n{workers}"
    env = {**os.environ, "BATCHGEN_FAKE_DELAY": str(delay), "PYTHONPATH": str(directory)}
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", "/dev/null", "-p", "no:cacheprovider", "-q",
         "-o", "asyncio_default_fixture_loop_scope=function", "-p", "fake_plugin",
         f"--batch-course={COURSE}", f"--batch-store=sqlite:///{store}",
         f"--batch-log-dir={logs}", "-n", str(workers)],
        cwd=directory, env=env, capture_output=True, text=True, check=False,
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(completed.stdout + completed.stderr)
    summary = json.loads(next(logs.glob("batch_*/batch_summary.json")).read_text())
    return elapsed, summary


def main() -> None:
    delay = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        shutil.copy(ROOT / "tests" / "support" / "fake_plugin.py", directory)
        serial, summary = run(directory, 0, delay)
        parallel, _ = run(directory, 4, delay)
    per_lesson = sum(r["duration_seconds"] for r in summary["results"]) / LESSONS
    print(f"{LESSONS} lessons, author delay {delay:g} s each")
    print(f"  -n 0: {serial:.1f} s wall   -n 4: {parallel:.1f} s wall")
    print(f"  speed-up: {serial / parallel:.2f}x (ideal 4x; target >= 3.6x)")
    print(f"  serial wall per lesson beyond the delay: {(serial / LESSONS - delay) * 1000:.0f} ms"
          f" (pytest start-up spread over {LESSONS} lessons included)")
    print(f"  lesson duration as recorded: {per_lesson:.2f} s")


if __name__ == "__main__":
    main()
