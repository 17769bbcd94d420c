"""What a lesson came to: the vocabulary the process that runs a lesson and the
controller that records it share.

A worker builds a `LessonResult`, the item carries it to the controller in its
test report's user_properties (and so into JUnit), and the controller's
summary counts it. Nothing here knows which process it is in.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pytest_batchgen.planning import Action


class Status(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    #: The lesson exists (the plan's skip), or another run wrote it meanwhile.
    SKIPPED = "skipped"
    #: The run did not start it: the budget is spent, the store keeps failing.
    NOT_STARTED = "not_started"
    #: An audit found the stored lesson sound.
    PASSED = "passed"


class Why(StrEnum):
    """Why a lesson was skipped or not started, beyond the plan's own reasons."""

    WRITTEN_MEANWHILE = "written_meanwhile"
    BUDGET_REACHED = "budget_reached"
    STORE_UNAVAILABLE = "store_unavailable"
    #: The model service failed the lesson (an outage, an API error), not its review.
    SERVICE_ERROR = "service_error"
    #: The model service failed lessons in a row: no further lesson was started.
    SERVICE_UNAVAILABLE = "service_unavailable"
    #: Ctrl-C or SIGTERM stopped the lesson while it was being authored.
    INTERRUPTED = "interrupted"
    LOG_UNWRITABLE = "log_unwritable"


def plural(count: int, noun: str) -> str:
    """`1 lesson`, `2 lessons`, `0 lessons`: every count the batch prints."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def format_duration(seconds: float) -> str:
    """8066 → '2h 14m 26s', 682 → '11m 22s', 45 → '45s'."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


#: A lesson's figures are real, finite numbers, never coerced: a summary read back
#: from disk (estimates' history, merge) may hold "0.1", null, NaN or Infinity, and
#: each broke a later sum or went on into a catalogue as Infinity.
Figure = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Count = Annotated[int, Field(strict=True)]


class Shard(BaseModel):
    """A job of a CI matrix: shard `index` of `count` (--batch-shard=K/N)."""

    index: Count
    count: Count


class LessonResult(BaseModel):
    """One lesson's outcome: a result in `batch_summary.json`, a test report's
    user_properties, JUnit's <property>s."""

    model_config = ConfigDict(extra="ignore")

    order: Count
    label: str
    status: Status
    action: str = ""
    doc_id: str | None = None
    existing_doc_id: str | None = None
    error: str | None = None
    duration_seconds: Figure = 0.0
    cost_usd: Figure = 0.0
    tokens: Count = 0
    log_file: str | None = None
    # A plan reason (already_exists, not_found) or a `Why`.
    reason: str | None = None
    diff_file: str | None = None
    changed: bool | None = None
    note: str | None = None
    model: str | None = None
    turns: int | None = None
    duplicate_doc_ids: list[str] = []
    # The critic's scores of the written lesson (authors that review), 0-1.
    critic_fidelity: Figure | None = None
    critic_quality: Figure | None = None
    critic_overall: Figure | None = None
    # ... and the sub-scores they add up from (card_structure, content, …).
    critic_scores: dict[str, Figure] | None = None
    # Diagram rows of the overwritten lesson removed after the write.
    removed_diagrams: list[str] = []
    # The lesson's page (lessons/lesson_NNN.html): written, overwritten or audited.
    lesson_page: str | None = None
    # An authored lesson the store did not take, kept for write-pending.
    pending_file: str | None = None
    # --batch-audit: every rule the stored lesson breaks.
    violations: list[str] = []
    # The stored lesson was written from an older version of the course's SOW.
    stale: bool | None = None
    # A merged summary's: which job of the matrix ran it.
    shard: Shard | None = None

    @field_validator("duplicate_doc_ids", "removed_diagrams", "violations", "critic_scores",
                     mode="before")
    @classmethod
    def _from_property(cls, value: Any) -> Any:
        """A list or mapping as a JUnit property holds it: JSON text (see to_properties)."""
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value  # left for the field's own check to name
        return value

    def set_review(self, review: dict[str, float] | None) -> None:
        if review:
            self.critic_fidelity = review["sow_fidelity"]
            self.critic_quality = review["basic_quality"]
            self.critic_overall = review["overall"]
            parts = {k: v for k, v in review.items()
                     if k not in ("sow_fidelity", "basic_quality", "overall")}
            self.critic_scores = parts or None

    @property
    def authored(self) -> bool:
        """The author ran (and may have spent): its figures belong in the record."""
        return self.action != Action.AUDIT and (
            self.status in (Status.SUCCESS, Status.FAILED)
            or self.reason == Why.WRITTEN_MEANWHILE)

    def to_json(self) -> dict[str, Any]:
        """As the summary records it: what is unset left out, a run's figures only for
        a lesson whose author ran."""
        data = self.model_dump(mode="json")
        data["duration_seconds"] = round(self.duration_seconds)
        if not self.authored:
            for name in ("duration_seconds", "cost_usd", "tokens", "model", "turns"):
                data.pop(name)
        return {k: v for k, v in data.items() if v not in (None, []) or k == "log_file"}

    def to_properties(self, course_id: str, batch_dir: Path) -> list[tuple[str, object]]:
        """As test-report user_properties: the controller's input and JUnit's <property>s.

        JUnit dashboards call the lesson's row `row_id`, the written one or the one
        that made it a skip; a lesson with no log file has no `log_file`."""
        data = self.to_json()
        row_id = data.pop("doc_id", None) or data.get("existing_doc_id")
        # Lists and mappings as JSON text: JUnit writes a property's str(), and a
        # dashboard must read ["a", "b"], not a Python repr.
        return [("course", course_id), ("batch_dir", str(batch_dir)),
                *(("row_id", row_id),) * bool(row_id),
                *((name, json.dumps(value, ensure_ascii=False)
                   if isinstance(value, list | dict) else value)
                  for name, value in data.items() if value is not None)]

    @classmethod
    def from_properties(cls, properties: list[tuple[str, object]]) -> LessonResult | None:
        fields: dict[str, Any] = dict(properties)
        if "status" not in fields:
            return None  # a report from before the lesson recorded anything
        if "existing_doc_id" not in fields:
            fields["doc_id"] = fields.pop("row_id", None)
        return cls.model_validate(fields)


class LessonFailed(Exception):
    """A lesson's authoring, validation or write failed; carries its result."""

    def __init__(self, result: LessonResult) -> None:
        super().__init__(result.error)
        self.result = result
