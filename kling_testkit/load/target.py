"""The other side of a load run: a mock the runner starts, or a host it is told about.

The runner's own mock runs on a fast clock (``--time-scale``, 60 by default: a two-minute video
takes two seconds) with the limits out of the way: one account, the keys the load users sign with,
packs too large to run out and no concurrency limit. The ``burst`` scenario is about limits: its
mock keeps the documented concurrency and adds a request-rate limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import requests

from kling_testkit import audit
from kling_testkit.control import MockControl
from kling_testkit.credentials import Credentials
from kling_testkit.pricing import default_concurrency

CONTROL_TOKEN_VAR = "KLING_TESTKIT_CONTROL_TOKEN"
"""A mock's control token, as the pytest plugin reads it (for a mock started with one)."""
LISTENING = "listening on "
UNLIMITED_SLOTS = {"video": 1_000_000, "image": 1_000_000}
BURST_RATE_LIMIT = {"requests": 20, "window_s": 60}
"""Per account: 20 requests a mock minute (a wall second at x60)."""
COUNTERS = (
    "requests",
    "tasks_created",
    "rate_limited",
    "retry_after_violations",
    "units_spent",
    "callbacks_delivered",
    "callbacks_failed",
)


def mock_config(scenario: str | None, seed: int, credentials: Credentials) -> dict[str, Any]:
    """The start-up config of the runner's mock for a scenario (None: a user's locustfile)."""
    config: dict[str, Any] = {
        "seed": seed,
        "max_tasks": 20_000,  # a long run does not grow the mock without bound
        "concurrency": UNLIMITED_SLOTS,
        "accounts": [
            {
                "name": "default",
                "access_key": credentials.access_key,
                "secret_key": credentials.secret_key,
                "packs": [
                    {"name": "load-video", "kind": "video", "total": 1e9},
                    {"name": "load-image", "kind": "image", "total": 1e9},
                ],
            }
        ],
    }
    if scenario == "burst":
        config["concurrency"] = default_concurrency()
        config["rate_limit"] = BURST_RATE_LIMIT
    return config


class StartedMock:
    """A ``kling-mock serve`` subprocess on a free loopback port; stopped by :meth:`stop`."""

    def __init__(self, config: dict[str, Any], time_scale: float, timeout: float = 30.0) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="kling-load-")
        path = Path(self._folder.name) / "mock.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        command = [sys.executable, "-m", "mock_server.cli", "serve", "--host", "127.0.0.1"]
        command += ["--port", "0", "--time-scale", f"{time_scale:g}", "--quiet"]
        command += ["--config", str(path)]
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.output: list[str] = []
        self._ready = threading.Event()
        self.url = ""
        self._pumps = [
            threading.Thread(target=self._pump, args=(stream,), daemon=True)
            for stream in (self.proc.stdout, self.proc.stderr)
        ]
        for pump in self._pumps:
            pump.start()
        if not self._ready.wait(timeout) or not self.url:
            self.stop()
            shown = "\n".join(self.output[-20:])
            raise RuntimeError(f"the mock did not start within {timeout:g} s:\n{shown}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump(self, stream: IO[str] | None) -> None:
        if stream is None:
            return
        for line in stream:
            line = line.rstrip("\n")
            self.output.append(line)
            if line.startswith(LISTENING):
                self.url = line.removeprefix(LISTENING)
                self._ready.set()
        self._ready.set()  # the process ended: stop waiting

    def stop(self) -> int | None:
        """Stop the mock (SIGTERM, then SIGKILL after 10 s); its exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pump in self._pumps:
            pump.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        self._folder.cleanup()
        return self.proc.returncode


def control_headers() -> dict[str, str]:
    token = os.environ.get(CONTROL_TOKEN_VAR)
    return {"X-Mock-Control-Token": token} if token else {}


def is_mock(url: str) -> bool:
    """Whether ``url`` answers ``GET /__mock/health`` as a mock does."""
    try:
        answer = requests.get(
            f"{url.rstrip('/')}/__mock/health", headers=control_headers(), timeout=10
        )
        body = answer.json()
    except (requests.RequestException, ValueError):
        return False
    return answer.status_code == 200 and isinstance(body, dict) and body.get("code") == 0


def read_counters(url: str) -> dict[str, Any]:
    """The mock's counters over all its accounts (``GET /__mock/counters``, ``totals``)."""
    control = MockControl(url, control_token=os.environ.get(CONTROL_TOKEN_VAR))
    totals: dict[str, Any] = control.counters()["totals"]
    return totals


def read_audit(url: str) -> dict[str, Any] | None:
    """The mock's audit (``GET /__mock/audit``): every account's findings; None when ``url``
    has none to give (a mock from before the audit, a refused token, not a mock)."""
    return audit.read(MockControl(url, control_token=os.environ.get(CONTROL_TOKEN_VAR)))


def counter_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, str]:
    """What each counter gained between two readings (units as a decimal string)."""
    return {
        name: format(Decimal(str(after.get(name, 0))) - Decimal(str(before.get(name, 0))), "f")
        for name in COUNTERS
    }
