"""A handle on a running mock through its control API (``/__mock``).

One class for every mock: the one the pytest plugin starts in-process, a ``kling-mock serve``
on a developer's machine, or a shared staging mock.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from typing import Any

import requests

from kling_testkit.errors import KlingError, ProtocolError

CONTROL_TOKEN_HEADER = "X-Mock-Control-Token"


class ControlError(KlingError):
    """Raised by MockControl when the mock refuses a control call (bad rule, bad config...)."""


class Clock:
    """The mock's clock: read it, move it forward."""

    def __init__(self, control: MockControl) -> None:
        self._control = control

    def now(self) -> float:
        """Mock time in Unix seconds."""
        return float(self._control.call("GET", "clock")["now"])

    def advance(self, seconds: float) -> float:
        """Move mock time forward; return the new time.

        Callbacks that fall due go out on the mock's sender thread, after this returns; use
        :meth:`MockControl.wait_for_callbacks` to wait for them.
        """
        if isinstance(seconds, float) and not math.isfinite(seconds):  # JSON cannot carry it
            raise ControlError(
                f"POST /__mock/clock/advance: seconds must be a finite number >= 0; got {seconds}"
            )
        return float(self._control.call("POST", "clock/advance", {"seconds": seconds})["now"])

    def info(self) -> dict[str, Any]:
        """``now``, ``now_ms``, ``mode`` (manual or real), ``time_scale`` and ``auth_clock``."""
        data: dict[str, Any] = self._control.call("GET", "clock")
        return data


