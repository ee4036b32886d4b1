"""A small, typed client of the legacy Kling API, doing the things the pitfalls list gets wrong.

Keys come from the caller or the environment (never a default), every call has a timeout, the
token is renewed before it expires, errors become typed exceptions, 429s and 5xx are retried a
bounded number of times honouring ``Retry-After``, ``wait`` polls with backoff and a deadline,
a budget refuses overspending, and ``download`` saves a result before its URL expires.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from kling_testkit.auth import DEFAULT_TOKEN_TTL, bearer, sign_token
from kling_testkit.budget import Budget
from kling_testkit.codes import ErrorCode
from kling_testkit.credentials import BASE_URL_VAR, Credentials
from kling_testkit.errors import (
    ApiError,
    CredentialsError,
    KlingError,
    ProtocolError,
    ResultExpired,
    ServerError,
    TaskFailed,
    TransportError,
    WaitTimeout,
    error_class,
)
from kling_testkit.retry import RetryPolicy
from kling_testkit.spec import FAILED, TERMINAL, families

TERMINAL_STATUSES = TERMINAL
"""The statuses ``wait`` stops at (the contract's terminal ones)."""
RENEW_BEFORE = 60.0
"""Seconds before ``exp`` at which a cached token is replaced."""


def _seconds(retry_after: str) -> float | None:
    """A ``Retry-After`` in seconds (the API sends whole seconds; a date is not read)."""
    return float(retry_after) if retry_after.isdigit() else None


class KlingClient:
    """Talks to one target (the mock or a real endpoint) with one account's keys.

    ``clock`` and ``sleep`` drive waiting and expiry checks (point them at a mock's clock to
    wait without sleeping); ``token_clock`` signs tokens (wall time by default).
    """

    def __init__(
        self,
        base_url: str | None = None,
        credentials: Credentials | None = None,
        *,
        timeout: float = 30.0,
        token_ttl: float = DEFAULT_TOKEN_TTL,
        retry: RetryPolicy | None = None,
        budget: Budget | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        token_clock: Callable[[], float] = time.time,
    ) -> None:
        base_url = base_url or os.environ.get(BASE_URL_VAR)
        if not base_url:
            raise KlingError(f"no target: pass base_url or set {BASE_URL_VAR}")
        credentials = credentials or Credentials.from_env()
        if credentials is None:
            raise CredentialsError(
                "no credentials: pass credentials or set KLING_ACCESS_KEY and KLING_SECRET_KEY"
            )
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.timeout = timeout
        self.token_ttl = token_ttl
        self.retry = retry or RetryPolicy()
        self.budget = budget
        self.session = session or requests.Session()
        self._clock, self._sleep, self._token_clock = clock, sleep, token_clock
        self._token: tuple[str, float] | None = None
        self._costs: dict[str, Decimal] = {}  # task_id -> units reserved in the budget

    # -- plumbing --------------------------------------------------------------------------

    def token(self, *, fresh: bool = False) -> str:
        """A valid token, signed anew when the cached one is within a minute of ``exp``."""
        now = self._token_clock()
        if fresh or self._token is None or self._token[1] - RENEW_BEFORE <= now:
            self._token = (
                sign_token(self.credentials, now=now, ttl=self.token_ttl),
                now + self.token_ttl,
            )
        return self._token[0]

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        deadline: float | None = None,
        idempotent: bool | None = None,
        recover: Callable[[ApiError], Any] | None = None,
    ) -> Any:
        """One API call with bounded retries; returns the envelope's ``data``.

        429 (rate or concurrency) and 5xx answers are retried after ``Retry-After`` (up to the
        policy's ``max_retry_after``) or a jittered backoff; an expired token is re-signed once;
        a transport failure (:class:`TransportError`) is retried only when the call is
        ``idempotent`` (default: GET). ``deadline``, on this client's clock, bounds the whole
        call: a wait that would pass it is not slept, and the last error is raised. After a
        lost attempt, ``recover`` may turn a refusal into a result (None: raise it).
        """
        idempotent = method == "GET" if idempotent is None else idempotent
        resigned = False
        retry = 0
        while True:
            failure: ApiError | TransportError
            try:
                return self._send(method, path, json, params)
            except ApiError as error:
                if error.code == ErrorCode.AUTH_EXPIRED and not resigned:
                    resigned = True
                    self.token(fresh=True)
                    continue
                if retry and recover is not None:
                    recovered = recover(error)
                    if recovered is not None:
                        return recovered
                if not self.retry.retryable(error):
                    raise
                failure = error
            except TransportError as error:
                if not idempotent:
                    raise
                failure = error
            retry += 1
            if retry >= self.retry.attempts:
                raise failure
            wait = self.retry.delay(failure if isinstance(failure, ApiError) else None, retry)
            if deadline is not None and self._clock() + wait > deadline:
                raise failure
            self._sleep(wait)

    def _send(
        self,
        method: str,
        path: str,
        json: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
    ) -> Any:
        try:
            response = self.session.request(
                method,
                f"{self.base_url}{path}",
                json=json,
                params=params,
                headers=bearer(self.token()),
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise TransportError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("code"), int):
            shown = repr(response.text[:200]) if body is None else str(body)[:200]
            if response.status_code >= 500:  # a proxy in front of the API failed: retry later
                raise ServerError(
                    0,
                    f"{method} {path}: HTTP {response.status_code} without a Kling envelope "
                    f"(a gateway's answer?): {shown}",
                    response.status_code,
                    None,
                    _seconds(response.headers.get("Retry-After", "")),
                )
            what = "body is not JSON" if body is None else "not a Kling envelope"
            raise ProtocolError(f"{method} {path}: HTTP {response.status_code}, {what}: {shown}")
        code = body["code"]
        if code != 0 or response.status_code >= 400:
            raise error_class(code, response.status_code)(
                code,
                str(body.get("message", "")),
                response.status_code,
                body.get("request_id"),
                _seconds(response.headers.get("Retry-After", "")),
            )
        if "data" not in body:
            raise ProtocolError(f"{method} {path}: success envelope without data")
        return body["data"]

    @staticmethod
    def _path(family: str) -> str:
        return families()[family].path

    # -- tasks -----------------------------------------------------------------------------

    def create_task(self, family: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Submit a task; returns the create ``data`` (``task_id``, ``task_status`` ...).

        With retries on, the create carries an ``external_task_id`` (the caller's, or one made
        here), so a retry after a lost answer cannot create and charge twice: when the retry
        hears "external_task_id already used", the task the first try created is returned.
        With a budget, the task's price is reserved first and BudgetExceeded raised (nothing
        sent) when it does not fit.
        """
        body = dict(body)
        if self.retry.attempts > 1 and "external_task_id" not in body:
            body["external_task_id"] = f"kt-{uuid.uuid4().hex}"
        external = body.get("external_task_id")

        def existing(error: ApiError) -> dict[str, Any] | None:
            if not (isinstance(external, str) and _is_duplicate_external_id(error)):
                return None
            task = self.get_task(family, external)
            return {k: task[k] for k in _CREATED_KEYS if k in task}

        cost = self.budget.reserve(family, body) if self.budget else Decimal(0)
        try:
            data: dict[str, Any] = self.request(
                "POST",
                self._path(family),
                json=body,
                idempotent=isinstance(external, str),
                recover=existing,
            )
        except BaseException:
            if self.budget:
                self.budget.refund(cost)
            raise
        self._costs[data["task_id"]] = cost
        return data

    def text2video(self, prompt: str, **fields: Any) -> dict[str, Any]:
        """Submit a text-to-video task."""
        return self.create_task("text2video", {"prompt": prompt, **fields})

    def get_task(
        self, family: str, task_id: str, *, deadline: float | None = None
    ) -> dict[str, Any]:
        """Query one task by ``task_id`` (or ``external_task_id``)."""
        data: dict[str, Any] = self.request(
            "GET", f"{self._path(family)}/{task_id}", deadline=deadline
        )
        return data

    def list_tasks(self, family: str, *, page: int = 1, size: int = 30) -> list[dict[str, Any]]:
        """One page of tasks, newest first."""
        data: list[dict[str, Any]] = self.request(
            "GET", self._path(family), params={"pageNum": page, "pageSize": size}
        )
        return data

    def wait(
        self,
        family: str,
        task: str | Mapping[str, Any],
        *,
        timeout: float = 900.0,
        poll_interval: float = 1.0,
        max_interval: float = 15.0,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the task ends; return it on success, raise TaskFailed or WaitTimeout.

        ``task`` is a task id or a task object. The interval starts at ``poll_interval`` and
        doubles up to ``max_interval``; ``on_poll`` sees every task object fetched.
        """
        task_id = task if isinstance(task, str) else str(task["task_id"])
        deadline = self._clock() + timeout
        interval = poll_interval
        while True:
            current = self.get_task(family, task_id, deadline=deadline)
            if on_poll is not None:
                on_poll(current)
            if current["task_status"] == FAILED:
                if self.budget and task_id in self._costs:
                    self.budget.refund(self._costs.pop(task_id))
                raise TaskFailed(current)
            if current["task_status"] in TERMINAL_STATUSES:
                return current
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise WaitTimeout(f"task {task_id} still {current['task_status']} after {timeout}s")
            self._sleep(min(interval, remaining))
            interval = min(interval * 2, max_interval)

    def download(self, result: str | Mapping[str, Any], path: str | Path) -> int:
        """Save a result file (its URL, or a ``videos[]``/``images[]`` item) to ``path``.

        Writes atomically (nothing is left behind on failure) and returns the size in bytes.
        The server decides whether a URL still works: 403, 404 and 410 raise ResultExpired
        (real result URLs carry no expiry a client could read); a connection that fails or a
        body cut short raise TransportError.
        """
        url = result if isinstance(result, str) else str(result["url"])
        shown = urlsplit(url)._replace(query="").geturl()  # a signed URL is a capability
        target = Path(path)
        try:
            with self.session.get(url, timeout=self.timeout, stream=True) as response:
                if response.status_code in (403, 404, 410):
                    raise ResultExpired(
                        f"download of {shown} refused (HTTP {response.status_code}): "
                        f"{response.text[:200]}; copy results as soon as a task succeeds"
                    )
                if response.status_code != 200:
                    raise KlingError(f"download of {shown} failed: HTTP {response.status_code}")
                return _save(response, target)
        except requests.RequestException as exc:
            raise TransportError(f"download of {shown} failed: {type(exc).__name__}") from exc


_CREATED_KEYS = ("task_id", "task_status", "task_info", "created_at", "updated_at")


def _is_duplicate_external_id(error: ApiError) -> bool:
    return error.code == ErrorCode.INVALID_VALUE and "external_task_id" in error.message


def _save(response: requests.Response, target: Path) -> int:
    """Stream a response body to ``target`` through a temporary file in the same folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in response.iter_content(64 * 1024):
                out.write(chunk)
                size += len(chunk)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return size
