"""Whole batches of 1000 and 5000 lessons: the cost per lesson must stay flat.

Run from the repository root:  python benchmarks/bench_scale.py

Each size runs the README's batch (outline author, embedded store) in a fresh
pytest process on a fresh store, then again with every lesson present (all
skips). The platform's rows hold sow_order 1 to 1000, so one course has at
most 1000 lessons: 5000 lessons are five such courses in one run, and one
course is also measured at 200 and 1000 lessons (its summary grows with it).
Prints wall times, the time per lesson and the ratios; the target is at most
5.5x the time for 5x the lessons (before, 5000 lessons took 21.7x the time of
1000: the summary was rewritten and re-read for every lesson).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COURSE = "course_scale1"


def run_batch(workdir: Path, courses: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *(f"--batch-course={c}" for c in courses),
         "--batch-author=outline", f"--batch-store=sqlite:///{workdir / 'store.sqlite3'}",
         f"--batch-log-dir={workdir / 'logs'}", "-q", "-p", "no:cacheprovider"],
        cwd=workdir, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"batch failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed


def measure(courses: int, lessons: int) -> tuple[float, float]:
    """(seconds to author, seconds to skip) `courses` courses of `lessons` entries each."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        entries = [{"order": order, "label": f"Scale lesson {order}: percentages in context",
                    "lesson_type": "teach", "outcomeRefs": ["O1"],
                    "assessmentStandardRefs": ["1.1"],
                    "pedagogical_blocks": ["starter", "modelling"],
                    "notes": "Use Scottish shop prices.", "estMinutes": 50}
                   for order in range(1, lessons + 1)]
        names = [f"course_scale{n}" for n in range(1, courses + 1)]
        for name in names:
            sow = workdir / f"{name}.json"
            sow.write_text(json.dumps({"courseId": name, "entries": entries,
                                       "outcomes": [{"outcomeId": "O1"}]}))
            subprocess.run([sys.executable, "-m", "pytest_batchgen", "--store",
                            f"sqlite:///{workdir / 'store.sqlite3'}", "load-sow", str(sow)],
                           cwd=workdir, check=True, capture_output=True)
        return run_batch(workdir, names), run_batch(workdir, names)


def report(label: str, lessons: int, figures: tuple[float, float]) -> None:
    authored, skipped = figures
    print(f"  {label:<28} authored in {authored:6.1f} s ({authored / lessons * 1000:5.1f} ms"
          f" per lesson); skipped in {skipped:5.1f} s ({skipped / lessons * 1000:4.1f} ms)")


def main() -> None:
    runs = {"1 course of 200": (1, 200), "1 course of 1000": (1, 1000),
            "5 courses of 1000": (5, 1000)}
    figures = {label: measure(*shape) for label, shape in runs.items()}
    for label, (courses, lessons) in runs.items():
        report(label, courses * lessons, figures[label])
    for small, large in (("1 course of 200", "1 course of 1000"),
                         ("1 course of 1000", "5 courses of 1000")):
        ratio = figures[large][0] / figures[small][0]
        print(f"  {large} / {small}: {ratio:.2f}x the time for 5x the lessons"
              " (target: at most 5.5x)")


if __name__ == "__main__":
    main()
