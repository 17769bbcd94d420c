"""`batch_report.html`: the batch summary as one self-contained page, and the catalogue's.

Built from the summary document alone (no store, no network to view it), to
answer "can I publish?" at a glance: the counts as big numbers under a banner
that says what failed or is missing (never "complete" above a failure), then
every lesson of the course as a row, failures first, each linking to its
lesson page, log and diff. A small inline script lets the reader filter the
rows by status and sort by any column; without it the page reads the same,
unfiltered. Charts are drawn (inline SVG) only where they say something: not
for an audit, not when every value is 0. An audit shows audit columns only.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from pytest_batchgen.controller.documents import CatalogueDocument, SummaryDocument
from pytest_batchgen.htmlpage import link, page, plain
from pytest_batchgen.layout import (
    BATCH_LOG_FILE,
    CATALOGUE_FILE,
    SUMMARY_FILE,
    BatchLayout,
    write_text_atomic,
)
from pytest_batchgen.planning import Mode, shard_of
from pytest_batchgen.results import LessonResult, Shard, format_duration

STYLE = """
.tiles { display: flex; flex-wrap: wrap; gap: .6em; margin: .8em 0; }
.tile { border: 1px solid #d4d4d4; border-radius: 6px; padding: .4em .9em; min-width: 7em; }
.tile b { display: block; font-size: 1.9em; line-height: 1.1; }
.tile.bad { border-color: #e39a9a; background: #fdf0f0; color: #8a1010; }
table.records td.text { overflow-wrap: anywhere; min-width: 12em; }
table.records td.lesson { min-width: 14em; }
table.records td.files { white-space: nowrap; }
table.records td.problem { overflow-wrap: anywhere; max-width: 32em; }
table.records th { cursor: default; }
tr[data-status=failed] td:first-child, tr[data-status=not_started] td:first-child {
  border-left: 4px solid #c62828; }
details summary { cursor: pointer; }
.cost { fill: #3a6ea5; } .duration { fill: #d08c2f; }
svg text { font-size: 11px; fill: #333; }
"""

# Filter and sort, for a reader with hundreds of rows. Rows keep the server's order
# (failures first) until a heading is clicked; numbers sort as numbers.
SCRIPT = """
for (const table of document.querySelectorAll('table.records')) {
  const body = table.tBodies[0];
  const filter = table.previousElementSibling;
  if (filter && filter.classList.contains('filter')) {
    const select = filter.querySelector('select');
    filter.hidden = false;
    select.addEventListener('change', () => {
      for (const row of body.rows)
        row.hidden = select.value !== '' && row.dataset.status !== select.value;
    });
  }
  table.querySelectorAll('thead th').forEach((th, column) => {
    let ascending = true;
    const key = row => {
      const cell = row.cells[column];
      const text = cell ? (cell.dataset.key ?? cell.textContent.trim()) : '';
      const number = Number(text);
      return text !== '' && !Number.isNaN(number) ? number : text.toLowerCase();
    };
    const sort = () => {
      const rows = [...body.rows].sort((a, b) => {
        const x = key(a), y = key(b);
        const order = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0)
                                            : (typeof x === 'number' ? -1 : 1);
        return ascending ? order : -order;
      });
      ascending = !ascending;
      for (const row of rows) body.appendChild(row);
    };
    th.tabIndex = 0;
    th.style.cursor = 'pointer';
    th.title = 'Sort by ' + th.textContent;
    th.addEventListener('click', sort);
    th.addEventListener('keydown', event => { if (event.key === 'Enter') sort(); });
  });
}
"""

# Rows needing a reader's eye come first; within a rank, by order.
RANK = {"failed": 0, "not_started": 1, "not_covered": 2, "not_run": 3}
# Lessons a summary lists without a result, and what the report calls them.
UNRESULTED = (("not_covered", "not covered"), ("not_run", "not run"),
              ("deselected", "deselected"))


def _num(value: Any, shown: str | None = None) -> str:
    return f'<td class="num" data-key="{escape(str(value))}">{shown or plain(value)}</td>'


def _money(value: float) -> str:
    return f"${value:.4f}"


def _chart(results: list[LessonResult], figure: str, css: str, unit: str) -> str:
    """One horizontal bar per authored lesson, scaled to the largest value; nothing
    when there is nothing to compare (every value 0, or one lesson)."""
    values = [(r.order, float(getattr(r, figure))) for r in results if r.authored]
    if len(values) < 2 or not any(value for _, value in values):
        return ""
    peak = max(value for _, value in values)
    height = 18
    bars = []
    for index, (order, value) in enumerate(values):
        width = 300 * value / peak
        y = index * height
        label = _money(value) if unit == "usd" else format_duration(value)
        bars.append(
            f'<text x="0" y="{y + 12}">#{order}</text>'
            f'<rect class="{css}" x="40" y="{y + 3}" width="{width:.1f}" height="12"/>'
            f'<text x="{45 + width:.1f}" y="{y + 12}">{label}</text>'
        )
    title = "Cost per lesson" if unit == "usd" else "Duration per lesson"
    return (f"<h2>{title}</h2><svg width=\"460\" height=\"{len(values) * height}\" role=\"img\""
            f' aria-label="{title}">{"".join(bars)}</svg>')


def _critic(result: LessonResult) -> str:
    if result.critic_overall is None:
        return BLANK
    detail = "<br>".join(
        [f"fidelity {result.critic_fidelity or 0:.2f}, quality {result.critic_quality or 0:.2f}",
         *(f"{escape(name.replace('_', ' '))} {score:.2f}"
           for name, score in (result.critic_scores or {}).items())])
    return (f'<td class="num" data-key="{result.critic_overall}"><details>'
            f"<summary>{result.critic_overall:.3f}</summary><small>{detail}</small>"
            "</details></td>")


def _problem(result: LessonResult) -> str:
    """The error, and under an audit every violation the lesson has."""
    violations = result.violations
    items = "".join(f"<li>{plain(v)}</li>" for v in violations)
    listed = (f"<ul>{items}</ul>" if len(violations) <= 3 else
              f"<details><summary>{len(violations)} violations</summary><ul>{items}</ul>"
              "</details>") if items else ""
    note = f"<br><small>{plain(result.note)}</small>" if result.note else ""
    return f'<td class="problem">{plain(result.error or "")}{listed}{note}</td>'


# An empty cell of a number column: a figure a lesson has not.
BLANK = '<td class="num" data-key=""></td>'


@dataclass(frozen=True)
class Unresulted:
    """A lesson the summary lists without a result: not covered, not run, deselected."""

    order: int
    label: str
    status: str


def _status_cell(status: str, words: str, reason: str | None = None) -> str:
    return (f'<td class="{escape(status)}" data-key="{escape(status)}">{plain(words)}'
            + (f"<br><small>{plain(reason.replace('_', ' '))}</small>" if reason else "")
            + "</td>")


class Columns:
    """Which columns a summary's table has: an audit's, a generation's; a merge's add
    the shard; spend columns only where some lesson spent."""

    def __init__(self, summary: SummaryDocument) -> None:
        results = summary.results
        self.audit = summary.audit
        self.merged = summary.merged
        self.spend = not self.audit and any(r.authored and (r.cost_usd or r.tokens)
                                            for r in results)
        self.time = not self.audit and any(r.authored and round(r.duration_seconds)
                                           for r in results)
        self.critic = any(r.critic_overall is not None for r in results)
        self.shards = max((s.shard.count for s in summary.merged_from or [] if s.shard),
                          default=0)

    def head(self) -> str:
        names = ["Order", "Lesson", "Status", *(["Shard"] * self.merged),
                 *(["Time"] * self.time), *(["Cost", "Tokens"] * self.spend),
                 *(["Critic"] * self.critic), "Files",
                 "Violations" if self.audit else "Problem"]
        return "<thead><tr>" + "".join(f"<th>{name}</th>" for name in names) + "</tr></thead>"

    def shard(self, order: int, shard: Shard | None) -> str:
        if not self.merged:
            return ""
        if shard:
            text = f"{shard.index}/{shard.count}"
        elif self.shards:  # a lesson no merged batch ran: the shard it belongs to
            text = f"{shard_of(order, self.shards)}/{self.shards}"
        else:
            text = "—"
        return f"<td>{plain(text)}</td>"

    def row(self, result: LessonResult) -> str:
        status = result.status
        words = status.replace("_", " ") + (" (stale)" if result.stale else "")
        row_id = result.doc_id or result.existing_doc_id
        files = " · ".join(filter(None, (
            link(result.log_file), link(result.diff_file), link(result.pending_file))))
        # The lesson's title leads to its page: what a reviewer opens first.
        label = (link(result.lesson_page, result.label) if result.lesson_page
                 else plain(result.label))
        cells = [_num(result.order),
                 f'<td class="lesson">{label}'
                 + (f"<br><small>row {plain(row_id)}</small>" if row_id else "") + "</td>",
                 _status_cell(status, words, result.reason),
                 self.shard(result.order, result.shard)]
        # A lesson whose author did not run has no figures of its own.
        if self.time:
            seconds = round(result.duration_seconds)
            cells.append(_num(seconds, format_duration(seconds)) if result.authored else BLANK)
        if self.spend:
            cells += [_num(result.cost_usd, _money(result.cost_usd)), _num(result.tokens)] \
                if result.authored else [BLANK, BLANK]
        if self.critic:
            cells.append(_critic(result))
        cells += [f'<td class="files">{files}</td>', _problem(result)]
        return f'<tr data-status="{escape(status)}">{"".join(cells)}</tr>'

    def unresulted(self, lesson: Unresulted) -> str:
        """The row of a lesson with no result: its order, label and why, nothing else."""
        blanks = self.time + 2 * self.spend + self.critic
        cells = [_num(lesson.order), f'<td class="lesson">{plain(lesson.label)}</td>',
                 _status_cell(lesson.status, lesson.status.replace("_", " ")),
                 self.shard(lesson.order, None), BLANK * blanks,
                 '<td class="files"></td><td class="problem"></td>']
        return f'<tr data-status="{escape(lesson.status)}">{"".join(cells)}</tr>'


def every_lesson(summary: SummaryDocument) -> list[LessonResult | Unresulted]:
    """The summary's results and, as rows of their own, the lessons it lists without a
    result (not covered by any merged batch, not run, deselected): failures first."""
    labels = summary.sow_labels
    rows: list[LessonResult | Unresulted] = list(summary.results)
    for key, _ in UNRESULTED:
        rows += [Unresulted(order, labels.get(str(order), "(its label is in no merged summary)"),
                            key) for order in getattr(summary, key)]
    return sorted(rows, key=lambda r: (RANK.get(r.status, len(RANK)), r.order))


def state(summary: SummaryDocument) -> tuple[str, str]:
    """(css, sentence): what the batch came to, failures said first. "complete" is said
    only of a batch where every lesson ran and none failed."""
    failed = summary.failed
    missing = [f"{len(getattr(summary, key))} {words}" for key, words in
               (("not_started", "not started"), *UNRESULTED[:2]) if getattr(summary, key)]
    if summary.interrupted:
        missing.insert(0, "interrupted")
    if summary.not_started and summary.stopped_early:
        missing.append(f"stopped early: {summary.stopped_early}")
    incomplete = not summary.complete or bool(missing)
    if failed:
        what = "failed the audit" if summary.audit else "failed"
        text = f"{failed} lesson{'s' * (failed != 1)} {what}: not ready to publish"
        return "bad", text + (f" (and incomplete: {'; '.join(missing)})" if incomplete else "")
    if incomplete:
        return "warn", "Incomplete: " + ("; ".join(missing) or "not every lesson has a result")
    if summary.audit:
        return "good", "Complete: every stored lesson passed the audit"
    return "good", "Complete: every lesson was generated or already exists"


def counts(summary: SummaryDocument) -> str:
    done = f"passed {summary.done}" if summary.audit else f"generated {summary.done}"
    not_started, not_covered = summary.not_started, summary.not_covered
    return (f"{done}, skipped {summary.skipped}, failed {summary.failed}"
            + (f", not started {len(not_started)} ({escape(str(summary.stopped_early))})"
               if not_started else "")
            + (f", not covered by any batch merged {len(not_covered)}" if not_covered else "")
            + (f", stale {summary.stale} (written from an older SOW version)"
               if summary.stale else ""))


def _tiles(pairs: list[tuple[str, Any, bool]]) -> str:
    return '<div class="tiles">' + "".join(
        f'<div class="tile{" bad" if bad else ""}"><b>{plain(value)}</b>{plain(name)}</div>'
        for name, value, bad in pairs) + "</div>"


def _filter(statuses: list[str]) -> str:
    """The status filter, hidden until the script shows it (without the script there
    is nothing to filter with)."""
    options = "".join(f'<option value="{escape(s)}">{plain(s.replace("_", " "))}</option>'
                      for s in dict.fromkeys(statuses))
    return (f'<p class="filter" hidden><label>Show <select class="status-filter">'
            f'<option value="">every status</option>{options}</select></label></p>')


def render(summary: SummaryDocument) -> str:
    columns = Columns(summary)
    audit = columns.audit
    rows = every_lesson(summary)
    css, sentence = state(summary)
    tiles: list[tuple[str, Any, bool]] = [("passed" if audit else "generated", summary.done, False),
             ("failed", summary.failed, bool(summary.failed)),
             ("skipped", summary.skipped, False)]
    for key, words in (("not_started", "not started"), *UNRESULTED):
        if getattr(summary, key):
            tiles.append((words, len(getattr(summary, key)), key != "deselected"))
    if summary.stale:
        tiles.append(("stale", summary.stale, False))
    if columns.spend:
        tiles += [("cost", _money(summary.total_cost_usd), False),
                  ("tokens", summary.total_tokens, False)]
    shard = summary.shard
    about = (f"Course <b>{plain(summary.courseId)}</b>"
             + (f" · shard {shard.index}/{shard.count}" if shard else "")
             + (" · merged from " + ", ".join(plain(s.batch_id)
                                            for s in summary.merged_from or [])
                if columns.merged else "")
             + f" · {'audit' if audit else 'author ' + plain(summary.author or '')}"
             + f" · {plain(summary.duration_human)}"
             + f" · {summary.total_sow_entries} lessons in the SOW")
    body = (f"<h1>{'Audit' if audit else 'Batch'} {plain(summary.batch_id)}</h1>"
            f"<p>{about}</p>"
            f'<p class="banner {css}">{plain(sentence)}</p>'
            f"{_tiles(tiles)}<p class=\"muted\">{counts(summary)}</p>"
            f"{_filter([r.status for r in rows])}"
            f'<table class="records">{columns.head()}<tbody>'
            + "".join(columns.row(r) if isinstance(r, LessonResult) else columns.unresulted(r)
                      for r in rows) + "</tbody></table>"
            + ("" if audit else _chart(summary.results, "cost_usd", "cost", "usd")
               + _chart(summary.results, "duration_seconds", "duration", "seconds"))
            + f"<p>{link(SUMMARY_FILE)}"
            + ("" if columns.merged else " · " + link(BATCH_LOG_FILE)) + "</p>")
    return page(f"{summary.batch_id}: {sentence}", body, style=STYLE, script=SCRIPT)


def render_catalogue(catalogue: CatalogueDocument) -> str:
    """A merge's page: a line per course (linking to its merged report) and the failures."""
    totals = catalogue.totals
    courses = "".join(
        f'<tr data-status="{c.state}"><td>'
        f'{link(c.summary.rsplit("/", 1)[0] + "/batch_report.html", c.courseId)}</td>'
        f"<td>{plain(c.mode)}</td>{_num(c.batches)}"
        f"{_num(c.passed if c.mode == Mode.AUDIT else c.generated)}{_num(c.skipped)}"
        f"{_num(c.failed)}{_num(c.not_started + c.not_run)}{_num(c.not_covered)}"
        f"{_num(c.total_cost_usd, _money(c.total_cost_usd))}{_num(c.total_tokens)}"
        f"{_num(c.lesson_seconds, format_duration(c.lesson_seconds))}"
        f"{_num('' if c.critic_overall_avg is None else c.critic_overall_avg)}"
        f'<td class="{c.state}">{c.state}</td></tr>'
        for c in catalogue.courses)
    failures = "".join(
        f'<tr data-status="failed"><td>{plain(f.courseId)}</td>{_num(f.order)}'
        f'<td class="lesson">{link(f.lesson_page, f.label) or plain(f.label)}</td>'
        f'<td class="problem">{plain(f.error or "")}</td>'
        f'<td class="files">{link(f.log_file)}</td></tr>' for f in catalogue.failures)
    failure_table = (
        "<table><thead><tr><th>Course</th><th>Order</th><th>Lesson</th><th>Error</th>"
        f"<th>Files</th></tr></thead><tbody>{failures}</tbody></table>" if failures
        else "<p>None.</p>")
    failed, complete = totals.failed, catalogue.complete
    not_run = totals.not_started + totals.not_run
    if failed:
        css, sentence = "bad", (f"{failed} lesson{'s' * (failed != 1)} failed: not ready to"
                                " publish" + ("" if complete else " (and incomplete)"))
    elif not complete:
        css, sentence = "warn", (f"Incomplete: {not_run + totals.not_covered} lessons"
                                 " without a result")
    else:
        css, sentence = "good", "Complete: every lesson of every course has a result"
    tiles = _tiles([("courses", totals.courses, False), ("lessons", totals.lessons, False),
                    ("generated", totals.generated, False),
                    *([("passed", totals.passed, False)] if totals.passed else []),
                    ("failed", failed, bool(failed)), ("skipped", totals.skipped, False),
                    ("not run", not_run, bool(not_run)),
                    ("not covered", totals.not_covered, bool(totals.not_covered)),
                    ("cost", _money(totals.total_cost_usd), False)])
    body = (f"<h1>Catalogue: {totals.courses} courses, {totals.lessons} lessons</h1>"
            f'<p class="banner {css}">{plain(sentence)}</p>{tiles}'
            f"<p class=\"muted\">{'complete' if complete else 'incomplete'} ·"
            f" generated {totals.generated}, skipped {totals.skipped}, failed {failed},"
            f" not run {not_run}, not covered"
            f" {totals.not_covered} · {_money(totals.total_cost_usd)} (all runs"
            f" {_money(totals.total_cost_usd_all_runs)}) · {totals.total_tokens} tokens"
            f" · {format_duration(totals.lesson_seconds)} of lessons</p>"
            "<h2>Failures</h2>" + failure_table + "<h2>Courses</h2>"
            + _filter([c.state for c in catalogue.courses])
            + '<table class="records"><thead><tr><th>Course</th><th>Kind</th><th>Batches</th>'
            "<th>Done</th><th>Skipped</th><th>Failed</th><th>Not run</th><th>Not covered</th>"
            "<th>Cost</th><th>Tokens</th><th>Lesson time</th><th>Critic</th><th>State</th>"
            f"</tr></thead><tbody>{courses}</tbody></table><p>{link(CATALOGUE_FILE)}</p>")
    return page(f"Catalogue: {sentence}", body, style=STYLE, script=SCRIPT)


def write_report(summary: SummaryDocument, layout: BatchLayout) -> None:
    write_text_atomic(layout.report, render(summary))
