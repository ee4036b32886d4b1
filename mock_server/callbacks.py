"""Task callbacks: POST the task object (no envelope) to ``callback_url`` on each status change.

Deliveries run on the mock's clock and never on a request thread: one sender thread per mock
(started when a callback is queued, gone once the queue is empty) sends each delivery when it
falls due, for the manual and the real clock alike. Queuing, advancing the clock and config
changes wake it; :meth:`Dispatcher.wait_idle` waits, bounded, until nothing due is left. A task's
callbacks go out in status order: the next waits until the previous one was delivered or given up.

Targets (:func:`check_target`): the URL must be plain (no backslash, userinfo, control characters,
white space, or escapes in the host), and its host, parsed as the HTTP client parses it, exactly
one of ``callbacks.allowed_hosts``. The host is resolved once, every address must be an address of
the allowed hosts, and the connection goes to that address: no DNS or parser gap between the check
and the send. Redirects are never followed. Every attempt is recorded, with the address used.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, LocationParseError
from urllib3.util import parse_url

from kling_testkit.webhooks import sign_webhook
from mock_server.tasks import Task, to_ms

if TYPE_CHECKING:
    from mock_server.backend import Backend

MAX_RECORDS = 10_000
POLL_S = 0.05  # longest sleep of the sender with a running clock (its speed can change)
MOCK_TIME_HEADER = "X-Mock-Time"  # mock Unix milliseconds of the status change
USER_AGENT = "kling-testkit-mock"
_NAME_RE = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_SCHEME_RE = re.compile(r"(https?)://", re.IGNORECASE)


# -- targets ---------------------------------------------------------------------------------


class Blocked(Exception):
    """A callback URL the sender refuses: nothing is sent, and it is not retried."""


class Unresolved(Exception):
    """An allowed host name that does not resolve now: the attempt fails and is retried."""


@dataclass(frozen=True)
class Target:
    """Where a callback goes: checked, resolved and pinned."""

    scheme: str
    host: str  # lower case, without IPv6 brackets
    port: int
    host_header: str  # host[:port] as the URL gives it
    path: str  # path and query, as sent
    addresses: tuple[str, ...]  # the checked addresses, in resolver order


def check_target(url: str, allowed_hosts: Sequence[str]) -> Target:
    """The pinned target of a callback URL; Blocked (saying why) if it may not be contacted."""
    scheme, host, literal, port, host_header, path = _parse(url)
    if (host if literal is None else str(literal)) not in {_canonical(h) for h in allowed_hosts}:
        raise Blocked(f"host {host!r} is not in callbacks.allowed_hosts (compared exactly)")
    if literal is None and not _NAME_RE.fullmatch(host):
        raise Blocked(f"host {host!r} is neither a plain name nor an IP address")
    addresses = _resolve(host, port, numeric=literal is not None)
    permitted = _allowed_addresses(allowed_hosts, names=False)
    if not permitted.issuperset(addresses):  # resolve the allowed names only when needed
        permitted |= _allowed_addresses(allowed_hosts, names=True)
    for address in addresses:
        if address not in permitted:
            raise Blocked(
                f"{host} resolves to {address}, which is not an address of callbacks.allowed_hosts"
            )
    return Target(scheme, host, port, host_header, path, tuple(str(a) for a in addresses))


def _parse(
    url: str,
) -> tuple[str, str, ipaddress.IPv4Address | ipaddress.IPv6Address | None, int, str, str]:
    """Scheme, host, IP literal (or None), port, Host header and path of a plain http(s) URL."""
    if "\\" in url:
        raise Blocked("the URL contains a backslash")
    if any(c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in url):
        raise Blocked("the URL contains a control character or white space")
    found = _SCHEME_RE.match(url)
    if found is None:
        raise Blocked("only http or https URLs of the form scheme://host are called")
    authority = re.split(r"[/?#]", url[found.end() :], maxsplit=1)[0]
    if "@" in authority:
        raise Blocked("the URL has userinfo (an @ before the host)")
    if not authority.isascii():
        raise Blocked("the host has non-ASCII characters")
    if "%" in authority:
        raise Blocked("the host has percent escapes")
    if authority.startswith("["):
        inside = authority[1:].partition("]")[0]
        try:
            ipaddress.IPv6Address(inside)
        except ValueError:
            raise Blocked("brackets in the host must hold an IPv6 address") from None
    try:
        parsed = parse_url(url)  # what urllib3 (and so requests) would connect to
        split = urlsplit(url)
        split_host, split_port = split.hostname, split.port
    except (LocationParseError, ValueError) as exc:
        raise Blocked(f"the URL cannot be parsed ({str(exc)[:80]})") from None
    host = (parsed.host or "").lower()
    if not host:
        raise Blocked("the URL has no host")
    scheme = (parsed.scheme or "").lower()
    if scheme not in ("http", "https") or parsed.auth is not None:
        raise Blocked("only http or https URLs without userinfo are called")
    bare = host[1:-1] if host.startswith("[") else host
    if split_host != bare or split_port != parsed.port:
        raise Blocked("URL parsers disagree about the host or port")
    port = parsed.port if parsed.port is not None else (443 if scheme == "https" else 80)
    if not 1 <= port <= 65535:
        raise Blocked(f"port {port} is out of range (1-65535)")
    literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    if host.startswith("["):
        literal = ipaddress.IPv6Address(bare)
    else:
        try:
            literal = ipaddress.IPv4Address(bare)  # dotted quad only: no 127.1, 0x7f000001
        except ValueError:
            literal = None
    return scheme, bare, literal, port, parsed.netloc or host, parsed.request_uri


def _canonical(entry: str) -> str:
    """An allowed_hosts entry as compared: an IP literal in canonical form, else a lower name."""
    text = entry.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _resolve(
    host: str, port: int | None, *, numeric: bool
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The distinct addresses of a host, in resolver order (no DNS for an IP literal)."""
    try:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST if numeric else 0
        )
    except (OSError, UnicodeError) as exc:
        raise Unresolved(f"cannot resolve {host}: {exc}") from None
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = ipaddress.ip_address(sockaddr[0])
            if address not in found:
                found.append(address)
    if not found:
        raise Unresolved(f"{host} has no IPv4 or IPv6 address")
    return found


