"""The lesson contract: every rule the platform declares for a lesson, in one place.

The platform that reads our `lesson_templates` rows states its rules in four
places (schoolofai/ScottishAILessons): the frontend's row and card schemas
(`lib/appwrite/schemas.ts`), the admin editor's save check
(`lib/validation/cardValidator.ts`), session start (`CourseOutcomesDriver`,
`SessionChatAssistant`) and the platform author's validator. A lesson must
pass all of them at once; where two disagree, the stricter rule is here.

Everything that judges a lesson uses this module: the Claude author's
`submit_lesson` tool, the item's gate before any write (whatever author,
including one a conftest plugs in), and `--batch-audit` over stored rows.
The checks return *every* violation, never only the first, so an agent can
fix them all in one round and an audit lists them all. Keys are strict: a key
the contract does not name is a violation, never silently written.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pytest_batchgen.encoding import TooLarge, decode_json_text

# A lesson as authors produce it and the row's JSON columns hold it.
Lesson = dict[str, Any]


class Span(NamedTuple):
    """An inclusive range: a text's length, a count of items, a whole number."""

    low: int
    high: int


# Every bound of the contract, named once: the checks below, the requirements and the
# prompts the authors are given (authors/prompting.py) all read them from here.
TITLE = Span(30, 80)
MINUTES = Span(5, 120)
LONG_MINUTES = Span(5, 180)  # mock exams: full papers
REF_TEXT = Span(1, 100)  # one outcome ref or engagement tag
POLICY_NOTES = Span(0, 500)
CARDS = Span(1, 20)
CARD_TITLE = Span(10, 100)
EXPLAINER = Span(100, 2000)
EXPLAINER_PLAIN = Span(60, 1600)
CONTEXT_HOOK = Span(10, 100)
MISCONCEPTIONS = Span(1, 3)
MISCONCEPTION_TEXT = Span(10, 200)
CLARIFICATION = Span(20, 300)
STEM = Span(10, 500)
STRUCTURED_STEM = Span(10, 800)
TOTAL_POINTS = Span(1, 20)
CRITERIA = Span(1, 5)
CRITERION_TEXT = Span(10, 200)
CRITERION_POINTS = Span(1, 10)
OPTIONS = Span(3, 5)
OPTION_TEXT = Span(1, 200)
HINTS = Span(3, 5)
HINT_TEXT = Span(10, 200)
TOLERANCE = Span(0, 1)
SOW_ORDER = Span(1, 1000)  # the frontend's bound on a row's sow_order
MISCONCEPTION_ID_EXAMPLE = "MISC_MATH_PERCENT_001"


def card_id(number: int) -> str:
    """The id of the lesson's `number`th card (from 1): card_001, card_002, …"""
    return f"card_{number:03d}"


def cfu_id(number: int) -> str:
    """The id of the question on the `number`th card: q001, q002, …"""
    return f"q{number:03d}"


# The row's text columns the frontend bounds, and their longest.
COLUMN_LENGTHS = {"model_version": 50, "authored_sow_id": 50, "authored_sow_version": 20}

PLATFORM_LESSON_TYPES = (
    "teach", "independent_practice", "formative_assessment", "revision", "mock_exam",
)
LONG_LESSON_TYPES = ("mock_exam",)  # up to LONG_MINUTES: full exam papers
LESSON_STATUSES = ("draft", "review", "published")
CFU_TYPES = ("mcq", "numeric", "structured_response", "short_text")

LESSON_KEYS = ("title", "lesson_type", "estMinutes", "outcomeRefs", "engagement_tags",
               "policy", "cards")
