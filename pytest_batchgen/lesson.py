"""The lesson template an author produces, and the row it becomes.

The models encode the platform's own rules (its frontend rejects anything
else), so every author — the Claude agent, the outline drafter, a test
double — is held to the same gate before anything reaches the store.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# The skip marker the platform uses for agent-authored lessons (spelling is real).
CLAUDE_MODEL_VERSION = "claud_Agent_sdk"
CREATED_BY = "lesson_author_agent"

PLATFORM_LESSON_TYPES = (
    "teach",
    "independent_practice",
    "formative_assessment",
    "revision",
    "mock_exam",
)
# Real SOWs use these too; the frontend's parser rejects them, so they are
# written as the closest type it accepts (the item logs the substitution).
LESSON_TYPE_SUBSTITUTES = {
    "mock_assessment": "mock_exam",
    "summative_assessment": "mock_exam",
}
LONG_LESSON_TYPES = ("mock_exam",)

LessonType = Literal[
    "teach", "independent_practice", "formative_assessment", "revision", "mock_exam"
]
CardId = Annotated[str, Field(pattern=r"^card_\d{3}$")]
MisconceptionId = Annotated[str, Field(pattern=r"^MISC_[A-Z]+_[A-Z0-9_]+_\d{3}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)


class Criterion(_Model):
    description: str = Field(min_length=1)
    points: int = Field(ge=0)


class Rubric(_Model):
    total_points: int = Field(ge=1)
    criteria: list[Criterion] = Field(min_length=1)

    @model_validator(mode="after")
    def _points_add_up(self) -> Rubric:
        total = sum(c.points for c in self.criteria)
        if total != self.total_points:
            raise ValueError(
                f"rubric criteria points sum to {total}, total_points is {self.total_points}"
            )
        return self


class CFU(_Model):
    type: Literal["mcq", "numeric", "structured_response", "short_text"]
    id: str = Field(min_length=1)
    stem: str = Field(min_length=10)
    rubric: Rubric
    options: list[str] | None = None
    answerIndex: int | None = None
    expected: float | str | None = None
    tolerance: float | None = None

    @model_validator(mode="after")
    def _type_fields(self) -> CFU:
        if self.type == "mcq":
            if self.options is None or not 3 <= len(self.options) <= 5:
                raise ValueError("mcq needs 3 to 5 options")
            if self.answerIndex is None or not 0 <= self.answerIndex < len(self.options):
                raise ValueError("mcq answerIndex must point at one of its options")
        if self.type == "numeric" and (self.expected is None or self.tolerance is None):
            raise ValueError("numeric cfu needs expected and tolerance")
        return self


class Misconception(_Model):
    id: MisconceptionId
    misconception: str = Field(min_length=1)
    clarification: str = Field(min_length=1)


class Card(_Model):
    id: CardId
    title: str = Field(min_length=10, max_length=150)
    explainer: str = Field(min_length=50)
    explainer_plain: str = Field(min_length=30)
    cfu: CFU
    misconceptions: list[Misconception]
    context_hooks: list[str] | None = None


class LessonTemplate(_Model):
    """What an author submits: the lesson itself, without store bookkeeping."""

    title: str = Field(min_length=30, max_length=80)
    lesson_type: LessonType
    estMinutes: int = Field(ge=5, le=180)
    cards: list[Card] = Field(min_length=1, max_length=20)
    outcomeRefs: list[str] = Field(default_factory=list)
    engagement_tags: list[str] = Field(default_factory=list)
    policy: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _platform_rules(self) -> LessonTemplate:
        limit = 180 if self.lesson_type in LONG_LESSON_TYPES else 120
        if self.estMinutes > limit:
            raise ValueError(f"estMinutes {self.estMinutes} exceeds {limit} for {self.lesson_type}")
        expected = [f"card_{i:03d}" for i in range(1, len(self.cards) + 1)]
        actual = [card.id for card in self.cards]
        if actual != expected:
            raise ValueError(f"card ids must run card_001, card_002, … in order; got {actual}")
        return self


def validation_messages(error: ValidationError) -> list[str]:
    """One readable line per problem, with the JSON path it sits at."""
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "lesson"
        lines.append(f"{where}: {problem['msg']}")
    return lines


def platform_lesson_type(sow_type: str) -> str:
    return LESSON_TYPE_SUBSTITUTES.get(sow_type, sow_type)


# --- the stored row -------------------------------------------------------


def encode_cards(cards: list[dict[str, Any]]) -> str:
    """base64(gzip(JSON)) with no prefix: the platform's own encoding."""
    raw = json.dumps(cards, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, mtime=0)).decode("ascii")


def decode_cards(value: str) -> list[dict[str, Any]]:
    """Every encoding readers accept: plain JSON, `gzip:`-prefixed, bare base64 gzip."""
    text = value.strip()
    if text.startswith("gzip:"):
        text = text[len("gzip:") :]
    if text.startswith("["):
        cards = json.loads(text)
    else:
        cards = json.loads(gzip.decompress(base64.b64decode(text)).decode("utf-8"))
    if not isinstance(cards, list):
        raise ValueError("cards do not decode to a list")
    return cards


class LessonRow(BaseModel):
    """The 15 columns of `lesson_templates`, encoded exactly as the platform stores them."""

    model_config = ConfigDict(frozen=True)

    courseId: str = Field(pattern=r"^course_[a-zA-Z0-9]+$")
    sow_order: int
    title: str
    createdBy: str = CREATED_BY
    version: int = 1
    status: Literal["draft", "review", "published"] = "draft"
    model_version: str = Field(max_length=50)
    lesson_type: str
    estMinutes: int
    outcomeRefs: str
    engagement_tags: str  # JSON string of a list
    policy: str  # JSON string of an object
    cards: str  # base64(gzip(JSON list))
    authored_sow_id: str = Field(max_length=50)
    authored_sow_version: str = Field(max_length=20)

    @classmethod
    def build(
        cls,
        template: LessonTemplate,
        *,
        course_id: str,
        sow_order: int,
        model_version: str,
        sow_id: str,
        sow_version: str,
    ) -> LessonRow:
        data = template.model_dump(mode="json", exclude_none=True)
        return cls(
            courseId=course_id,
            sow_order=sow_order,
            title=template.title,
            model_version=model_version,
            lesson_type=template.lesson_type,
            estMinutes=template.estMinutes,
            outcomeRefs=json.dumps(data["outcomeRefs"], ensure_ascii=False),
            engagement_tags=json.dumps(data["engagement_tags"], ensure_ascii=False),
            policy=json.dumps(data["policy"], ensure_ascii=False),
            cards=encode_cards(data["cards"]),
            authored_sow_id=sow_id,
            authored_sow_version=sow_version,
        )

    def columns(self) -> dict[str, Any]:
        return self.model_dump()

    def decoded(self) -> dict[str, Any]:
        """The row as a reader sees it: JSON columns parsed, cards decoded."""
        data = self.model_dump()
        for name in ("outcomeRefs", "engagement_tags", "policy"):
            data[name] = json.loads(data[name])
        data["cards"] = decode_cards(self.cards)
        return data


LESSON_COLUMNS = tuple(LessonRow.model_fields)
