"""Load-test the sample service, with the mock standing in for Kling behind it.

Users order a video from the service and poll the service until the video is ready; the mock
plays Kling with realistic durations. ``report_mock_counters`` adds what the mock counted (the
service's requests, tasks, 429s, Retry-After violations, units, callbacks) to the report::

    kling-testkit load -f examples/sample_service/locustfile.py \\
        --host http://127.0.0.1:5000 --mock-url http://127.0.0.1:8000 --users 10 --duration 1m
"""

from __future__ import annotations

import gevent
from locust import HttpUser, between, run_single_user, task

from kling_testkit.spec import SUCCEED, TERMINAL
from load_tests import Job, report_mock_counters

report_mock_counters()

POLL_S = 0.25  # wall seconds: the mock runs x60, so a two-minute video takes about two
TIMEOUT_S = 30.0


class ShopUser(HttpUser):
    """Order a video, wait for it, look at it."""

    wait_time = between(0.1, 0.5)

    @task
    def order_video(self) -> None:
        job = Job(self.environment, "video order")
        with self.client.post(
            "/videos", json={"prompt": "a kite over a beach"}, catch_response=True
        ) as answer:
            if answer.status_code != 202:
                answer.failure(f"order answered HTTP {answer.status_code}")
                job.done("order refused")
                return
            video_id = answer.json()["id"]
        for _ in range(int(TIMEOUT_S / POLL_S)):
            gevent.sleep(POLL_S)
            state = self.client.get(f"/videos/{video_id}", name="/videos/[id]").json()
            job.polled()
            if state["status"] in TERMINAL:
                job.done(None if state["status"] == SUCCEED else "the video failed")
                return
        job.done(f"not ready after {TIMEOUT_S:g} s")


if __name__ == "__main__":
    ShopUser.host = "http://127.0.0.1:5000"
    run_single_user(ShopUser)
