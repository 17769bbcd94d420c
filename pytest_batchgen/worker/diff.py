"""What a force run's write changes in a stored lesson, kept beside the logs."""

from __future__ import annotations

import difflib
import json

from pytest_batchgen.lesson import LessonRow


def lesson_diff(old: LessonRow | None, new: LessonRow, name: str) -> str:
    """A unified diff of the decoded lessons, old vs new; empty when nothing changed."""

    def lines(row: LessonRow | None) -> list[str]:
        if row is None:
            return []
        try:
            data = row.decoded()
        except ValueError:
            data = row.columns()  # an undecodable stored lesson: diff it as stored
        shown = {key: data[key] for key in DIFFED_COLUMNS}
        return json.dumps(shown, indent=2, ensure_ascii=False).splitlines(keepends=True)

    return "".join(difflib.unified_diff(lines(old), lines(new), f"{name} (stored)",
                                        f"{name} (new)"))


DIFFED_COLUMNS = ("title", "lesson_type", "estMinutes", "outcomeRefs", "engagement_tags",
                  "policy", "cards", "model_version")
