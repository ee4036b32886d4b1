"""A callback receiver inside a Locust process: delivery latency, lost and duplicated callbacks.

The mock POSTs the task object to ``callback_url`` on every status change, with the mock time of
the change in ``X-Mock-Time`` (Unix ms). The receiver maps that time to wall time through the
mock's clock (read once: its ``now`` and time scale) and reports each first delivery as a
``CALLBACK`` entry named ``callback <status>`` whose response time is the delivery latency in
wall ms; a second delivery of the same task and status is a failure of ``callback duplicate``.
A user that knows a task ended (by polling) and got no terminal callback within a grace reports
``callback lost`` (:meth:`CallbackReceiver.lost`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import requests
from gevent.event import AsyncResult
from gevent.pywsgi import WSGIServer
from locust.env import Environment

from kling_testkit.spec import TERMINAL

CALLBACK = "CALLBACK"


class CallbackError(Exception):
    """A callback delivered twice, or never."""


@dataclass(frozen=True)
class ClockMap:
    """A mock's clock against wall time: mock ms -> wall seconds."""

    mock_s: float
    wall_s: float
    scale: float

    @classmethod
    def read(cls, base_url: str) -> ClockMap | None:
        """Read a mock's clock (None when ``base_url`` is no mock with a running clock)."""
        sent = time.time()
        try:
            body = requests.get(f"{base_url}/__mock/clock", timeout=10).json()
        except (requests.RequestException, ValueError):
            return None
        if not isinstance(body, dict) or body.get("code") != 0:
            return None
        clock = body["data"]
        wall = (sent + time.time()) / 2
        return cls(clock["now_ms"] / 1000, wall, float(clock.get("time_scale") or 1.0))

    def wall_of(self, mock_ms: float) -> float:
        return self.wall_s + (mock_ms / 1000 - self.mock_s) / self.scale


class CallbackReceiver:
    """Takes callbacks on ``url`` (loopback, a free port) and reports them to Locust."""

    def __init__(self, environment: Environment, clock: ClockMap | None, host: str) -> None:
        self.environment = environment
        self.clock = clock
        self._seen: set[tuple[str, str]] = set()
        self._ended: dict[str, AsyncResult[float]] = {}
        self._server = WSGIServer((host, 0), self._app, log=None, error_log=None)
        self._server.start()
        self.url = f"http://{host}:{self._server.server_port}/callbacks"

    def expect(self, task_id: str) -> AsyncResult[float]:
        """Set (to the perf-counter time) when the task's terminal callback arrives."""
        found: AsyncResult[float] = self._ended.setdefault(task_id, AsyncResult())
        return found

    def forget(self, task_id: str) -> None:
        self._ended.pop(task_id, None)

    def lost(self, task_id: str, status: str) -> None:
        """Report that the task ended ``status`` and its callback never came."""
        self._fire("callback lost", None, CallbackError(f"no {status} callback"))

    def stop(self) -> None:
        self._server.stop(timeout=1)

    def _fire(self, name: str, latency_ms: float | None, error: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type=CALLBACK,
            name=name,
            response_time=latency_ms,
            response_length=0,
            exception=error,
            context={},
        )

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            task = json.loads(environ["wsgi.input"].read())
            task_id, status = str(task["task_id"]), str(task["task_status"])
        except (ValueError, KeyError, TypeError):
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"not a task"]
        if (task_id, status) in self._seen:
            self._fire("callback duplicate", None, CallbackError(f"{status} delivered again"))
        else:
            self._seen.add((task_id, status))
            changed = environ.get("HTTP_X_MOCK_TIME", "")
            latency = None
            if self.clock is not None and changed.isdigit():
                latency = max(0.0, (time.time() - self.clock.wall_of(int(changed))) * 1000)
            self._fire(f"callback {status}", latency, None)
            if status in TERMINAL:
                self.expect(task_id).set(time.perf_counter())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


_RECEIVERS: dict[int, CallbackReceiver] = {}


def receiver_for(environment: Environment, base_url: str, host: str) -> CallbackReceiver:
    """This process's receiver (started on first use), for callbacks from ``base_url``."""
    found = _RECEIVERS.get(id(environment))
    if found is None:
        clock = ClockMap.read(base_url)
        found = _RECEIVERS[id(environment)] = CallbackReceiver(environment, clock, host)
    return found
