"""The agents' prompts cannot drift from the code: every bound, id form, threshold and
weight they state is filled in from the constants the contract and the critic's tool
enforce."""

from __future__ import annotations

import re

import pytest

from pytest_batchgen import contract
from pytest_batchgen.authors import prompting, review
from pytest_batchgen.authors.prompting import PLACEHOLDER, render, template, values

PROMPTS = ("lesson_author", "lesson_critic", "lesson_researcher")


def test_every_placeholder_is_filled_and_every_value_is_used() -> None:
    used = {name for prompt in PROMPTS for name in PLACEHOLDER.findall(template(prompt))}
    assert used == set(values())
    for prompt in PROMPTS:
        assert "{{" not in render(prompt)


def test_the_values_are_the_constants_the_checks_enforce() -> None:
    table = values()
    spans = {"title": contract.TITLE, "cards": contract.CARDS, "card_title": contract.CARD_TITLE,
             "explainer": contract.EXPLAINER, "plain": contract.EXPLAINER_PLAIN,
             "misconceptions": contract.MISCONCEPTIONS,
             "misconception": contract.MISCONCEPTION_TEXT,
             "clarification": contract.CLARIFICATION, "hook": contract.CONTEXT_HOOK,
             "stem": contract.STEM, "total_points": contract.TOTAL_POINTS,
             "criteria": contract.CRITERIA, "criterion": contract.CRITERION_TEXT,
             "points": contract.CRITERION_POINTS, "options": contract.OPTIONS,
             "hints": contract.HINTS, "hint": contract.HINT_TEXT, "minutes": contract.MINUTES}
    for name, span in spans.items():
        assert (table[f"{name}_min"], table[f"{name}_max"]) == (str(span.low), str(span.high))
    assert table["structured_stem_max"] == str(contract.STRUCTURED_STEM.high)
    assert table["long_minutes_max"] == str(contract.LONG_MINUTES.high)
    assert table["option_max"] == str(contract.OPTION_TEXT.high)
    assert table["policy_notes_max"] == str(contract.POLICY_NOTES.high)
    assert table["card_id_example"] == "card_001" and table["cfu_id_example"] == "q001"
    assert re.fullmatch(contract.MISCONCEPTION_ID.pattern, table["misconception_id_example"])
    weights = {**review.FIDELITY_PARTS, **review.QUALITY_PARTS,
               "fidelity": review.FIDELITY_WEIGHT, "quality": review.QUALITY_WEIGHT}
    for name, weight in weights.items():
        assert float(table[f"{name}_weight"]) == weight
    assert sum(review.FIDELITY_PARTS.values()) == pytest.approx(1)
    assert sum(review.QUALITY_PARTS.values()) == pytest.approx(1)
    assert (float(table["fidelity_min"]), float(table["quality_min"]),
            float(table["overall_min"])) == (review.FIDELITY_MIN, review.QUALITY_MIN,
                                             review.OVERALL_MIN)


def test_a_changed_limit_changes_what_the_agents_are_told(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setattr(contract, "TITLE", contract.Span(33, 77))
    monkeypatch.setattr(review, "OVERALL_MIN", 0.87)
    monkeypatch.setattr(prompting, "RESEARCH_BRIEF_MAX", 4321)
    author, critic = render("lesson_author"), render("lesson_critic")
    title_bounds = "33" + author.split("33", 1)[1][:8]
    assert "77" in title_bounds and "30" not in title_bounds
    assert "0.87" in critic and "0.85" not in critic
    assert "4321" in render("lesson_researcher")


RANGE = re.compile(r"(?<![\d.{])(\d+)\s*[-–]\s*(\d+)(?![\d.}])")
# Rules of thumb the platform's pedagogy states, which happen to share their figures
# with a contract bound; they are no bound of the contract, so they stay figures.
RULES_OF_THUMB = {
    (1, 3): "points for a teach question; sentences in a short-text answer",
    (3, 5): "points for a formative question; misconceptions a research brief lists",
    (0, 1): "the range of a critic's score",
}


@pytest.mark.parametrize("prompt", PROMPTS)
def test_no_bound_is_written_as_a_figure(prompt: str) -> None:
    # A range the contract owns, written out ("30-80"), would not follow a change.
    owned = {(span.low, span.high) for span in vars(contract).values()
             if isinstance(span, contract.Span)} - set(RULES_OF_THUMB)
    written = {(int(low), int(high)) for low, high in RANGE.findall(template(prompt))}
    assert written & owned == set(), f"{prompt}.md states bounds as figures: {written & owned}"
    # Nor a pass threshold ("overall >= 0.85").
    assert not re.search(r"[>≥]=?\s*0\.\d", template(prompt))


@pytest.mark.parametrize(("prompt", "most"), [("lesson_author", 6000), ("lesson_critic", 4000)])
def test_the_fixed_prompts_stay_within_their_token_budget(prompt: str, most: int) -> None:
    # About four characters a token for English prose; the scripted benchmark
    # (benchmarks/bench_claude_requests.py) reports the measured figures.
    assert len(render(prompt)) / 4 <= most
