"""A task and its timeline. Status is never stored: it is read off the timeline at a time."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kling_testkit.spec.document import choices
from kling_testkit.spec.statuses import FAILED, PROCESSING, SUBMITTED, SUCCEED, TERMINAL

__all__ = [
    "FAILED",
    "PROCESSING",
    "SUBMITTED",
    "SUCCEED",
    "TERMINAL",
    "Task",
    "draw_timings",
    "to_ms",
]

PER_EXTRA_IMAGE = "per_extra_image"
"""The multiplier applied once per image beyond the first (``n``); the others name an option."""


@dataclass(frozen=True, slots=True)
class Task:
    """One generation task: who asked, what for, and when each stage starts.

    The task is immutable; the mock's clock decides where on its timeline it is.
    """

    task_id: str
    account: str
    family: str
    params: dict[str, Any]
    created_at: float  # mock seconds
    queued_s: float  # seconds in "submitted"
    run_s: float  # seconds in "processing"
    result_ids: tuple[str, ...]  # video then audio ids (one each); images use indexes
    seq: int  # creation order, to break ties in "newest first"
    base_url: str  # host the client used; result URLs point there
    result_ttl_s: float  # how long result URLs work after the task ends
    outcome: str = SUCCEED
    status_msg: str = ""
    cost: Decimal = Decimal(0)  # units deducted if it succeeds
    slots: int = 1  # concurrency slots held while it runs
    pack_id: str | None = None
    callback_fault: dict[str, Any] | None = None
    parent: dict[str, Any] | None = None  # the source video: id, url, duration, task_id

    @property
    def external_task_id(self) -> str | None:
        value = self.params.get("external_task_id")
        return value if isinstance(value, str) else None

    @property
    def processing_at(self) -> float:
        return self.created_at + self.queued_s

    @property
    def ends_at(self) -> float:
        return self.created_at + self.queued_s + self.run_s

    def status_at(self, now: float) -> str:
        if now >= self.ends_at:
            return self.outcome
        return PROCESSING if now >= self.processing_at else SUBMITTED

    def transitions(self) -> list[tuple[str, float]]:
        """Each status with the mock time it starts (a stuck task never ends)."""
        steps = [(SUBMITTED, self.created_at), (PROCESSING, self.processing_at)]
        if math.isfinite(self.ends_at):
            steps.append((self.outcome, self.ends_at))
        return steps

    def updated_at(self, now: float) -> float:
        """When the status last changed, as seen at ``now``."""
        if now >= self.ends_at:
            return self.ends_at
        return self.processing_at if now >= self.processing_at else self.created_at


def to_ms(seconds: float) -> int:
    return math.floor(seconds * 1000)


def draw_timings(
    rng: random.Random,
    family: str,
    params: dict[str, Any],
    durations: dict[str, dict[str, float]],
    multipliers: dict[str, float],
    spread: float,
) -> tuple[float, float]:
    """Seconds queued and seconds processing for a new task, with a seeded lognormal spread.

    Each multiplier named ``<field>_<value>`` (``mode_pro``, ``duration_10``: see
    :func:`kling_testkit.spec.document.choices`) stretches the processing time of a task whose
    effective ``field`` is ``value``; ``per_extra_image`` applies once per image beyond the first.
    """
    base = durations[family]
    options = choices()
    stretch = 1.0
    for name, factor in multipliers.items():
        if name in options:
            key, value = options[name]
            if str(params.get(key)) == value:
                stretch *= factor
    stretch *= 1.0 + multipliers.get(PER_EXTRA_IMAGE, 0.0) * (int(params.get("n", 1)) - 1)

    def jitter() -> float:
        # Clamped so a seed never produces an absurd outlier (0.5x to 2x the profile).
        return min(2.0, max(0.5, math.exp(rng.gauss(0.0, spread)))) if spread else 1.0

    return base["queue_s"] * jitter(), base["run_s"] * stretch * jitter()
