"""pytest-batchgen: hook wiring only; the behaviour lives in BatchSession."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_batchgen import hooks
from pytest_batchgen.authors import LessonAuthor, open_default_author
from pytest_batchgen.session import WORKERINPUT_KEY, BatchSession, is_xdist_worker
from pytest_batchgen.settings import Settings, add_options, resolve
from pytest_batchgen.store import LessonStore, open_default_store

SETTINGS_KEY = pytest.StashKey[Settings]()
SESSION_PLUGIN_NAME = "batchgen-session"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    # --batch-dry-run is --co for a batch; set it before xdist decides whether
    # to distribute (it does not for --collect-only).
    if config.getoption("batch_dry_run") and config.getoption("batch_course"):
        config.option.collectonly = True


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    try:
        settings = resolve(config)
    except pytest.UsageError as exc:
        # A bad combination is a batch-level error: exit 2 (spec §6.3).
        if config.getoption("batch_course"):
            pytest.exit(f"batchgen: {exc}", returncode=2)
        raise
    config.stash[SETTINGS_KEY] = settings
    if not settings.courses:
        return
    config.pluginmanager.register(BatchSession(config, settings), SESSION_PLUGIN_NAME)
    if config.pluginmanager.hasplugin("xdist") and not is_xdist_worker(config):
        config.pluginmanager.register(XdistHooks(), "batchgen-xdist")


class XdistHooks:
    """Ship the controller's plan to every worker, so all collect the same items."""

    def pytest_configure_node(self, node: Any) -> None:
        session: BatchSession = node.config.pluginmanager.get_plugin(SESSION_PLUGIN_NAME)
        node.workerinput[WORKERINPUT_KEY] = [batch.to_wire() for batch in session.batches]


@pytest.hookimpl(trylast=True)
def pytest_batchgen_make_store(config: pytest.Config, settings: Settings) -> LessonStore:
    return open_default_store(settings.store_url, settings)


@pytest.hookimpl(trylast=True)
def pytest_batchgen_make_author(config: pytest.Config, settings: Settings) -> LessonAuthor:
    return open_default_author(settings.author, settings)


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None or not settings.courses:
        return []
    mode = "dry run" if settings.dry_run else ("force" if settings.force else "skip existing")
    return [
        f"batchgen: courses {', '.join(settings.courses)}; author {settings.author};"
        f" store {settings.store_url}; mode {mode}; logs {settings.log_dir}"
    ]
