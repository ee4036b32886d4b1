"""Step: ``step_users`` more users every ``step_s``, ``steps`` times, then stop."""

from __future__ import annotations

from locust import LoadTestShape

from load_tests.shapes import past_run_time


class StepShape(LoadTestShape):
    """Stairs: find the load where latency or errors turn."""

    step_users = 10
    step_s = 30.0
    steps = 5
    spawn_rate = 10.0

    def tick(self) -> tuple[int, float] | None:
        if past_run_time(self):
            return None
        step = int(self.get_run_time() // self.step_s)
        if step >= self.steps:
            return None
        return (step + 1) * self.step_users, self.spawn_rate