CARD_KEYS = ("id", "title", "explainer", "explainer_plain", "cfu", "misconceptions")
CARD_OPTIONAL = ("context_hooks",)
MISCONCEPTION_KEYS = ("id", "misconception", "clarification")
POLICY_OPTIONAL = ("assessment_notes",)
RUBRIC_KEYS = ("total_points", "criteria")
CRITERION_KEYS = ("description", "points")
CFU_KEYS = ("type", "id", "stem", "rubric")
# Beyond CFU_KEYS, per type: (required, optional).
CFU_TYPE_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "mcq": (("options",), ("answerIndex", "multiSelect", "answerIndices")),
    "numeric": (("expected", "tolerance"), ("money2dp", "hints")),
    "structured_response": ((), ()),
    "short_text": ((), ()),
}

# \Z, not $ (which matches before a final newline); [0-9], not \d (any script's digits).
CARD_ID = re.compile(r"^card_[0-9]{3}\Z")
CFU_ID = re.compile(r"^q[0-9]{3}\Z")
MISCONCEPTION_ID = re.compile(r"^MISC_[A-Z]+_[A-Z]+_[0-9]{3}\Z")
# LaTeX a plain-language reader would see raw: commands, display maths, \( \[.
LATEX = re.compile(r"\\[A-Za-z]+|\$\$|\\[(\[]")
# Text no store can hold or no reader should get: control characters but tab and
# newlines (NUL ends a C string), lone surrogates (no UTF-8 encoding exists, so the
# write fails after the lesson was paid for), and the bidirectional overrides and
# isolates that make text read otherwise than it is stored (U+202E).
UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff"
                        "\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Violation:
    """One broken rule: where in the lesson (card and field) and what the rule says."""

    where: str
    rule: str

    def __str__(self) -> str:
        return f"{self.where}: {self.rule}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


@dataclass
class _Checker:
    """Collects violations while one lesson (or row) is walked."""

    found: list[Violation] = field(default_factory=list)

    def add(self, where: str, rule: str) -> None:
        self.found.append(Violation(where, rule))

    def keys(self, where: str, value: Any, required: Collection[str],
             optional: Collection[str] = ()) -> bool:
        """An object with every required key and no other; False when not an object.

        `where` is "" for the lesson itself, so its fields read `title`, `cards`."""
        if not isinstance(value, dict):
            self.add(where or "lesson", f"must be an object, got {_kind(value)}")
            return False
        prefix = f"{where}." if where else ""
        for key in required:
            if key not in value:
                self.add(f"{prefix}{key}", "missing (required)")
        allowed = (*required, *optional)
        for key in value:
            if key not in allowed:
                self.add(f"{prefix}{key}",
                         f"key not allowed by the contract (allowed: {', '.join(allowed)})")
        return True

    def text(self, where: str, value: Any, span: Span) -> bool:
        low, high = span
        if not isinstance(value, str):
            self.add(where, f"must be text of {low}-{high} characters, got {_kind(value)}")
            return False
        if not low <= len(value) <= high:
            self.add(where, f"must be {low}-{high} characters, has {len(value)}")
            return False
        if low and not value.strip():
            self.add(where, "must not be blank")
            return False
        if bad := UNSTORABLE.search(value):
            self.add(where, f"must not hold the character U+{ord(bad.group()):04X} at"
                            f" {bad.start()} (a control character, a lone surrogate or a"
                            " bidirectional override): no store can hold it or it reads"
                            " otherwise than it is written")
            return False
        return True

    def fields(self, where: str, value: dict[str, Any], spans: dict[str, Span]) -> None:
        """Each of these text fields the object has, held to its span."""
        for name, span in spans.items():
            if name in value:
                self.text(f"{where}.{name}", value[name], span)

    def whole(self, where: str, value: Any, span: Span) -> bool:
        low, high = span
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(where, f"must be a whole number from {low} to {high}, got {_kind(value)}")
            return False
        if not low <= value <= high:
            self.add(where, f"must be a whole number from {low} to {high}, got {value}")
            return False
        return True

    def number(self, where: str, value: Any, low: float, high: float | None = None,
               why: str = "") -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                isinstance(value, float) and not math.isfinite(value)):
            self.add(where, f"must be a number, got {_kind(value)}{why}")
            return False
        if value < low or (high is not None and value > high):
            bounds = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"
            self.add(where, f"must be a number {bounds}, got {value:g}")
            return False
        return True

    def texts(self, where: str, value: Any, items: Span | None, text: Span) -> list[str]:
        """A list of texts (`items` of them; any number when None); returns the good ones."""
        if not isinstance(value, list):
            self.add(where, f"must be a list of texts, got {_kind(value)}")
            return []
        if items is not None and not items.low <= len(value) <= items.high:
            self.add(where, f"must hold {items.low}-{items.high} items, has {len(value)}")
        return [item for index, item in enumerate(value)
                if self.text(f"{where}[{index}]", item, text)]


