"""The step shape with knobs small enough for a test: 2, 4, then 6 users, 1.5 s each."""

from __future__ import annotations

from load_tests.shapes import step


class QuickStep(step.StepShape):
    step_users = 2
    step_s = 1.5
    steps = 3
