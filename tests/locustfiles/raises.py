"""A locustfile with a bug: its task raises before sending anything most of the time."""

from __future__ import annotations

from locust import HttpUser, constant, task


class BuggyUser(HttpUser):
    wait_time = constant(0.1)

    @task
    def submit(self) -> None:
        self.client.get("/__mock/health")
        raise KeyError("task_result")  # as app code reading a result that is not there yet
