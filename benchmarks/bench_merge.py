"""`merge` over a catalogue's artifacts: the time per lesson must stay flat.

Run from the repository root:  python benchmarks/bench_merge.py

One course of 300 lessons is authored as a CI matrix would (three shard jobs,
outline author, embedded store); its three shard summaries are then copied as
the artifacts of 10 and of 40 such courses (a catalogue of 3000 and 12000
lessons), and `merge` runs over each. Prints the batches and lessons merged,
the seconds, the time per lesson and the ratio of the two sizes (4x the
lessons should take about 4x the time), and the files written per course.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_batchgen.controller.merge import merge
from pytest_batchgen.layout import SUMMARY_FILE

COURSE = "course_merge1"
LESSONS = 300
SHARDS = 3


def author_shards(workdir: Path) -> list[dict[str, object]]:
    """The three shard summaries of one real course."""
    entries = [{"order": order, "label": f"Merge lesson {order}: ratio in context",
                "lesson_type": "teach", "outcomeRefs": ["O1"], "assessmentStandardRefs": ["1.1"],
                "notes": "Use Scottish shop prices.", "estMinutes": 50}
               for order in range(1, LESSONS + 1)]
    sow = workdir / "sow.json"
    sow.write_text(json.dumps({"courseId": COURSE, "entries": entries,
                               "outcomes": [{"outcomeId": "O1"}]}))
    store = f"sqlite:///{workdir / 'store.sqlite3'}"
    subprocess.run([sys.executable, "-m", "pytest_batchgen", "--store", store, "load-sow",
                    str(sow)], cwd=workdir, check=True, capture_output=True)
    for shard in range(1, SHARDS + 1):
        done = subprocess.run(
            [sys.executable, "-m", "pytest", f"--batch-course={COURSE}", "--batch-author=outline",
             f"--batch-shard={shard}/{SHARDS}", f"--batch-store={store}",
             f"--batch-log-dir={workdir / 'logs'}", "-q", "-p", "no:cacheprovider"],
            cwd=workdir, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"shard {shard} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return [json.loads(path.read_text()) for path in sorted((workdir / "logs").rglob(SUMMARY_FILE))]


def artifacts(directory: Path, shards: list[dict[str, object]], courses: int) -> None:
    """`courses` copies of the course, one directory per job, as a CI downloads them."""
    for number in range(courses):
        for index, summary in enumerate(shards, 1):
            course = f"course_m{number:03d}"
            job = directory / f"batch-{course}-shard{index}" / f"batch_{course}_shard{index}"
            job.mkdir(parents=True)
            (job / SUMMARY_FILE).write_text(json.dumps({**summary, "courseId": course}))


def measure(shards: list[dict[str, object]], courses: int, workdir: Path) -> float:
    source = workdir / f"artifacts{courses}"
    artifacts(source, shards, courses)
    started = time.perf_counter()
    document = merge([source], workdir / f"merged{courses}")
    elapsed = time.perf_counter() - started
    totals = document.totals
    assert totals.courses == courses and totals.not_covered == 0, totals
    lessons = totals.lessons
    files = sum(1 for path in (workdir / f"merged{courses}").rglob("*")
                if path.is_file()) - 2  # less the catalogue's own two
    print(f"{courses:>3} courses x {SHARDS} shards = {courses * SHARDS:>3} batches,"
          f" {lessons:>5} lessons: {elapsed:6.2f} s, {1000 * elapsed / lessons:.3f} ms per lesson,"
          f" {files / courses:.0f} files written per course")
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        shards = author_shards(workdir)
        print(f"one course of {LESSONS} lessons authored in {SHARDS} shard jobs")
        small = measure(shards, 10, workdir)
        large = measure(shards, 40, workdir)
        print(f"4x the lessons: {large / small:.2f}x the time")


if __name__ == "__main__":
    main()
