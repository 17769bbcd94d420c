"""The JSON a run leaves, typed: `batch_summary.json` (a batch's, a merge's) and the
catalogue of a merge.

One model per document is how each is written, read back (estimates' history,
`merge`, `write-pending`), rendered (the report) and handed to
`pytest_batchgen_batch_finished`, as pytest's `reports.py` serialises a report
for xdist: code builds the model, `to_json()` writes it.

A key on disk is a field set by the code that built the document: a batch's
summary has a budget and no `merged_from`, a merge's the reverse, an audit's a
`passed` count; `to_json()` leaves out what its builder did not set, and a file
read back keeps the keys it had. Fields not every document has default to what
their absence means, so a reader is as lenient as the files it may meet (an
older run's, a killed one's) and strict where a value would break a sum.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NotRequired, TypedDict, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    ValidationError,
    field_serializer,
)

from pytest_batchgen.planning import Mode
from pytest_batchgen.results import Count, Figure, LessonResult, Shard


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


#: A moment as every document writes it: UTC, to the second, `Z`.
Moment = Annotated[AwareDatetime, PlainSerializer(utc_iso, return_type=str)]


class Document(BaseModel):
    """A JSON document of the run: unknown keys (a newer run's) are passed over."""

    model_config = ConfigDict(extra="ignore")

    def to_json(self) -> dict[str, Any]:
        """As the file holds it: the fields its builder set, in the model's order."""
        return self.model_dump(mode="json", exclude_unset=True)


class SowRecord(Document):
    """The SOW a batch used (also in its plan)."""

    doc_id: str | None = None
    version: str | None = None
    status: str | None = None
    #: Other SOWs of the course with the same version and status, passed over.
    passed_over_same_version: list[str] = []


class Budget(Document):
    max_cost_usd: float | None = None
    reached: bool = False
    #: The lessons the spent budget left unstarted.
    not_started: list[int] = []


class MergedSource(Document):
    """One batch a merged summary was made from."""

    batch_id: str
    summary: str = ""
    shard: Shard | None = None
    start_time: Moment | None = None


class SummaryDocument(Document):
    """`batch_summary.json`: a batch's, or a merge's of a course's batches.

    The lesson counts add up: skipped + generated (or passed) + failed + not_started
    + not_run + deselected (+ in_other_shards, + a merge's not_covered) =
    total_sow_entries."""

    batch_id: str | None = None
    courseId: str  # the platform's key, as every document of the course spells it
    start_time: Moment
    end_time: Moment | None = None
    duration_seconds: int = 0
    duration_human: str = ""
    force_mode: bool = False
    dry_run: bool = False
    mode: Mode = Mode.GENERATE
    author: str | None = None
    #: Everything planned and selected has a result, and every one was started.
    complete: bool = False
    interrupted: bool = False
    store: str | None = None
    sow: SowRecord | None = None
    total_sow_entries: Count = 0
    #: --batch-shard: which shard this batch was, and the lessons left to the others.
    shard: Shard | None = None
    in_other_shards: list[int] = []
    skipped: int = 0
    generated: int = 0
    #: An audit's count of the stored lessons that passed (an audit's only).
    passed: int | None = None
    failed: int = 0
    #: Not a status of its own: a stale lesson is also skipped, passed or failed.
    stale: int = 0
    not_started: list[int] = []
    not_run: list[int] = []
    deselected: list[int] = []
    #: A merge's: lessons left to other shards by every batch given (a missing artifact).
    not_covered: list[int] = []
    stopped_early: str | None = None
    budget: Budget | None = None
    changed_lessons: list[int] = []
    diagrams_removed: int = 0
    pending_files: list[str] = []
    #: Failed by the model service (an outage, an API error), not by review.
    service_errors: list[int] = []
    results: list[LessonResult]
    #: Every lesson's label by order, so a report (a merge's too) can show the lessons
    #: no result names (not run, another shard's) as rows of their own.
    sow_labels: dict[str, str] = {}
    total_cost_usd: Figure = 0.0
    total_tokens: int = 0
    avg_cost_per_lesson_usd: float = 0.0
    avg_duration_per_lesson_seconds: int = 0
    #: A merge's: what every merged batch spent, lessons run twice included.
    total_cost_usd_all_runs: float = 0.0
    lesson_seconds: int = 0
    critic_overall_avg: float | None = None
    log_directory: str = ""
    merged_from: list[MergedSource] | None = None

    @field_serializer("results")
    def _results(self, results: list[LessonResult]) -> list[dict[str, Any]]:
        return [result.to_json() for result in results]

    @property
    def audit(self) -> bool:
        return self.mode == Mode.AUDIT

    @property
    def merged(self) -> bool:
        return self.merged_from is not None

    @property
    def done(self) -> int:
        """The lessons that came out well: an audit's passed, a generation's generated."""
        return (self.passed or 0) if self.audit else self.generated


class Counts(TypedDict):
    """A summary's counts of lessons by status (see SummaryDocument)."""

    skipped: int
    generated: int
    passed: NotRequired[int]
    failed: int
    stale: int


class Spend(TypedDict):
    """A summary's spend: what its authored lessons cost, in all and on average."""

    total_cost_usd: float
    total_tokens: int
    avg_cost_per_lesson_usd: float
    avg_duration_per_lesson_seconds: int


class ShardFields(TypedDict, total=False):
    """A shard's summary (and plan) names the shard and the lessons left to the others."""

    shard: Shard
    in_other_shards: list[int]


class CatalogueCourse(Document):
    """A course's line in the catalogue (its merged summary's counts)."""

    courseId: str
    mode: Mode = Mode.GENERATE
    summary: str
    complete: bool
    generated: int
    skipped: int
    failed: int
    passed: int | None = None
    not_started: int
    not_run: int
    not_covered: int
    total_cost_usd: float
    total_tokens: int
    lesson_seconds: int
    critic_overall_avg: float | None
    batches: int

    @property
    def state(self) -> str:
        return "failed" if self.failed else "complete" if self.complete else "incomplete"


class CatalogueTotals(Document):
    courses: int
    lessons: int
    generated: int
    skipped: int
    failed: int
    passed: int
    not_started: int
    not_run: int
    not_covered: int
    total_cost_usd: float
    total_cost_usd_all_runs: float
    total_tokens: int
    lesson_seconds: int


class CatalogueFailure(Document):
    """A failed lesson of the catalogue, its files relative to the catalogue."""

    courseId: str
    mode: Mode
    order: int
    label: str
    error: str | None
    log_file: str | None
    lesson_page: str | None


class CatalogueDocument(Document):
    """`catalogue_summary.json`: every course a merge found, the totals, the failures."""

    merged_at: Moment
    sources: list[str]
    output: str
    complete: bool
    courses: list[CatalogueCourse]
    totals: CatalogueTotals
    failures: list[CatalogueFailure]


class DocumentUnreadable(Exception):
    """A file a later run or a merge cannot use; the message says why, after its path."""


D = TypeVar("D", bound=Document)


def read_document(path: Path, kind: type[D]) -> D:
    """The document in `path`, checked before anything uses it (the results' figures
    strict and finite: see results.Figure). Any file may be found where documents are
    looked for: a half-written one, another tool's, one nested past the parser."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise DocumentUnreadable(f"cannot be read as JSON ({type(exc).__name__})") from None
    if not isinstance(document, dict):
        raise DocumentUnreadable("is not a batch summary")
    try:
        return kind.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(map(str, error["loc"]))
        raise DocumentUnreadable(f"is not a batch summary ({where}: {error['msg']})") from None
