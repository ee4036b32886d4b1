"""Fixtures of the contract suite: one target (the mock or a configured endpoint), checked calls.

Run it with ``kling-testkit contract`` or ``pytest --pyargs contract_tests`` (with the kling
plugin's ``--kling-base-url`` and ``--kling-max-units``). Every answer is checked against the
OpenAPI document; free checks always run; paid checks run on a mock (its units are not money) and
on any other target only within the unit budget, cheapest first.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
import requests

from kling_testkit.audit import add, offending, read
from kling_testkit.auth import bearer, sign_token
from kling_testkit.budget import Budget
from kling_testkit.contract import Violation, check_answer
from kling_testkit.credentials import Credentials
from kling_testkit.pytest_plugin import KlingTarget
from kling_testkit.spec.statuses import TERMINAL

REPORT_VAR = "KLING_CONTRACT_REPORT"
"""Where the runner wants the JSON report (outcomes, skip reasons, units spent)."""

PAID = "paid"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{PAID}(units): a check that creates tasks costing about this many units"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Free checks first, then paid ones cheapest first, so a small budget buys the most."""

    def cost(item: pytest.Item) -> float:
        marker = item.get_closest_marker(PAID)
        return -1.0 if marker is None else float(marker.args[0])

    items.sort(key=cost)


@dataclass
class Answer:
    """One checked HTTP exchange."""

    method: str
    path: str
    status: int
    headers: Mapping[str, str]
    text: str
    violations: list[Violation] = field(default_factory=list)

    @property
    def body(self) -> Any:
        return json.loads(self.text)

    @property
    def data(self) -> Any:
        return self.body["data"]


class ContractBroken(AssertionError):
    """The target broke the contract; the message names each violation."""


class Api:
    """Raw HTTP calls to the target, each answer checked against the document."""

    def __init__(self, base_url: str, credentials: Credentials, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False

    def auth(self) -> dict[str, str]:
        return bearer(sign_token(self.credentials))

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        authed: bool = True,
    ) -> Answer:
        sent = {**(self.auth() if authed else {}), **(headers or {})}
        response = self.session.request(
            method,
            f"{self.base_url}{path}",
            json=json_body,
            params=params,
            headers=sent,
            timeout=self.timeout,
        )
        answer = Answer(method, path, response.status_code, response.headers, response.text)
        answer.violations = check_answer(
            method, path, response.status_code, response.headers, response.text
        )
        if answer.violations:
            raise ContractBroken(
                "the answer breaks the contract:\n" + "\n".join(f"  {v}" for v in answer.violations)
            )
        return answer

    def get(self, path: str, **kwargs: Any) -> Answer:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> Answer:
        return self.call("POST", path, json_body=body, **kwargs)


def expect_error(answer: Answer, status: int, code: int) -> None:
    """The answer is this documented error, or the failure says what came instead."""
    body = answer.body
    assert (answer.status, body.get("code")) == (status, code), (
        f"{answer.method} {answer.path}: expected HTTP {status} with code {code}; got HTTP "
        f"{answer.status} with code {body.get('code')} ({str(body.get('message'))[:120]!r})"
    )


class Spender:
    """What paid checks may spend: unlimited on a mock, else the budget, price known first."""

    def __init__(self, target: KlingTarget) -> None:
        self.real = not target.is_mock
        self.budget = Budget(limit=target.max_units) if self.real else None
        self.spent = Decimal(0)
        self._lock = threading.Lock()

    def reserve(self, family: str, body: Mapping[str, Any]) -> Decimal:
        """Reserve the price of a create, or skip the check saying how to allow it."""
        price = Budget.price(family, body)
        if self.budget is not None:
            left = self.budget.remaining
            if price > left:
                pytest.skip(
                    f"paid check: needs {price} units, {left} left of --max-units "
                    f"{self.budget.limit} (raise --max-units to run it; nothing was sent)"
                )
            self.budget.reserve(family, body)
        with self._lock:
            self.spent += price
        return price

    def refund(self, amount: Decimal) -> None:
        """Give back what a refused create held."""
        if self.budget is not None:
            self.budget.refund(amount)
        with self._lock:
            self.spent -= amount


