"""The mock's counters of a run, in Locust's stats and report.

``report_mock_counters()`` (call it once at the top of a locustfile) reads ``GET /__mock/counters``
when the test starts and when it stops, and adds what changed in between as entries of request
type ``MOCK``, one per counter, named ``"<counter> = <value>"``: tasks created, 429s given,
Retry-After violations, units spent, callbacks delivered and failed, requests; and one per
finding of the mock's audit made during the run, ``"audit <finding id> = <count>"``. They show
in the console summary, the CSV and the HTML report. The mock is ``$KLING_MOCK_URL`` (set it when
Locust's host is your own service) or else the host, when the host is a mock. When
``$KLING_LOAD_AUDIT_FILE`` names a file (``kling-testkit load`` sets it), the run's findings,
with evidence and hints, are written there as an audit document for the runner's summary.

In a distributed run only the master reads them (workers see the same mock).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import gevent
import requests
from locust import events as default_events
from locust.env import Environment
from locust.event import Events
from locust.runners import WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC

from kling_testkit.audit import changes
from kling_testkit.load.target import control_headers, counter_changes, read_audit

MOCK_URL_VAR = "KLING_MOCK_URL"
AUDIT_FILE_VAR = "KLING_LOAD_AUDIT_FILE"
MOCK = "MOCK"

log = logging.getLogger(__name__)
_installed: list[Events] = []
_before: dict[int, dict[str, Any]] = {}  # id(environment) -> totals at test start
_judged: dict[int, dict[str, Any] | None] = {}  # id(environment) -> the audit at test start


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
    try:
        answer = requests.get(f"{url}/__mock/counters", headers=control_headers(), timeout=10)
        body = answer.json()
    except (requests.RequestException, ValueError):
        return None
    if answer.status_code != 200 or not isinstance(body, dict) or body.get("code") != 0:
        return None
    totals: dict[str, Any] = body["data"]["totals"]
    return totals


def _on_test_start(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    url = mock_url(environment)
    found = read_totals(url) if url else None
    if found is None or url is None:
        log.info("no mock counters: %s is not a mock (set %s)", url, MOCK_URL_VAR)
        return
    _before[id(environment)] = found
    _judged[id(environment)] = read_audit(url)  # None: a mock from before the audit


def _on_test_stop(environment: Environment, **_: Any) -> None:
    before = _before.pop(id(environment), None)
    url = mock_url(environment)
    if before is None or url is None:
        return
    after = read_totals(url)
    if after is None:
        log.warning("the mock at %s did not answer its counters at the end", url)
        return
    for name, value in counter_changes(before, after).items():
        # One reading per counter: an entry of its own, outside the aggregated request row.
        environment.stats.get(f"{name} = {value}", MOCK).log(0, 0)
    judged, judged_after = _judged.pop(id(environment), None), read_audit(url)
    if judged is not None and judged_after is not None:
        run = changes(judged, judged_after)
        for fid, count in sorted(run["totals"].items()):
            environment.stats.get(f"audit {fid} = {count}", MOCK).log(0, 0)
        if os.environ.get(AUDIT_FILE_VAR):
            Path(os.environ[AUDIT_FILE_VAR]).write_text(json.dumps(run), encoding="utf-8")
    if getattr(environment.parsed_options, "csv_prefix", None):
        # Locust rewrites the CSV every CSV_STATS_INTERVAL_SEC and not at the end: give its
        # writer one more turn, so the CSV has these entries (and the last second's requests).
        gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.2)
