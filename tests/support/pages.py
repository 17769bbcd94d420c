"""Pages made without a batch run, for the browser tests and the README's pictures."""

from __future__ import annotations

from pathlib import Path

from pytest_batchgen.contract import Violation
from pytest_batchgen.layout import BatchLayout, write_text_atomic
from pytest_batchgen.results import LessonResult, Status
from pytest_batchgen.worker.lessonpage import Version, render_lesson_page
from tests.support.lessons import COURSE, OUTCOMES, valid_lesson

# The Claude author's review as its critic would record it.
SCORES = {"sow_fidelity": 0.95, "basic_quality": 0.9, "overall": 0.9375, "card_structure": 0.95,
          "content": 0.95, "standards": 0.95, "scottish_context": 0.9, "cfu_strategy": 0.95,
          "accessibility": 0.9, "scottish_authenticity": 0.9, "coherence": 0.9}
FEEDBACK = ("sow_fidelity: Every planned card is there, in order.\n"
            "basic_quality: Clear, British spelling, realistic Scottish prices.")


def maths_lesson_page(directory: Path, violations: list[Violation] | None = None) -> Path:
    """A lesson page for the contract's valid lesson (maths in every explainer), as a
    written lesson's page is, critic's scores and feedback included; `violations` shown
    as an audit shows them. Returns the page's path in `directory` (a batch directory)."""
    result = LessonResult(order=3, label="Percentages of amounts", status=Status.SUCCESS,
                          action="generate", doc_id="lt_c84874_003")
    result.set_review(SCORES)
    layout = BatchLayout(directory)
    path = layout.lesson_page(result.order)
    path.parent.mkdir(parents=True, exist_ok=True)
    version = Version("Written by this run", valid_lesson(), violations or [])
    write_text_atomic(path, render_lesson_page(COURSE, OUTCOMES, result, [version], FEEDBACK))
    write_text_atomic(layout.report, "<!DOCTYPE html><title>report</title>")  # its back link
    return path
