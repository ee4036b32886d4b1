"""A small, typed client of the legacy Kling API, doing the things the pitfalls list gets wrong.

Keys come from the caller or the environment (never a default), every call has a timeout, the
token is renewed before it expires, errors become typed exceptions, ``wait`` polls with backoff
and a deadline, and ``download`` saves a result before its URL expires.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import requests

from kling_testkit.auth import DEFAULT_TOKEN_TTL, bearer, sign_token
from kling_testkit.credentials import BASE_URL_VAR, Credentials
from kling_testkit.errors import (
    CredentialsError,
    KlingError,
    ProtocolError,
    TaskFailed,
    WaitTimeout,
    error_class,
)
from kling_testkit.spec import families

TERMINAL_STATUSES = frozenset({"succeed", "failed"})
RENEW_BEFORE = 60.0
"""Seconds before ``exp`` at which a cached token is replaced."""


class KlingClient:
    """Talks to one target (the mock or a real endpoint) with one account's keys."""

    def __init__(
        self,
        base_url: str | None = None,
        credentials: Credentials | None = None,
        *,
        timeout: float = 30.0,
        token_ttl: float = DEFAULT_TOKEN_TTL,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
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
        self.session = session or requests.Session()
        self._clock = clock
        self._sleep = sleep
        self._token: tuple[str, float] | None = None

    # -- plumbing --------------------------------------------------------------------------

    def token(self) -> str:
        """A valid token, signed anew when the cached one is within a minute of ``exp``."""
        now = self._clock()
        if self._token is None or self._token[1] - RENEW_BEFORE <= now:
            token = sign_token(self.credentials, now=now, ttl=self.token_ttl)
            self._token = (token, now + self.token_ttl)
        return self._token[0]

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one API call and return the envelope's ``data``, or raise a typed error."""
        response = self.session.request(
            method,
            f"{self.base_url}{path}",
            json=json,
            params=params,
            headers=bearer(self.token()),
            timeout=self.timeout,
        )
        try:
            body = response.json()
        except ValueError:
            raise ProtocolError(
                f"{method} {path}: HTTP {response.status_code}, body is not "
                f"JSON: {response.text[:200]!r}"
            ) from None
        if not isinstance(body, dict) or "code" not in body:
            raise ProtocolError(f"{method} {path}: not a Kling envelope: {str(body)[:200]}")
        code = body["code"]
        if code != 0 or response.status_code >= 400:
            retry_after = response.headers.get("Retry-After")
            raise error_class(code, response.status_code)(
                code,
                str(body.get("message", "")),
                response.status_code,
                body.get("request_id"),
                float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        if "data" not in body:
            raise ProtocolError(f"{method} {path}: success envelope without data")
        return body["data"]

    @staticmethod
    def _path(family: str) -> str:
        return families()[family].path

    # -- tasks -----------------------------------------------------------------------------

    def create_task(self, family: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Submit a task; returns the create ``data`` (``task_id``, ``task_status`` ...)."""
        data: dict[str, Any] = self.request("POST", self._path(family), json=body)
        return data

    def text2video(self, prompt: str, **fields: Any) -> dict[str, Any]:
        """Submit a text-to-video task."""
        return self.create_task("text2video", {"prompt": prompt, **fields})

    def get_task(self, family: str, task_id: str) -> dict[str, Any]:
        """Query one task by ``task_id`` (or ``external_task_id``)."""
        data: dict[str, Any] = self.request("GET", f"{self._path(family)}/{task_id}")
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
        task_id: str,
        *,
        timeout: float = 900.0,
        poll_interval: float = 1.0,
        max_interval: float = 15.0,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the task ends; return it on success, raise TaskFailed or WaitTimeout.

        The interval starts at ``poll_interval`` and doubles up to ``max_interval``;
        ``on_poll`` sees every task object fetched.
        """
        deadline = self._clock() + timeout
        interval = poll_interval
        while True:
            task = self.get_task(family, task_id)
            if on_poll is not None:
                on_poll(task)
            if task["task_status"] == "failed":
                raise TaskFailed(task)
            if task["task_status"] in TERMINAL_STATUSES:
                return task
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise WaitTimeout(f"task {task_id} still {task['task_status']} after {timeout}s")
            self._sleep(min(interval, remaining))
            interval = min(interval * 2, max_interval)

    def download(self, url: str, path: str | Path) -> int:
        """Save a result file to ``path`` (atomically) and return its size in bytes."""
        target = Path(path)
        with self.session.get(url, timeout=self.timeout, stream=True) as response:
            if response.status_code != 200:
                raise KlingError(f"download of {url} failed: HTTP {response.status_code}")
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