class MockControl:
    """Steer and inspect one mock: clock, config, faults, and what it saw."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        session: requests.Session | None = None,
        control_token: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        if control_token:  # a mock started with --control-token wants it on every call
            self.session.headers[CONTROL_TOKEN_HEADER] = control_token
        self.clock = Clock(self)

    def __repr__(self) -> str:  # never shows the token
        return f"MockControl({self.base_url!r})"

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """One control call; returns the envelope's ``data`` or raises ControlError."""
        response = self.session.request(
            method,
            f"{self.base_url}/__mock/{path}",
            json=body,
            params=params,
            timeout=self.timeout if timeout is None else timeout,
        )
        try:
            envelope = response.json()
        except ValueError:
            raise ProtocolError(
                f"{method} /__mock/{path}: HTTP {response.status_code}, "
                f"not JSON: {response.text[:200]!r}"
            ) from None
        if envelope.get("code") != 0:
            raise ControlError(f"{method} /__mock/{path}: {envelope.get('message')}")
        return envelope.get("data")

    def health(self) -> dict[str, Any]:
        data: dict[str, Any] = self.call("GET", "health")
        return data

    def reset(self) -> None:
        """Forget tasks, requests, rules and callbacks; restore start-up config and clock."""
        self.call("POST", "reset")

    def config(self) -> dict[str, Any]:
        """The config in force (secrets masked)."""
        data: dict[str, Any] = self.call("GET", "config")
        return data

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change run-time config (``failure_rate``, ``concurrency``, ``blocked_terms`` ...)."""
        data: dict[str, Any] = self.call("PATCH", "config", changes)
        return data

    def add_fault(self, rule: Mapping[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Add one fault rule (a dict, or ``match=``, ``action=``, ``times=`` ... keywords)."""
        data: list[dict[str, Any]] = self.call("POST", "faults", {**(rule or {}), **fields})
        return data[0]

    def faults(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.call("GET", "faults")
        return data

    def remove_fault(self, rule_id: str) -> None:
        self.call("DELETE", f"faults/{rule_id}")

    def clear_faults(self) -> None:
        self.call("DELETE", "faults")

    def scenarios(self) -> dict[str, str]:
        data: dict[str, str] = self.call("GET", "scenarios")
        return data

    def tasks(
        self,
        *,
        account: str | None = None,
        family: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[dict[str, Any]]:
        """The tasks the mock holds, newest first, with params and timeline (the newest 1000
        unless ``limit`` says otherwise, at most 10000 per call; ``offset`` pages on)."""
        wanted = {"account": account, "family": family, "limit": limit, "offset": offset}
        params = {k: v for k, v in wanted.items() if v is not None}
        data: list[dict[str, Any]] = self.call("GET", "tasks", params=params)
        return data

    def accounts(self) -> list[dict[str, Any]]:
        """Every account with its concurrency, slots in use and packs (remaining units)."""
        data: list[dict[str, Any]] = self.call("GET", "accounts")
        return data

    def counters(self) -> dict[str, Any]:
        """``{"accounts": {name: counters}, "totals": counters}``: requests, tasks_created,
        rate_limited (429s), retry_after_violations (requests sent before a 429's Retry-After
        ran out), units_spent, callbacks_delivered, callbacks_failed."""
        data: dict[str, Any] = self.call("GET", "counters")
        return data

    def audit(self) -> dict[str, Any]:
        """``{"clean": bool, "accounts": {name: {finding id: {"count", "evidence", "hint"}}},
        "totals": {finding id: count}}``: what each account's client did against the rules
        (``retry_after_ignored``, ``result_read_too_early``, ``poll_storm``, ``token_misuse``,
        ``result_url_expired``, ``overspend``, ``retry_without_idempotency``); ``evidence`` is
        the first few offending requests."""
        data: dict[str, Any] = self.call("GET", "audit")
        return data

    def remaining_units(self, account: str = "default", kind: str = "video") -> float:
        """Units left in an account's online packs of one kind."""
        found = next((a for a in self.accounts() if a["name"] == account), None)
        if found is None:
            raise ControlError(f"no account {account!r}")
        return float(
            sum(
                p["remaining_quantity"]
                for p in found["packs"]
                if p["status"] == "online" and p["kind"] == kind
            )
        )

    def requests(
        self,
        limit: int | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        code: int | None = None,
    ) -> list[dict[str, Any]]:
        """The journal of API requests, oldest first: method, path, query, headers (secrets
        redacted), body (bounded), status, code, request id, mock time, injected faults.

        Filters: ``method`` (any case), ``path`` (a glob: ``"/v1/videos/*"``), ``status``,
        ``code``; ``limit`` keeps the newest N before filtering.
        """
        params = {} if limit is None else {"limit": limit}
        entries: list[dict[str, Any]] = self.call("GET", "requests", params=params)["entries"]
        return [e for e in entries if _matches(e, method, path, status, code)]

    def assert_requested(
        self,
        method: str,
        path: str,
        *,
        count: int | None = None,
        status: int | None = None,
        code: int | None = None,
    ) -> list[dict[str, Any]]:
        """Assert the mock saw such requests (exactly ``count`` when given); return them.

        On failure the AssertionError lists what was expected and every request seen, newest
        last, so the difference is readable in the test report.
        """
        entries = self.requests()
        found = [e for e in entries if _matches(e, method, path, status, code)]
        if (count is None and found) or (count is not None and len(found) == count):
            return found
        wanted = f"{method.upper()} {path}" + "".join(
            f" {k}={v}" for k, v in (("status", status), ("code", code)) if v is not None
        )
        expected = "at least once" if count is None else f"{count} time(s)"
        seen = "\n".join(f"  {_line(e)}" for e in entries[-30:]) or "  (none)"
        raise AssertionError(
            f"expected {wanted} {expected}, saw it {len(found)} time(s); requests seen "
            f"({len(entries)}, newest last):\n{seen}"
        )

    def callbacks(self, task_id: str | None = None) -> list[dict[str, Any]]:
        """Every callback attempt, oldest first."""
        params = {} if task_id is None else {"task_id": task_id}
        attempts: list[dict[str, Any]] = self.call("GET", "callbacks", params=params)["attempts"]
        return attempts

    def wait_for_callbacks(self, timeout: float = 10.0) -> bool:
        """Wait until no callback is due at the current mock time or in flight.

        True when so; False if ``timeout`` seconds (0 < timeout <= 60) passed first.
        """
        data = self.call(
            "POST", "callbacks/wait", {"timeout": timeout}, timeout=timeout + self.timeout
        )
        return bool(data["idle"])


def _matches(
    entry: Mapping[str, Any],
    method: str | None,
    path: str | None,
    status: int | None,
    code: int | None,
) -> bool:
    return (
        (method is None or str(entry["method"]).upper() == method.upper())
        and (path is None or fnmatch.fnmatchcase(str(entry["path"]), path))
        and (status is None or entry["status"] == status)
        and (code is None or entry["code"] == code)
    )


def _line(entry: Mapping[str, Any]) -> str:
    query = f"?{entry['query']}" if entry.get("query") else ""
    fault = f" fault={entry['fault']}" if entry.get("fault") else ""
    return (
        f"{entry['method']} {entry['path']}{query} -> {entry['status']} "
        f"(code {entry['code']}){fault}"
    )
