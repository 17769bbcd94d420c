"""`batch_report.html`: the batch summary as one self-contained page.

Built from the summary document alone (no store, no network to view it):
a table of lessons linking to their logs and diffs, and a bar chart of cost
and duration per generated lesson drawn as inline SVG.
"""

from __future__ import annotations

from html import escape
from typing import Any

from pytest_batchgen.layout import (
    BATCH_LOG_FILE,
    CATALOGUE_FILE,
    SUMMARY_FILE,
    BatchLayout,
    write_text_atomic,
)
from pytest_batchgen.results import format_duration

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.success { color: #17692d; } .failed { color: #a30d0d; } .skipped { color: #666; }
.cost { fill: #3a6ea5; } .duration { fill: #d08c2f; }
svg text { font-size: 10px; fill: #333; }
"""


def _link(name: str | None) -> str:
    return f'<a href="{escape(name)}">{escape(name)}</a>' if name else ""


def _chart(results: list[dict[str, Any]], key: str, css: str, unit: str) -> str:
    """One horizontal bar per generated lesson, scaled to the largest value."""
    rows = [r for r in results if r["status"] in ("success", "failed")]
    if not rows:
        return "<p>No lesson was generated.</p>"
    peak = max(float(r.get(key, 0)) for r in rows) or 1.0
    height = 18
    bars = []
    for index, result in enumerate(rows):
        value = float(result.get(key, 0))
        width = 300 * value / peak
        y = index * height
        label = f"${value:.4f}" if unit == "usd" else format_duration(value)
        bars.append(
            f'<text x="0" y="{y + 12}">#{result["order"]}</text>'
            f'<rect class="{css}" x="40" y="{y + 3}" width="{width:.1f}" height="12"/>'
            f'<text x="{45 + width:.1f}" y="{y + 12}">{label}</text>'
        )
    total = len(rows) * height
    return f'<svg width="460" height="{total}" role="img">{"".join(bars)}</svg>'


def _cells(result: dict[str, Any]) -> str:
    duration = format_duration(result["duration_seconds"]) if "duration_seconds" in result else ""
    cost = f"${result['cost_usd']:.4f}" if "cost_usd" in result else ""
    critic = (f"{result['critic_overall']:.3f} (fidelity {result['critic_fidelity']:.2f},"
              f" quality {result['critic_quality']:.2f})" if "critic_overall" in result else "")
    parts = result.get("critic_scores") or {}
    if parts:  # the sub-scores the dimensions add up from
        critic += "<br><small>" + " · ".join(
            f"{escape(name.replace('_', ' '))} {float(score):.2f}"
            for name, score in parts.items()) + "</small>"
    return (
        f'<td class="num">{duration}</td><td class="num">{cost}</td>'
        f'<td class="num">{result.get("tokens", "")}</td><td class="num">{critic}</td>'
    )


def _problems(result: dict[str, Any]) -> str:
    """The error, and under an audit every violation the lesson has."""
    items = "".join(f"<li>{escape(v)}</li>" for v in result.get("violations", []))
    return escape(result.get("error") or "") + (f"<ul>{items}</ul>" if items else "")


def counts(summary: dict[str, Any]) -> str:
    done = (f"passed {summary['passed']}" if summary.get("mode") == "audit"
            else f"generated {summary['generated']}")
    not_started = summary.get("not_started") or []
    not_covered = summary.get("not_covered") or []
    return (f"{done}, skipped {summary['skipped']}, failed {summary['failed']}"
            + (f", not started {len(not_started)} ({escape(str(summary.get('stopped_early')))})"
               if not_started else "")
            + (f", not covered by any batch merged {len(not_covered)}" if not_covered else "")
            + (f", stale {summary['stale']} (written from an older SOW version)"
               if summary.get("stale") else ""))


def render(summary: dict[str, Any]) -> str:
    results = summary["results"]
    status = "interrupted" if summary.get("interrupted") else (
        "complete" if summary.get("complete") else "in progress")
    rows = "".join(
        f'<tr class="{escape(r["status"])}"><td class="num">{r["order"]}</td>'
        f"<td>{escape(r['label'])}</td><td>{escape(r.get('action', ''))}</td>"
        f'<td class="{escape(r["status"])}">{escape(r["status"])}'
        f'{" (stale)" if r.get("stale") else ""}</td>'
        f"{_cells(r)}"
        f"<td>{escape(r.get('doc_id') or r.get('existing_doc_id') or '')}</td>"
        f"<td>{_link(r.get('log_file'))} {_link(r.get('diff_file'))}</td>"
        f"<td>{_problems(r)}</td></tr>"
        for r in results
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{escape(summary["batch_id"])}</title><style>{STYLE}</style></head>
<body>
<h1>Batch {escape(summary["batch_id"])}</h1>
<p>Course <b>{escape(summary["courseId"])}</b> · {status} ·
{counts(summary)},
not run {len(summary.get("not_run", []))} ·
{escape(summary["duration_human"])} · ${summary["total_cost_usd"]:.4f} ·
{summary["total_tokens"]} tokens · author {escape(str(summary.get("author", "")))}</p>
<table>
<tr><th>Order</th><th>Lesson</th><th>Action</th><th>Status</th><th>Duration</th>
<th>Cost</th><th>Tokens</th><th>Critic</th><th>Row</th><th>Logs</th><th>Error</th></tr>
{rows}
</table>
<h2>Cost per lesson</h2>
{_chart(results, "cost_usd", "cost", "usd")}
<h2>Duration per lesson</h2>
{_chart(results, "duration_seconds", "duration", "seconds")}
<p>{_link(SUMMARY_FILE)}{"" if "merged_from" in summary else " · " + _link(BATCH_LOG_FILE)}</p>
</body></html>
"""


def render_catalogue(catalogue: dict[str, Any]) -> str:
    """A merge's page: a line per course (linking to its merged report) and the failures."""
    totals = catalogue["totals"]
    courses = "".join(
        f'<tr><td><a href="{escape(c["summary"].rsplit("/", 1)[0])}/batch_report.html">'
        f'{escape(c["courseId"])}</a></td><td class="num">{c["batches"]}</td>'
        f'<td class="num">{c.get("generated", c.get("passed", 0))}</td>'
        f'<td class="num">{c["skipped"]}</td><td class="num">{c["failed"]}</td>'
        f'<td class="num">{c["not_started"] + c["not_run"]}</td>'
        f'<td class="num">{c["not_covered"]}</td>'
        f'<td class="num">${c["total_cost_usd"]:.4f}</td><td class="num">{c["total_tokens"]}</td>'
        f'<td class="num">{format_duration(c["lesson_seconds"])}</td>'
        f'<td class="num">{"" if c["critic_overall_avg"] is None else c["critic_overall_avg"]}'
        f'</td><td>{"complete" if c["complete"] else "incomplete"}</td></tr>'
        for c in catalogue["courses"])
    failures = "".join(
        f'<tr class="failed"><td>{escape(f["courseId"])}</td><td class="num">{f["order"]}</td>'
        f'<td>{escape(f["label"])}</td><td>{escape(f.get("error") or "")}</td>'
        f"<td>{_link(f.get('log_file'))}</td></tr>" for f in catalogue["failures"])
    failure_table = (f"<table><tr><th>Course</th><th>Order</th><th>Lesson</th><th>Error</th>"
                     f"<th>Log</th></tr>{failures}</table>" if failures else "<p>None.</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Catalogue: {totals["courses"]} courses</title><style>{STYLE}</style></head>
<body>
<h1>Catalogue: {totals["courses"]} courses, {totals["lessons"]} lessons</h1>
<p>{"complete" if catalogue["complete"] else "incomplete"} ·
generated {totals["generated"]}, skipped {totals["skipped"]}, failed {totals["failed"]},
not run {totals["not_started"] + totals["not_run"]}, not covered {totals["not_covered"]} ·
${totals["total_cost_usd"]:.4f} (all runs ${totals["total_cost_usd_all_runs"]:.4f}) ·
{totals["total_tokens"]} tokens · {format_duration(totals["lesson_seconds"])} of lessons</p>
<table>
<tr><th>Course</th><th>Batches</th><th>Generated</th><th>Skipped</th><th>Failed</th>
<th>Not run</th><th>Not covered</th><th>Cost</th><th>Tokens</th><th>Lesson time</th>
<th>Critic</th><th>State</th></tr>
{courses}
</table>
<h2>Failures</h2>
{failure_table}
<p>{_link(CATALOGUE_FILE)}</p>
</body></html>
"""


def write_report(summary: dict[str, Any], layout: BatchLayout) -> None:
    write_text_atomic(layout.report, render(summary))
