"""The author `--batch-author` names, made from its typed options."""

from __future__ import annotations

from pytest_batchgen.authors import AuthorUnavailable, LessonAuthor
from pytest_batchgen.authors.claude import ClaudeAuthor, ClaudeOptions


def open_default_author(name: str, claude: ClaudeOptions | None = None) -> LessonAuthor:
    """The author `--batch-author` names; `claude` is the Claude author's options."""
    if name == "claude":
        return ClaudeAuthor(claude)
    if name == "outline":
        from pytest_batchgen.authors.outline import OutlineAuthor

        return OutlineAuthor()
    raise AuthorUnavailable(f"unknown --batch-author {name!r} (use claude or outline)")