# --- the lesson ------------------------------------------------------------------


def check_lesson(lesson: Any) -> list[Violation]:
    """Every contract rule a lesson (the JSON an author submits) breaks."""
    check = _Checker()
    if not check.keys("", lesson, LESSON_KEYS):
        return check.found
    if "title" in lesson:
        check.text("title", lesson["title"], TITLE)
    lesson_type = lesson.get("lesson_type")
    if "lesson_type" in lesson and lesson_type not in PLATFORM_LESSON_TYPES:
        check.add("lesson_type", f"must be one of {', '.join(PLATFORM_LESSON_TYPES)}"
                                 f" (the frontend rejects {lesson_type!r})")
    if "estMinutes" in lesson:
        check.whole("estMinutes", lesson["estMinutes"],
                    LONG_MINUTES if lesson_type in LONG_LESSON_TYPES else MINUTES)
    if "outcomeRefs" in lesson:
        check.texts("outcomeRefs", lesson["outcomeRefs"], None, REF_TEXT)
    if "engagement_tags" in lesson:
        check.texts("engagement_tags", lesson["engagement_tags"], None, REF_TEXT)
    if "policy" in lesson:
        _check_policy(check, lesson["policy"])
    if "cards" in lesson:
        _check_cards(check, lesson["cards"])
    return check.found


def _check_policy(check: _Checker, policy: Any) -> None:
    if not check.keys("policy", policy, ("calculator_allowed",), POLICY_OPTIONAL):
        return
    if "calculator_allowed" in policy and not isinstance(policy["calculator_allowed"], bool):
        check.add("policy.calculator_allowed",
                  f"must be true or false, got {_kind(policy['calculator_allowed'])}")
    if "assessment_notes" in policy:
        check.text("policy.assessment_notes", policy["assessment_notes"], POLICY_NOTES)


def _check_cards(check: _Checker, cards: Any) -> None:
    if not isinstance(cards, list):
        check.add("cards", f"must be a list of cards, got {_kind(cards)}")
        return
    if not CARDS.low <= len(cards) <= CARDS.high:
        check.add("cards", f"must hold {CARDS.low}-{CARDS.high} cards, has {len(cards)}")
    for index, card in enumerate(cards):
        _check_card(check, index, card)


def card_label(index: int, card: Any) -> str:
    """`cards[2] (card_003)`: the position, and the id when the card has a valid one."""
    card_id = card.get("id") if isinstance(card, dict) else None
    named = f" ({card_id})" if isinstance(card_id, str) and CARD_ID.match(card_id) else ""
    return f"cards[{index}]{named}"


