"""The abstract base user of every scenario: auth, response checks, submit, poll, download.

Times written on the class (``poll_interval``, ``think_time`` ...) are in the API's seconds; on
a mock whose clock runs faster, each wait is divided by its time scale, so a scenario polls as
often per job on a mock at x60 as it would against the real API.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, cast

import gevent
from locust import HttpUser
from locust.clients import ResponseContextManager
from locust.exception import StopUser

from kling_testkit.auth import DEFAULT_TOKEN_TTL, bearer, sign_token
from kling_testkit.budget import Budget, BudgetExceeded
from kling_testkit.codes import ErrorCode
from kling_testkit.credentials import Credentials
from kling_testkit.spec import FAILED, TERMINAL, families
from load_tests.gate import ACCOUNT, RetryAfterGate, gate_for
from load_tests.jobs import Job
from load_tests.target import Target, TargetError, credentials_for, target_of

MAX_UNITS_VAR = "KLING_LOAD_MAX_UNITS"
"""Units this process's users may commit in all (``kling-testkit load --max-units`` sets it)."""
RENEW_BEFORE_S = 60.0
IMPATIENT_RETRY_S = 1.0
"""API seconds a user that does not honour ``Retry-After`` waits before submitting again."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """What one API call came back with."""

    status: int  # 0: no HTTP answer (connection refused or reset, timeout)
    code: int | None
    data: Any
    message: str
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.code == 0

    @property
    def limited(self) -> bool:
        """A 429 that says when to come back."""
        return self.status == 429 and self.retry_after is not None

    def describe(self) -> str:
        """A failure text that groups alike answers in Locust's failure table (no ids)."""
        return f"HTTP {self.status} code {self.code}: {self.message[:120]}"


def read_answer(response: ResponseContextManager) -> Answer:
    """Check a response: JSON, the Kling envelope, its code; read ``Retry-After``."""
    if not response.status_code:
        return Answer(0, None, None, f"no answer: {type(response.error).__name__}")
    try:
        body = response.json()
    except ValueError:
        return Answer(response.status_code, None, None, "the body is not JSON")
    if not isinstance(body, dict) or not isinstance(body.get("code"), int):
        return Answer(response.status_code, None, None, "the body is not a Kling envelope")
    wait = response.headers.get("Retry-After", "")
    return Answer(
        response.status_code,
        body["code"],
        body.get("data"),
        str(body.get("message", "")),
        float(wait) if wait.isdigit() else None,
    )


_BUDGET: list[Budget] = []


def process_budget() -> Budget | None:
    """The units this process may commit (``$KLING_LOAD_MAX_UNITS``), shared by its users."""
    limit = os.environ.get(MAX_UNITS_VAR)
    if not limit:
        return None
    if not _BUDGET:
        _BUDGET.append(Budget(Decimal(limit)))
    return _BUDGET[0]


