"""The mock's clock: real time (optionally scaled) or manual, and always able to jump ahead.

Everything time-dependent in the mock (task progress, expiry, windows) reads ``now()`` from here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Clock:
    """Mock time in Unix seconds. ``scale`` 0 is a manual clock; 1 is real time; 60 is 60x."""

    def __init__(
        self, start: float, scale: float = 0.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        if scale < 0:
            raise ValueError(f"scale must be >= 0, got {scale}")
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._base = start
        self._anchor = monotonic()
        self._scale = scale

    def now(self) -> float:
        """Current mock time in seconds since the Unix epoch."""
        with self._lock:
            return self._now()

    def _now(self) -> float:
        return self._base + (self._monotonic() - self._anchor) * self._scale

    @property
    def scale(self) -> float:
        return self._scale

    @property
    def manual(self) -> bool:
        return self._scale == 0

    def advance(self, seconds: float) -> float:
        """Jump ahead by ``seconds`` (never back); return the new time."""
        if not seconds >= 0:
            raise ValueError(f"the clock only moves forward; got {seconds} seconds")
        with self._lock:
            self._base += seconds
            return self._now()

    def set_scale(self, scale: float) -> None:
        """Change speed (0 = manual) without a jump in the current time."""
        if scale < 0:
            raise ValueError(f"scale must be >= 0, got {scale}")
        with self._lock:
            self._base, self._anchor, self._scale = self._now(), self._monotonic(), scale
