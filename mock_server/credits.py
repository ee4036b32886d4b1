"""Resource packs: where they sit on the timeline, which one a task draws on, their API shape.

Nothing is decremented in place: a pack's remaining units are its total minus the cost of the
tasks charged to it that have succeeded by now (the store sums them), so the balance is right at
any mock time and a failed task never costs anything. A running task reserves its cost so two
tasks cannot spend the same units.
"""

from __future__ import annotations

import functools
import hashlib
from decimal import Decimal
from typing import Any

from mock_server.config import Pack
from mock_server.store import PackSpec
from mock_server.tasks import to_ms


def pack_id(account: str, name: str) -> str:
    digest = hashlib.sha256(f"{account}:{name}".encode()).hexdigest()
    return str(int(digest[:15], 16))


@functools.lru_cache(maxsize=1024)
def place(account: str, packs: tuple[Pack, ...], origin: float) -> tuple[PackSpec, ...]:
    """Put an account's configured packs on the timeline that starts at ``origin`` (cached: the
    pack ids of every stored task share one string each)."""
    specs = []
    for pack in packs:
        begins = origin + pack.starts_after_s
        specs.append(
            PackSpec(
                pack_id(account, pack.name),
                pack.name,
                pack.kind,
                Decimal(str(pack.total)),
                begins,
                begins + pack.lifetime_s,
            )
        )
    return tuple(specs)


def status(spec: PackSpec, remaining: Decimal, now: float) -> str:
    if now < spec.effective_at:
        return "toBeOnline"
    if now >= spec.invalid_at:
        return "expired"
    return "runOut" if remaining <= 0 else "online"


def to_api(spec: PackSpec, pack: Pack, consumed: Decimal, now: float) -> dict[str, Any]:
    """The documented ``resource_pack_subscribe_infos`` item."""
    remaining = max(Decimal(0), spec.total - consumed)
    return {
        "resource_pack_name": spec.name,
        "resource_pack_id": spec.pack_id,
        "resource_pack_type": pack.pack_type,
        "total_quantity": float(pack.total),
        "remaining_quantity": float(remaining),
        "purchase_time": to_ms(spec.effective_at),
        "effective_time": to_ms(spec.effective_at),
        "invalid_time": to_ms(spec.invalid_at),
        "status": status(spec, remaining, now),
    }


def wait_for_units(
    specs: tuple[PackSpec, ...], kind: str, cost: Decimal, now: float
) -> float | None:
    """Seconds until a pack not yet online could cover ``cost``, or None."""
    later = [
        s.effective_at - now
        for s in specs
        if s.kind == kind and s.effective_at > now and s.total >= cost
    ]
    return min(later, default=None)
