"""A plain locustfile that ignores ``Retry-After``: it submits again at once after a 429."""

from __future__ import annotations

from locust import HttpUser, constant, task

from kling_testkit.auth import bearer, sign_token
from kling_testkit.credentials import Credentials


class ImpatientUser(HttpUser):
    wait_time = constant(0.05)

    @task
    def submit(self) -> None:
        headers = bearer(sign_token(Credentials.mock_default()))
        self.client.post("/v1/videos/text2video", json={"prompt": "a kite"}, headers=headers)
