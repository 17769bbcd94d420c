"""Whole numbers written as text (a shard, a node id, a version, a stored order): read
in this one place.

`str.isdigit()` holds for '²' and '٣': int() refuses the first and reads the second
as 3. Neither is a number a user, a shell script or the platform means, so only
ASCII digits count here, and whatever else is text, never a traceback.
"""

from __future__ import annotations


def whole_number(text: str) -> int | None:
    """`"42"` -> 42; None for anything but ASCII digits (signs and spaces included)."""
    if not (text.isascii() and text.isdigit()):
        return None
    try:
        return int(text)
    except ValueError:  # past int()'s limit on digits (4300): no order or shard is that long
        return None
