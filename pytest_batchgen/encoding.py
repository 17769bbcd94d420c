"""How the platform stores JSON in a text column, read in one place.

Three forms are found in the platform's tables: plain JSON text, `gzip:` followed by
base64(gzip(JSON)), and bare base64 gzip (recognised by `H4sI`, the base64 of gzip's
magic number). A lesson's cards and a SOW's entries both come this way; what a reader
then wants of the value (a list of cards, a list of entries) is its own business.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

GZIP_PREFIX = "gzip:"
BASE64_GZIP = "H4sI"


class TooLarge(ValueError):
    """Content that inflates past the reader's limit (a gzip bomb, or no real value)."""


def gunzip(blob: bytes, limit: int | None = None) -> bytes:
    """gzip's content, inflated no further than `limit` bytes when one is given."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # a gzip header
    content = inflater.decompress(blob, (limit or 0) + 1 if limit else 0)
    if limit and len(content) > limit:
        raise TooLarge(f"inflate past {limit} bytes")
    if not inflater.eof:
        raise EOFError("the gzip stream is cut short")
    return content


def is_gzipped(blob: bytes) -> bool:
    return blob[:2] == b"\x1f\x8b"


def decode_json_text(text: str, *, limit: int | None = None) -> Any:
    """The JSON a column holds in any of the platform's forms; ValueError (TooLarge
    past `limit`), OSError, EOFError, zlib.error or RecursionError when it does not."""
    text = text.strip().removeprefix(GZIP_PREFIX)
    if text.startswith(BASE64_GZIP):
        return json.loads(gunzip(base64.b64decode(text, validate=True), limit))
    if limit and len(text) > limit:
        raise TooLarge(f"take {len(text)} characters")
    return json.loads(text)