class KlingUser(HttpUser):
    """A client of the Kling API; subclasses add ``@task``s that call :meth:`run_job`."""

    abstract = True
    poll_interval: ClassVar[float] = 5.0
    """First wait before a status poll; doubles up to ``max_poll_interval``."""
    max_poll_interval: ClassVar[float] = 20.0
    job_timeout: ClassVar[float] = 1800.0
    """Give up on a job after this long (reported as a failed job)."""
    think_time: ClassVar[tuple[float, float]] = (0.0, 5.0)
    """Pause between two tasks of a user, drawn uniformly from this range."""
    honour_retry_after: ClassVar[bool] = True
    """Wait as a 429's ``Retry-After`` says (the account's gate), and count it as no failure;
    False: a 429 is a failure and the submit is sent again after a second, whatever it said."""
    serial_account: ClassVar[bool] = False
    """One request of the account at a time in this process (see ``load_tests.gate``)."""
    download_results: ClassVar[bool] = True

    target: Target
    credentials: Credentials
    gate: RetryAfterGate

    def on_start(self) -> None:
        try:
            self.target = target_of(self.host or "")
            self.credentials = credentials_for(self.target)
        except TargetError as error:
            log.error("%s", error)
            raise StopUser() from error
        self.gate = gate_for(self.credentials.access_key, serial=self.serial_account)
        self._token: tuple[str, float] | None = None
        self._costs: dict[str, Decimal] = {}  # task id -> units reserved in the budget

    def wait_time(self) -> float:
        return self.target.wall(random.uniform(*self.think_time))

    def pause(self, api_seconds: float) -> None:
        """Sleep ``api_seconds`` of the target's time."""
        gevent.sleep(self.target.wall(api_seconds))

    def headers(self) -> dict[str, str]:
        """``Authorization`` with a token re-signed a minute before it expires."""
        now = time.time()
        if self._token is None or self._token[1] - RENEW_BEFORE_S <= now:
            token = sign_token(self.credentials, now=now, ttl=DEFAULT_TOKEN_TTL)
            self._token = (token, now + DEFAULT_TOKEN_TTL)
        return bearer(self._token[0])

    def call(self, method: str, path: str, *, name: str, body: Any = None) -> Answer:
        """One API call through the account's gate, checked, recorded under ``name``."""
        scope = f"{method} {path}"
        with (
            self.gate.turn(scope),
            self.client.request(
                method, path, name=name, json=body, headers=self.headers(), catch_response=True
            ) as response,
        ):
            answer = read_answer(response)
            if answer.limited and self.honour_retry_after:
                wait = cast(float, answer.retry_after)
                self.gate.close(ACCOUNT if answer.code == ErrorCode.RATE_LIMITED else scope, wait)
                cast(dict[str, Any], response.request_meta)["name"] = f"{name} (429)"
                response.success()  # told to wait, and waiting: no failure of the client
            elif answer.ok:
                response.success()
            else:
                response.failure(answer.describe())
        return answer

    def submit(self, family: str, body: dict[str, Any], job: Job) -> str | None:
        """Create a task, coming back after each ``Retry-After``; its id, or None if refused."""
        budget = process_budget()
        try:
            cost = budget.reserve(family, body) if budget else Decimal(0)
        except BudgetExceeded as error:
            log.warning("unit budget spent, this user stops: %s", error)
            raise StopUser() from error
        path = families()[family].path
        deadline = time.monotonic() + self.target.wall(self.job_timeout)
        while True:
            answer = self.call("POST", path, name=path, body=body)
            if answer.ok:
                task_id: str = answer.data["task_id"]
                self._costs[task_id] = cost
                return task_id
            if not answer.limited or time.monotonic() > deadline:
                if budget:
                    budget.refund(cost)
                job.done(f"submit refused: {answer.describe()}")
                return None
            if not self.honour_retry_after:
                self.pause(IMPATIENT_RETRY_S)

    def follow(self, family: str, task_id: str, job: Job) -> dict[str, Any] | None:
        """Poll with backoff until the task ends; report the job; the task if it succeeded."""
        path = families()[family].path
        deadline = time.monotonic() + self.target.wall(self.job_timeout)
        interval = self.poll_interval
        while True:
            self.pause(interval)
            answer = self.call("GET", f"{path}/{task_id}", name=f"{path}/[task_id]")
            job.polled()
            error = None
            if answer.ok and answer.data["task_status"] in TERMINAL:
                cost = self._costs.pop(task_id, Decimal(0))
                if answer.data["task_status"] != FAILED:
                    job.done()
                    return dict(answer.data)
                if (budget := process_budget()) is not None:
                    budget.refund(cost)  # a failed task is not charged
                error = f"task failed: {str(answer.data.get('task_status_msg'))[:120]}"
            elif 400 <= answer.status < 500 and not answer.limited:
                error = f"poll refused: {answer.describe()}"
            elif time.monotonic() > deadline:
                error = f"no end within {self.job_timeout:g} s"
            if error is not None:  # a task that may still be charged keeps its units spent
                self._costs.pop(task_id, None)
                job.done(error)
                return None
            interval = min(interval * 2, self.max_poll_interval)

    def download(self, family: str, task: dict[str, Any]) -> None:
        """Fetch the first result file, as an app copies it before its URL expires."""
        kind = families()[family].output
        url = task["task_result"][f"{kind}s"][0]["url"]
        with self.client.get(url, name=f"download {kind}", catch_response=True) as response:
            if response.status_code != 200 or not response.content:
                response.failure(f"download answered HTTP {response.status_code}")

    def run_job(self, family: str, body: dict[str, Any], label: str | None = None) -> None:
        """Submit, follow to the end, download: one job, reported under ``label``."""
        job = Job(self.environment, label or family)
        task_id = self.submit(family, body, job)
        if task_id is None:
            return
        task = self.follow(family, task_id, job)
        if task is not None and self.download_results:
            self.download(family, task)
