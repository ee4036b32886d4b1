"""A well-behaved locustfile that breaks a rule after its users stopped: at test stop, once
``report_mock_counters()`` has read the mock, it queries a task twice at once (``poll_storm``),
as the mock's retries to callback receivers that have gone happen after a run. Not the run's."""

from __future__ import annotations

from typing import Any

import requests
from locust import HttpUser, constant, events, task

from kling_testkit.auth import bearer, sign_token
from kling_testkit.credentials import Credentials
from load_tests import report_mock_counters

report_mock_counters()  # its test-stop listener comes first: it reads before ours sends

T2V = "/v1/videos/text2video"


def _headers() -> dict[str, str]:
    return bearer(sign_token(Credentials.mock_default()))


class ListingUser(HttpUser):
    wait_time = constant(0.5)

    @task
    def list_tasks(self) -> None:
        self.client.get(T2V, params={"pageNum": 1}, headers=_headers())


@events.test_stop.add_listener
def _after_the_reading(environment: Any, **_: Any) -> None:
    host, headers = environment.host, _headers()
    task_id = requests.post(f"{host}{T2V}", json={"prompt": "late"}, headers=headers, timeout=10)
    path = f"{host}{T2V}/{task_id.json()['data']['task_id']}"
    for _ in range(2):
        requests.get(path, headers=headers, timeout=10)
