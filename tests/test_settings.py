"""resolve(): every option read once, from the command line over the ini file over the
default, and every bad value named by where it came from."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from pytest_batchgen.settings import resolve

COURSE = "--batch-course=course_a1"

# (ini lines, command line, the Settings field, its value); "{ini_dir}" is the ini's.
VALUES: list[tuple[str, tuple[str, ...], str, Any]] = [
    ("", (COURSE,), "max_retries", 10),
    ("batch_max_retries = 3", (COURSE,), "max_retries", 3),
    ("batch_max_retries = 3", (COURSE, "--batch-max-retries=5"), "max_retries", 5),
    # The defaults are the ini file's too: taken from its directory.
    ("", (COURSE,), "store_url", "sqlite:///{ini_dir}/logs/batchgen.sqlite3"),
    ("batch_store = sqlite:///s.db", (COURSE,), "store_url", "sqlite:///{ini_dir}/s.db"),
    ("batch_store = sqlite:///s.db", (COURSE, "--batch-store=sqlite:///t.db"), "store_url",
     "sqlite:///t.db"),
    ("batch_store = appwrite", (COURSE,), "store_url", "appwrite"),
    ("batch_max_cost = 2.5", (COURSE,), "max_cost", 2.5),
    ("", (COURSE,), "max_cost", None),
    ("batch_research = true", (COURSE,), "research", True),
    ("", (COURSE,), "max_sessions", None),
    ("batch_max_sessions = 3", (COURSE,), "max_sessions", 3),
    ("batch_max_sessions = 3", (COURSE, "--batch-max-sessions=2"), "max_sessions", 2),
    ("batch_sow_status = draft", (COURSE,), "sow_status", "draft"),
    ("", (COURSE,), "log_level", logging.INFO),
    ("log_level = DEBUG", (COURSE,), "log_level", logging.DEBUG),
    ("log_level = DEBUG", (COURSE, "--log-level=warning"), "log_level", logging.WARNING),
    ("log_level = 15", (COURSE,), "log_level", 15),
    ("", (COURSE,), "dry_run", False),
    ("", (COURSE, "--batch-dry-run"), "dry_run", True),
    ("", (COURSE, "--co"), "dry_run", True),
    ("", (COURSE, "course_a1::lesson_003"), "selection", (("course_a1", 3),)),
    ("", (), "courses", ()),
    ("", (COURSE,), "shard", None),
    ("", (COURSE, "--batch-shard=2/3"), "shard", (2, 3)),
]


@pytest.mark.parametrize(("ini", "args", "name", "expected"), VALUES)
def test_resolve_reads_command_line_over_ini_over_default(
    pytester: pytest.Pytester, ini: str, args: tuple[str, ...], name: str, expected: Any
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    settings = resolve(pytester.parseconfig(*args))
    if isinstance(expected, str):
        expected = expected.format(ini_dir=pytester.path)
    assert getattr(settings, name) == expected


ERRORS: list[tuple[str, tuple[str, ...], str]] = [
    ("batch_max_retries = 0", (COURSE,), "ini key batch_max_retries: must be at least 1"),
    ("", (COURSE, "--batch-max-retries=0"), "--batch-max-retries: must be at least 1"),
    ("batch_max_retries = 0", (COURSE, "--batch-max-retries=2"), ""),  # the flag wins
    ("batch_timeout = nan", (COURSE,), "ini key batch_timeout: expected a finite number"),
    ("", (COURSE, "--batch-max-cost=-1"), "--batch-max-cost: must be more than 0"),
    ("batch_sow_status = final", (COURSE,),
     "ini key batch_sow_status: expected one of published, draft, got 'final'"),
    ("log_level = LOUD", (COURSE,), "ini key log_level: unknown level 'LOUD'"),
    ("", (COURSE, "--log-level=LOUD"), "--log-level: unknown level 'LOUD'"),
    ("", ("--batch-course=course-x",), "--batch-course: 'course-x' is not a course id"),
    ("", ("--batch-force",), "--batch-force needs --batch-course"),
    ("", (COURSE, "--batch-audit", "--batch-force"),
     "--batch-force does not apply to --batch-audit"),
    ("", (COURSE, "--batch-audit", "--batch-retry-errors=2"),
     "--batch-retry-errors does not apply to --batch-audit"),
    ("", (COURSE, "--batch-retry-errors=-1"), "--batch-retry-errors: must be at least 0"),
    ("", (COURSE, "--batch-author=outline", "--batch-model=x"),
     "--batch-model applies to the claude author only"),
    ("", (COURSE, "--batch-max-sessions=0"), "--batch-max-sessions: must be at least 1"),
    ("", (COURSE, "--batch-author=outline", "--batch-max-sessions=2"),
     "--batch-max-sessions applies to the claude author only"),
    ("", (COURSE, "--batch-audit", "--batch-max-sessions=2"),
     "--batch-max-sessions does not apply to --batch-audit"),
    ("", (COURSE, "tests/test_x.py"), "'tests/test_x.py' is not a lesson of this batch"),
    ("", (COURSE, "--batch-shard=2"), "--batch-shard: expected K/N such as 2/4, got '2'"),
    ("", (COURSE, "--batch-shard=4/3"), "--batch-shard: K must be from 1 to N, got '4/3'"),
    ("", (COURSE, "--batch-shard=0/3"), "--batch-shard: K must be from 1 to N, got '0/3'"),
]


@pytest.mark.parametrize(("ini", "args", "message"), ERRORS)
def test_resolve_names_where_a_bad_value_came_from(
    pytester: pytest.Pytester, ini: str, args: tuple[str, ...], message: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    config = pytester.parseconfig(*args)
    if not message:
        resolve(config)
        return
    with pytest.raises(pytest.UsageError) as raised:
        resolve(config)
    assert str(raised.value).startswith(message)
