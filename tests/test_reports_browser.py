"""The pages a batch writes, in a real browser (the system's Chromium): the demo batch,
a failed batch, an audit, a merge with a missing shard, a lesson page and an
overwrite's. Each page loads with no console error, fits a 1280 px window, links
only to files that exist, shows maths as MathML and no raw LaTeX, and its status
filter hides rows. Screenshots land in the test's tmp dir, never in the repository.

Without Chromium these tests skip, saying how to install it; CI installs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_batchgen.__main__ import main
from pytest_batchgen.layout import BatchLayout
from tests.conftest import COURSE, BatchProject, legacy_sow
from tests.support.browser import INSTALL_HINT, PageLook, browser, chromium, look
from tests.support.lessons import valid_lesson
from tests.support.pages import maths_lesson_page
from tests.support.rows import insert_rows, row_columns

pytestmark = pytest.mark.skipif(chromium() is None, reason=INSTALL_HINT)


def seen(tmp_path: Path, *paths: Path) -> list[PageLook]:
    """Each page as a reader meets it, its screenshot kept beside the test's files.

    The browser is opened only once the batch has run: Playwright's sync API holds
    an event loop while it is open, and an in-process batch runs its own."""
    with browser() as chromium_browser:
        found = [look(chromium_browser.new_page(), path,
                      tmp_path / f"{path.parent.name}_{path.stem}.png") for path in paths]
    for page in found:
        assert page.console_errors == [], page
        assert not page.overflows, f"{page.path} is {page.scroll_width} px wide at 1280"
        assert page.broken_links == [], page
        if page.path.parent.name == "lessons":  # lesson text: reports show dollar costs
            assert page.raw_latex == [], page
        assert page.screenshot is not None and page.screenshot.stat().st_size > 0
    return found


def test_the_demo_batch(project: BatchProject, tmp_path: Path) -> None:
    assert main(["--store", f"sqlite:///{project.store_path}", "load-demo"]) == 0
    run = project.run("--batch-course=course_demo1", author="outline")
    assert run.ret == 0
    report, *lessons = seen(tmp_path, run.layout.report,
                            *(run.layout.lesson_page(order) for order in range(1, 7)))
    assert report.rows == 6 and report.links >= 6 * 2
    assert [page.links for page in lessons] == [1] * 6  # back to the report
    html = run.layout.report.read_text()
    assert "Complete: every lesson was generated" in html
    assert "<svg" not in html and "$0.0000" not in html  # the outline author costs nothing


def test_a_failed_batch(project: BatchProject, tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    project.load(legacy_sow(6, COURSE), course=None)
    monkeypatch.setenv("BATCHGEN_FAKE_FAIL", "4")
    run = project.run(f"--batch-course={COURSE}")
    [report] = seen(tmp_path, run.layout.report)
    assert (report.filtered_to, report.hidden_by_filter) == ("failed", 5)
    html = run.layout.report.read_text()
    assert "1 lesson failed: not ready to publish" in html and "Complete" not in html
    first = html.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert 'data-status="failed"' in first and 'data-key="4"' in first  # failures first
    # A click on "Order" sorts every row by it, the failure no longer first.
    assert report.first_column_sorted == [str(order) for order in range(1, 7)]


def test_an_audit(project: BatchProject, tmp_path: Path) -> None:
    lesson = valid_lesson()
    lesson["cards"][1]["cfu"]["rubric"]["total_points"] = 5  # criteria add up to 2
    project.load({"entries": [{"order": 1, "label": "Percentages of amounts",
                               "lesson_type": "teach", "outcomeRefs": ["O1"],
                               "assessmentStandardRefs": ["AS1.1", "AS1.2"],
                               "policy": {"calculator_section": "non_calc"}}]})
    insert_rows(project.store_path, [row_columns(lesson, 1)])
    run = project.run(f"--batch-course={COURSE}", "--batch-audit", author=None)
    assert run.ret == 1
    report, page = seen(tmp_path, run.layout.report, run.layout.lesson_page(1))
    assert report.rows == 1
    html = run.layout.report.read_text()
    for absent in ("Cost", "Tokens", "Time", "lesson_order_001.log", "<svg"):
        assert absent not in html, absent
    assert page.maths >= 4  # every $…$ of the explainers
    text = run.layout.lesson_page(1).read_text()
    # The violation is shown in the card it names, beside its question.
    card = text.split("card_002", 1)[1].split('class="card"', 1)[0]
    assert "cards[1] (card_002).cfu.rubric.total_points" in card


def test_a_merge_with_a_missing_shard(project: BatchProject,
                                      tmp_path: Path) -> None:
    project.load(legacy_sow(6, COURSE), course=None)
    project.run(f"--batch-course={COURSE}", "--batch-shard=1/2")
    out = tmp_path / "merged"
    assert main(["merge", str(project.log_dir), "--out", str(out)]) == 1
    course = out / f"batch_{COURSE}_merged"
    catalogue, report = seen(tmp_path, BatchLayout(out).report, BatchLayout(course).report)
    assert catalogue.rows == 1
    assert report.rows == 6  # the three a shard ran, and the three no batch covered
    assert (report.filtered_to, report.hidden_by_filter) == ("not_covered", 3)
    summary = json.loads(BatchLayout(course).summary.read_text())
    assert summary["not_covered"] == [2, 4, 6]


def test_a_lesson_page(tmp_path: Path) -> None:
    [page] = seen(tmp_path, maths_lesson_page(tmp_path / "batch"))
    assert page.maths >= 3 * 5  # five formulas in each of three explainers
    text = (tmp_path / "batch" / "lessons" / "lesson_003.html").read_text()
    assert "Use numerical skills in real-life contexts" in text  # O1's title
    assert "Interpreting a situation" in text  # AS1.1's description
    assert "0.94" in text and "Clear, British spelling" in text  # the critic's word
    assert text.count('class=correct') == 1 and "Expected answer: <b>4</b>" in text


def test_an_overwrite_side_by_side(project: BatchProject,
                                   tmp_path: Path) -> None:
    project.load("sow_current.json")
    project.add_lessons(COURSE, [1])
    run = project.run(f"--batch-course={COURSE}", "--batch-force", "--batch-yes",
                      f"{COURSE}::lesson_001")
    assert run.ret == 0
    [result] = run.summary()["results"]
    assert result["lesson_page"] == "lessons/lesson_001.html"
    seen(tmp_path, run.layout.lesson_page(1), run.layout.report)
    text = run.layout.lesson_page(1).read_text()
    assert "Before: the stored lesson it replaced" in text and "Written by this run" in text
    assert "Existing lesson number 1 for the course" in text  # the old title, beside the new
    assert "repeat(2, minmax(0, 1fr))" in text