def _allowed_addresses(
    allowed_hosts: Sequence[str], *, names: bool
) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """What the allowed hosts are (IP literals) and, with ``names``, resolve to (names), now."""
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for entry in allowed_hosts:
        canonical = _canonical(entry)
        try:
            found.add(ipaddress.ip_address(canonical))
            continue
        except ValueError:
            pass
        if names:
            try:
                found.update(_resolve(canonical, None, numeric=False))
            except Unresolved:
                continue
    return found


def _shown(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def post(
    target: Target, body: bytes, headers: dict[str, str], timeout: float, record: dict[str, Any]
) -> int:
    """POST to the first checked address that takes the connection; the HTTP status.

    Sets ``record["target"]`` to the address once a connection is made. Raises HTTPError.
    """
    refused: HTTPError | None = None
    for address in target.addresses:
        pool: urllib3.HTTPConnectionPool
        limits = urllib3.Timeout(connect=timeout, read=timeout)
        if target.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                address,
                target.port,
                timeout=limits,
                retries=False,
                maxsize=1,
                server_hostname=target.host,
                assert_hostname=target.host,
            )
        else:
            pool = urllib3.HTTPConnectionPool(
                address, target.port, timeout=limits, retries=False, maxsize=1
            )
        try:
            response = pool.urlopen(
                "POST",
                target.path,
                body=body,
                headers=headers,
                redirect=False,
                retries=False,
                assert_same_host=False,
                preload_content=False,
            )
            record["target"] = _shown(address, target.port)
            status = response.status
            response.close()
            return status
        except ConnectTimeoutError as exc:  # no connection (refused or timed out): next address
            refused = exc
        except HTTPError:
            record["target"] = _shown(address, target.port)  # connected, then it went wrong
            raise
        finally:
            pool.close()
    assert refused is not None  # check_target never returns a target without addresses
    raise refused


# -- scheduling and sending --------------------------------------------------------------------


@dataclass(order=True)
class Delivery:
    due: float
    seq: int
    task: Task = field(compare=False)
    step: int = field(compare=False)  # index into task.transitions()
    attempt: int = field(compare=False, default=1)
    copies: int = field(compare=False, default=1)  # 2 with the "duplicate" fault


