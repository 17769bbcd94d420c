"""The batchgen options, declared once, resolved once into a frozen record.

Precedence, from low to high: built-in default, ini key (`[tool.pytest.ini_options]`),
command line. Relative paths from an ini file are taken from the ini file's
directory, those on the command line from the current directory. Every value
is converted and checked here, and an error names where the value came from
(the flag or the ini key).
"""

from __future__ import annotations

import inspect
import logging
import math
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from pytest_batchgen.defaults import DEFAULT_DATABASE, DEFAULT_MAX_RETRIES, DEFAULT_MCP_CONFIG
from pytest_batchgen.digits import whole_number
from pytest_batchgen.nodeids import is_course_id, lesson_node_name, parse_node_id

SQLITE_PREFIX = "sqlite:///"
DEFAULT_STORE = f"{SQLITE_PREFIX}logs/batchgen.sqlite3"
STORE_FORMS = f"{SQLITE_PREFIX}PATH or appwrite"
DEFAULT_LOG_DIR = "logs/batch_runs"


class Scope(Enum):
    """Which runs an option applies to: given to a run it does not, it is refused, so a
    flag never silently does nothing."""

    ANY = "any"
    #: A run that writes lessons (an audit reads, and runs no author).
    WRITING = "writing"
    #: A run of the claude author (which writes lessons).
    CLAUDE = "claude"


@dataclass(frozen=True)
class Option:
    """One row of the option table: a CLI flag and, where useful, its ini key."""

    flag: str
    help: str
    kind: str = "string"  # string | path | store | bool | int | float | list
    default: Any = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    ini: bool = True
    #: The smallest value allowed (int: inclusive; float: the value must exceed it).
    minimum: float | None = None
    scope: Scope = Scope.ANY

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


# Help style (as pytest-xdist): capitalised, one phrase without a final period.
OPTIONS = (
    Option("--batch-course", "Generate the lessons of this course (repeat for several)",
           kind="list", metavar="ID", ini=False),
    Option("--batch-dry-run", "Show and save the generation plan without running any lesson",
           kind="bool", default=False, ini=False),
    Option("--batch-force", "Overwrite existing lessons (asks first unless --batch-yes)",
           kind="bool", default=False, ini=False, scope=Scope.WRITING),
    Option("--batch-yes", "Answer yes to confirmation prompts (for automation)",
           kind="bool", default=False, ini=False, scope=Scope.WRITING),
    Option("--batch-audit", "Check the stored lessons against the lesson contract; write"
           " nothing", kind="bool", default=False, ini=False),
    Option("--batch-allow-drafts", "Let the outline author write drafts to a store the"
           " platform reads (Appwrite)", kind="bool", default=False, scope=Scope.WRITING),
    Option("--batch-keep-diagrams", "Keep an overwritten lesson's diagrams (default: remove"
           " them so the platform draws them afresh)", kind="bool", default=False,
           scope=Scope.WRITING),
    Option("--batch-store", "Lesson store: sqlite:///PATH or appwrite",
           kind="store", default=DEFAULT_STORE, metavar="URL"),
    Option("--batch-author", "Lesson author: claude (the agent) or outline (offline drafts)",
           default="claude", metavar="NAME", scope=Scope.WRITING),
    Option("--batch-log-dir", "Directory for batch run logs",
           kind="path", default=DEFAULT_LOG_DIR, metavar="DIR"),
    Option("--batch-max-retries", "Maximum critic/validation rounds per lesson",
           kind="int", default=DEFAULT_MAX_RETRIES, metavar="N", minimum=1, scope=Scope.WRITING),
    Option("--batch-mcp-config", "MCP config holding the Appwrite settings", kind="path",
           default=DEFAULT_MCP_CONFIG, metavar="PATH"),
    Option("--batch-no-persist-workspace", "Delete each lesson's workspace when it finishes",
           kind="bool", default=False, scope=Scope.WRITING),
    Option("--batch-sow-status", "Which SOW to use",
           default="published", choices=("published", "draft"), metavar="STATUS"),
    Option("--batch-model", "Model for the Claude author (default: the CLI's default)",
           default="", metavar="MODEL", scope=Scope.CLAUDE),
    Option("--batch-critic-model", "Model for the Claude author's critic (default: the"
           " author's model)", default="", metavar="MODEL", scope=Scope.CLAUDE),
    Option("--batch-max-cost-per-lesson", "Stop one lesson's agent once it has spent this much",
           kind="float", metavar="USD", minimum=0, scope=Scope.CLAUDE),
    Option("--batch-research", "Let the Claude author research with WebSearch/WebFetch",
           kind="bool", default=False, scope=Scope.CLAUDE),
    Option("--batch-max-sessions", "Most Claude sessions talking to the model at once over"
           " the whole run, all workers together, lowered while the service answers 429;"
           " no limit by default", kind="int", metavar="N", minimum=1, scope=Scope.CLAUDE),
    Option("--batch-max-cost", "Start no further lesson once the batch has spent this much",
           kind="float", metavar="USD", minimum=0, scope=Scope.WRITING),
    Option("--batch-timeout", "Stop and fail a lesson that runs longer than this",
           kind="float", metavar="SECONDS", minimum=0, scope=Scope.WRITING),
    Option("--batch-retry-errors", "Run a lesson that failed on the model service (not on"
           " review) again at the end of the run, up to N times",
           kind="int", default=0, metavar="N", minimum=0, scope=Scope.WRITING),
    Option("--batch-retry-pause", "Seconds to wait before the first such rerun, doubling"
           " before each next one", kind="float", default=30.0,
           metavar="SECONDS", minimum=0, scope=Scope.WRITING),
    Option("--batch-shard", "Run only shard K of N of each course (K from 1; for a CI matrix)",
           metavar="K/N", ini=False),
    Option("--batch-appwrite-database", "Appwrite database id",
           default=DEFAULT_DATABASE, metavar="ID"),
)


