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

import heapq
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from urllib3.exceptions import HTTPError

from kling_testkit.webhooks import sign_webhook
from mock_server.callback_targets import Blocked, Unresolved, check_target, post
from mock_server.tasks import Task, to_ms

if TYPE_CHECKING:
    from mock_server.backend import Backend

MAX_RECORDS = 10_000
POLL_S = 0.05  # longest sleep of the sender with a running clock (its speed can change)
MOCK_TIME_HEADER = "X-Mock-Time"  # mock Unix milliseconds of the status change
USER_AGENT = "kling-testkit-mock"
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
