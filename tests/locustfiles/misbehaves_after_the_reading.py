"""A well-behaved locustfile that breaks a rule after its users stopped: at test stop, once
``report_mock_counters()`` has read the mock, it sends a token half an hour past its ``exp``
(``token_misuse``), as the mock's retries to callback receivers that have gone happen after a
run. Not the run's."""

from __future__ import annotations

import time
from typing import Any

import requests
from locust import HttpUser, constant, events, task

from kling_testkit.auth import bearer, sign_token
from kling_testkit.credentials import Credentials
from load_tests import report_mock_counters

report_mock_counters()  # its test-stop listener comes first: it reads before ours sends

T2V = "/v1/videos/text2video"


class ListingUser(HttpUser):
    wait_time = constant(0.5)

    def on_start(self) -> None:
        self.headers = bearer(sign_token(Credentials.mock_default()))  # one token, reused

    @task
    def list_tasks(self) -> None:
        self.client.get(T2V, params={"pageNum": 1}, headers=self.headers)


@events.test_stop.add_listener
def _after_the_reading(environment: Any, **_: Any) -> None:
    expired = bearer(sign_token(Credentials.mock_default(), now=time.time() - 3600, ttl=1800))
    requests.get(f"{environment.host}{T2V}", headers=expired, timeout=10)  # 401/1004
