"""`--batch-audit`: stored lessons as tests, judged against the whole contract."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree

import pytest

from tests.conftest import COURSE, BatchProject
from tests.support.appwrite_server import AppwriteTestServer
from tests.support.lessons import CORPUS, OUTCOMES, VALID, valid_lesson
from tests.support.rows import insert_rows, row_columns

pytestmark = pytest.mark.usefixtures("project")

STORED = [case for case in CORPUS if case.storable]
LESSONS: list[tuple[str, dict[str, Any], bool]] = [
    *((case.name, case.lesson, False) for case in STORED),
    *((name, lesson, True) for name, lesson in sorted(VALID.items())),
]


def entry(order: int, lesson: dict[str, Any] | None = None) -> dict[str, Any]:
    """An entry asking what `lesson` (by default the corpus's base lesson) carries: its
    refs, lesson type and calculator policy, so that only the contract can fail it."""
    lesson = lesson or valid_lesson()
    return {"order": order, "label": f"Lesson number {order}",
            "lesson_type": lesson["lesson_type"], "outcomeRefs": ["O1"],
            "assessmentStandardRefs": ["AS1.1", "AS1.2"],
            "policy": {"calculator_section": "calc" if lesson["policy"]["calculator_allowed"]
                       else "non_calc"}}


def entries(count: int) -> list[dict[str, Any]]:
    return [entry(order) for order in range(1, count + 1)]


@pytest.fixture
def corpus_project(project: BatchProject) -> BatchProject:
    """One SOW entry per corpus lesson (and one with no lesson stored), each stored as a row."""
    project.load({"entries": [
        *(entry(order, lesson if valid else None)
          for order, (_, lesson, valid) in enumerate(LESSONS, start=1)),
        entry(len(LESSONS) + 1)]})
    insert_rows(project.store_path, [row_columns(lesson, order)
                          for order, (_, lesson, _) in enumerate(LESSONS, start=1)])
    return project


@pytest.mark.parametrize("workers", [0, 2], ids=["serial", "xdist"])
def test_the_audit_fails_exactly_the_lessons_that_break_the_contract(
    corpus_project: BatchProject, workers: int
) -> None:
    xml = corpus_project.pytester.path / "audit.xml"
    before = corpus_project.rows()
    run = corpus_project.run(f"--batch-course={COURSE}", "--batch-audit", f"-n{workers}",
                             f"--junitxml={xml}", author=None)
    assert run.ret == 1
    bad = sum(1 for *_, valid in LESSONS if not valid)
    run.result.assert_outcomes(passed=len(LESSONS) - bad, failed=bad, skipped=1)
    summary = run.summary()
    assert (summary["mode"], summary["passed"], summary["failed"], summary["skipped"]) == (
        "audit", len(LESSONS) - bad, bad, 1)
    by_order = {r["order"]: r for r in summary["results"]}
    for order, (name, _, valid) in enumerate(LESSONS, start=1):
        result = by_order[order]
        assert result["status"] == ("passed" if valid else "failed"), (name, result)
        assert result["row_id" if "row_id" in result else "doc_id"] == f"row{order - 1:03d}"
    case = next(c for c in STORED if c.name == "numeric-expected-text")
    violations = by_order[1 + LESSONS.index((case.name, case.lesson, False))]["violations"]
    assert len(violations) == 1 and violations[0].startswith(case.where)
    assert corpus_project.rows() == before  # an audit writes nothing
    assert run.layout.report.is_file()
    assert "Audit Plan: Audit" in run.layout.batch_log.read_text()
    failures = [c for c in ElementTree.parse(xml).getroot().iter("testcase")
                if c.find("failure") is not None]
    assert len(failures) == bad
    # Each failure's violations as a JSON list a dashboard can read, not a Python repr.
    for failure in failures:
        [violations] = [p.get("value") for p in failure.iter("property")
                        if p.get("name") == "violations"]
        assert json.loads(violations) == by_order[
            int(failure.get("name", "").rsplit("_", 1)[1])]["violations"]
    assert "cfu.expected: must be a number, got text" in ElementTree.tostring(
        ElementTree.parse(xml).getroot(), encoding="unicode")


def test_the_audit_names_duplicates_and_undecodable_rows(project: BatchProject) -> None:
    project.load({"entries": entries(3)})
    good = VALID["plain"]
    insert_rows(project.store_path, [
        row_columns(good, 1), row_columns(good, 1),  # two rows for one lesson
        {**row_columns(good, 2), "cards": "H4sIbroken", "status": "archived"},
        row_columns(good, 3),
    ])
    run = project.run(f"--batch-course={COURSE}", "--batch-audit", "-k", "not lesson_003",
                      author=None)
    run.result.assert_outcomes(failed=2, deselected=1)
    results = {r["order"]: r for r in run.summary()["results"]}
    assert results[1]["violations"] == [
        "rows: 2 rows for one lesson (row000, row001); the platform may show any of them"]
    assert results[2]["violations"] == [
        "status: must be one of draft, review, published, got 'archived'",
        "cards: cards cannot be decoded (Error): the frontend shows no cards"]
    out = run.output()
    assert "- rows: 2 rows for one lesson (row000, row001)" in out
    # The failure line points at the lesson's page, where each fault sits by its card.
    assert f"lesson page: {run.layout.lesson_page(1)}" in out
    assert run.layout.lesson_page(1).is_file()
    assert f"{COURSE}: audited 2, passed 0, failed 2, skipped 0 (no lesson)" in out


def test_the_audit_needs_no_author_and_refuses_writing_flags(
    project: BatchProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    project.load({"entries": entries(1)})
    insert_rows(project.store_path, [row_columns(VALID["plain"], 1)])
    # The real default author (claude) would need a key; an audit runs none.
    run = project.run(f"--batch-course={COURSE}", "--batch-audit", author=None)
    assert run.ret == 0, run.output()
    run.result.assert_outcomes(passed=1)
    assert "author audit; " in run.output()
    refused = project.run(f"--batch-course={COURSE}", "--batch-audit", "--batch-force",
                          author=None, subprocess=True)
    assert refused.ret == 2
    assert refused.result.stderr.lines == [
        "batchgen: --batch-force does not apply to --batch-audit, which writes nothing and"
        " runs no author"]


def test_the_audit_reads_appwrite(
    project: BatchProject, appwrite_server: AppwriteTestServer, appwrite_env: dict[str, str]
) -> None:
    appwrite_server.add_sow(COURSE, entries(3))
    appwrite_server.add_outcomes(COURSE, OUTCOMES)
    appwrite_server.add_lesson(row_columns(VALID["multi-select-mcq"], 1))
    appwrite_server.add_lesson(row_columns(CORPUS[0].lesson, 2))
    run = project.run(f"--batch-course={COURSE}", "--batch-audit", "--batch-store=appwrite",
                      f"--batch-mcp-config={project.pytester.path / 'none.json'}", author=None)
    run.result.assert_outcomes(passed=1, failed=1, skipped=1)
    failed = next(r for r in run.summary()["results"] if r["status"] == "failed")
    assert failed["violations"] == ["title: must be 30-80 characters, has 11"]
    assert json.loads(appwrite_server.rows("lesson_templates")[1]["outcomeRefs"]) == [
        "O1", "AS1.1", "AS1.2"]


def test_a_multi_course_audit_totals_what_passed(project: BatchProject) -> None:
    project.load("sow_current.json")
    project.load("sow_legacy_row.json", course=None)
    run = project.run(f"--batch-course={COURSE}", "--batch-course=course_c84774",
                      "--batch-audit", author=None)
    # Nothing stored: every lesson is a skip, and the total line reads as the courses' do.
    run.result.stdout.fnmatch_lines([
        f"{COURSE}: audited 0, passed 0, failed 0, skipped 3 (no lesson)",
        "all 2 courses: audited 0, passed 0, failed 0, skipped 6 (no lesson)"])
