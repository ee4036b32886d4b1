"""The mock's counters and audit of a run, in Locust's stats and report.

``report_mock_counters()`` (call it once at the top of a locustfile) reads ``GET /__mock/counters``
and ``GET /__mock/audit`` when the test starts and when it stops, and adds what changed in between
as entries of request type ``MOCK``: one per counter, named ``"<counter> = <value>"`` (tasks
created, 429s given, Retry-After violations, units spent, callbacks delivered and failed,
requests), ``"audit findings = <n>"`` (every finding of the run, 0 when it was clean) and one
``"audit <finding id> = <n>"`` per finding the run made. They show in the console summary, the CSV
and the HTML report. The mock is ``$KLING_MOCK_URL`` (set it when Locust's host is your own
service) or else the host, when the host is a mock. ``kling-testkit load`` also names a file in
``$KLING_LOAD_AUDIT_FILE``: the run's audit document (findings with evidence and hints) is written
there for its summary.

In a distributed run only the master reads them (workers see the same mock).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import gevent
from locust import events as default_events
from locust.env import Environment
from locust.event import Events
from locust.runners import WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC

from kling_testkit.audit import changes
from kling_testkit.control import probe
from kling_testkit.load.target import control_token, counter_changes

MOCK_URL_VAR = "KLING_MOCK_URL"
AUDIT_FILE_VAR = "KLING_LOAD_AUDIT_FILE"
MOCK = "MOCK"
AUDIT = "audit"  # the MOCK entries of the audit: "audit findings = 3", "audit poll_storm = 2"

log = logging.getLogger(__name__)
_installed: list[Events] = []
_before: dict[int, tuple[dict[str, Any], dict[str, Any] | None]] = {}
"""id(environment) -> the counters' totals and the audit (None: the mock has none) at test start"""


def report_mock_counters(events: Events | None = None) -> None:
    """Add the listeners (once per ``Events``, so two locustfiles may both call it)."""
    events = default_events if events is None else events
    if any(e is events for e in _installed):
        return
    _installed.append(events)
    events.test_start.add_listener(_on_test_start)
    events.test_stop.add_listener(_on_test_stop)


def mock_url(environment: Environment) -> str | None:
    """``$KLING_MOCK_URL``, else the host; None when neither answers ``/__mock/counters``."""
    url = os.environ.get(MOCK_URL_VAR) or environment.host
    return url.rstrip("/") if url else None


def read_totals(url: str) -> dict[str, Any] | None:
    """The mock's totals (all accounts), or None when ``url`` is not a mock."""
    found = probe(url, "counters", control_token=control_token())
    return None if found is None else dict(found["totals"])


def _on_test_start(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    url = mock_url(environment)
    found = read_totals(url) if url else None
    if url is None or found is None:
        log.info("no mock counters: %s is not a mock (set %s)", url, MOCK_URL_VAR)
        return
    _before[id(environment)] = (found, probe(url, "audit", control_token=control_token()))


def _on_test_stop(environment: Environment, **_: Any) -> None:
    before, audit_before = _before.pop(id(environment), ({}, None))
    url = mock_url(environment)
    if not before or url is None:
        return
    after = read_totals(url)
    if after is None:
        log.warning("the mock at %s did not answer its counters at the end", url)
        return
    for name, value in counter_changes(before, after).items():
        # One reading per counter: an entry of its own, outside the aggregated request row.
        environment.stats.get(f"{name} = {value}", MOCK).log(0, 0)
    audit_after = probe(url, "audit", control_token=control_token())
    if audit_before is not None and audit_after is not None:
        _report_audit(environment, changes(audit_before, audit_after))
    if getattr(environment.parsed_options, "csv_prefix", None):
        # Locust rewrites the CSV every CSV_STATS_INTERVAL_SEC and not at the end: give its
        # writer one more turn, so the CSV has these entries (and the last second's requests).
        gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.2)


def _report_audit(environment: Environment, run: dict[str, Any]) -> None:
    """The run's findings as MOCK entries, and in ``$KLING_LOAD_AUDIT_FILE`` when it is set."""
    totals: dict[str, int] = run["totals"]
    environment.stats.get(f"{AUDIT} findings = {sum(totals.values())}", MOCK).log(0, 0)
    for fid, count in sorted(totals.items()):
        environment.stats.get(f"{AUDIT} {fid} = {count}", MOCK).log(0, 0)
    path = os.environ.get(AUDIT_FILE_VAR)
    if path:
        Path(path).write_text(json.dumps(run), encoding="utf-8")
