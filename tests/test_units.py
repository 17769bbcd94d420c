"""Pure logic, as tables: planning, estimates, SOW decoding, lesson rules, settings."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_batchgen.digits import whole_number
from pytest_batchgen.layout import BatchLayout, claim_batch_directory
from pytest_batchgen.lesson import LessonRow, decode_cards, encode_cards
from pytest_batchgen.planning import (
    Action,
    Reason,
    estimate,
    plan_lessons,
    shard_of,
    split_shard,
)
from pytest_batchgen.results import format_duration
from pytest_batchgen.sow import (
    SowEntry,
    SowError,
    decode_entries_field,
    parse_entries,
    select_sow,
)
from pytest_batchgen.store import ExistingLesson, choose_row_to_update
from tests.support.lessons import valid_lesson

OURS = "claud_Agent_sdk"


def row(order: int, version: str = OURS, doc: str = "", created: str = "2025") -> ExistingLesson:
    return ExistingLesson(doc_id=doc or f"doc{order}{version[:3]}", course_id="course_x",
                          sow_order=order, model_version=version, created_at=created)


ENTRIES = [SowEntry(order=o, label=f"Lesson {o}") for o in (1, 2, 3)]


@pytest.mark.parametrize(
    ("rows", "force", "any_row", "expected"),
    [
        ([], False, False, [("generate", "not_found")] * 3),
        ([row(1), row(2), row(3)], False, False, [("skip", "already_exists")] * 3),
        ([row(2)], False, False,
         [("generate", "not_found"), ("skip", "already_exists"), ("generate", "not_found")]),
        ([row(1, "legacy")], False, False,
         [("replace", "other_model_version"), ("generate", "not_found"),
          ("generate", "not_found")]),
        ([row(1, "legacy")], False, True,
         [("skip", "already_exists"), ("generate", "not_found"), ("generate", "not_found")]),
        ([row(1), row(3, "legacy")], True, False,
         [("overwrite", "force"), ("generate", "not_found"), ("overwrite", "force")]),
        ([row(9)], False, False, [("generate", "not_found")] * 3),  # not in the SOW
    ],
    ids=["none", "all", "mixed", "other-version", "drafting-author", "force", "stray-row"],
)
def test_plan_table(rows: list[ExistingLesson], force: bool, any_row: bool,
                    expected: list[tuple[str, str]]) -> None:
    plan = plan_lessons(ENTRIES, rows, model_version=OURS, any_row_counts=any_row, force=force)
    assert [(p.action.value, p.reason.value) for p in plan] == expected
    assert [p.order for p in plan] == [1, 2, 3]


def test_plan_prefers_our_row_and_reports_duplicates() -> None:
    rows = [row(1, "legacy", "old", "2024"), row(1, OURS, "ours", "2025"),
            row(1, OURS, "ours2", "2026")]
    [lesson] = plan_lessons(ENTRIES[:1], rows, model_version=OURS)
    assert lesson.action is Action.SKIP and lesson.existing is not None
    assert lesson.existing.doc_id == "ours"
    assert lesson.duplicates == ("old", "ours2")
    assert lesson.reason is Reason.ALREADY_EXISTS
    assert choose_row_to_update(rows, OURS).doc_id == "ours"
    assert choose_row_to_update(rows[:1], OURS).doc_id == "old"


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_deal_every_lesson_to_one_shard_and_keep_it(count: int) -> None:
    course = [SowEntry(order=o, label=f"Lesson {o}") for o in range(1, 31)]
    plan = plan_lessons(course, [], model_version=OURS)
    shards = [split_shard(plan, (k, count)) for k in range(1, count + 1)]
    ours = [[p.order for p in lessons] for lessons, _ in shards]
    assert sorted(o for orders in ours for o in orders) == list(range(1, 31))  # one shard each
    assert max(map(len, ours)) - min(map(len, ours)) <= 1
    for lessons, others in shards:
        assert sorted([p.order for p in lessons] + list(others)) == list(range(1, 31))
    # A longer course: the lessons there before keep their shards.
    longer = plan_lessons([*course, SowEntry(order=31, label="New")], [], model_version=OURS)
    for k in range(1, count + 1):
        before = [p.order for p in split_shard(plan, (k, count))[0]]
        after = [p.order for p in split_shard(longer, (k, count))[0]]
        assert after[:len(before)] == before
    assert split_shard(plan, None) == (plan, ())
    assert shard_of(31, count) == (30 % count) + 1


@pytest.mark.parametrize(
    ("lessons", "history", "minutes", "cost", "points"),
    [(7, [], 49, 1.19, 0), (12, [], 84, 2.04, 0), (0, [], 0, 0.0, 0),
     (4, [(600.0, 0.2), (300.0, 0.1)], 30, 0.6, 2)],
)
def test_estimates(lessons: int, history: list[tuple[float, float]], minutes: int,
                   cost: float, points: int) -> None:
    result = estimate(lessons, history)
    assert (result.minutes, result.cost_usd, result.data_points) == (minutes, cost, points)


@pytest.mark.parametrize(("seconds", "text"),
                         [(8066, "2h 14m 26s"), (682, "11m 22s"), (45, "45s"), (0, "0s")])
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


# --- SOW entries --------------------------------------------------------------


ENTRY_LIST = [{"order": 1, "label": "One"}, {"order": 2, "label": "Two"}]
GZIPPED = base64.b64encode(gzip.compress(json.dumps(ENTRY_LIST).encode())).decode()


@pytest.mark.parametrize(
    "raw",
    [ENTRY_LIST, json.dumps(ENTRY_LIST), "gzip:" + GZIPPED, GZIPPED, "storage:file1",
     "storage:file2"],
    ids=["list", "json", "gzip-prefix", "bare-base64-gzip", "storage-plain", "storage-gzip"],
)
def test_entries_decode_in_every_encoding(raw: Any) -> None:
    files = {"file1": json.dumps(ENTRY_LIST).encode(),
             "file2": gzip.compress(json.dumps(ENTRY_LIST).encode())}
    assert decode_entries_field(raw, download=files.__getitem__) == ENTRY_LIST


@pytest.mark.parametrize(
    ("raw", "message"),
    [("{not json", "entries cannot be decoded"), ("gzip:%%%", "entries cannot be decoded"),
     ('{"a": 1}', "decode to dict, expected a list"), (42, "entries has type int"),
     ("storage:f", "no file storage")],
)
def test_undecodable_entries(raw: Any, message: str) -> None:
    with pytest.raises(SowError, match=message):
        decode_entries_field(raw)


@pytest.mark.parametrize(
    ("entries", "message"),
    [([], "has no entries"), (["x"], "entry #1 is str"),
     ([{"order": 0, "label": "x"}], "entry #1 is malformed"),
     ([{"order": 1, "label": "a"}, {"order": 1, "label": "b"}], r"orders repeat: \[1\]")],
)
def test_malformed_entries(entries: list[Any], message: str) -> None:
    with pytest.raises(SowError, match=message):
        parse_entries(entries)


def test_entries_sorted_and_labels_one_line() -> None:
    parsed = parse_entries([{"order": 5, "label": "b\n  c"}, {"order": 2, "label": "a"}])
    assert [(e.order, e.label) for e in parsed] == [(2, "a"), (5, "b c")]


def test_select_highest_published_version() -> None:
    rows = [{"$id": "a", "status": "published", "version": "2"},
            {"$id": "b", "status": "published", "version": "10"},
            {"$id": "c", "status": "draft", "version": "11"}]
    assert select_sow(rows, "course_x", "published")[0]["$id"] == "b"
    assert select_sow(rows, "course_x", "draft")[0]["$id"] == "c"
    with pytest.raises(SowError, match=r"no archived SOW .*statuses found: draft, published"):
        select_sow(rows, "course_x", "archived")


# --- lesson rules ----------------------------------------------------------------


def test_row_encodes_as_the_platform_does() -> None:
    built = LessonRow.build(valid_lesson(), course_id="course_x1", sow_order=3,
                            model_version=OURS, sow_id="sow1", sow_version="2")
    assert len(built.columns()) == 15
    assert json.loads(built.outcomeRefs) == ["O1", "AS1.1", "AS1.2"]
    assert json.loads(built.policy) == {"calculator_allowed": False}
    assert decode_cards(built.cards)[0]["id"] == "card_001"
    assert built.cards.startswith("H4sI")
    cards = decode_cards(built.cards)
    assert decode_cards("gzip:" + built.cards) == cards == decode_cards(json.dumps(cards))
    assert encode_cards(cards) == built.cards  # deterministic: no gzip timestamp


def test_batch_directories_are_claimed_never_shared(tmp_path: Path) -> None:
    first = claim_batch_directory(tmp_path / "logs", "batch_course_x1_20250117_143052")
    second = claim_batch_directory(tmp_path / "logs", "batch_course_x1_20250117_143052")
    third = claim_batch_directory(tmp_path / "logs", "batch_course_x1_20250117_143052")
    assert [p.name for p in (first, second, third)] == [
        "batch_course_x1_20250117_143052", "batch_course_x1_20250117_143052_2",
        "batch_course_x1_20250117_143052_3"]
    assert all(p.is_dir() and p.is_absolute() for p in (first, second, third))


def test_the_layout_names_the_spec_files(tmp_path: Path) -> None:
    layout = BatchLayout(tmp_path)
    assert [layout.name(path) for path in (
        layout.summary, layout.plan, layout.batch_log, layout.report, layout.lesson_log(6),
        layout.diff(6), layout.pending(6), layout.workspace(6))] == [
        "batch_summary.json", "dry_run_plan.json", "batch_execution.log", "batch_report.html",
        "lesson_order_006.log", "diffs/lesson_006.diff", "pending/lesson_006.json",
        "workspaces/lesson_006"]


@pytest.mark.parametrize(("text", "number"), [
    ("7", 7), ("007", 7), ("²", None), ("٣", None), ("-1", None), (" 1", None), ("", None),
    ("9" * 5000, None),
])
def test_whole_numbers_are_ascii_digits_only(text: str, number: int | None) -> None:
    assert whole_number(text) == number
