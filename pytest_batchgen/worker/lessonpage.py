"""`lessons/lesson_NNN.html`: a lesson as the learner meets it, for the reviewer.

Written by the process that knows the lesson's result, as soon as it does: after
a write (the new lesson, and beside it the one it replaced), or after an audit
(each stored row, with every violation beside the card and field it names). The
lesson may be anything a store holds: every field is shown as found, whatever
its type, and nothing on the page comes from outside the page.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_batchgen.batch import CourseBatch
from pytest_batchgen.contract import Violation
from pytest_batchgen.htmlpage import page, plain, rich
from pytest_batchgen.layout import write_text_atomic
from pytest_batchgen.results import LessonResult

log = logging.getLogger(__name__)

STYLE = """
.versions { display: grid; gap: 1em; }
.versions > * { min-width: 0; }
.card { border: 1px solid #d4d4d4; border-radius: 6px; padding: .6em 1em; margin: .6em 0; }
.card h3 { margin: .2em 0 .4em; font-size: 1.1em; }
.card.missing { border-style: dashed; color: #666; }
.plain { background: #f7f7f2; padding: .4em .7em; border-radius: 4px; }
.question { background: #f2f6fb; padding: .4em .7em; border-radius: 4px; margin: .5em 0; }
.correct { font-weight: 600; color: #17692d; }
.correct::after { content: " \\2714 correct"; font-size: .85em; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; margin: .4em 0; }
dl.facts dt { color: #555; } dl.facts dd { margin: 0; }
.scores td { white-space: nowrap; }
pre.feedback { white-space: pre-wrap; background: #f7f7f7; padding: .6em; border-radius: 4px; }
.label { font-size: .8em; text-transform: uppercase; letter-spacing: .05em; color: #555; }
"""

# `cards[2] (card_003).cfu.rubric`: the card a violation names, and its field.
CARD_WHERE = re.compile(r"^cards\[(\d+)\](?: \([^)]*\))?(?:\.(\w+))?")
# A card's parts in the order the learner meets them; a violation of a field not
# shown as a part of its own is shown at the card's top.
CARD_PARTS = ("title", "explainer", "explainer_plain", "cfu", "misconceptions", "context_hooks")


@dataclass(frozen=True)
class Version:
    """One lesson shown on the page: what was written, what it replaced, or a stored row."""

    heading: str
    lesson: dict[str, Any]
    violations: Sequence[Violation] = field(default_factory=tuple)

    def card_violations(self, index: int | None, part: str | None) -> list[Violation]:
        """The violations of card `index` (None: of the lesson itself) and of `part` of
        it (None: of the card's other fields)."""
        found = []
        for violation in self.violations:
            match = CARD_WHERE.match(violation.where)
            card = int(match.group(1)) if match else None
            named = match.group(2) if match else None
            if card != index:
                continue
            if index is None or part == named or (part is None and named not in CARD_PARTS):
                found.append(violation)
        return found


def _violations(items: list[Violation]) -> str:
    return "".join(f'<p class="violation"><code>{plain(v.where)}</code>: {plain(v.rule)}</p>'
                   for v in items)


def _list(values: Any) -> list[Any]:
    return values if isinstance(values, list) else [] if values is None else [values]


def _lesson_facts(version: Version, outcomes: dict[str, str]) -> str:
    lesson = version.lesson
    policy = lesson.get("policy")
    calculator = policy.get("calculator_allowed") if isinstance(policy, dict) else None
    calculator_text = ("calculator allowed" if calculator is True else "no calculator"
                       if calculator is False else f"not stated ({plain(policy)})")
    notes = policy.get("assessment_notes") if isinstance(policy, dict) else None
    refs = "".join(
        f"<li><b>{plain(ref)}</b> {plain(outcomes.get(str(ref), ''))}"
        + ("" if str(ref) in outcomes else ' <span class="muted">(no outcome of the course'
           ' has this id)</span>' if "." not in str(ref) else "") + "</li>"
        for ref in _list(lesson.get("outcomeRefs")))
    tags = ", ".join(plain(tag) for tag in _list(lesson.get("engagement_tags")))
    lesson_violations = version.card_violations(None, None)
    return (f'<div class="label">{plain(version.heading)}</div>'
            f"<h2>{plain(lesson.get('title'))}</h2>"
            f'<dl class="facts"><dt>Lesson type</dt><dd>{plain(lesson.get("lesson_type"))}</dd>'
            f"<dt>Estimated time</dt><dd>{plain(lesson.get('estMinutes'))} minutes</dd>"
            f"<dt>Calculator</dt><dd>{calculator_text}"
            + (f" <small>{plain(notes)}</small>" if notes else "") + "</dd>"
            f"<dt>Engagement</dt><dd>{tags or '—'}</dd></dl>"
            f"<div>Outcomes:<ul>{refs or '<li>none</li>'}</ul></div>"
            f"{_violations(lesson_violations)}")


def _rubric(rubric: Any) -> str:
    if not isinstance(rubric, dict):
        return f"<p>Rubric: {plain(rubric)}</p>" if rubric is not None else ""
    criteria = "".join(
        f"<tr><td>{rich(c.get('description'))}</td><td class='num'>{plain(c.get('points'))}</td>"
        "</tr>" if isinstance(c, dict) else f"<tr><td colspan='2'>{plain(c)}</td></tr>"
        for c in _list(rubric.get("criteria")))
    return (f"<table><tr><th>Rubric criterion</th><th class='num'>Points</th></tr>{criteria}"
            f"<tr><th>Total</th><th class='num'>{plain(rubric.get('total_points'))}</th></tr>"
            "</table>")


def _question(cfu: Any) -> str:
    if not isinstance(cfu, dict):
        return f'<div class="question">{plain(cfu)}</div>'
    kind = cfu.get("type")
    parts = [f'<div class="label">Question {plain(cfu.get("id"))} · {plain(kind)}</div>',
             f"<p>{rich(cfu.get('stem'))}</p>"]
    if kind == "mcq":
        correct = set(_list(cfu.get("answerIndices"))) if cfu.get("multiSelect") else {
            cfu.get("answerIndex")}
        options = "".join(
            f'<li{" class=correct" if index in correct else ""}>{rich(option)}</li>'
            for index, option in enumerate(_list(cfu.get("options"))))
        parts.append(f"<ol type='A'>{options}</ol>"
                     + ("<p><small>Choose every correct option.</small></p>"
                        if cfu.get("multiSelect") else ""))
    if "expected" in cfu:
        money = " (money, 2 decimal places)" if cfu.get("money2dp") else ""
        parts.append(f"<p>Expected answer: <b>{plain(cfu.get('expected'))}</b>, tolerance"
                     f" ± {plain(cfu.get('tolerance'))}{money}</p>")
    hints = "".join(f"<li>{rich(hint)}</li>" for hint in _list(cfu.get("hints")))
    if hints:
        parts.append(f"<div>Hints:<ol>{hints}</ol></div>")
    parts.append(_rubric(cfu.get("rubric")))
    return f'<div class="question">{"".join(parts)}</div>'


def _misconceptions(items: Any) -> str:
    rows = "".join(
        f"<li><b>{rich(item.get('misconception'))}</b> <small>{plain(item.get('id'))}</small>"
        f"<br>{rich(item.get('clarification'))}</li>" if isinstance(item, dict)
        else f"<li>{plain(item)}</li>" for item in _list(items))
    return f"<div>Misconceptions:<ul>{rows}</ul></div>" if rows else ""


def _card(version: Version, index: int) -> str:
    cards = _list(version.lesson.get("cards"))
    if index >= len(cards):
        return f'<div class="card missing">No card {index + 1} in this version.</div>'
    card = cards[index]
    if not isinstance(card, dict):
        return (f'<div class="card"><h3>Card {index + 1}</h3><p>{plain(card)}</p>'
                f"{_violations(version.card_violations(index, None))}</div>")

    def at(part: str) -> str:
        return _violations(version.card_violations(index, part))

    hooks = ", ".join(plain(hook) for hook in _list(card.get("context_hooks")))
    return (f'<div class="card"><div class="label">{plain(card.get("id"))}</div>'
            f"<h3>{plain(card.get('title'))}</h3>{at('title')}"
            f"{_violations(version.card_violations(index, None))}"
            f"<div>{rich(card.get('explainer'))}</div>{at('explainer')}"
            f'<p class="plain"><span class="label">Plain language</span><br>'
            f"{plain(card.get('explainer_plain'))}</p>{at('explainer_plain')}"
            f"{_question(card.get('cfu'))}{at('cfu')}"
            f"{_misconceptions(card.get('misconceptions'))}{at('misconceptions')}"
            + (f"<p>Context: {hooks}</p>" if hooks else "") + f"{at('context_hooks')}</div>")


def _critic(result: LessonResult, feedback: str | None) -> str:
    if result.critic_overall is None:
        return ""
    scores = {"overall": result.critic_overall, "SOW fidelity": result.critic_fidelity,
              "basic quality": result.critic_quality,
              **{name.replace("_", " "): score
                 for name, score in (result.critic_scores or {}).items()}}
    cells = "".join(f"<tr><td>{plain(name)}</td><td class='num'>{score:.2f}</td></tr>"
                    for name, score in scores.items() if score is not None)
    return ("<h2>The critic's review</h2>"
            f'<table class="scores" style="width:auto">{cells}</table>'
            + (f'<pre class="feedback">{plain(feedback)}</pre>' if feedback else ""))


def outcome_titles(course_outcomes: list[dict[str, Any]]) -> dict[str, str]:
    """What each ref of a lesson names: outcome ids their titles, assessment standard
    codes their descriptions (as the platform's rows hold them, JSON text or a list)."""
    titles = {}
    for outcome in course_outcomes:
        titles[str(outcome.get("outcomeId"))] = str(outcome.get("outcomeTitle") or "")
        standards = outcome.get("assessmentStandards")
        if isinstance(standards, str):
            try:
                standards = json.loads(standards)
            except ValueError:
                standards = None
        for standard in standards if isinstance(standards, list) else []:
            if isinstance(standard, dict) and standard.get("code"):
                titles.setdefault(str(standard["code"]),
                                  str(standard.get("desc") or standard.get("description") or ""))
    return titles


def render_lesson_page(course_id: str, course_outcomes: list[dict[str, Any]],
                       result: LessonResult, versions: list[Version],
                       feedback: str | None = None) -> str:
    """The page of one lesson of `course_id`: each version side by side, card by card."""
    outcomes = outcome_titles(course_outcomes)
    columns = f"grid-template-columns: repeat({len(versions)}, minmax(0, 1fr))"
    cards = max((len(_list(v.lesson.get("cards"))) for v in versions), default=0)
    rows = "".join(f'<div class="versions" style="{columns}">'
                   + "".join(_card(v, index) for v in versions) + "</div>"
                   for index in range(cards))
    status = result.status.value + (f" · {len(result.violations)} violation(s)"
                                    if result.violations else "")
    body = (f"<p><small>{plain(course_id)} · lesson {result.order} ·"
            f" {plain(result.action)} · {plain(status)}"
            + (f" · row {plain(result.doc_id)}" if result.doc_id else "") + "</small></p>"
            f"<h1>{plain(result.label)}</h1>"
            + (f'<p class="banner bad">{plain(result.error)}</p>' if result.error else "")
            + f'<div class="versions" style="{columns}">'
            + "".join(f"<div>{_lesson_facts(v, outcomes)}</div>" for v in versions)
            + f"</div>{rows}{_critic(result, feedback)}"
            '<p><a href="../batch_report.html">The batch report</a></p>')
    return page(f"Lesson {result.order}: {result.label}", body, style=STYLE)


def write_lesson_page(batch: CourseBatch, result: LessonResult, versions: list[Version],
                      feedback: str | None = None) -> None:
    """Write the page and name it in the result; a page that cannot be written (a full
    disk) costs the lesson nothing but its page."""
    path = batch.layout.lesson_page(result.order)
    try:
        path.parent.mkdir(exist_ok=True)
        write_text_atomic(path, render_lesson_page(batch.course_id, batch.outcomes, result,
                                                    versions, feedback))
    except OSError as exc:
        log.warning("The lesson's page could not be written: %s", exc)
        return
    result.lesson_page = batch.layout.name(path)
