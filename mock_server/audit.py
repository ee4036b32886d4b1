"""The mock as a judge: what a client did against the rules the pitfalls teach.

Each request an account sends is checked in its journal step (one atomic store operation with
the journal entry and the counters, so ``retry_after_violations`` in ``/__mock/counters`` is the
``retry_after_ignored`` finding's count). A finding has a stable id, a count, the first
``MAX_EVIDENCE`` offending requests and a fix hint; findings are kept per account, and a
namespace is a store of its own, so per namespace too. Everything here is bounded: the finding
ids are fixed, the accounts come from the config, the evidence is capped, and the per-task poll
records keep the newest ``MAX_POLLED`` tasks.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

RETRY_AFTER_IGNORED = "retry_after_ignored"
RESULT_READ_TOO_EARLY = "result_read_too_early"
POLL_STORM = "poll_storm"
TOKEN_MISUSE = "token_misuse"
RESULT_URL_EXPIRED = "result_url_expired"
OVERSPEND = "overspend"
RETRY_WITHOUT_IDEMPOTENCY = "retry_without_idempotency"
RESULT_URL_NEVER_FETCHED = "result_url_never_fetched"
CALLBACK_RECEIVER_FAILURES = "callback_receiver_failures"
TOKEN_SIGNED = "token_signed"  # not a finding: the account's new tokens, read by report()

HINTS: dict[str, str] = {
    RETRY_AFTER_IGNORED: (
        "after a 429, wait the Retry-After seconds before sending again (after 1302 every "
        "request of the account waits; after 1303 or 1102 the same method and path)"
    ),
    RESULT_READ_TOO_EARLY: (
        "download a result only once the task's status is succeed, from the URL in its "
        "task_result; never build or guess a result URL"
    ),
    POLL_STORM: (
        "poll a task at most once every few seconds (back off, e.g. 2 s growing to 15 s), give "
        "up at a deadline, or use callback_url instead of polling"
    ),
    TOKEN_MISUSE: (
        "sign a token with exp about 30 minutes ahead, reuse it for every request, and sign a "
        "new one shortly before it expires (allowing for clock skew)"
    ),
    RESULT_URL_EXPIRED: (
        "download results soon after the task succeeds (result URLs expire); for an old task, "
        "query it again and use the URL it returns"
    ),
    OVERSPEND: (
        "keep a budget in the app and stop submitting before it is spent (kling_testkit's "
        "Budget; GET /account/costs tells what is left)"
    ),
    RETRY_WITHOUT_IDEMPOTENCY: (
        "give every create an external_task_id and send the same one when you retry; after a "
        "lost answer, look the task up by that id before creating it again"
    ),
    RESULT_URL_NEVER_FETCHED: (
        "download each result you pay for soon after the task succeeds (or on its callback); "
        "a result URL expires, and the media with it"
    ),
    CALLBACK_RECEIVER_FAILURES: (
        "answer a callback with a 2xx at once and do the work afterwards (queue it); make the "
        "receiver reachable from the API and idempotent on webhook-id"
    ),
}
"""Every finding id, with how to fix it."""

MAX_EVIDENCE = 5  # offending requests kept per finding and account
MAX_POLLED = 10_000  # tasks whose last poll is remembered (the oldest forgotten first)
MAX_LOST = 1000  # creates whose answer was lost, remembered per store (the oldest first)
MAX_WAITS = 10_000  # Retry-After waits remembered per store (the oldest first)
MAX_TOKENS = 10_000  # tokens seen, remembered per store (the oldest first)
MAX_FETCHED = 10_000  # tasks whose result was downloaded, remembered (the oldest first)
MAX_JUDGED_TASKS = 10_000  # the newest tasks checked for a result never fetched
MIN_SIGNED = 5  # tokens an account signs before one per request is a finding


@dataclass(frozen=True)
class Audit:
    """One request as the journal step checks it (see :meth:`mock_server.store.Store.record`).

    ``now`` is the mock time and ``wall`` the store's wall clock when the request arrived.
    A request under one of ``scopes`` is early when it arrives before a Retry-After for that
    scope ran out, unless it arrived within ``grace_s`` wall seconds of the first 429 of that
    wait (it may have been in flight already). ``told`` (scope, until): this request was
    answered 429 with a Retry-After; ``told_wall``: the store's wall time when that answer went
    out (a new wait's grace runs from it). ``poll``: the task this request queried; a storm
    when it comes less than ``poll_interval_s`` mock seconds after the previous query of that
    task, or past ``max_polls`` queries. ``create_key``: a create without ``external_task_id``
    (a hash of its path and body); a retry without idempotency when a create of the same key
    had its answer ``lost`` (5xx or a transport fault) at most ``retry_window_s`` mock seconds
    before. ``poll_age``: the queried task had not ended and was this many mock seconds old;
    past ``poll_deadline_s`` the query is a poll storm (a client with no deadline). ``token``:
    a fingerprint of the verified token; the first request with it counts it as signed
    (``TOKEN_SIGNED``) and records ``token_findings``, which count once per token.
    ``fetched``: a task whose result this request downloaded. ``overlap_detail``: an identical
    create (``create_key``) was still being answered when this one arrived (its client gave up
    waiting), so this one is a retry without idempotency. ``findings``: (id, detail) pairs
    decided from the request alone. ``counted``: an API request (counted in the account's
    ``requests``).
    """

    account: str
    now: float
    wall: float
    scopes: tuple[str, ...] = ()
    grace_s: float = 0.05
    told: tuple[str, float] | None = None
    told_wall: float = 0.0
    poll: str | None = None
    poll_interval_s: float = 1.0
    max_polls: int = 1000
    findings: tuple[tuple[str, str], ...] = ()
    counted: bool = True
    create_key: str | None = None
    lost: bool = False
    retry_window_s: float = 60.0
    poll_age: float | None = None
    poll_deadline_s: float = 1800.0
    token: str | None = None
    token_findings: tuple[tuple[str, str], ...] = ()
    fetched: str | None = None
    overlap_detail: str | None = None  # an identical create was still being answered


def fingerprint(token: str) -> str:
    """What the audit keeps of a token: enough to tell tokens apart, nothing to replay."""
    return hashlib.blake2b(token.encode("utf-8", "replace"), digest_size=12).hexdigest()


def evidence(entry: dict[str, Any], detail: str) -> dict[str, Any]:
    """What a finding keeps of an offending request (its journal entry) and why."""
    return {
        "method": entry.get("method"),
        "path": entry.get("path"),
        "time": entry.get("time"),
        "request_id": entry.get("request_id"),
        "detail": detail,
    }


def early_detail(seconds: float, scope: str) -> str:
    return f"sent {seconds:.3f} s before the Retry-After ran out (scope {scope})"


def storm_detail(gap: float, interval: float, count: int, max_polls: int) -> str:
    if count > max_polls:
        return f"query {count} of this task (at most {max_polls})"
    return (
        f"queried {gap:.3f} s after the previous query of this task "
        f"(at most one per {interval:g} s)"
    )


def deadline_detail(age: float, deadline: float) -> str:
    return (
        f"queried {age:.0f} s after it was created and still not ended (give up after "
        f"{deadline:g} s: a stuck task is otherwise polled forever)"
    )


def create_key(path: str, raw: bytes) -> str | None:
    """What makes two creates the same for ``retry_without_idempotency``: the path and the
    body's bytes (hashed); None for a create with an ``external_task_id`` (the body is not
    parsed again, it may be large or deep: naming the field at all counts) or no body."""
    if not raw or b'"external_task_id"' in raw:
        return None
    return hashlib.sha256(path.encode() + b"\0" + raw).hexdigest()


@dataclass
class InFlight:
    """Creates a latency rule is holding in this process, by (account and token, create key):
    a second identical create of one client arriving meanwhile means it gave up waiting for the
    first (its timeout). Only held creates count: without a rule, two threads of one app sending
    one body at once are no retry. Bounded by the requests one process serves at once."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _since: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def earliest(self, key: tuple[str, str]) -> float | None:
        """When the earliest identical create still in flight arrived (None: there is none)."""
        with self._lock:
            times = self._since.get(key)
            return min(times) if times else None

    def enter(self, key: tuple[str, str], now: float) -> None:
        with self._lock:
            self._since.setdefault(key, []).append(now)

    def leave(self, key: tuple[str, str], now: float) -> None:
        with self._lock:
            times = self._since.get(key, [])
            if now in times:
                times.remove(now)
            if not times:
                self._since.pop(key, None)


