"""Honouring ``Retry-After``: one gate per account, shared by the users of one process.

A 429 with ``Retry-After`` closes the gate for a scope: the whole account after a request-rate
refusal (1302), else the one method and path that was refused (a create). Every request waits
until its scope is open again. The mock counts a request that arrives before the advertised time
as a violation, whoever sent it, so users of one account must share what they were told.

A request already on its way when another user's 429 comes back cannot know of it, and arrives
early. ``serial=True`` closes that gap: one request of the account at a time in this process.
Processes do not share gates; in a distributed run give each its own account, or expect early
requests across processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import gevent
from gevent.lock import BoundedSemaphore

ACCOUNT = "*"
"""The scope of a request-rate refusal: every request of the account."""
MARGIN_S = 0.05
"""Wall seconds added to every wait: a request must arrive after the time, not at it."""


class RetryAfterGate:
    """When an account may send again, per scope, as the 429s it got said."""

    def __init__(self, *, serial: bool = False) -> None:
        self.serial = serial
        self.waited_s = 0.0
        self._until: dict[str, float] = {}  # scope -> time.monotonic() it opens
        self._turn = BoundedSemaphore(1)

    def closed_for(self, scope: str) -> float:
        """Seconds until a request in ``scope`` may go (0 when it may go now)."""
        until = max(self._until.get(ACCOUNT, 0.0), self._until.get(scope, 0.0))
        return max(0.0, until - time.monotonic())

    def close(self, scope: str, seconds: float) -> None:
        """A 429 said to wait ``seconds`` before the next request in ``scope``."""
        now = time.monotonic()
        self._until = {s: t for s, t in self._until.items() if t > now}  # forget open scopes
        self._until[scope] = max(self._until.get(scope, 0.0), now + seconds + MARGIN_S)

    @contextmanager
    def turn(self, scope: str) -> Iterator[None]:
        """Wait until ``scope`` is open (and, when serial, no request of the account is out)."""
        while True:
            self._wait(scope)
            if not self.serial:
                yield
                return
            with self._turn:
                if self.closed_for(scope) > 0:  # closed while this one queued
                    continue
                yield
                return

    def _wait(self, scope: str) -> None:
        while (left := self.closed_for(scope)) > 0:
            started = time.monotonic()
            gevent.sleep(left)
            self.waited_s += time.monotonic() - started


_GATES: dict[str, RetryAfterGate] = {}


def gate_for(account: str, *, serial: bool = False) -> RetryAfterGate:
    """This process's gate of an account, made on first use; serial once any user asks."""
    found = _GATES.get(account)
    if found is None:
        found = _GATES[account] = RetryAfterGate(serial=serial)
    found.serial = found.serial or serial
    return found
