"""The judge: what each account's client did, read from the store (``/__mock/counters`` and
``/__mock/audit``), and the audit of a request, made for its journal step
(:mod:`mock_server.audit` says what each finding means).

The backend decides what a request does; the judge only watches. It reads the backend's
config, clock and store, and keeps nothing of its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from kling_testkit.codes import ErrorCode
from kling_testkit.pricing import format_units
from mock_server import render
from mock_server.audit import (
    MAX_EVIDENCE,
    MAX_JUDGED_TASKS,
    OVERSPEND,
    RESULT_URL_NEVER_FETCHED,
    RETRY_AFTER_IGNORED,
    TOKEN_MISUSE,
    Audit,
    Found,
    fingerprint,
    merge,
    per_request_tokens,
)
from mock_server.audit import report as audit_report
from mock_server.config import Account
from mock_server.tasks import SUCCEED, Task

if TYPE_CHECKING:
    from mock_server.backend import Backend

COUNTERS = (
    "requests",
    "tasks_created",
    "rate_limited",
    "retry_after_violations",
    "callbacks_delivered",
    "callbacks_failed",
)


class Judge:
    """Judges the requests and reports the counters and findings of one mock (a backend)."""

    def __init__(self, mock: Backend) -> None:
        self._mock = mock

    def of(
        self,
        account: str,
        method: str,
        path: str,
        *,
        poll: str | None = None,
        findings: tuple[tuple[str, str], ...] = (),
        counted: bool = True,
        token: str | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> Audit:
        """A request of ``account`` to judge in its journal step (``mock_server.audit``):
        under the Retry-After scopes of every request and of its method and path; ``token``
        (the Authorization header) and its verified ``claims``, when it carried a JWT."""
        rules = self._mock.config.audit
        per_request: tuple[tuple[str, str], ...] = ()
        per_token: tuple[tuple[str, str], ...] = ()
        if claims is not None:
            per_request, per_token = self.token_findings(claims)
        return Audit(
            account,
            self._mock.now(),
            self._mock.store.wall(),
            ("*", f"{method} {path}") if counted else (),
            float(rules["retry_after_grace_s"]),
            poll=poll,
            poll_interval_s=float(rules["poll_interval_s"]),
            max_polls=int(rules["max_polls"]),
            findings=(*findings, *per_request),
            counted=counted,
            retry_window_s=float(rules["retry_window_s"]),
            poll_deadline_s=float(rules["poll_deadline_s"]),
            token=None if token is None or claims is None else fingerprint(token),
            token_findings=per_token,
        )

    def token_findings(
        self, claims: Mapping[str, Any]
    ) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
        """What a verified token's claims show, as (per request, per token) findings: used at
        or after its ``exp`` (each request), or a lifetime (``exp - iat``, else ``exp`` from
        now) above ``audit.max_token_lifetime_s`` (once per token)."""
        now = self._mock.token_now()
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool) or not math.isfinite(exp):
            return (), ()
        if exp <= now:
            return ((TOKEN_MISUSE, f"token used {now - exp:.0f} s after its exp"),), ()
        iat = claims.get("iat")
        start = iat if isinstance(iat, (int, float)) and math.isfinite(iat) else now
        limit = float(self._mock.config.audit["max_token_lifetime_s"])
        if exp - start > limit:
            detail = (
                f"token lifetime {exp - start:.0f} s (exp - iat); the documented one is "
                f"1800 s, the audit allows {limit:g} s"
            )
            return (), ((TOKEN_MISUSE, detail),)
        return (), ()

    def overspend(self, account: Account, task: Task) -> tuple[tuple[str, str], ...]:
        """After a create: the ``overspend`` finding when the account's units spent or held by
        running tasks (this one included) exceed ``audit.budget_units``."""
        budget = self._mock.config.audit.get("budget_units")
        if budget is None:
            return ()
        now = self._mock.now()
        committed = sum(
            (
                sum(self._mock.store.pack_usage(spec.pack_id, now), Decimal(0))
                for spec in self._mock.pack_specs(account)
            ),
            Decimal(0),
        )
        if committed <= Decimal(str(budget)):
            return ()
        detail = (
            f"{format_units(committed)} units spent or held after this task "
            f"({format_units(task.cost)}); the budget is {format_units(Decimal(str(budget)))}"
        )
        return ((OVERSPEND, detail),)

    def told_to_wait(self, audit: Audit, method: str, path: str, code: int, seconds: int) -> Audit:
        """A 429 with ``Retry-After: seconds`` went out: the audit with (scope, until) set.

        A request-rate refusal (1302) covers every request of the account; any other covers
        the same method and path (polling other tasks meanwhile is fine)."""
        scale = self._mock.clock.scale
        until = self._mock.now() + seconds * (scale if scale else 1.0)
        scope = "*" if code == ErrorCode.RATE_LIMITED else f"{method} {path}"
        return replace(audit, told=(scope, until), told_wall=self._mock.store.wall())

    def report(self) -> dict[str, Any]:
        """``GET /__mock/audit``: each account's findings with evidence and fix hints,
        including those read off the state now: an account signing a token per request, and
        results whose URL expired before anyone downloaded them."""
        found = self._mock.store.audit()
        sent = {
            name: tally.get("requests", 0) for name, tally in self._mock.store.counters().items()
        }
        merge(found, per_request_tokens(found, sent))
        merge(found, self._never_fetched())
        return audit_report(found, [a.name for a in self._mock.config.accounts])

    def _never_fetched(self) -> Found:
        """Succeeded tasks (of the newest ``MAX_JUDGED_TASKS``) whose result URL expired
        before their result was downloaded, oldest first, per account."""
        now = self._mock.now()
        fetched = self._mock.store.fetched()
        out: Found = {}
        for task in reversed(self._mock.store.select(0, MAX_JUDGED_TASKS)):
            if task.status_at(now) != SUCCEED or task.task_id in fetched:
                continue  # (a task that never ends has no expiry)
            expires = self._mock.url_expiry(task)
            if now < expires:
                continue
            count, kept = out.setdefault(task.account, {}).get(RESULT_URL_NEVER_FETCHED, (0, []))
            if len(kept) < MAX_EVIDENCE:
                name = render.media_names(task)[0][0]
                kept.append(
                    {
                        "method": "GET",
                        "path": self._mock.url_prefix + render.media_path(task.task_id, name),
                        "time": round(expires * 1000),
                        "request_id": None,
                        "detail": f"the result of task {task.task_id} expired unfetched",
                    }
                )
            out[task.account][RESULT_URL_NEVER_FETCHED] = (count + 1, kept)
        return out

    def counters(self) -> dict[str, Any]:
        """What each account did: requests, tasks, 429s and Retry-After violations, units
        spent, callbacks delivered and failed; and the totals."""
        now = self._mock.now()
        names = [a.name for a in self._mock.config.accounts]
        found = self._mock.store.counters()
        judged = self._mock.store.audit()  # Retry-After violations are the audit's finding
        accounts: dict[str, dict[str, Any]] = {}
        for account in self._mock.config.accounts:
            tally = dict(found.get(account.name, {}))
            early = judged.get(account.name, {}).get(RETRY_AFTER_IGNORED)
            tally["retry_after_violations"] = early[0] if early else 0
            spent = sum(
                (
                    self._mock.store.pack_usage(spec.pack_id, now)[0]
                    for spec in self._mock.pack_specs(account)
                ),
                Decimal(0),
            )
            accounts[account.name] = {
                **{name: int(tally.get(name, 0)) for name in COUNTERS},
                "units_spent": format_units(spent),
            }
        totals: dict[str, Any] = {name: sum(accounts[a][name] for a in names) for name in COUNTERS}
        totals["units_spent"] = format_units(
            sum((Decimal(accounts[a]["units_spent"]) for a in names), Decimal(0))
        )
        return {"accounts": accounts, "totals": totals}
