"""Lifecycle: submit a text-to-video task, poll it with backoff until it ends, download the video.

Measures: create, poll and download latency (task URLs grouped with ``name=``), job completion
time (``text2video job``) and polls per job (``text2video polls per job``).

    kling-testkit load --scenario lifecycle --users 20 --spawn-rate 5 --duration 1m
"""

from __future__ import annotations

import random

from locust import run_single_user, task

from load_tests.base import KlingUser
from load_tests.counters import report_mock_counters
from load_tests.target import debug_host

report_mock_counters()

PROMPTS = (
    "a red fox crossing fresh snow at dawn, slow tracking shot",
    "a paper boat drifting down a rain-filled gutter, close-up",
    "a lighthouse in a storm, waves crashing over the rocks, wide shot",
)


class LifecycleUser(KlingUser):
    """One video after another: submit, wait, download."""

    @task
    def text_to_video(self) -> None:
        prompt = random.choice(PROMPTS)
        self.run_job("text2video", {"prompt": prompt, "duration": "5"})


if __name__ == "__main__":
    LifecycleUser.host = debug_host()
    run_single_user(LifecycleUser)
