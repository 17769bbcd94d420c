"""pytest-batchgen: hook wiring only; the behaviour lives in BatchSession."""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from typing import TYPE_CHECKING, Any

import pytest

from pytest_batchgen import hooks
from pytest_batchgen.settings import Settings, add_options, resolve

if TYPE_CHECKING:
    from pytest_batchgen.authors import LessonAuthor
    from pytest_batchgen.session import BatchSession
    from pytest_batchgen.store import LessonStore

# The batch machinery (pydantic models, store, author, reporting) is imported
# only once a run names a course: an installed plugin must not slow down every
# other pytest run in the environment.

#: The resolved options of this run, for other plugins and conftests to read.
SETTINGS_KEY = pytest.StashKey[Settings]()
SESSION_PLUGIN_NAME = "batchgen-session"
#: The controller's pid, in each xdist worker's workerinput (see _die_with_controller).
CONTROLLER_PID_KEY = "batchgen_controller_pid"
PR_SET_PDEATHSIG = 1


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """Validate, plan and confirm before pytest starts a session.

    Deciding here lets a batch-level error end the run with one line on
    stderr and exit 2, before any session output or batch directory exists
   ; `pytest.exit` later on would print it twice with a banner.
    """
    if config.option.help or config.option.version:
        return None
    try:
        settings = resolve(config)
    except pytest.UsageError as exc:
        if not config.getoption("batch_course"):
            raise  # e.g. a --batch-* flag without a course: pytest's usage error
        print(f"batchgen: {exc}", file=sys.stderr)  # a bad batch: exit 2
        return 2
    config.stash[SETTINGS_KEY] = settings
    if not settings.courses:
        return None
    from pytest_batchgen.controller.prepare import BatchStop
    from pytest_batchgen.session import BatchSession, is_xdist_worker

    if settings.dry_run:
        # A batch's dry run is its --co: said before xdist decides whether to
        # distribute (it does not for --collect-only).
        config.option.collectonly = True
    if not settings.dry_run and config.option.verbose == 0:
        # Lessons take minutes: one status line each unless -q.
        config.option.verbose = 1
    session = BatchSession(config, settings)
    config.pluginmanager.register(session, SESSION_PLUGIN_NAME)
    if is_xdist_worker(config):
        return None
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(session), "batchgen-xdist")
    try:
        session.prepare()
    except BatchStop as stop:
        session.close()  # pytest will not configure, so not unconfigure either
        print(stop.message, file=sys.stderr if stop.code else sys.stdout)
        return stop.code
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.get_plugin(SESSION_PLUGIN_NAME) is None:
        return
    _die_with_controller(config)
    # SIGTERM (CI cancelling a job, `timeout`, `docker stop`) ends a batch as Ctrl-C
    # does: the summary says "interrupted", the report and the finished hook follow,
    # and the agents' processes are stopped.
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)

        def restore() -> None:
            signal.signal(signal.SIGTERM, previous)

        config.add_cleanup(restore)
    # pytest-asyncio warns at configure time in any project that leaves its
    # fixture loop scope unset. A batch collects no test files, so that warning
    # is about nothing the run contains, and it would head every newcomer's
    # first run. pytest configures plugins inside its own catch_warnings
    # block; running first, this filter holds there and ends with it.
    warnings.filterwarnings(
        "ignore", message='The configuration option "asyncio_default_fixture_loop_scope"',
        category=pytest.PytestDeprecationWarning,
    )


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    if callable(signal.getsignal(signal.SIGINT)):
        # As if Ctrl-C were pressed: through whatever handles SIGINT now (asyncio's
        # runner while a lesson runs, which cancels the lesson's task cleanly).
        signal.raise_signal(signal.SIGINT)
    else:
        # SIGINT is ignored (`cmd &` in a script, nohup) or left to the system:
        # passed on, it would do nothing (or kill the run unrecorded). What Ctrl-C
        # would raise is raised here, so SIGTERM stops the run in every case.
        raise KeyboardInterrupt


def _die_with_controller(config: pytest.Config) -> None:
    """An xdist worker of a batch ends when its controller does, even under kill -9.

    A killed controller cleans nothing up, and execnet only notices the closed
    pipe later: meanwhile its workers, adopted by init, went on authoring and
    wrote rows the summary records as not run. Linux sends a parent-death signal
    (the worker's parent is the controller itself: execnet's popen gateway);
    elsewhere the worker ends when execnet notices.
    """
    controller = getattr(config, "workerinput", {}).get(CONTROLLER_PID_KEY)
    if controller is None or not sys.platform.startswith("linux"):
        return
    import ctypes  # here: every pytest run imports this module

    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != controller:
        os._exit(2)  # the controller died before the line above: no one to report to


class XdistHooks:
    """The controller's side of xdist: ship the plan out, learn the selection back."""

    def __init__(self, session: BatchSession) -> None:
        self.session = session

    def pytest_configure_node(self, node: Any) -> None:
        from pytest_batchgen.session import WORKERINPUT_KEY

        # Every worker collects the same items from the same plan, without a store read.
        node.workerinput[WORKERINPUT_KEY] = [b.to_wire() for b in self.session.batches]
        node.workerinput[CONTROLLER_PID_KEY] = os.getpid()

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        # The controller does not collect under xdist: what -k/--lf left out is
        # whatever the workers did not collect.
        if self.session.reporter is not None:
            self.session.reporter.record_selection(ids)


@pytest.hookimpl(trylast=True)
def pytest_batchgen_make_store(config: pytest.Config, settings: Settings) -> LessonStore:
    from pytest_batchgen.store import AppwriteOptions
    from pytest_batchgen.store.default import open_default_store

    return open_default_store(settings.store_url, AppwriteOptions(
        database=settings.appwrite_database, mcp_config=settings.mcp_config))


@pytest.hookimpl(trylast=True)
def pytest_batchgen_make_author(config: pytest.Config, settings: Settings) -> LessonAuthor:
    from pytest_batchgen.authors.claude import CLI_VARIABLE, ClaudeOptions
    from pytest_batchgen.authors.default import open_default_author

    # The processes that run lessons: xdist's workers, or this one process.
    processes = int(getattr(config, "workerinput", {}).get("workercount", 1))
    return open_default_author(settings.author, ClaudeOptions(
        model=settings.model, critic_model=settings.critic_model,
        max_retries=settings.max_retries, max_cost_per_lesson=settings.max_cost_per_lesson,
        research=settings.research, cli_path=os.environ.get(CLI_VARIABLE) or None,
        max_sessions=settings.max_sessions, processes=processes))


def pytest_report_header(config: pytest.Config) -> list[str]:
    session: BatchSession | None = config.pluginmanager.get_plugin(SESSION_PLUGIN_NAME)
    if session is None:
        return []
    settings = config.stash[SETTINGS_KEY]
    mode = "dry run" if settings.dry_run else (
        "audit" if settings.audit else "force" if settings.force else "skip existing")
    # The store and author planning used, which a conftest hook may have swapped.
    return [
        f"batchgen: courses {', '.join(settings.courses)}; author {session.author_name};"
        f" store {session.backends.store.description}; mode {mode}; logs {settings.log_dir}"
    ]