@dataclass
class Target:
    """What a contract check gets: the API, its control handle on a mock, and the money."""

    api: Api
    kling: KlingTarget
    mock: Any  # a MockControl on fresh state, or None on a real target
    spender: Spender

    @property
    def is_mock(self) -> bool:
        return self.mock is not None

    def wait_for(self, path: str, task_id: str, family_timeout: float) -> dict[str, Any]:
        """Poll a task until it ends: on a mock by moving its clock, else in real time with a
        deadline from the documented durations."""
        seen: list[str] = []
        deadline = time.monotonic() + family_timeout
        interval = 2.0
        while True:
            task: dict[str, Any] = self.api.get(f"{path}/{task_id}").data
            seen.append(task["task_status"])
            if task["task_status"] in TERMINAL:
                task["_seen"] = seen
                return task
            if self.mock is not None:
                self.mock.clock.advance(30)
                continue
            if time.monotonic() > deadline:
                pytest.fail(f"task {task_id} still {task['task_status']} after {family_timeout} s")
            # Real I/O, not a job duration we could skip: a target without /__mock has no clock
            # to drive. Bounded by the deadline above; backoff from 2 s to 15 s.
            time.sleep(interval)
            interval = min(interval * 1.5, 15.0)


_spenders: dict[int, Spender] = {}


@pytest.fixture(scope="session")
def spender(kling_mock_server: KlingTarget) -> Spender:
    found = _spenders.setdefault(id(kling_mock_server), Spender(kling_mock_server))
    return found


@pytest.fixture
def target(
    kling_mock_server: KlingTarget, spender: Spender, request: pytest.FixtureRequest
) -> Iterator[Target]:
    """The target, on fresh state when it is a mock (a namespace of its own when shared)."""
    if kling_mock_server.is_mock:
        with kling_mock_server.fresh() as mock:
            yield Target(
                Api(mock.base_url, kling_mock_server.credentials), kling_mock_server, mock, spender
            )
            # What the suite's own requests did against the mock's rules, before the next
            # check's fresh state forgets it (the runner's summary shows the sum).
            # A check that breaks a rule on purpose names it (kling_audit(allow=[...])).
            marker = request.node.get_closest_marker("kling_audit")
            allow = marker.kwargs.get("allow", ()) if marker else ()
            found = read(mock)  # None: a mock from before the audit
            if found is not None:
                add(_audit, {"accounts": _named(offending(found, allow), request.node.name)})
        return
    creds = kling_mock_server.credentials
    yield Target(Api(kling_mock_server.base_url, creds), kling_mock_server, None, spender)


def _named(accounts: dict[str, dict[str, Any]], check: str) -> dict[str, dict[str, Any]]:
    """The findings with each piece of evidence naming the check that made it."""
    return {
        account: {
            fid: {
                **item,
                "evidence": [{**e, "detail": f"{e['detail']} [{check}]"} for e in item["evidence"]],
            }
            for fid, item in found.items()
        }
        for account, found in accounts.items()
    }


@pytest.fixture
def api(target: Target) -> Api:
    return target.api


_outcomes: list[dict[str, Any]] = []
_audit: dict[str, Any] = {}  # the findings of every check on a mock, added up


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        reason = ""
        if report.skipped and isinstance(report.longrepr, tuple):
            reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        elif report.failed:
            reason = _first_lines(str(report.longrepr))
        _outcomes.append({"check": item.nodeid, "outcome": report.outcome, "reason": reason})
    return report


def _first_lines(text: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith("E ")]
    return "\n".join(line[1:].strip() for line in lines[:6]) or text.splitlines()[-1][:300]


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get(REPORT_VAR)
    if not path:
        return
    spent = sum((s.spent for s in _spenders.values()), Decimal(0))
    real = any(s.real for s in _spenders.values())
    with open(path, "w", encoding="utf-8") as out:
        summary = {"checks": _outcomes, "units_spent": str(spent), "real": real}
        if _audit:  # the target was a mock
            summary["audit"] = _audit
        json.dump(summary, out, indent=1)