def overlap_detail(gap: float) -> str:
    return (
        f"the same create as one sent {gap:.3f} s before and still being answered, sent again "
        "without external_task_id (a client timeout?)"
    )


def retry_detail(gap: float) -> str:
    return (
        f"the same create as one whose answer was lost {gap:.3f} s before, sent again without "
        "external_task_id"
    )


def receiver_failure(
    record: dict[str, Any], failed: bool, delivered: bool, slow_s: float
) -> dict[str, Any] | None:
    """The evidence of a callback attempt its receiver failed (``failed``: answered non-2xx or
    did not answer; ``delivered`` after ``slow_s`` wall seconds); None when the receiver did
    its part (or the mock did not send: dropped by a fault rule, blocked by ``allowed_hosts``,
    which the caller passes as neither)."""
    elapsed = record.get("elapsed_ms")
    if failed:
        code = record.get("http_status")
        detail = f"answered HTTP {code}" if code is not None else f"no answer: {record['error']}"
    elif delivered and elapsed is not None and elapsed > slow_s * 1000:
        detail = f"answered after {elapsed / 1000:.1f} s (more than {slow_s:g} s)"
    else:
        return None
    parts = urlsplit(str(record.get("url", "")))
    port = f":{parts.port}" if parts.port else ""  # no user info, no query: they may be secret
    return {
        "method": "POST",
        "path": f"{parts.scheme}://{parts.hostname}{port}{parts.path}",
        "time": record.get("at"),
        "request_id": record.get("webhook_id"),
        "detail": f"callback attempt {record.get('attempt')} of task {record.get('task_id')}: "
        + detail,
    }


