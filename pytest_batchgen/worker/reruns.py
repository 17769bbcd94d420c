"""--batch-retry-errors: lessons the model service failed, run again at the end of the run.

A short outage should cost minutes, not the batch. A lesson that failed on the
service (not on its review), or that was not started because the service had
failed lessons in a row, is held back instead of being reported; once every
other lesson has run, and after a pause that doubles each round, the held
lessons run again with the service given a fresh chance (its failure streak
reset). A lesson is reported once, with the result of its last run. Like
pytest-rerunfailures, each run goes through pytest's own protocol without
logging (`runtestprotocol(log=False)`); unlike it, the reruns wait for the end,
when the service has had time to recover. It works wherever items run: in a
plain run, and on each xdist worker for the lessons it ran.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator

import pytest
from _pytest.runner import runtestprotocol

from pytest_batchgen.items import LessonItem
from pytest_batchgen.results import LessonResult, Why

log = logging.getLogger(__name__)

# Why a lesson is held back for a rerun: the service, not the lesson, failed it.
SERVICE_REASONS = (Why.SERVICE_ERROR, Why.SERVICE_UNAVAILABLE)


def failed_on_service(reports: list[pytest.TestReport]) -> bool:
    for report in reports:
        result = LessonResult.from_properties(report.user_properties)
        if report.when == "call" and result is not None:
            return result.reason in SERVICE_REASONS
    return False


def log_reports(item: pytest.Item, reports: list[pytest.TestReport]) -> None:
    """Report one run of an item as pytest's protocol would have (log=True)."""
    # An xdist worker sends a report with the index of the item it is running, and
    # checks it: a lesson reported after the worker's loop must be the one named.
    for plugin in item.config.pluginmanager.get_plugins():
        if type(plugin).__name__ == "WorkerInteractor":  # xdist's, registered unnamed
            plugin.item_index = item.session.items.index(item)
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in reports:
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)


class ServiceReruns:
    """The held-back lessons of this process, and the rounds that rerun them."""

    def __init__(self, rounds: int, pause: float, reset_service: Callable[[], None]) -> None:
        self.rounds = rounds
        self.pause = pause
        #: Gives the service a fresh chance before a round (the runner's streak reset).
        self.reset_service = reset_service
        self.round = 0
        self.held: list[tuple[LessonItem, list[pytest.TestReport]]] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None
                                ) -> bool | None:
        if not isinstance(item, LessonItem) or not item.lesson.runs_author:
            return None
        item.user_properties.clear()  # a rerun's record replaces the earlier run's
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        if self.round < self.rounds and failed_on_service(reports):
            self.held.append((item, reports))
        else:
            log_reports(item, reports)
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        outcome = yield
        while self.held and self.round < self.rounds and not (
                session.shouldstop or session.shouldfail):
            held, self.held = self.held, []
            wait = self.pause * 2 ** self.round
            self.round += 1
            said = (f"batchgen: the model service failed {len(held)} lesson(s); running them"
                    f" again in {wait:g}s (round {self.round} of {self.rounds})")
            log.warning(said)
            terminal = session.config.pluginmanager.get_plugin("terminalreporter")
            if terminal is not None and not hasattr(session.config, "workerinput"):
                terminal.write_line(said, yellow=True)
            time.sleep(wait)
            self.reset_service()
            for index, (item, _) in enumerate(held):
                following = held[index + 1][0] if index + 1 < len(held) else None
                item.ihook.pytest_runtest_protocol(item=item, nextitem=following)
        for item, reports in self.held:  # a stopped session: report what they came to
            log_reports(item, reports)
        self.held = []
        return outcome