def _check_card(check: _Checker, index: int, card: Any) -> None:
    where = card_label(index, card)
    if not check.keys(where, card, CARD_KEYS, CARD_OPTIONAL):
        return
    wanted = card_id(index + 1)
    if "id" in card and card["id"] != wanted:
        check.add(f"{where}.id", f"must be {wanted!r}: card ids run card_001, card_002, … in"
                                 f" order (got {card['id']!r})")
    check.fields(where, card, {"title": CARD_TITLE, "explainer": EXPLAINER})
    plain = card.get("explainer_plain")
    if ("explainer_plain" in card and check.text(f"{where}.explainer_plain", plain, EXPLAINER_PLAIN)
            and (latex := LATEX.search(plain))):
        check.add(f"{where}.explainer_plain",
                      f"must be plain language without LaTeX (found {latex.group()!r});"
                      " keep the maths notation in explainer")
    if "misconceptions" in card:
        _check_misconceptions(check, f"{where}.misconceptions", card["misconceptions"])
    if "context_hooks" in card:
        check.texts(f"{where}.context_hooks", card["context_hooks"], None, CONTEXT_HOOK)
    if "cfu" in card:
        check_cfu(check, f"{where}.cfu", card["cfu"])


def _check_misconceptions(check: _Checker, where: str, items: Any) -> None:
    if not isinstance(items, list):
        check.add(where, f"must be a list of {MISCONCEPTIONS.low}-{MISCONCEPTIONS.high}"
                         f" misconceptions, got {_kind(items)}")
        return
    if not MISCONCEPTIONS.low <= len(items) <= MISCONCEPTIONS.high:
        check.add(where, f"must hold {MISCONCEPTIONS.low}-{MISCONCEPTIONS.high} misconceptions,"
                         f" has {len(items)}")
    for index, item in enumerate(items):
        at = f"{where}[{index}]"
        if not check.keys(at, item, MISCONCEPTION_KEYS):
            continue
        if "id" in item and not (isinstance(item["id"], str)
                                 and MISCONCEPTION_ID.match(item["id"])):
            check.add(f"{at}.id", f"must look like {MISCONCEPTION_ID_EXAMPLE} (MISC_, two"
                                  f" letter-only words, three digits), got {item['id']!r}")
        check.fields(at, item, {"misconception": MISCONCEPTION_TEXT,
                                "clarification": CLARIFICATION})


def check_cfu(check: _Checker, where: str, cfu: Any) -> None:
    if not isinstance(cfu, dict):
        check.add(where, f"must be an object, got {_kind(cfu)}")
        return
    kind = cfu.get("type")
    if kind not in CFU_TYPES:
        check.add(f"{where}.type", f"must be one of {', '.join(CFU_TYPES)}, got {kind!r}")
        check.keys(where, {k: v for k, v in cfu.items() if k in CFU_KEYS}, CFU_KEYS)
        return
    required, optional = CFU_TYPE_KEYS[kind]
    check.keys(where, cfu, (*CFU_KEYS, *required), optional)
    if "id" in cfu and not (isinstance(cfu["id"], str) and CFU_ID.match(cfu["id"])):
        check.add(f"{where}.id",
                  f"must look like {cfu_id(1)} (q and three digits), got {cfu['id']!r}")
    if "stem" in cfu:
        check.text(f"{where}.stem", cfu["stem"],
                   STRUCTURED_STEM if kind == "structured_response" else STEM)
    if "rubric" in cfu:
        _check_rubric(check, f"{where}.rubric", cfu["rubric"])
    if kind == "mcq":
        _check_mcq(check, where, cfu)
    elif kind == "numeric":
        _check_numeric(check, where, cfu)


def check_rubric(rubric: Any) -> list[Violation]:
    """Every rule a CFU's rubric breaks (a plan's rubric guidance, before it is used)."""
    check = _Checker()
    _check_rubric(check, "rubric", rubric)
    return check.found


