"""Burst: more users than the account may run tasks, submitting without pause, polling fast.

The runner's mock keeps the documented concurrency (5 videos at once) and adds a request-rate
limit (20 requests a mock minute), so creates meet 429/1303 and polls meet 429/1302. Each user
honours ``Retry-After``: the account's gate (``load_tests.gate``, serial here) holds every
request of the account until the time a 429 gave, so the mock counts no Retry-After violation.

Measures: how many 429s a burst meets, the time it loses to them (job completion includes the
waits), and that the client never comes back early (``Retry-After violations: 0``).

    kling-testkit load --scenario burst --users 12 --spawn-rate 12 --duration 30s
"""

from __future__ import annotations

from locust import run_single_user, task

from load_tests.base import KlingUser
from load_tests.counters import report_mock_counters
from load_tests.target import debug_host

report_mock_counters()


class BurstUser(KlingUser):
    """Submit, follow, submit again: no think time, short poll intervals."""

    think_time = (0.0, 0.0)
    poll_interval = 2.0
    max_poll_interval = 4.0
    serial_account = True

    @task
    def burst_of_videos(self) -> None:
        self.run_job("text2video", {"prompt": "a flock of starlings over a frozen lake"})


if __name__ == "__main__":
    BurstUser.host = debug_host()
    run_single_user(BurstUser)
