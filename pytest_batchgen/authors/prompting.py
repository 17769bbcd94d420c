"""The agents' system prompts, with every number the code owns filled in from the code.

The prompts (prompts/*.md) name each bound, limit, id form, threshold and weight
as a placeholder, `{{title_min}}`, never as a figure: the figures come from the
constants the contract (contract.py) and the critic's tool (review.py) enforce, so
a changed limit changes what the agents are told, and no prompt can drift from the
checks that judge what it asks for. A placeholder the table lacks is an error.
"""

from __future__ import annotations

import re
from importlib import resources

from pytest_batchgen import contract
from pytest_batchgen.authors import review

PLACEHOLDER = re.compile(r"\{\{([a-z0-9_]+)\}\}")
# The longest research brief handed to the author (characters): the brief is context,
# not a lesson, and a session's first message must stay small.
RESEARCH_BRIEF_MAX = 6000


def _span(name: str, span: contract.Span) -> dict[str, int]:
    return {f"{name}_min": span.low, f"{name}_max": span.high}


def values() -> dict[str, str]:
    """Every placeholder's value, read from the constants when asked (not copied at
    import), so the prompt always says what the checks enforce."""
    c, r = contract, review
    numbers: dict[str, object] = {
        **_span("title", c.TITLE), **_span("cards", c.CARDS),
        **_span("card_title", c.CARD_TITLE), **_span("explainer", c.EXPLAINER),
        **_span("plain", c.EXPLAINER_PLAIN), **_span("misconceptions", c.MISCONCEPTIONS),
        **_span("misconception", c.MISCONCEPTION_TEXT),
        **_span("clarification", c.CLARIFICATION), **_span("hook", c.CONTEXT_HOOK),
        **_span("stem", c.STEM), "structured_stem_max": c.STRUCTURED_STEM.high,
        **_span("total_points", c.TOTAL_POINTS), **_span("criteria", c.CRITERIA),
        **_span("criterion", c.CRITERION_TEXT), **_span("points", c.CRITERION_POINTS),
        **_span("options", c.OPTIONS), "option_max": c.OPTION_TEXT.high,
        **_span("hints", c.HINTS), **_span("hint", c.HINT_TEXT),
        "tolerance_max": c.TOLERANCE.high,
        **_span("minutes", c.MINUTES), "long_minutes_max": c.LONG_MINUTES.high,
        "policy_notes_max": c.POLICY_NOTES.high,
        "card_id_example": c.card_id(1), "cfu_id_example": c.cfu_id(1),
        "misconception_id_example": c.MISCONCEPTION_ID_EXAMPLE,
        "fidelity_weight": r.FIDELITY_WEIGHT, "quality_weight": r.QUALITY_WEIGHT,
        "fidelity_min": r.FIDELITY_MIN, "quality_min": r.QUALITY_MIN,
        "overall_min": r.OVERALL_MIN, "arithmetic_tolerance": r.ARITHMETIC_TOLERANCE,
        **{f"{name}_weight": weight for name, weight in r.FIDELITY_PARTS.items()},
        **{f"{name}_weight": weight for name, weight in r.QUALITY_PARTS.items()},
        "research_brief_max": RESEARCH_BRIEF_MAX,
    }
    return {name: f"{value:g}" if isinstance(value, float) else str(value)
            for name, value in numbers.items()}


def template(name: str) -> str:
    """A prompt as written, placeholders and all."""
    return resources.files("pytest_batchgen.authors.prompts").joinpath(f"{name}.md").read_text(
        encoding="utf-8")


def render(name: str) -> str:
    """The prompt `name` (lesson_author, lesson_critic, lesson_researcher), filled in."""
    known = values()

    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in known:
            raise KeyError(f"prompt {name}.md names {match.group()}, which no constant fills")
        return known[match.group(1)]

    return PLACEHOLDER.sub(fill, template(name))
