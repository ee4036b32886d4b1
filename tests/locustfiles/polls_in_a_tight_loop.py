"""A locustfile that polls its task in a tight loop (no backoff), with the mock's counters and
audit in its stats: the audit's ``poll_storm``."""

from __future__ import annotations

from locust import HttpUser, constant, task

from kling_testkit.auth import bearer, sign_token
from kling_testkit.credentials import Credentials
from load_tests import report_mock_counters

report_mock_counters()

T2V = "/v1/videos/text2video"


class EagerUser(HttpUser):
    wait_time = constant(0.01)  # wall seconds: well under a mock second on a x60 clock

    def on_start(self) -> None:
        self.headers = bearer(sign_token(Credentials.mock_default()))  # one token, reused
        answer = self.client.post(T2V, json={"prompt": "a kite"}, headers=self.headers)
        self.task_id = answer.json()["data"]["task_id"]

    @task
    def poll(self) -> None:
        self.client.get(f"{T2V}/{self.task_id}", headers=self.headers, name=f"{T2V}/[task_id]")
