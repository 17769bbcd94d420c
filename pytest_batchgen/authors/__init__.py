"""Who writes a lesson: the interface every author implements.

An author turns one SOW entry (plus its context) into a lesson, or raises
`AuthoringError`. It never touches the store: the item writes the lesson only
after the author succeeded and the lesson passed the contract (its gate runs
whatever the author), so a failed authoring can never overwrite a good row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pytest_batchgen.contract import Lesson
from pytest_batchgen.requirements import EntryRequirements
from pytest_batchgen.sow import SowEntry, SowRecord

# Seconds an author that stops itself at --batch-timeout gives its agent to report
# what it spent; the runner cancels it only past a few times that.
STOP_GRACE = 10.0


@dataclass
class AuthorMetrics:
    """What one authoring cost; partial figures are kept when it fails."""

    cost_usd: float = 0.0
    tokens: int = 0
    turns: int = 0
    model: str = ""


@dataclass(frozen=True)
class AuthorRequest:
    """Everything an author may read to write one lesson."""

    course_id: str
    entry: SowEntry
    sow: SowRecord
    outcomes: list[dict[str, Any]]
    #: What the lesson must carry from the entry (outcome refs resolved, lesson
    #: type, policy, card count); the item's gate checks the same.
    requirements: EntryRequirements
    # The author's working directory (None when it uses none): created by
    # the runner, kept or removed according to --batch-no-persist-workspace.
    workspace: Path | None
    #: --batch-timeout. An author with `stops_at_timeout = True` stops itself then
    #: (reporting its spend); any other is cancelled by the runner.
    timeout: float | None = None
    #: An author that spends calls this with its running total as it grows, so a
    #: lesson stopped midway (Ctrl-C, SIGTERM) still records what it had paid.
    report_spend: Callable[[AuthorMetrics], None] | None = None
    #: A directory every process of the run shares (its first batch directory's
    #: sessions/), for what authors must agree on across xdist workers: the Claude
    #: author's limit on model sessions at once. It comes with each request because an
    #: author is made before the run's batch directories exist (the controller plans
    #: with it first). None outside a run: nothing is shared.
    sessions_dir: Path | None = None

    def neighbours(self) -> tuple[SowEntry | None, SowEntry | None]:
        """The entries just before and after this one, by order."""
        entries = self.sow.entries
        index = next(i for i, e in enumerate(entries) if e.order == self.entry.order)
        before = entries[index - 1] if index > 0 else None
        after = entries[index + 1] if index + 1 < len(entries) else None
        return before, after


@dataclass(frozen=True)
class AuthoredLesson:
    lesson: Lesson
    metrics: AuthorMetrics
    #: The critic's scores of this lesson, for authors that review (0-1 each).
    review: dict[str, float] | None = None
    #: The critic's last feedback on it, as the author was given it (None: no critic).
    feedback: str | None = None


class AuthoringError(Exception):
    """The author could not produce a valid lesson; fails that lesson only.

    `service` marks a failure of the model service (an API error, an outage, a
    dropped connection) rather than of the lesson: the batch counts those in a row
    and stops starting lessons against a service that is down."""

    def __init__(self, message: str, metrics: AuthorMetrics | None = None, *,
                 service: bool = False) -> None:
        super().__init__(message)
        self.metrics = metrics or AuthorMetrics()
        self.service = service


class AuthorUnavailable(Exception):
    """The author cannot run at all (no key, no CLI); a batch-level error."""


class LessonAuthor(Protocol):
    #: Name used on the command line (`--batch-author`).
    name: str
    #: Written to `model_version`; the skip marker for this author's lessons.
    model_version: str
    #: True for drafting authors that must never replace a lesson they did not
    #: write: any existing row counts as existing for them.
    any_row_counts: bool
    #: False for authors that need no working directory (none is created).
    uses_workspace: bool
    #: (minutes, USD) per lesson, for dry-run estimates before this author has any
    #: history here (planning.DEFAULT_ESTIMATE for an agent, nothing for a draft).
    default_estimate: tuple[float, float]
    #: True when the author honours `request.timeout` itself, stopping its agent and
    #: reporting what it spent; the runner then waits a grace period before it cancels.
    stops_at_timeout: bool

    def check_ready(self) -> None:
        """Raise AuthorUnavailable before the batch if authoring cannot work."""
        ...

    async def author(self, request: AuthorRequest) -> AuthoredLesson:
        """Write one lesson; raise AuthoringError when no valid lesson results."""
        ...

    async def aclose(self) -> None:
        """Release anything held across lessons (processes, connections)."""
        ...
