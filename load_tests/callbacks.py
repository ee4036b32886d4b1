"""Callbacks: submit with a ``callback_url`` to a receiver this process runs; wait for the call.

Each Locust process starts one receiver (``load_tests.receiver``) on loopback. A user submits a
text-to-video task with ``callback_url`` pointing at it and waits for the terminal callback,
polling slowly as a fallback (as an app should: callbacks get lost). When a poll shows the task
ended and its callback has not come within ``callback_grace``, the callback is lost.

Measures: callback delivery latency per status (``callback submitted`` ...: wall ms from the
status change on the mock's clock to arrival), job completion through callbacks
(``text2video callback job``), lost callbacks (``callback lost``) and duplicated ones
(``callback duplicate``), both failures.

    kling-testkit load --scenario callbacks --users 20 --spawn-rate 5 --duration 1m
"""

from __future__ import annotations

from typing import ClassVar

from locust import run_single_user, task

from kling_testkit.spec import FAILED, TERMINAL, families
from load_tests.base import KlingUser
from load_tests.counters import report_mock_counters
from load_tests.jobs import Job
from load_tests.receiver import CallbackReceiver, receiver_for
from load_tests.target import debug_host

report_mock_counters()

FAMILY = "text2video"


class CallbacksUser(KlingUser):
    """Submit with a callback URL; the callback ends the wait, a slow poll backs it up."""

    poll_interval = 30.0
    max_poll_interval = 60.0
    callback_grace: ClassVar[float] = 30.0
    """API seconds a callback may come after a poll saw the task end."""
    receiver_host: ClassVar[str] = "127.0.0.1"
    """Where the receiver listens; the mock must be allowed to call it (loopback by default)."""

    receiver: CallbackReceiver

    def on_start(self) -> None:
        super().on_start()
        self.receiver = receiver_for(self.environment, self.target.base_url, self.receiver_host)

    @task
    def video_with_callback(self) -> None:
        job = Job(self.environment, f"{FAMILY} callback")
        body = {"prompt": "a hot-air balloon over a canyon at sunrise", "duration": "5"}
        task_id = self.submit(FAMILY, {**body, "callback_url": self.receiver.url}, job)
        if task_id is not None:
            try:
                self.await_callback(task_id, job)
            finally:
                self.receiver.forget(task_id)

    def await_callback(self, task_id: str, job: Job) -> None:
        ended = self.receiver.expect(task_id)
        path = families()[FAMILY].path
        interval = self.poll_interval
        while ended.wait(timeout=self.target.wall(interval)) is None:
            answer = self.call("GET", f"{path}/{task_id}", name=f"{path}/[task_id]")
            job.polled()
            status = answer.data["task_status"] if answer.ok else None
            if status in TERMINAL:
                if ended.wait(timeout=self.target.wall(self.callback_grace)) is None:
                    self.receiver.lost(task_id, str(status))
                failed = status == FAILED
                job.done(f"task failed: {answer.data.get('task_status_msg')}" if failed else None)
                return
            interval = min(interval * 2, self.max_poll_interval)
        job.done()


if __name__ == "__main__":
    CallbacksUser.host = debug_host()
    run_single_user(CallbacksUser)
