"""A locustfile whose users poll their task in a tight loop (the mock's audit: poll_storm), with
the mock's counters and findings in the stats."""

from __future__ import annotations

from locust import HttpUser, constant, task

from kling_testkit.auth import bearer, sign_token
from kling_testkit.credentials import Credentials
from load_tests import report_mock_counters

report_mock_counters()

T2V = "/v1/videos/text2video"


class EagerUser(HttpUser):
    wait_time = constant(0.01)

    def on_start(self) -> None:
        self.headers = bearer(sign_token(Credentials.mock_default()))
        answer = self.client.post(T2V, json={"prompt": "a kite"}, headers=self.headers)
        self.task_id = answer.json()["data"]["task_id"]

    @task
    def poll(self) -> None:
        self.client.get(f"{T2V}/{self.task_id}", headers=self.headers, name=f"{T2V}/[task_id]")
