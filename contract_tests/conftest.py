"""Fixtures of the contract suite: one target (the mock or a configured endpoint), checked calls.

Run it with ``kling-testkit contract`` or ``pytest --pyargs contract_tests`` (with the kling
plugin's ``--kling-base-url`` and ``--kling-max-units``). Every answer is checked against the
OpenAPI document; free checks always run; paid checks run on a mock (its units are not money) and
on any other target only within the unit budget, cheapest first.

Both designs are checked: the legacy ``/v1`` one with a JWT signed from the access key and secret
key, the 2026 one (the model in the path, ``/tasks``) with the API key, which a target that is
not a mock must be given (``$KLING_TESTKIT_API_KEY``; ``kling-testkit contract`` passes
``$KLING_API_KEY`` on): without it the 2026 checks are skipped, saying so.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
import requests

from kling_testkit.audit import add, offending, read
from kling_testkit.auth import bearer, sign_token
from kling_testkit.budget import Budget
from kling_testkit.client import TERMINAL_STATUSES_2026, is_2026_path
from kling_testkit.contract import Violation, check_answer
from kling_testkit.credentials import Credentials
from kling_testkit.pricing import format_units
from kling_testkit.pytest_plugin import KlingTarget
from kling_testkit.spec.statuses import TERMINAL

API_KEY_VAR = "KLING_TESTKIT_API_KEY"
"""Where the 2026 checks find the API key of a target that is not a mock."""
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

    def auth(self, path: str = "") -> dict[str, str]:
        """The API key on a 2026-design path; elsewhere a fresh JWT when there is a pair to
        sign it with, else the API key (the legacy design takes either)."""
        if is_2026_path(path) or not self.credentials.has_pair:
            return bearer(self.credentials.api_key)
        return bearer(sign_token(self.credentials))

    def token(self) -> dict[str, str]:
        """A JWT signed from the access key and secret key (a check of the legacy auth, or of
        its refusal on the 2026 design); skips when the target was given no pair."""
        if not self.credentials.has_pair:
            pytest.skip("needs an access key and secret key ($KLING_TESTKIT_ACCESS_KEY, ...)")
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
        sent = {**(self.auth(path) if authed else {}), **(headers or {})}
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

    def require_api_key(self) -> None:
        """Skip a 2026-design check when the target is not a mock and was given no API key."""
        if not self.is_mock and not os.environ.get(API_KEY_VAR):
            pytest.skip(
                f"2026-design check: needs the target's API key (${API_KEY_VAR}, or "
                "$KLING_API_KEY with kling-testkit contract)"
            )
        if not self.api.credentials.api_key:
            pytest.fail("the mock's first account has no api_key: the 2026 design needs one")

    def wait_for_2026(self, task_id: str, family_timeout: float) -> dict[str, Any]:
        """Poll a 2026 task through ``GET /tasks?task_ids=`` until it ends (as
        :meth:`wait_for`: the mock's clock moved, or real time up to a deadline)."""

        def fetch() -> dict[str, Any]:
            found = self.api.get("/tasks", params={"task_ids": task_id}).data
            assert [t["id"] for t in found] == [task_id], f"GET /tasks lost {task_id}: {found}"
            task: dict[str, Any] = found[0]
            return task

        return self._poll(task_id, fetch, "status", TERMINAL_STATUSES_2026, family_timeout)

    def wait_for(self, path: str, task_id: str, family_timeout: float) -> dict[str, Any]:
        """Poll a task until it ends: on a mock by moving its clock, else in real time with a
        deadline from the documented durations."""

        def fetch() -> dict[str, Any]:
            task: dict[str, Any] = self.api.get(f"{path}/{task_id}").data
            return task

        return self._poll(task_id, fetch, "task_status", TERMINAL, family_timeout)

    def _poll(
        self,
        task_id: str,
        fetch: Callable[[], dict[str, Any]],
        status: str,
        terminal: Collection[str],
        family_timeout: float,
    ) -> dict[str, Any]:
        """``fetch`` the task until its ``status`` field is ``terminal``; the statuses seen are
        in its ``_seen``."""
        seen: list[str] = []
        deadline = time.monotonic() + family_timeout
        interval = 2.0
        while True:
            task = fetch()
            seen.append(task[status])
            if task[status] in terminal:
                task["_seen"] = seen
                return task
            if self.mock is not None:
                self.mock.clock.advance(30)
                continue
            if time.monotonic() > deadline:
                pytest.fail(f"task {task_id} still {task[status]} after {family_timeout} s")
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
        summary = {"checks": _outcomes, "units_spent": format_units(spent), "real": real}
        if _audit:  # the target was a mock
            summary["audit"] = _audit
        json.dump(summary, out, indent=1)