# How --help names a value's kind (the ini listing says "string" for them all: values
# are read as text and converted here, so a bad one is our one line, not a traceback).
KIND_WORDS = {"int": "a whole number", "float": "a number", "path": "a path",
              "store": "a store URL", "list": "repeatable"}


def help_text(option: Option) -> str:
    """The option's help with its kind, choices and default, said the same way for all."""
    notes = [KIND_WORDS[option.kind]] if option.kind in KIND_WORDS else []
    if option.choices:
        notes.append("one of " + ", ".join(option.choices))
    if option.default is not None and option.default is not False and option.default != "":
        default = option.default
        notes.append(f"default {default:g}" if isinstance(default, float) else
                     f"default {default}")
    return f"{option.help} ({'; '.join(notes)})" if notes else option.help


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("batchgen", "batch lesson generation (pytest-batchgen)")
    for option in OPTIONS:
        kwargs: dict[str, Any] = {"dest": option.dest, "help": help_text(option)}
        if option.kind == "bool":
            kwargs["action"] = "store_true"
            kwargs["default"] = None if option.ini else False
        else:
            # Values stay text here: resolve() converts and checks them, so a bad
            # value of a batch is one line and exit 2 whichever way it is wrong.
            kwargs["default"] = None
            kwargs["metavar"] = option.metavar
            if option.kind == "list":
                kwargs["action"] = "append"
        group.addoption(option.flag, **kwargs)
        if option.ini:
            if option.kind == "bool":
                parser.addini(option.dest, option.help, type="bool", default=option.default)
            else:
                parser.addini(option.dest, help_text(option), type="string",
                              default=option.default)


@dataclass(frozen=True)
class Settings:
    courses: tuple[str, ...]
    dry_run: bool
    force: bool
    yes: bool
    audit: bool
    allow_drafts: bool
    keep_diagrams: bool
    store_url: str
    author: str
    log_dir: Path
    max_retries: int
    mcp_config: Path
    persist_workspace: bool
    sow_status: str
    model: str
    critic_model: str
    max_cost_per_lesson: float | None
    research: bool
    #: --batch-max-sessions: Claude sessions at once over the run; None: as many as run.
    max_sessions: int | None
    max_cost: float | None
    timeout: float | None
    appwrite_database: str
    #: --batch-retry-errors: reruns of a lesson the model service failed, at the end.
    retry_errors: int
    #: --batch-retry-pause: seconds before the first rerun round (doubling each round).
    retry_pause: float
    #: pytest's --log-level (or ini log_level), which each lesson's log file records at.
    log_level: int
    #: --batch-shard=K/N as (K, N); None: the whole course.
    shard: tuple[int, int] | None
    #: Lessons named as positional arguments (node ids `course_x::lesson_003`
    #: or `course_x`), as (course, order or None for the whole course); empty:
    #: every lesson of the courses.
    selection: tuple[tuple[str, int | None], ...] = ()

    def selects(self, course_id: str, order: int) -> bool:
        """Whether the positional node ids, if any, name this lesson (or its course)."""
        return not self.selection or any(
            course == course_id and named in (None, order) for course, named in self.selection)


