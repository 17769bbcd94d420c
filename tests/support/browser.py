"""A real browser looking at the pages a batch writes: the system's Chromium, driven
by Playwright (never a browser Playwright downloads).

`look_at(path, screenshot)` opens a page from disk at a 1280 px wide window and
reports what a reader would meet: console errors, horizontal overflow, links to
files that are not there, how many formulas are MathML and whether raw LaTeX
shows, and what the report's status filter hides. The tests assert on it; the
README's screenshots are made by the same code:

    python -m tests.support.browser docs/

runs the demo batch (outline author, embedded store) and a lesson with maths in a
temporary directory, and writes `docs/lesson_page.png` and `docs/batch_report.png`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from playwright.sync_api import Browser, Page, sync_playwright

WIDTH = 1280
HEIGHT = 900
# A browser that talks to nobody: no updates, sync, metrics or first-run pages.
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
INSTALL_HINT = "no Chromium installed: apt-get install chromium (Debian) to run the browser tests"


def chromium() -> str | None:
    """The system's Chromium, if any."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def browser() -> Iterator[Browser]:
    path = chromium()
    if path is None:
        raise RuntimeError(INSTALL_HINT)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class PageLook:
    """What a reader meets on one page."""

    path: Path
    console_errors: list[str] = field(default_factory=list)
    scroll_width: int = 0
    broken_links: list[str] = field(default_factory=list)
    links: int = 0
    maths: int = 0
    #: Text the reader sees that still holds LaTeX's `$` or a backslash command.
    raw_latex: list[str] = field(default_factory=list)
    rows: int = 0
    #: The status the filter was set to show (failed when there are failures), and
    #: how many rows it hid then (None: the page has no filter, or no script ran).
    filtered_to: str | None = None
    hidden_by_filter: int | None = None
    #: The first column's sort keys, row by row, after a click on its heading (the
    #: script sorts ascending first); empty when the page has no table of records.
    first_column_sorted: list[str] = field(default_factory=list)
    screenshot: Path | None = None

    @property
    def overflows(self) -> bool:
        return self.scroll_width > WIDTH


def _links(page: Page, path: Path) -> tuple[int, list[str]]:
    """Every <a href> resolved against the page: each must name a file that exists."""
    hrefs: list[str] = page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
    broken = []
    for href in hrefs:
        url = urlparse(href)
        if url.scheme != "file":
            broken.append(f"{href} (not a local file)")
        elif not Path(unquote(url.path)).is_file():
            broken.append(href)
    return len(hrefs), broken


RAW_LATEX = r"""() => {
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (node.parentElement.closest('math, code, script, style')) continue;
    if (/\$|\\[A-Za-z]+/.test(node.textContent)) found.push(node.textContent.trim());
  }
  return found;
}"""


def look(page: Page, path: Path, screenshot: Path | None = None) -> PageLook:
    """Open `path` in `page` and look at it as a reader (and the filter) would."""
    found = PageLook(path)
    page.on("console", lambda m: found.console_errors.append(m.text) if m.type == "error"
            else None)
    page.on("pageerror", lambda error: found.console_errors.append(str(error)))
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    page.goto(path.resolve().as_uri())
    found.scroll_width = page.evaluate("document.documentElement.scrollWidth")
    found.links, found.broken_links = _links(page, path)
    found.maths = page.locator("math").count()
    found.raw_latex = page.evaluate(RAW_LATEX)
    found.rows = page.locator("table.records tbody tr").count()
    if screenshot is not None:
        page.screenshot(path=str(screenshot))
        found.screenshot = screenshot
    status_filter = page.locator("select.status-filter")
    if status_filter.count() and status_filter.is_visible():
        # Failures if there are any (what a reader filters for), else the first status.
        statuses = [value for value in status_filter.locator("option").evaluate_all(
            "options => options.map(o => o.value)") if value]
        found.filtered_to = "failed" if "failed" in statuses else statuses[0]
        status_filter.select_option(found.filtered_to)
        found.hidden_by_filter = page.locator("table.records tbody tr:not(:visible)").count()
    if found.rows:
        page.locator("table.records thead th").first.click()
        found.first_column_sorted = page.locator("table.records tbody tr").evaluate_all(
            "rows => rows.map(r => r.cells[0].dataset.key ?? r.cells[0].textContent.trim())")
    return found


def look_at(path: Path, screenshot: Path | None = None) -> PageLook:
    """`look` in a browser of its own."""
    with browser() as chromium_browser:
        page = chromium_browser.new_page()
        return look(page, path, screenshot)


# --- the README's screenshots ---------------------------------------------------------


def _demo_batch(work: Path) -> Path:
    """The README's demo batch, run in `work`; its batch directory."""
    store = f"--batch-store=sqlite:///{work / 'store.sqlite3'}"
    subprocess.run([sys.executable, "-m", "pytest_batchgen", "--store",
                    f"sqlite:///{work / 'store.sqlite3'}", "load-demo"], cwd=work, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                    "--batch-course=course_demo1", "--batch-author=outline", store,
                    f"--batch-log-dir={work / 'logs'}"], cwd=work, check=True,
                   stdout=subprocess.DEVNULL)
    [directory] = (work / "logs").glob("batch_*")
    return directory


def screenshots(docs: Path) -> list[Path]:
    """The README's two pictures: a lesson page with maths, and the demo's report."""
    from tests.support.pages import maths_lesson_page

    docs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        directory = _demo_batch(work)
        lesson = maths_lesson_page(work / "maths")
        written = [docs / "lesson_page.png", docs / "batch_report.png"]
        with browser() as chromium_browser:
            for source, target in zip([lesson, directory / "batch_report.html"], written,
                                      strict=True):
                look(chromium_browser.new_page(), source, target)
    return written


if __name__ == "__main__":
    for picture in screenshots(Path(sys.argv[1] if len(sys.argv) > 1 else "docs")):
        print(picture)
