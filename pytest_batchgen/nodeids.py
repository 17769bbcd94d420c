"""Course ids and lesson node ids (`course_x::lesson_006`): made and parsed in one place.

They are the batch's stable names: `--lf`, `--deselect`, positional selection
and the controller's bookkeeping under xdist all go by them.
"""

from __future__ import annotations

import re
from typing import TypeGuard

from pytest_batchgen.digits import whole_number

NODE_PREFIX = "lesson_"
#: A course id as the platform writes it into rows (ASCII: the row's pattern). \Z, not
#: `$`, which matches before a final newline: whole with .match or .fullmatch alike.
COURSE_ID = re.compile(r"course_[A-Za-z0-9]+\Z")


def is_course_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and COURSE_ID.fullmatch(value) is not None


def lesson_node_name(order: int) -> str:
    return f"{NODE_PREFIX}{order:03d}"


def parse_node_id(nodeid: str) -> tuple[str, int] | None:
    """`course_x::lesson_006` -> ("course_x", 6); None for any other node."""
    course, _, name = nodeid.partition("::")
    order = whole_number(name[len(NODE_PREFIX):]) if name.startswith(NODE_PREFIX) else None
    return None if order is None else (course, order)