def _value(config: pytest.Config, option: Option) -> tuple[Any, str]:
    """The option's value and where it came from (for error messages)."""
    cli = config.getoption(option.dest)
    if cli not in (None, []):
        return cli, option.flag
    if option.ini:
        return config.getini(option.dest), f"ini key {option.dest}"
    return option.default, option.flag


def _number(option: Option, value: Any, source: str) -> int | float:
    whole = "a whole number" if option.kind == "int" else "a number"
    if isinstance(value, str) and not value.isascii():
        # int() and float() read '٣' as 3: no one typing a budget means that.
        raise pytest.UsageError(f"{source}: expected {whole}, got {value!r}")
    try:
        number: int | float = int(value) if option.kind == "int" else float(value)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{source}: expected {whole}, got {value!r}") from None
    if not math.isfinite(number):
        raise pytest.UsageError(f"{source}: expected a finite number, got {value!r}")
    low = option.minimum
    if low is not None and (number < low if option.kind == "int" else number <= low):
        bound = f"at least {low:g}" if option.kind == "int" else f"more than {low:g}"
        raise pytest.UsageError(f"{source}: must be {bound}, got {value!r}")
    return number


def _convert(option: Option, value: Any, source: str, ini_dir: Path) -> Any:
    if value is None or option.kind in ("bool", "list"):
        return value
    if value == "" and option.kind != "string":
        return option.default  # an unset ini key reads as ""
    if option.kind in ("int", "float"):
        return _number(option, value, source)
    text = str(value)
    if option.choices and text not in option.choices:
        raise pytest.UsageError(f"{source}: expected one of {', '.join(option.choices)},"
                                f" got {text!r}")
    if option.kind == "store":
        # Checked before it is taken for a path: from an ini file, postgres://x
        # would come out as a file under the ini's directory, sqlite:/// as that
        # directory.
        path = text.removeprefix(SQLITE_PREFIX)
        if text != "appwrite" and (path == text or not path or path.endswith("/")):
            raise pytest.UsageError(f"{source}: expected {STORE_FORMS}, got {text!r}")
    if option.kind in ("path", "store") and source.startswith("ini"):
        # As pytest does for its own path options: an ini file's relative paths are
        # taken from its directory, the command line's from the current one.
        return from_dir(text, ini_dir)
    return text


def paths_directory(inipath: Path | None, rootpath: Path) -> Path:
    """Where relative defaults and ini paths are taken from, as pytest takes its own:
    the ini file's directory, else the rootdir."""
    return inipath.parent if inipath else rootpath


def project_setup(invocation_dir: Path) -> tuple[Path, dict[str, str]]:
    """paths_directory of a pytest run started in `invocation_dir`, found by pytest's
    own rules (the first pytest.ini, pyproject.toml, tox.ini or setup.cfg upwards that
    configures pytest, ...), and that ini file's values. For `python -m
    pytest_batchgen`, which must read and write where pytest run from the same
    directory would."""
    from _pytest.config.findpaths import determine_setup

    arguments: dict[str, Any] = {"inifile": None, "args": [], "rootdir_cmd_arg": None,
                                 "invocation_dir": invocation_dir}
    if "override_ini" in inspect.signature(determine_setup).parameters:
        arguments["override_ini"] = None  # newer pytest reads -o before it looks
    rootdir, inipath, inicfg, *_ = determine_setup(**arguments)
    # pytest 9 wraps each value in a ConfigValue; older ones hold the text itself.
    values = {str(key): str(getattr(value, "value", value)) for key, value in inicfg.items()}
    return paths_directory(inipath, rootdir), values


def project_directory(invocation_dir: Path) -> Path:
    return project_setup(invocation_dir)[0]


def from_dir(text: str, directory: Path) -> str:
    """A path option's value (or a sqlite:/// URL) taken from `directory`."""
    if text.startswith(SQLITE_PREFIX):
        return SQLITE_PREFIX + str(directory / text[len(SQLITE_PREFIX):])
    if text == "appwrite":  # the store name, not a path
        return text
    return str(directory / text)


