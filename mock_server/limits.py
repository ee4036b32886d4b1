"""Request-rate windows and task concurrency, both on the mock's clock.

Each answer that refuses also says how long to wait, and that wait is true: after it, on the
mock's clock, the same request gets through (unless something else changed meanwhile).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable

from mock_server.tasks import Task


class RateWindow:
    """A sliding window of request times for one account."""

    def __init__(self) -> None:
        self._times: deque[float] = deque()

    def admit(self, now: float, limit: int, window_s: float) -> float | None:
        """Count a request at ``now``; None if admitted, else seconds until one would be."""
        while self._times and self._times[0] <= now - window_s:
            self._times.popleft()
        if len(self._times) >= limit:
            return self._times[0] + window_s - now
        self._times.append(now)
        return None


class Running:
    """The tasks of one account and pack kind that hold slots, soonest-ending first.

    Mock time only moves forward, so a task that has ended is dropped for good: each check
    costs O(log n) however many tasks the account ever ran.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Task]] = []
        self._slots = 0

    def add(self, task: Task) -> None:
        heapq.heappush(self._heap, (task.ends_at, task.seq, task))
        self._slots += task.slots

    def in_use(self, now: float) -> int:
        """Slots held at ``now``."""
        while self._heap and self._heap[0][0] <= now:
            self._slots -= heapq.heappop(self._heap)[2].slots
        return self._slots

    def tasks(self, now: float) -> list[Task]:
        self.in_use(now)
        return [task for _, _, task in self._heap]


def wait_for_slots(running: Iterable[Task], now: float, need: int, limit: int) -> float | None:
    """Seconds until ``need`` slots are free, or None if waiting can never free them."""
    if need > limit:
        return None
    active = sorted((t for t in running if now < t.ends_at), key=lambda t: t.ends_at)
    free = limit - sum(t.slots for t in active)
    if free >= need:
        return 0.0
    for task in active:
        if math.isinf(task.ends_at):
            return None
        free += task.slots
        if free >= need:
            return task.ends_at - now
    return None


def header_seconds(wait: float, time_scale: float) -> int:
    """A Retry-After value: whole seconds, rounded up, in wall time when the clock is scaled."""
    real = wait if time_scale == 0 else wait / time_scale
    return max(1, math.ceil(real - 1e-9))