class Dispatcher:
    """Schedules, sends, retries and records the callbacks of one mock.

    All state is guarded by one condition; the sender checks it and waits under that lock, so a
    wake-up is never lost. HTTP runs outside the lock.
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._cond = threading.Condition()
        self._queue: list[Delivery] = []
        self._counter = itertools.count()
        self._records: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDS)
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self._stopped = False

    # -- scheduling ------------------------------------------------------------------------

    def schedule(self, task: Task) -> None:
        """Queue the task's first status change; the rest follow as each one completes."""
        self._push(task, 0, task.created_at, 1)

    def _push(self, task: Task, step: int, due: float, attempt: int) -> None:
        fault = task.callback_fault or {}
        if attempt == 1 and fault.get("fault") == "delay":
            due += float(fault.get("seconds", 0))
        copies = 2 if fault.get("fault") == "duplicate" else 1
        with self._cond:
            if self._stopped:
                return
            heapq.heappush(
                self._queue, Delivery(due, next(self._counter), task, step, attempt, copies)
            )
            self._start()
            self._cond.notify_all()

    def _next_step(self, item: Delivery, at: float) -> None:
        steps = item.task.transitions()
        if item.step + 1 < len(steps):
            self._push(item.task, item.step + 1, max(at, steps[item.step + 1][1]), 1)

    def wake(self) -> None:
        """Tell the sender that the clock or the config changed."""
        with self._cond:
            if self._queue:
                self._start()
            self._cond.notify_all()

    def stop(self) -> None:
        """Stop for good (reset, shutdown): forget the queue and records, send nothing more.

        An attempt in flight may still complete; its record is dropped.
        """
        with self._cond:
            self._stopped = True
            self._queue.clear()
            self._records.clear()
            self._cond.notify_all()

    # -- waiting ---------------------------------------------------------------------------

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is due at the current mock time and nothing is in flight.

        True when so; False if ``timeout`` (wall seconds) passed first.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while True:
                if not self._in_flight and (self._stopped or not self._due()):
                    return True
                if self._queue:
                    self._start()
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, POLL_S))  # a running clock makes work due unnoticed

    def pending(self) -> int:
        """Deliveries queued (due or not) or in flight."""
        with self._cond:
            return len(self._queue) + self._in_flight

    def records(self, task_id: str | None = None) -> list[dict[str, Any]]:
        """Every attempt so far, oldest first (optionally for one task)."""
        with self._cond:
            return [r for r in self._records if task_id is None or r["task_id"] == task_id]

    # -- the sender thread (call the underscored helpers with the lock held) ---------------

    def _due(self) -> bool:
        return bool(self._queue) and self._queue[0].due <= self._backend.now()

    def _start(self) -> None:
        if self._thread is None and not self._stopped:
            self._thread = threading.Thread(
                target=self._run, name="kling-mock-callbacks", daemon=True
            )
            self._thread.start()

    def _take(self) -> Delivery | None:
        """The next due delivery, waiting for it; None (and the thread ends) when none is left."""
        while True:
            if self._stopped or not self._queue:
                self._thread = None
                self._cond.notify_all()
                return None
            now = self._backend.now()
            head = self._queue[0]
            if head.due <= now:
                self._in_flight += 1
                return heapq.heappop(self._queue)
            scale = self._backend.clock.scale
            # A manual clock moves only by advance(), which notifies; a running one is polled.
            self._cond.wait(None if scale == 0 else min(POLL_S, (head.due - now) / scale))

    def _run(self) -> None:
        while True:
            with self._cond:
                item = self._take()
            if item is None:
                return
            try:
                self._deliver(item)
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _deliver(self, item: Delivery) -> None:
        try:
            self._attempt(item)
        except Exception as exc:  # a bug here must not kill the sender or the server
            self._backend.record_error(exc)
            self._record(
                {
                    "task_id": item.task.task_id,
                    "attempt": item.attempt,
                    "at": to_ms(item.due),
                    "target": None,
                    "error": repr(exc),
                },
                "error",
            )
            self._next_step(item, item.due)

    def _attempt(self, item: Delivery) -> None:
        task, settings = item.task, self._backend.config.callbacks
        status, changed_at = task.transitions()[item.step]
        at = item.due
        url = str(task.params["callback_url"])
        body = json.dumps(self._backend.render(task, at=changed_at), separators=(",", ":"))
        record: dict[str, Any] = {
            "task_id": task.task_id,
            "url": url,
            "target": None,
            "task_status": status,
            "attempt": item.attempt,
            "at": to_ms(at),
            "webhook_id": f"{task.task_id}-{item.step}",
            "signed": False,
            "http_status": None,
            "error": None,
            "body": json.loads(body),
        }
        fault = (task.callback_fault or {}).get("fault")
        if fault == "drop":
            self._finish(record, "dropped", item, at)
            return
        try:
            target = check_target(url, settings["allowed_hosts"])
        except Blocked as exc:
            record["error"] = f"{exc}; nothing was sent"
            self._finish(record, "blocked", item, at)
            return
        except Unresolved as exc:
            record["error"] = f"{exc}; nothing was sent"
            self._failed(record, item, at)
            return
        headers = {
            "Content-Type": "application/json",
            "Host": target.host_header,
            "User-Agent": USER_AGENT,
            MOCK_TIME_HEADER: str(to_ms(changed_at)),
        }
        ok = False
        for _ in range(item.copies):
            if self._stopped:  # reset: nothing further is sent
                return
            if settings["secret"]:
                # Receivers check the timestamp against their own wall clock, so sign with it.
                stamp = int(time.time())
                headers.update(sign_webhook(settings["secret"], record["webhook_id"], stamp, body))
                record["signed"] = True
            try:
                code = post(target, body.encode(), headers, float(settings["timeout_s"]), record)
                record["http_status"] = code
                ok = 200 <= code < 300
            except (HTTPError, OSError) as exc:
                record["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
                ok = False
        if ok:
            self._finish(record, "delivered", item, at)
        else:
            self._failed(record, item, at)

    def _failed(self, record: dict[str, Any], item: Delivery, at: float) -> None:
        settings = self._backend.config.callbacks
        if item.attempt < int(settings["max_attempts"]):
            self._record(record, "failed")
            backoff = float(settings["backoff_s"]) * 2 ** (item.attempt - 1)
            self._push(item.task, item.step, at + backoff, item.attempt + 1)
        else:
            self._finish(record, "gave_up", item, at)

    def _finish(self, record: dict[str, Any], outcome: str, item: Delivery, at: float) -> None:
        self._record(record, outcome)
        self._next_step(item, at)

    def _record(self, record: dict[str, Any], outcome: str) -> None:
        with self._cond:
            if not self._stopped:  # after a reset, an attempt that was in flight leaves no trace
                self._records.append({**record, "outcome": outcome})