def check_combinations(
    config: pytest.Config, values: dict[str, Any], courses: tuple[str, ...]
) -> None:
    """Reject flags that would silently do nothing, naming the one at fault."""
    if not courses:
        given = [o.flag for o in OPTIONS if config.getoption(o.dest) not in (None, False, [])]
        if given:
            raise pytest.UsageError(f"{given[0]} needs --batch-course")
        return
    if values["batch_audit"]:
        for option in OPTIONS:
            if option.scope is not Scope.ANY and config.getoption(option.dest) not in (None,
                                                                                   False):
                raise pytest.UsageError(f"{option.flag} does not apply to --batch-audit,"
                                        " which writes nothing and runs no author")
        return
    if values["batch_author"] != "claude":
        for option in OPTIONS:
            if option.scope is Scope.CLAUDE and config.getoption(option.dest) not in (None,
                                                                                   False):
                raise pytest.UsageError(
                    f"{option.flag} applies to the claude author only,"
                    f" not --batch-author={values['batch_author']}"
                )


def _selection(args: list[str], courses: tuple[str, ...]
               ) -> tuple[tuple[str, int | None], ...]:
    """A batch's positional arguments select lessons, as pytest node ids do.

    A batch collects no test files, so a path here would be silently ignored:
    refuse it instead.
    """
    if not courses:
        return ()  # not a batch: positional arguments are pytest's own
    selection: list[tuple[str, int | None]] = []
    for arg in args:
        lesson = parse_node_id(arg)
        if arg in courses:
            selection.append((arg, None))
        elif lesson is not None and lesson[0] in courses:
            selection.append(lesson)
        else:
            raise pytest.UsageError(
                f"{arg!r} is not a lesson of this batch: a batch run takes lesson node ids"
                f" such as {courses[0]}::{lesson_node_name(1)}, not test paths;"
                " run your tests in a separate pytest run"
            )
    return tuple(selection)


def _log_level(config: pytest.Config) -> int:
    """pytest's own log level option, read as pytest reads it (a name or a number)."""
    value, source = config.getoption("log_level"), "--log-level"
    if value is None:
        value, source = config.getini("log_level"), "ini key log_level"
    if not value:
        return logging.INFO
    level = getattr(logging, str(value).upper(), value)
    try:
        return int(level)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{source}: unknown level {value!r}") from None


def _shard(text: str | None) -> tuple[int, int] | None:
    """`K/N`, 1 <= K <= N: this job's shard of every course."""
    if text is None:
        return None
    index, _, count = (whole_number(part.strip()) for part in text.partition("/"))
    if index is None or count is None:
        raise pytest.UsageError(f"--batch-shard: expected K/N such as 2/4, got {text!r}")
    shard = index, count
    if not 1 <= index <= count:
        raise pytest.UsageError(f"--batch-shard: K must be from 1 to N, got {text!r}")
    return shard


def resolve(config: pytest.Config) -> Settings:
    """Read every option once; UsageError names the option or ini key at fault."""
    values: dict[str, Any] = {}
    ini_dir = paths_directory(config.inipath, config.rootpath)
    for option in OPTIONS:
        value, source = _value(config, option)
        values[option.dest] = _convert(option, value, source, ini_dir)
    courses = tuple(dict.fromkeys(values["batch_course"] or ()))
    for course in courses:
        if not is_course_id(course):
            raise pytest.UsageError(
                f"--batch-course: {course!r} is not a course id"
                " (course_ + ASCII letters and digits)"
            )
    check_combinations(config, values, courses)
    return Settings(
        selection=_selection(config.option.file_or_dir or [], courses),
        courses=courses,
        # --co is a dry run of a batch, and --batch-dry-run a --co (plugin.py tells pytest).
        dry_run=bool(values["batch_dry_run"]) or bool(config.getoption("collectonly")),
        force=bool(values["batch_force"]),
        yes=bool(values["batch_yes"]),
        audit=bool(values["batch_audit"]),
        allow_drafts=bool(values["batch_allow_drafts"]),
        keep_diagrams=bool(values["batch_keep_diagrams"]),
        store_url=values["batch_store"],
        author=values["batch_author"],
        log_dir=Path(values["batch_log_dir"]),
        max_retries=values["batch_max_retries"],
        mcp_config=Path(values["batch_mcp_config"]),
        persist_workspace=not values["batch_no_persist_workspace"],
        sow_status=values["batch_sow_status"],
        model=values["batch_model"],
        critic_model=values["batch_critic_model"],
        max_cost_per_lesson=values["batch_max_cost_per_lesson"],
        research=bool(values["batch_research"]),
        max_sessions=values["batch_max_sessions"],
        max_cost=values["batch_max_cost"],
        timeout=values["batch_timeout"],
        appwrite_database=values["batch_appwrite_database"],
        retry_errors=values["batch_retry_errors"],
        retry_pause=values["batch_retry_pause"],
        log_level=_log_level(config),
        shard=_shard(values["batch_shard"]),
    )