def signed_detail() -> str:
    return "the first request with a new token"


Found = dict[str, dict[str, tuple[int, list[dict[str, Any]]]]]
"""Per account, per finding id: (count, the first offending requests' evidence)."""


def merge(into: Found, more: Found) -> None:
    """Add ``more``'s counts and evidence to ``into``: the first ``MAX_EVIDENCE`` by mock
    time (each side keeps its first ones, so these are the first of both)."""
    for account, found in more.items():
        mine = into.setdefault(account, {})
        for fid, (count, kept) in found.items():
            old_count, old_kept = mine.get(fid, (0, []))
            # By mock time; at one time (a stopped clock) the two sides take turns.
            tagged = [
                (e.get("time") or 0, i, side, e)
                for side, kept_ in enumerate((old_kept, kept))
                for i, e in enumerate(kept_)
            ]
            tagged.sort(key=lambda t: t[:3])
            mine[fid] = (old_count + count, [t[3] for t in tagged[:MAX_EVIDENCE]])


def per_request_tokens(found: Found, requests: dict[str, int]) -> Found:
    """``token_misuse`` for each account that signed at least ``MIN_SIGNED`` tokens and more
    than one for every two of its requests (one per half hour would do): one per token."""
    out: Found = {}
    for account, mine in found.items():
        signed, kept = mine.get(TOKEN_SIGNED, (0, []))
        sent = requests.get(account, 0)
        if signed >= MIN_SIGNED and signed * 2 > sent:
            note = f" ({signed} tokens signed for {sent} requests; one per half hour would do)"
            out[account] = {
                TOKEN_MISUSE: (signed, [{**e, "detail": e["detail"] + note} for e in kept])
            }
    return out


def report(found: Found, accounts: list[str]) -> dict[str, Any]:
    """The ``GET /__mock/audit`` document: per account, each finding with its count, evidence
    and fix hint (only findings that occurred), and the totals per finding id."""
    out: dict[str, Any] = {}
    totals: dict[str, int] = {}
    for account in sorted(set(accounts) | set(found)):
        mine = found.get(account, {})
        out[account] = {
            fid: {"count": mine[fid][0], "evidence": mine[fid][1], "hint": HINTS[fid]}
            for fid in HINTS
            if fid in mine and mine[fid][0] > 0
        }
        for fid, item in out[account].items():
            totals[fid] = totals.get(fid, 0) + item["count"]
    return {"clean": not totals, "accounts": out, "totals": totals}
