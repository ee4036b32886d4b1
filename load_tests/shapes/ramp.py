"""Ramp: up to ``peak_users`` over ``ramp_s``, hold for ``hold_s``, down over ``ramp_s``."""

from __future__ import annotations

import math

from locust import LoadTestShape

from load_tests.shapes import past_run_time


class RampShape(LoadTestShape):
    """A linear ramp up, a plateau, a linear ramp down."""

    peak_users = 50
    ramp_s = 60.0
    hold_s = 120.0

    def tick(self) -> tuple[int, float] | None:
        if past_run_time(self):
            return None
        elapsed = self.get_run_time()
        rate = max(1.0, self.peak_users / self.ramp_s)
        if elapsed < self.ramp_s:
            return max(1, math.ceil(self.peak_users * elapsed / self.ramp_s)), rate
        if elapsed < self.ramp_s + self.hold_s:
            return self.peak_users, rate
        down = elapsed - self.ramp_s - self.hold_s
        if down < self.ramp_s:
            return max(1, math.ceil(self.peak_users * (1 - down / self.ramp_s))), rate
        return None
