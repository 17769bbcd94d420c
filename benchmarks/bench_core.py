"""Core figures: a 105-entry dry run, and the plugin's overhead per lesson item.

Run from the repository root:  python benchmarks/bench_core.py

Prints counts and ratios; wall-clock figures are for this machine only and
no test depends on them.
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_batchgen.__main__ import sow_row_from_document
from pytest_batchgen.authors import AuthoredLesson, AuthorMetrics, AuthorRequest
from pytest_batchgen.authors.outline import OutlineAuthor
from pytest_batchgen.layout import BatchLayout, batch_directories
from pytest_batchgen.lesson import CLAUDE_MODEL_VERSION
from pytest_batchgen.requirements import requirements_for
from pytest_batchgen.store.sqlite import SqliteStore
from tests.conftest import legacy_sow
from tests.support.lessons import OUTCOMES
from tests.support.rows import lesson_row

COURSE = "course_c84774"
REPEATS = 5
# Our own ini (not the repo's) and no assertion rewriting: both runs pay the same.
ISOLATED = ["-c", "/dev/null", "--assert=plain", "-p", "no:cacheprovider", "-q",
            "-o", "asyncio_default_fixture_loop_scope=function"]


class CountingStore:
    """Counts the calls each store method receives."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner = inner
        self.description = inner.description
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return method(*args, **kwargs)

        return counted


class NoOpAuthor(OutlineAuthor):
    """Returns each entry's lesson, drafted before the clock starts: what is left is the
    plugin's own cost (the contract's gate included)."""

    name = "noop"
    model_version = CLAUDE_MODEL_VERSION
    any_row_counts = False

    def __init__(self, lessons: dict[int, AuthoredLesson]) -> None:
        self.lessons = lessons

    async def author(self, request: AuthorRequest) -> AuthoredLesson:
        return self.lessons[request.entry.order]


class Wiring:
    def __init__(self, store: CountingStore, author: NoOpAuthor) -> None:
        self.store = store
        self.author = author

    def pytest_batchgen_make_store(self, config: Any, settings: Any) -> CountingStore:
        return self.store

    def pytest_batchgen_make_author(self, config: Any, settings: Any) -> NoOpAuthor:
        return self.author


def fresh_store(directory: Path, entries: int, existing: int) -> Path:
    path = directory / f"store_{time.monotonic_ns()}.sqlite3"
    store = SqliteStore(path)
    store.save_sow(sow_row_from_document(legacy_sow(entries, COURSE), None, "published"),
                   OUTCOMES)
    for order in range(1, existing + 1):
        store.write_lesson(lesson_row(order, course=COURSE))
    store.close()
    return path


def run(directory: Path, store_path: Path, author: NoOpAuthor, *args: str
        ) -> tuple[float, CountingStore, int]:
    store = CountingStore(SqliteStore(store_path))
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = pytest.main([f"--batch-course={COURSE}", f"--batch-log-dir={directory}/logs",
                            *ISOLATED, *args],
                           plugins=[Wiring(store, author)])
    return time.perf_counter() - started, store, int(code)


def plain_items(directory: Path, count: int) -> float:
    """The same number of trivial ordinary test items, for comparison."""
    tests = directory / f"plain_{time.monotonic_ns()}"
    tests.mkdir()
    (tests / "test_plain.py").write_text(
        f"import pytest\n\n@pytest.mark.parametrize('n', range({count}))\n"
        "def test_item(n):\n    pass\n")
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        pytest.main([str(tests), *ISOLATED])
    return time.perf_counter() - started


def main() -> None:
    import asyncio

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        sample = fresh_store(directory, 105, 0)
        seed = SqliteStore(sample)
        sow = seed.fetch_sow(COURSE)
        seed.close()
        lessons = {}
        for entry in sow.entries:
            request = AuthorRequest(COURSE, entry, sow, OUTCOMES,
                                    requirements_for(entry.view, OUTCOMES), None)
            lessons[entry.order] = AuthoredLesson(
                asyncio.run(OutlineAuthor().author(request)).lesson, AuthorMetrics())
        author = NoOpAuthor(lessons)

        dry = []
        for _ in range(REPEATS):
            path = fresh_store(directory, 105, 40)
            seconds, store, code = run(directory, path, author, "--batch-dry-run")
            assert code == 0
            dry.append(seconds)
        newest = batch_directories(directory / "logs")[-1]
        plan = json.loads(BatchLayout(newest).plan.read_text())
        print("Dry run of a 105-entry course with 40 existing lessons")
        print(f"  plan: {plan['summary']}")
        print(f"  store calls: {dict(sorted(store.calls.items()))}")
        print(f"  wall time: median {statistics.median(dry) * 1000:.0f} ms"
              f" over {REPEATS} runs (spec NF5: < 10 s)")

        per_item = []
        plain = []
        for _ in range(REPEATS):
            path = fresh_store(directory, 105, 0)
            seconds, store, code = run(directory, path, author)
            assert code == 0, code
            per_item.append(seconds / 105)
            plain.append(plain_items(directory, 105) / 105)
        overhead = statistics.median(per_item) - statistics.median(plain)
        print("Full run of 105 lessons with a no-op author (SQLite store)")
        print(f"  store calls: {dict(sorted(store.calls.items()))}"
              f" -> {store.calls.get('write_lesson', 0) / 105:.0f} write per lesson")
        print(f"  per lesson item: median {statistics.median(per_item) * 1000:.2f} ms;"
              f" plain pytest item: {statistics.median(plain) * 1000:.2f} ms;"
              f" plugin overhead: {overhead * 1000:.2f} ms per lesson"
              f" ({statistics.median(per_item) / statistics.median(plain):.1f}x a plain item)")


if __name__ == "__main__":
    main()