def _check_rubric(check: _Checker, where: str, rubric: Any) -> None:
    if not check.keys(where, rubric, RUBRIC_KEYS):
        return
    total = rubric.get("total_points")
    total_ok = "total_points" in rubric and check.whole(f"{where}.total_points", total,
                                                        TOTAL_POINTS)
    criteria = rubric.get("criteria")
    if "criteria" not in rubric:
        return
    if not isinstance(criteria, list):
        check.add(f"{where}.criteria", f"must be a list of {CRITERIA.low}-{CRITERIA.high}"
                                       f" criteria, got {_kind(criteria)}")
        return
    if not CRITERIA.low <= len(criteria) <= CRITERIA.high:
        check.add(f"{where}.criteria", f"must hold {CRITERIA.low}-{CRITERIA.high} criteria,"
                                       f" has {len(criteria)}")
    points: list[int] = []
    for index, criterion in enumerate(criteria):
        at = f"{where}.criteria[{index}]"
        if not check.keys(at, criterion, CRITERION_KEYS):
            continue
        if "description" in criterion:
            check.text(f"{at}.description", criterion["description"], CRITERION_TEXT)
        if "points" in criterion and check.whole(f"{at}.points", criterion["points"],
                                                 CRITERION_POINTS):
            points.append(criterion["points"])
    if total_ok and criteria and len(points) == len(criteria) and sum(points) != total:
        check.add(f"{where}.total_points",
                  f"must equal the criteria's points, which add up to {sum(points)} (got {total})")


def _check_mcq(check: _Checker, where: str, cfu: dict[str, Any]) -> None:
    if "options" in cfu:
        check.texts(f"{where}.options", cfu["options"], OPTIONS, OPTION_TEXT)
    options = cfu.get("options")
    # Indices are checked against the options there are (the frontend's cap is 4).
    last = len(options) - 1 if isinstance(options, list) and options else OPTIONS.high - 1
    multi = cfu.get("multiSelect", False)
    if not isinstance(multi, bool):
        check.add(f"{where}.multiSelect", f"must be true or false, got {_kind(multi)}")
        return
    if multi:
        if "answerIndex" in cfu:
            check.add(f"{where}.answerIndex", "a multi-select question takes answerIndices"
                                              " only; remove answerIndex")
        indices = cfu.get("answerIndices")
        if not isinstance(indices, list) or not indices:
            check.add(f"{where}.answerIndices", "multiSelect needs a non-empty list of the"
                                                " correct options' indices")
            return
        for index, value in enumerate(indices):
            check.whole(f"{where}.answerIndices[{index}]", value, Span(0, last))
        if len(set(map(repr, indices))) != len(indices):
            check.add(f"{where}.answerIndices", f"must not repeat an index (got {indices})")
        return
    if "answerIndices" in cfu:
        check.add(f"{where}.answerIndices", "only a multi-select question (multiSelect: true)"
                                            " takes answerIndices; use answerIndex")
    if "answerIndex" not in cfu:
        check.add(f"{where}.answerIndex", "missing: the index of the correct option")
    else:
        check.whole(f"{where}.answerIndex", cfu["answerIndex"], Span(0, last))


def _check_numeric(check: _Checker, where: str, cfu: dict[str, Any]) -> None:
    if "expected" in cfu:
        check.number(f"{where}.expected", cfu["expected"], 0,
                     why=" (the admin editor cannot save a numeric answer given as text)"
                     if isinstance(cfu["expected"], str) else "")
    if "tolerance" in cfu:
        check.number(f"{where}.tolerance", cfu["tolerance"], *TOLERANCE)
    if "money2dp" in cfu and not isinstance(cfu["money2dp"], bool):
        check.add(f"{where}.money2dp", f"must be true or false, got {_kind(cfu['money2dp'])}")
    if "hints" in cfu:
        check.texts(f"{where}.hints", cfu["hints"], HINTS, HINT_TEXT)


# --- outcome refs: what session start needs -----------------------------------------


