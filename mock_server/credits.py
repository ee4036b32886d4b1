"""Resource packs and what tasks draw from them, derived from the tasks and the clock.

Nothing is decremented in place: a pack's remaining units are its total minus the cost of the
tasks charged to it that have succeeded by now, so the balance is right at any mock time, and a
failed task never costs anything. A running task reserves its cost so two tasks cannot spend the
same units.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mock_server.config import Pack
from mock_server.tasks import SUCCEED, Task, to_ms


@dataclass
class PackState:
    """A pack placed on the mock's timeline, with the tasks charged to it.

    Charges wait in a heap until their task ends; mock time only moves forward, so each is
    settled once (kept if the task succeeded, dropped if it failed) and every query is cheap.
    """

    pack: Pack
    account: str
    effective_at: float
    invalid_at: float
    _inflight: list[tuple[float, int, Task]] = field(default_factory=list)
    _reserved: Decimal = Decimal(0)
    _settled: Decimal = Decimal(0)

    @property
    def pack_id(self) -> str:
        digest = hashlib.sha256(f"{self.account}:{self.pack.name}".encode()).hexdigest()
        return str(int(digest[:15], 16))

    def online(self, now: float) -> bool:
        return self.effective_at <= now < self.invalid_at

    def charge(self, task: Task) -> None:
        """Reserve a new task's cost on this pack until the task ends."""
        heapq.heappush(self._inflight, (task.ends_at, task.seq, task))
        self._reserved += task.cost

    def _settle(self, now: float) -> None:
        while self._inflight and self._inflight[0][0] <= now:
            task = heapq.heappop(self._inflight)[2]
            self._reserved -= task.cost
            if task.outcome == SUCCEED:
                self._settled += task.cost

    def consumed(self, now: float) -> Decimal:
        self._settle(now)
        return self._settled

    def reserved(self, now: float) -> Decimal:
        self._settle(now)
        return self._reserved

    def remaining(self, now: float) -> Decimal:
        return max(Decimal(0), Decimal(str(self.pack.total)) - self.consumed(now))

    def available(self, now: float) -> Decimal:
        """Units a new task may reserve now."""
        if not self.online(now):
            return Decimal(0)
        return self.remaining(now) - self.reserved(now)

    def status(self, now: float) -> str:
        if now < self.effective_at:
            return "toBeOnline"
        if now >= self.invalid_at:
            return "expired"
        return "runOut" if self.remaining(now) <= 0 else "online"

    def to_api(self, now: float) -> dict[str, Any]:
        """The documented ``resource_pack_subscribe_infos`` item."""
        return {
            "resource_pack_name": self.pack.name,
            "resource_pack_id": self.pack_id,
            "resource_pack_type": self.pack.pack_type,
            "total_quantity": float(self.pack.total),
            "remaining_quantity": float(self.remaining(now)),
            "purchase_time": to_ms(self.effective_at),
            "effective_time": to_ms(self.effective_at),
            "invalid_time": to_ms(self.invalid_at),
            "status": self.status(now),
        }


def place(account: str, packs: tuple[Pack, ...], clock_start: float) -> list[PackState]:
    """Put an account's configured packs on the timeline that starts at ``clock_start``."""
    states = []
    for pack in packs:
        begins = clock_start + pack.starts_after_s
        states.append(PackState(pack, account, begins, begins + pack.lifetime_s))
    return states


def choose(states: list[PackState], kind: str, cost: Decimal, now: float) -> PackState | None:
    """The pack a new task is charged to: the soonest-expiring online pack that covers it."""
    fits = [s for s in states if s.pack.kind == kind and s.available(now) >= cost]
    return min(fits, key=lambda s: (s.invalid_at, s.pack.name), default=None)


def wait_for_units(states: list[PackState], kind: str, cost: Decimal, now: float) -> float | None:
    """Seconds until a pack not yet online could cover ``cost``, or None."""
    later = [
        s.effective_at - now
        for s in states
        if s.pack.kind == kind and s.effective_at > now and Decimal(str(s.pack.total)) >= cost
    ]
    return min(later, default=None)
