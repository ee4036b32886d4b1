"""The mock's clock: real time (optionally scaled) or manual, and always able to jump ahead.

Everything time-dependent in the mock (task progress, expiry, windows) reads ``now()`` from here.
The time itself lives in the store (a :class:`~mock_server.store.ClockState`), so every process
that shares a store shares one clock; this is the backend's handle on it.
"""

from __future__ import annotations

from collections.abc import Callable

from mock_server.store import ClockState


class Clock:
    """Mock time in Unix seconds. ``scale`` 0 is a manual clock; 1 is real time; 60 is 60x."""

    def __init__(
        self,
        state: Callable[[], ClockState],
        wall: Callable[[], float],
        advance: Callable[[float], object],
    ) -> None:
        self._state, self._wall, self._advance = state, wall, advance

    def now(self) -> float:
        """Current mock time in seconds since the Unix epoch."""
        return self._state().now(self._wall())

    @property
    def scale(self) -> float:
        return self._state().scale

    @property
    def manual(self) -> bool:
        return self.scale == 0

    def advance(self, seconds: float) -> float:
        """Jump ahead by ``seconds`` (never back); return the new time."""
        if not seconds >= 0:
            raise ValueError(f"the clock only moves forward; got {seconds} seconds")
        self._advance(seconds)
        return self.now()
