"""What every page a batch writes shares: the page's frame, its style, and text with
its maths rendered.

Pages are opened from disk, often long after the run and offline: nothing here
loads a script, a style sheet or a font from anywhere, and every text a lesson,
a SOW or a run wrote is escaped. Maths is rendered to MathML by latex2mathml
when the page is written, so the browser needs no script to show it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from html import escape
from typing import Any

from latex2mathml.converter import convert

STYLE = """
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5em auto; padding: 0 1.5em;
       max-width: 1240px; color: #222; overflow-wrap: break-word; }
h1 { font-size: 1.6em; margin: .2em 0; }
h2 { font-size: 1.25em; margin: 1.2em 0 .4em; }
a { color: #1d5ea8; }
table { border-collapse: collapse; margin: .6em 0; width: 100%; }
th, td { border: 1px solid #d4d4d4; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
small, .muted { color: #666; }
code { font-size: .92em; background: #f4f4f4; padding: 0 .2em; overflow-wrap: anywhere; }
.success, .passed { color: #17692d; } .failed, .not_started { color: #a30d0d; }
.skipped, .not_run, .deselected, .not_covered { color: #666; }
.banner { padding: .7em 1em; border-radius: 6px; margin: .8em 0; font-weight: 600; }
.banner.bad { background: #fde8e8; color: #8a1010; border: 1px solid #f1b4b4; }
.banner.warn { background: #fff5dd; color: #6b4a00; border: 1px solid #efd38a; }
.banner.good { background: #e6f4ea; color: #135d27; border: 1px solid #b4dcc0; }
.violation { color: #8a1010; background: #fde8e8; border-left: 3px solid #c62828;
             padding: 2px 6px; margin: .3em 0; font-size: .92em; }
"""

# The MathML elements and attributes latex2mathml writes: anything else in its output
# (a raw `<script>` from `\\text{…}`, which it passes through) is not maths, and the
# formula falls back to its escaped LaTeX.
MATHML_TAGS = frozenset((
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "mfrac", "msqrt", "mroot",
    "msub", "msup", "msubsup", "munder", "mover", "munderover", "mtable", "mtr", "mtd",
    "mstyle", "mpadded", "mphantom", "menclose", "merror", "semantics", "annotation",
    "mlabeledtr", "mmultiscripts", "mprescripts", "none"
))
MATHML_ATTRIBUTES = frozenset((
    "xmlns", "display", "mathvariant", "stretchy", "fence", "separator", "accent",
    "accentunder", "lspace", "rspace", "linethickness", "columnalign", "columnlines",
    "rowlines", "rowspacing", "columnspacing", "width", "height", "depth", "notation",
    "minsize", "maxsize", "movablelimits", "symmetric", "form", "largeop", "displaystyle",
    "scriptlevel", "align", "frame", "framespacing", "equalrows", "equalcolumns", "mathcolor",
    "mathbackground", "mathsize", "close", "open", "separators"
))
MATHML_NS = "{http://www.w3.org/1998/Math/MathML}"
# $$display$$, $inline$, \[display\], \(inline\): the delimiters lesson text uses.
FORMULA = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\$(.+?)\$|\\\((.+?)\\\)", re.DOTALL)


def mathml(latex: str, *, block: bool) -> str | None:
    """`latex` as MathML, or None when the library cannot convert it or writes what
    is not plain maths (an unknown command comes back as its own name)."""
    try:
        markup = convert(latex.strip(), display="block" if block else "inline")
        tree = ElementTree.fromstring(markup)
    except Exception:  # the library's errors have no common base but Exception
        return None
    for element in tree.iter():
        tag = element.tag.removeprefix(MATHML_NS)
        if tag not in MATHML_TAGS or not set(element.attrib) <= MATHML_ATTRIBUTES:
            return None
        if tag in ("mi", "mo") and (element.text or "").startswith("\\"):
            return None
    return markup


def _formula(latex: str, *, block: bool) -> str:
    rendered = mathml(latex, block=block)
    return rendered if rendered is not None else _unrendered(latex)


def _unrendered(latex: str) -> str:
    # Shown as the author wrote it, delimiters aside: a reader sees which formula broke.
    return f'<code class="latex" title="LaTeX that could not be rendered">{escape(latex)}</code>'


def rich(text: Any) -> str:
    """Lesson text as HTML: escaped, its formulas as MathML; a `$` left without its
    pair is broken maths too, shown as code rather than as a raw dollar."""
    text = "" if text is None else str(text)
    parts: list[str] = []
    position = 0
    for match in FORMULA.finditer(text):
        parts.append(escape(text[position:match.start()]))
        display, bracket, inline, paren = match.groups()
        parts.append(_formula(display or bracket or inline or paren or "",
                              block=bool(display or bracket)))
        position = match.end()
    rest = text[position:]
    if "$" in rest:
        before, _, after = rest.partition("$")
        parts += [escape(before), _unrendered(after)]
    else:
        parts.append(escape(rest))
    return "".join(parts).replace("\n", "<br>")


def plain(value: Any) -> str:
    """Any value as escaped text (a broken row may hold any type anywhere)."""
    return escape("" if value is None else str(value))


def link(href: str | None, text: str | None = None) -> str:
    """A link to a file of the batch, shown by its file name: a report must fit a
    window, and the directories are the same for every link."""
    if not href:
        return ""
    shown = text if text is not None else href.rsplit("/", 1)[-1]
    return f'<a href="{escape(href)}" title="{escape(href)}">{escape(shown)}</a>'


def page(title: str, body: str, *, style: str = "", script: str = "") -> str:
    """A whole page: no network, escaped title; `script` runs inline, if at all."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{STYLE}{style}</style></head>
<body>
{body}
{f"<script>{script}</script>" if script else ""}
</body></html>
"""
