"""Task callbacks: POST the task object (no envelope) to ``callback_url`` on each status change.

Deliveries run on the mock's clock. With the manual clock, advancing delivers everything that fell
due, synchronously and in time order (retries included); with a real clock a background thread
does. A task's callbacks go out in status order: the next waits until the previous one was
delivered or given up. Only hosts in ``callbacks.allowed_hosts`` are ever contacted, redirects
are not followed, and every attempt is recorded.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from kling_testkit.webhooks import sign_webhook
from mock_server.tasks import Task, to_ms

if TYPE_CHECKING:
    from mock_server.backend import Backend

MAX_RECORDS = 10_000
POLL_S = 0.05  # how often the real-clock dispatcher looks for due deliveries


@dataclass(order=True)
class Delivery:
    due: float
    seq: int
    task: Task = field(compare=False)
    step: int = field(compare=False)  # index into task.transitions()
    attempt: int = field(compare=False, default=1)
    copies: int = field(compare=False, default=1)  # 2 with the "duplicate" fault


class Dispatcher:
    """Schedules, sends, retries and records the callbacks of one mock."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self._sending = threading.Lock()  # one delivery loop at a time keeps the order
        self._queue: list[Delivery] = []
        self._counter = itertools.count()
        self._records: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDS)
        self._session = requests.Session()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    # -- scheduling ------------------------------------------------------------------------

    def schedule(self, task: Task) -> None:
        """Queue the task's first status change; the rest follow as each one completes."""
        self._push(task, 0, task.created_at, 1)
        self.wake()

    def _push(self, task: Task, step: int, due: float, attempt: int) -> None:
        fault = task.callback_fault or {}
        if attempt == 1 and fault.get("fault") == "delay":
            due += float(fault.get("seconds", 0))
        copies = 2 if fault.get("fault") == "duplicate" else 1
        with self._lock:
            heapq.heappush(
                self._queue, Delivery(due, next(self._counter), task, step, attempt, copies)
            )

    def _next_step(self, item: Delivery, at: float) -> None:
        steps = item.task.transitions()
        if item.step + 1 < len(steps):
            self._push(item.task, item.step + 1, max(at, steps[item.step + 1][1]), 1)

    # -- delivering ------------------------------------------------------------------------

    def deliver_due(self) -> None:
        """Send everything due by now, in time order (retries that fall due are sent too)."""
        with self._sending:
            now = self._backend.now()
            while True:
                with self._lock:
                    if not self._queue or self._queue[0].due > now:
                        return
                    item = heapq.heappop(self._queue)
                try:
                    self._attempt(item)
                except Exception as exc:  # a bug here must not break the clock or the server
                    self._backend.record_error(exc)
                    self._record(
                        {
                            "task_id": item.task.task_id,
                            "attempt": item.attempt,
                            "at": to_ms(item.due),
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
        if urlsplit(url).hostname not in settings["allowed_hosts"]:
            record["error"] = "host not in callbacks.allowed_hosts; nothing was sent"
            self._finish(record, "blocked", item, at)
            return
        headers = {"Content-Type": "application/json"}
        if settings["secret"]:
            headers.update(sign_webhook(settings["secret"], record["webhook_id"], int(at), body))
            record["signed"] = True
        ok = False
        for _ in range(item.copies):
            try:
                response = self._session.post(
                    url,
                    data=body.encode(),
                    headers=headers,
                    timeout=settings["timeout_s"],
                    allow_redirects=False,
                )
                record["http_status"] = response.status_code
                ok = 200 <= response.status_code < 300
            except requests.RequestException as exc:
                record["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
                ok = False
        if ok:
            self._finish(record, "delivered", item, at)
        elif item.attempt < int(settings["max_attempts"]):
            self._record(record, "failed")
            backoff = float(settings["backoff_s"]) * 2 ** (item.attempt - 1)
            self._push(task, item.step, at + backoff, item.attempt + 1)
        else:
            self._finish(record, "gave_up", item, at)

    def _finish(self, record: dict[str, Any], outcome: str, item: Delivery, at: float) -> None:
        self._record(record, outcome)
        self._next_step(item, at)

    def _record(self, record: dict[str, Any], outcome: str) -> None:
        with self._lock:
            self._records.append({**record, "outcome": outcome})

    def records(self, task_id: str | None = None) -> list[dict[str, Any]]:
        """Every attempt so far, oldest first (optionally for one task)."""
        with self._lock:
            return [r for r in self._records if task_id is None or r["task_id"] == task_id]

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    # -- the real-clock thread -------------------------------------------------------------

    def wake(self) -> None:
        """Start the background sender if the clock runs by itself and work is queued."""
        if self._backend.clock.manual or self._stopped.is_set():
            return
        with self._lock:
            if not self._queue or self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name="kling-mock-callbacks", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(POLL_S):
            if not self._backend.clock.manual:
                try:
                    self.deliver_due()
                except Exception as exc:  # never let the sender die silently
                    self._backend.record_error(exc)
            with self._lock:
                if not self._queue or self._backend.clock.manual:
                    self._thread = None  # wake() starts a new one when work comes
                    return

    def stop(self) -> None:
        self._stopped.set()
