"""Schemes of work: the entries we author lessons for, and their encodings."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from pytest_batchgen.contract import SOW_ORDER
from pytest_batchgen.digits import whole_number
from pytest_batchgen.encoding import decode_json_text, gunzip, is_gzipped
from pytest_batchgen.entries import EntryView, read_entry

STORAGE_BUCKET = "authored_sow_entries"
SOW_STATUSES = ("published", "draft", "archived")


class SowError(Exception):
    """A scheme of work that cannot be used; a batch-level error."""


class SowEntry(BaseModel):
    """The part of an entry the batch itself relies on; the rest rides along.

    Entries are authored by people and other generators, so only what
    planning needs is strict; the author reads the full entry.
    """

    model_config = ConfigDict(extra="allow")

    # Strict: `true` is not lesson 1; the platform's rows hold orders 1 to 1000.
    order: StrictInt = Field(ge=SOW_ORDER.low, le=SOW_ORDER.high)
    label: StrictStr
    lesson_type: StrictStr = "teach"

    @field_validator("label")
    @classmethod
    def _one_line(cls, value: str) -> str:
        label = " ".join(value.split())
        if not label:
            raise ValueError("must not be blank")
        return label

    @property
    def data(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @cached_property
    def view(self) -> EntryView:
        """What the entry asks of its lesson, whatever shape it was written in."""
        return read_entry(self.data)


@dataclass(frozen=True)
class SowRecord:
    """One `Authored_SOW` row, entries decoded and sorted by order."""

    doc_id: str
    course_id: str
    version: str
    status: str
    entries: tuple[SowEntry, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    accessibility_notes: str = ""
    #: Other rows with the same status and version, passed over (see select_sow).
    same_version: tuple[str, ...] = ()

    def describe(self) -> str:
        """`sow_x (version 3, published)`, and which rows of that version it won over."""
        text = f"{self.doc_id} (version {self.version}, {self.status})"
        if self.same_version:
            text += (f"; {len(self.same_version) + 1} {self.status} SOWs have version"
                     f" {self.version}: using the most recently updated, not"
                     f" {', '.join(self.same_version)}")
        return text


def decode_entries_field(
    raw: Any, *, download: Callable[[str], bytes] | None = None
) -> list[dict[str, Any]]:
    """Decode the `entries` column in any of its four real-world encodings.

    1. plain JSON text (or an already-parsed list, as JSON exports have it)
    2. ``gzip:`` + base64(gzip(json))
    3. ``storage:<fileId>`` in the `authored_sow_entries` bucket (plain or gzip)
    4. bare base64 gzip, recognisable by its ``H4sI`` magic
    """
    try:
        if isinstance(raw, list):
            value: Any = raw
        elif not isinstance(raw, str):
            raise SowError(f"entries has type {type(raw).__name__}, expected text or a list")
        elif raw.startswith("storage:"):
            if download is None:
                raise SowError("entries are in Storage but this store has no file storage")
            blob = download(raw[len("storage:") :])
            value = json.loads(gunzip(blob) if is_gzipped(blob) else blob)
        else:
            value = decode_json_text(raw)
    except (ValueError, OSError, EOFError, zlib.error, RecursionError) as exc:
        # json, gzip and base64 each raise their own subclass of these; a JSON
        # nested deeper than the parser goes is a RecursionError.
        raise SowError(f"entries cannot be decoded: {type(exc).__name__}:"
                       f" {str(exc)[:200]}") from None
    if not isinstance(value, list):
        raise SowError(f"entries decode to {type(value).__name__}, expected a list")
    return value


def parse_entries(raw_entries: list[Any]) -> tuple[SowEntry, ...]:
    """Validate the entries the batch relies on; sorted by order, orders unique."""
    if not raw_entries:
        raise SowError("the SOW has no entries")
    entries = []
    for index, raw in enumerate(raw_entries):
        if not isinstance(raw, dict):
            raise SowError(f"entry #{index + 1} is {type(raw).__name__}, expected an object")
        try:
            entries.append(SowEntry.model_validate(raw))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, p['loc']))}: {p['msg'].removeprefix('Value error, ')}"
                for p in exc.errors()
            )
            raise SowError(f"entry #{index + 1} is malformed ({problems})") from None
    orders = [entry.order for entry in entries]
    duplicates = sorted({order for order in orders if orders.count(order) > 1})
    if duplicates:
        raise SowError(f"entry orders repeat: {duplicates}")
    return tuple(sorted(entries, key=lambda entry: entry.order))


def parse_metadata(raw: Any) -> dict[str, Any]:
    if raw in (None, ""):
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw)
    except (TypeError, ValueError, RecursionError) as exc:
        # Nested deeper than the parser goes is a RecursionError, as for entries.
        raise SowError(f"metadata is not JSON: {type(exc).__name__}: {str(exc)[:200]}") from None
    return value if isinstance(value, dict) else {"value": value}


def version_key(version: str) -> tuple[int, str]:
    """Versions are strings ("1", "10"); compare numerically where they are numbers."""
    text = str(version)
    number = whole_number(text)
    return (number, "") if number is not None else (-1, text)


def older_sow_version(version: str, current: str) -> bool:
    """Whether a lesson written from SOW `version` predates the course's `current` one
    (a stale lesson); a lesson that names no version is not known to be stale."""
    return bool(version) and version_key(version) < version_key(current)


def select_sow(rows: list[dict[str, Any]], course_id: str,
               status: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The row to use: the highest version with the wanted status, and the ids of other
    rows of that version it was chosen over.

    Among rows of one version the most recently updated wins (then the highest
    id): the same row every time, whatever order the store lists them in.
    Raising here names the statuses that do exist, so "no published SOW" tells
    the user whether a draft is waiting, and how to use it.
    """
    if not rows:
        raise SowError(f"no SOW found for course '{course_id}'")
    wanted = [row for row in rows if row.get("status") == status]
    if not wanted:
        found = sorted({str(row.get("status")) for row in rows})
        hint = "; --batch-sow-status=draft uses a draft" if "draft" in found else ""
        raise SowError(
            f"no {status} SOW for course '{course_id}' (statuses found: {', '.join(found)})"
            + hint
        )

    def order(row: dict[str, Any]) -> tuple[tuple[int, str], str, str]:
        return (version_key(str(row.get("version", ""))), str(row.get("$updatedAt") or ""),
                str(row.get("$id")))

    chosen = max(wanted, key=order)
    same = tuple(sorted(str(row.get("$id")) for row in wanted
                        if row is not chosen and order(row)[0] == order(chosen)[0]))
    return chosen, same


def record_from_row(
    row: dict[str, Any], *, download: Callable[[str], bytes] | None = None,
    same_version: tuple[str, ...] = (),
) -> SowRecord:
    """Build a SowRecord from an `Authored_SOW` row as either store returns it."""
    entries = parse_entries(decode_entries_field(row.get("entries"), download=download))
    return SowRecord(
        doc_id=str(row["$id"]),
        course_id=str(row["courseId"]),
        version=str(row.get("version", "1")),
        status=str(row.get("status", "")),
        entries=entries,
        metadata=parse_metadata(row.get("metadata")),
        accessibility_notes=str(row.get("accessibility_notes") or ""),
        same_version=same_version,
    )
