"""Task callbacks: POST the task object (no envelope) to ``callback_url`` on each status change.

Deliveries run on the mock's clock and never on a request thread: one sender thread per mock
(started when a callback is queued, gone once the queue is empty) sends each delivery when it
falls due, for the manual and the real clock alike. Queuing, advancing the clock and config
changes wake it; :meth:`Dispatcher.wait_idle` waits, bounded, until nothing due is left. A task's
callbacks go out in status order: the next waits until the previous one was delivered or given up.

Where a callback may go is checked in :mod:`mock_server.callback_targets`; every attempt is
recorded, with the address used.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import TYPE_CHECKING, Any

from urllib3.exceptions import HTTPError

from kling_testkit.webhooks import sign_webhook
from mock_server.audit import CALLBACK_RECEIVER_FAILURES, receiver_failure
from mock_server.callback_targets import Blocked, Unresolved, check_target, post
from mock_server.store import Delivery, Lease
from mock_server.tasks import Task, to_ms

if TYPE_CHECKING:
    from mock_server.backend import Backend

MAX_RECORDS = 10_000
POLL_S = 0.05  # longest sleep of the sender with a running clock, or a store others change
LEASE_MARGIN_S = 30.0  # a leased delivery returns to the queue this long after its sends' timeouts
MOCK_TIME_HEADER = "X-Mock-Time"  # mock Unix milliseconds of the status change
USER_AGENT = "kling-testkit-mock"
# -- scheduling and sending --------------------------------------------------------------------


class Dispatcher:
    """Schedules, sends, retries and records the callbacks of one mock.

    The queue, its leases and the records are in the store, so with a shared store any process
    may send a delivery, and each is sent by one. The condition only wakes this process's
    sender; HTTP runs outside it.
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._store = backend.store
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._seq = itertools.count()

    # -- scheduling ------------------------------------------------------------------------

    def schedule(self, task: Task) -> None:
        """Queue the task's first status change; the rest follow as each one completes."""
        self._push(task, 0, task.created_at, 1, None)

    def _push(self, task: Task, step: int, due: float, attempt: int, epoch: int | None) -> None:
        fault = task.callback_fault or {}
        if attempt == 1 and fault.get("fault") == "delay":
            due += float(fault.get("seconds", 0))
        copies = 2 if fault.get("fault") == "duplicate" else 1
        if self._stopped:
            return
        seq = self._store.take("deliveries")
        self._store.push(Delivery(due, seq, task, step, attempt, copies), epoch)
        with self._cond:
            self._start()
            self._cond.notify_all()

    def _next_step(self, lease: Lease, at: float) -> None:
        item = lease.delivery
        steps = item.task.transitions()
        if item.step + 1 < len(steps):
            self._push(item.task, item.step + 1, max(at, steps[item.step + 1][1]), 1, lease.epoch)

    def wake(self) -> None:
        """Tell the sender that the clock or the config changed."""
        with self._cond:
            if self._store.pending()[0]:
                self._start()
            self._cond.notify_all()

    def stop(self) -> None:
        """Stop this process's sender for good (reset, shutdown); an attempt in flight may
        still complete, and its record is dropped with its epoch."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    # -- waiting ---------------------------------------------------------------------------

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is due at the current mock time and nothing is in flight.

        True when so; False if ``timeout`` (wall seconds) passed first.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while True:
                queued, leased, due = self._store.pending()
                if not leased and (self._stopped or due is None or due > self._backend.now()):
                    return True
                if queued:
                    self._start()
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, POLL_S))  # a running clock makes work due unnoticed

    def pending(self) -> int:
        """Deliveries queued (due or not) or in flight."""
        queued, leased, _ = self._store.pending()
        return queued + leased

    def records(self, task_id: str | None = None) -> list[dict[str, Any]]:
        """Every attempt so far, oldest first (optionally for one task)."""
        return self._store.attempts(task_id)

    # -- the sender thread (call the underscored helpers with the lock held) ---------------

    def _start(self) -> None:
        if self._thread is None and not self._stopped:
            self._thread = threading.Thread(
                target=self._run, name="kling-mock-callbacks", daemon=True
            )
            self._thread.start()

    def _hold_s(self) -> float:
        settings = self._backend.config.callbacks
        return 2 * float(settings["timeout_s"]) + LEASE_MARGIN_S

    def _take(self) -> Lease | None:
        """The next due delivery, waiting for it; None (and the thread ends) when none is left."""
        while True:
            if self._stopped:
                break
            lease = self._store.lease(self._backend.now(), self._hold_s())
            if lease is not None:
                return lease
            queued, _, due = self._store.pending()
            if not queued:
                break
            scale = self._backend.clock.scale
            if scale == 0 and not self._store.shared:
                wait = None  # a manual clock moves only by advance(), which notifies
            elif scale == 0 or due is None:
                wait = POLL_S
            else:
                wait = min(POLL_S, max(0.0, (due - self._backend.now()) / scale))
            self._cond.wait(wait)
        self._thread = None
        self._cond.notify_all()
        return None

    def join(self, timeout: float) -> bool:
        """Wait (bounded) for this process's sender to end after :meth:`stop`; whether it did."""
        with self._cond:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # the store failed (Redis went away): keep it, stop sending
            self._backend.record_error(exc)
            with self._cond:
                if self._thread is threading.current_thread():
                    self._thread = None
                self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                lease = self._take()
            if lease is None:
                return
            try:
                self._deliver(lease)
            finally:
                self._store.release(lease)
                with self._cond:
                    self._cond.notify_all()

    def _deliver(self, lease: Lease) -> None:
        item = lease.delivery
        try:
            self._attempt(lease)
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
                lease,
            )
            self._next_step(lease, item.due)

    def _attempt(self, lease: Lease) -> None:
        item = lease.delivery
        task, settings = item.task, self._backend.config.callbacks
        status, changed_at = task.transitions()[item.step]
        at = item.due
        url = str(task.params["callback_url"])
        shape = self._backend.config.response_profile
        shown = self._backend.render_api(task, at=changed_at, profile=shape)
        body = json.dumps(shown, separators=(",", ":"))
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
            "elapsed_ms": None,
            "error": None,
            "body": json.loads(body),
        }
        fault = (task.callback_fault or {}).get("fault")
        if fault == "drop":
            self._finish(record, "dropped", lease, at)
            return
        try:
            target = check_target(url, settings["allowed_hosts"])
        except Blocked as exc:
            record["error"] = f"{exc}; nothing was sent"
            self._finish(record, "blocked", lease, at)
            return
        except Unresolved as exc:
            record["error"] = f"{exc}; nothing was sent"
            self._failed(record, lease, at)
            return
        headers = {
            "Content-Type": "application/json",
            "Host": target.host_header,
            "User-Agent": USER_AGENT,
            MOCK_TIME_HEADER: str(to_ms(changed_at)),
        }
        ok = False
        for _ in range(item.copies):
            if self._stopped or self._backend.epoch() != lease.epoch:
                return  # reset: nothing further is sent
            if settings["secret"]:
                # Receivers check the timestamp against their own wall clock, so sign with it.
                stamp = int(time.time())
                headers.update(sign_webhook(settings["secret"], record["webhook_id"], stamp, body))
                record["signed"] = True
            started = time.monotonic()
            try:
                code = post(target, body.encode(), headers, float(settings["timeout_s"]), record)
                record["http_status"] = code
                ok = 200 <= code < 300
            except (HTTPError, OSError) as exc:
                record["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
                ok = False
            record["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
        if ok:
            self._finish(record, "delivered", lease, at)
        else:
            self._failed(record, lease, at)

    def _failed(self, record: dict[str, Any], lease: Lease, at: float) -> None:
        item = lease.delivery
        settings = self._backend.config.callbacks
        if item.attempt < int(settings["max_attempts"]):
            self._record(record, "failed", lease)
            backoff = float(settings["backoff_s"]) * 2 ** (item.attempt - 1)
            self._push(item.task, item.step, at + backoff, item.attempt + 1, lease.epoch)
        else:
            self._finish(record, "gave_up", lease, at)

    def _finish(self, record: dict[str, Any], outcome: str, lease: Lease, at: float) -> None:
        self._record(record, outcome, lease)
        self._next_step(lease, at)

    def _record(self, record: dict[str, Any], outcome: str, lease: Lease) -> None:
        # After a reset, an attempt that was in flight leaves no trace (its epoch is gone).
        if not self._stopped:
            self._store.add_attempt({**record, "outcome": outcome}, lease.epoch, MAX_RECORDS)
            account = lease.delivery.task.account
            if outcome == "delivered":
                self._store.bump(account, "callbacks_delivered")
            elif outcome in ("failed", "gave_up", "blocked", "error"):
                self._store.bump(account, "callbacks_failed")
            slow_s = float(self._backend.config.audit["callback_slow_s"])
            failed = outcome in ("failed", "gave_up")  # the receiver's doing, not blocked
            shown = receiver_failure(record, failed, outcome == "delivered", slow_s)
            if shown is not None:
                self._store.note(account, CALLBACK_RECEIVER_FAILURES, shown)
