"""Spike: ``base_users`` for ``before_s``, ``spike_users`` for ``spike_s``, base for ``after_s``."""

from __future__ import annotations

from locust import LoadTestShape

from load_tests.shapes import past_run_time


class SpikeShape(LoadTestShape):
    """A steady load with one sudden surge, started as fast as ``spike_rate`` allows."""

    base_users = 5
    spike_users = 50
    before_s = 60.0
    spike_s = 30.0
    after_s = 60.0
    spike_rate = 50.0

    def tick(self) -> tuple[int, float] | None:
        if past_run_time(self):
            return None
        elapsed = self.get_run_time()
        if elapsed < self.before_s:
            return self.base_users, self.spike_rate
        if elapsed < self.before_s + self.spike_s:
            return self.spike_users, self.spike_rate
        if elapsed < self.before_s + self.spike_s + self.after_s:
            return self.base_users, self.spike_rate
        return None
