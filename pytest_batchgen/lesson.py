"""The `lesson_templates` row a lesson becomes, encoded as the platform stores it.

What makes a lesson valid is the contract's business (contract.py); this
module only turns a lesson that passed it into the 15 columns, and back.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from pytest_batchgen.contract import (
    COLUMN_LENGTHS,
    JSON_COLUMNS,
    LESSON_STATUSES,
    SOW_ORDER,
    Lesson,
    decode_cards,
)
from pytest_batchgen.nodeids import is_course_id

# The skip marker the platform uses for agent-authored lessons (spelling is real).
CLAUDE_MODEL_VERSION = "claud_Agent_sdk"
CREATED_BY = "lesson_author_agent"

__all__ = ["CLAUDE_MODEL_VERSION", "JSON_COLUMNS", "LESSON_COLUMNS", "LessonRow", "decode_cards",
           "encode_cards", "row_as_stored"]


def _course_id(value: str) -> str:
    if not is_course_id(value):
        raise ValueError(f"{value!r} is not a course id (course_ + ASCII letters and digits)")
    return value


def _status(value: str) -> str:
    if value not in LESSON_STATUSES:
        raise ValueError(f"must be one of {', '.join(LESSON_STATUSES)}")
    return value


def encode_cards(cards: list[dict[str, Any]]) -> str:
    """base64(gzip(JSON)) with no prefix: the platform's own encoding."""
    raw = json.dumps(cards, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, mtime=0)).decode("ascii")


class LessonRow(BaseModel):
    """The 15 columns of `lesson_templates`, encoded exactly as the platform stores them."""

    model_config = ConfigDict(frozen=True)

    courseId: Annotated[str, AfterValidator(_course_id)]
    sow_order: int = Field(ge=SOW_ORDER.low, le=SOW_ORDER.high)
    title: str
    createdBy: str = CREATED_BY
    version: int = 1
    status: Annotated[str, AfterValidator(_status)] = "draft"
    model_version: str = Field(max_length=COLUMN_LENGTHS["model_version"])
    lesson_type: str
    estMinutes: int
    outcomeRefs: str
    engagement_tags: str  # JSON string of a list
    policy: str  # JSON string of an object
    cards: str  # base64(gzip(JSON list))
    authored_sow_id: str = Field(max_length=COLUMN_LENGTHS["authored_sow_id"])
    authored_sow_version: str = Field(max_length=COLUMN_LENGTHS["authored_sow_version"])

    @classmethod
    def build(
        cls,
        lesson: Lesson,
        *,
        course_id: str,
        sow_order: int,
        model_version: str,
        sow_id: str,
        sow_version: str,
    ) -> LessonRow:
        """The row of a lesson that passed the contract."""
        return cls(
            courseId=course_id,
            sow_order=sow_order,
            title=lesson["title"],
            model_version=model_version,
            lesson_type=lesson["lesson_type"],
            estMinutes=lesson["estMinutes"],
            outcomeRefs=json.dumps(lesson["outcomeRefs"], ensure_ascii=False),
            engagement_tags=json.dumps(lesson["engagement_tags"], ensure_ascii=False),
            policy=json.dumps(lesson["policy"], ensure_ascii=False),
            cards=encode_cards(lesson["cards"]),
            authored_sow_id=sow_id,
            authored_sow_version=sow_version,
        )

    def columns(self) -> dict[str, Any]:
        return self.model_dump()

    def decoded(self) -> dict[str, Any]:
        """The row as a reader sees it: JSON columns parsed, cards decoded."""
        data = self.model_dump()
        for name in JSON_COLUMNS:
            data[name] = json.loads(data[name])
        data["cards"] = decode_cards(self.cards)
        return data


LESSON_COLUMNS = tuple(LessonRow.model_fields)


def row_as_stored(row: Mapping[str, Any]) -> dict[str, Any]:
    """A `lesson_templates` row as an export may hold it (JSON columns decoded, cards a
    list, as the platform's own lesson example has them) encoded as the platform stores
    it. Columns already encoded are kept exactly as they are: an audit must see a broken
    row as it is."""
    stored = {name: row[name] for name in LESSON_COLUMNS if name in row}
    for name in JSON_COLUMNS:
        if name in stored and stored[name] is not None and not isinstance(stored[name], str):
            stored[name] = json.dumps(stored[name], ensure_ascii=False)
    if isinstance(stored.get("cards"), list):
        stored["cards"] = encode_cards(stored["cards"])
    return stored
