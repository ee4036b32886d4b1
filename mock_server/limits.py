"""Concurrency waits and Retry-After values, on the mock's clock.

Each answer that refuses also says how long to wait, and that wait is true: after it, on the
mock's clock, the same request gets through (unless something else changed meanwhile). The
sliding request windows and the running slots themselves live in the store.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from mock_server.store import Charge


def wait_for_slots(running: Iterable[Charge], now: float, need: int, limit: int) -> float | None:
    """Seconds until ``need`` slots are free, or None if waiting can never free them."""
    if need > limit:
        return None
    active = sorted((c for c in running if now < c.ends_at), key=lambda c: c.ends_at)
    free = limit - sum(c.slots for c in active)
    if free >= need:
        return 0.0
    for charge in active:
        if math.isinf(charge.ends_at):
            return None
        free += charge.slots
        if free >= need:
            return charge.ends_at - now
    return None


def header_seconds(wait: float, time_scale: float) -> int:
    """A Retry-After value: whole seconds, rounded up, in wall time when the clock is scaled."""
    real = wait if time_scale == 0 else wait / time_scale
    return max(1, math.ceil(real - 1e-9))
