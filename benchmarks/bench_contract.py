"""Outline drafts against the lesson contract: how many rows the platform can run.

Run from the repository root:  python benchmarks/bench_contract.py [SAMPLES_DIR]

For the demo course, the repo's SOW fixtures and, when SAMPLES_DIR (default
../shared/samples) holds them, the platform's real SOW samples and course
outcomes: drafts every entry with the outline author, encodes it as the
`lesson_templates` row it becomes, decodes that row as the frontend does and
checks it against the whole contract and the course's outcomes. Prints
counts, the outcome refs that needed resolving, and the cost of the checks.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_batchgen.authors.outline import draft_lesson  # noqa: E402
from pytest_batchgen.contract import check_row, outcome_ids_of  # noqa: E402
from pytest_batchgen.entries import read_entry  # noqa: E402
from pytest_batchgen.lesson import LessonRow  # noqa: E402
from pytest_batchgen.requirements import requirements_for  # noqa: E402
from pytest_batchgen.sow import parse_entries  # noqa: E402
from tests.support.lessons import CORPUS, OUTCOMES, VALID  # noqa: E402

EMPTY_ENTRY = read_entry({"order": 1, "label": "An entry that asks nothing"})

Source = tuple[str, list[dict[str, Any]], list[dict[str, Any]]]


def sources(samples: Path) -> list[Source]:
    demo = json.loads((ROOT / "pytest_batchgen/demo/course_demo1.json").read_text())
    fixtures = ROOT / "tests/fixtures"
    found: list[Source] = [
        ("demo course", demo["entries"], demo["outcomes"]),
        ("fixture: current format", json.loads((fixtures / "sow_current.json").read_text())
         ["entries"], OUTCOMES),
        ("fixture: legacy row", json.loads((fixtures / "sow_legacy_row.json").read_text())
         ["entries"], [{"outcomeId": "O1"}, {"outcomeId": "O2"}]),
    ]
    found += [
        ("fixture: unified format", json.loads((fixtures / "sow_current_unified.json")
                                               .read_text())["entries"], OUTCOMES),
        # Its lesson 4 names a skill the course lacks: no row can be written for it.
        ("fixture: skills-based (unified)", json.loads((fixtures / "sow_skills_unified.json")
                                                       .read_text())["entries"],
         json.loads((fixtures / "outcomes_skills_n5.json").read_text())),
    ]
    # Each sample SOW with its course's outcomes: skills-based or unit-based.
    for name in sorted(samples.glob("sow_*.json")):
        kind = ("skills_based_national-5" if "skills_based" in name.name
                else "mathematics_national-4")
        outcomes_file = samples / f"course_outcomes_{kind}.json"
        if outcomes_file.is_file():
            found.append((f"sample: {name.name}", json.loads(name.read_text())["entries"],
                          json.loads(outcomes_file.read_text())))
    return found


def measure(name: str, entries: list[dict[str, Any]], outcomes: list[dict[str, Any]]) -> int:
    ids = outcome_ids_of(outcomes)
    passing, renamed, linked, unwritable = 0, 0, 0, 0
    started = time.perf_counter()
    for entry in parse_entries(entries):
        requirements = requirements_for(entry.view, outcomes)
        renamed += len(requirements.refs.renamed) + len(requirements.refs.skills)
        linked += bool(requirements.refs.refs)
        if requirements.problem:  # the batch fails it before authoring: no row
            unwritable += 1
            continue
        row = LessonRow.build(draft_lesson(entry.view, requirements),
                              course_id="course_bench1", sow_order=entry.order,
                              model_version="batchgen_outline", sow_id="sow_bench",
                              sow_version="1")
        passing += not requirements.check_row(row.columns()) and not check_row(
            row.columns(), ids)
    per_lesson = (time.perf_counter() - started) / len(entries) * 1000
    print(f"  {name}: {passing} of {len(entries)} rows pass the whole contract and their"
          f" entry; {linked} linked to an outcome; {renamed} refs or skills resolved to the"
          f" course's ids; {unwritable} unwritable (an outcome or skill the course lacks);"
          f" {per_lesson:.2f} ms per lesson (draft, encode, decode, check)")
    return passing


def main() -> None:
    logging.getLogger("pytest_batchgen").setLevel(logging.ERROR)  # the drafts' notes
    samples = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "samples"
    print("Outline drafts, decoded as the frontend decodes them:")
    found = sources(samples)
    total = sum(len(entries) for _, entries, _ in found)
    passing = sum(measure(*source) for source in found)
    print(f"  all: {passing} of {total} rows pass")
    started, rounds = time.perf_counter(), 200
    lessons = [case.lesson for case in CORPUS] + list(VALID.values())
    for _ in range(rounds):
        for lesson in lessons:
            requirements_for(EMPTY_ENTRY, OUTCOMES).check(lesson)
    per_check = (time.perf_counter() - started) / (rounds * len(lessons)) * 1e6
    print(f"Contract check of one submitted lesson: {per_check:.0f} µs"
          f" ({len(CORPUS)} broken and {len(VALID)} valid lessons, {rounds} rounds)")


if __name__ == "__main__":
    main()