def check_outcome_ids(refs: Any, outcome_ids: Collection[str]) -> list[Violation]:
    """Every dot-less ref must be an `outcomeId` of the course.

    Session start looks the dot-less refs up in `course_outcomes`; when none is
    found it refuses to start the learner's session. (Refs with a dot are
    assessment standard codes and are not looked up.)
    """
    if not isinstance(refs, list):
        return []  # check_lesson reports the shape
    known = ", ".join(sorted(outcome_ids)) or "none"
    return [
        Violation(f"outcomeRefs[{index}]",
                  f"{ref!r} is not an outcome id of the course (its outcome ids: {known});"
                  " a learner's session would not start")
        for index, ref in enumerate(refs)
        if isinstance(ref, str) and "." not in ref and ref not in outcome_ids
    ]


def outcome_ids_of(outcomes: list[dict[str, Any]]) -> frozenset[str]:
    """The course's outcome ids, from its `course_outcomes` rows."""
    return frozenset(str(o["outcomeId"]) for o in outcomes if o.get("outcomeId"))


# --- the stored row: what an audit reads ---------------------------------------------

JSON_LIST_COLUMNS = ("outcomeRefs", "engagement_tags")
JSON_COLUMNS = (*JSON_LIST_COLUMNS, "policy")  # stored as JSON text


# The most a lesson's cards can take as JSON: the contract's bounds (20 cards of at
# most about 10 kB of text each) with room for escaping. A stored row whose cards
# inflate past it is no lesson the platform could have written, and inflating it
# whole (a gzip bomb: 290 kB became 640 MB) would cost the audit its memory.
MAX_CARDS_JSON = 2_000_000


def decode_cards(value: Any) -> list[Any]:
    """Every encoding readers accept: plain JSON, `gzip:`-prefixed, bare base64 gzip."""
    if not isinstance(value, str):
        raise ValueError(f"cards is {_kind(value)}, not encoded text")
    try:
        cards = decode_json_text(value, limit=MAX_CARDS_JSON)
    except TooLarge as exc:
        raise ValueError(f"cards {exc}, more than any lesson the contract allows") from None
    except (ValueError, OSError, EOFError, zlib.error, RecursionError) as exc:
        raise ValueError(f"cards cannot be decoded ({type(exc).__name__})") from None
    if not isinstance(cards, list):
        raise ValueError("cards do not decode to a list")
    return cards


def row_lesson(row: Mapping[str, Any]) -> tuple[Lesson, list[Violation], set[str]]:
    """A stored `lesson_templates` row as the lesson it holds: its JSON columns and cards
    decoded as the frontend decodes them; the violations of the row's own columns; and
    the lesson fields that did not decode (named there once, not again as missing)."""
    check = _Checker()
    if "sow_order" in row:
        check.whole("sow_order", row["sow_order"], SOW_ORDER)
    if row.get("status") not in LESSON_STATUSES:
        check.add("status", f"must be one of {', '.join(LESSON_STATUSES)},"
                            f" got {row.get('status')!r}")
    for name, most in COLUMN_LENGTHS.items():
        if row.get(name) is not None:
            check.text(name, row[name], Span(0, most))
    lesson: Lesson = {key: row.get(key) for key in ("title", "lesson_type", "estMinutes")}
    undecoded = set()
    for name in JSON_COLUMNS:
        try:
            lesson[name] = json.loads(row.get(name) or "")
        except (TypeError, ValueError, RecursionError):
            undecoded.add(name)
            check.add(name, "must be the JSON text of a "
                            + ("list" if name in JSON_LIST_COLUMNS else "policy object"))
    try:
        lesson["cards"] = decode_cards(row.get("cards"))
    except ValueError as exc:
        undecoded.add("cards")
        check.add("cards", f"{exc}: the frontend shows no cards")
    return lesson, check.found, undecoded


def check_row(row: Mapping[str, Any], outcome_ids: Collection[str]) -> list[Violation]:
    """Every rule a stored `lesson_templates` row breaks: its columns, then its lesson."""
    lesson, found, undecoded = row_lesson(row)
    found += [v for v in check_lesson(lesson) if v.where not in undecoded]
    return found + check_outcome_ids(lesson.get("outcomeRefs"), outcome_ids)
