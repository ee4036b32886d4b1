"""``kling-mock serve`` as a real subprocess: start-up lines, flags, config file, env, signals."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from kling_testkit.auth import bearer, sign_token
from kling_testkit.credentials import MOCK_ACCESS_KEY, Credentials
from tests.conftest import CREDS, T2V

ROOT = Path(__file__).resolve().parent.parent
LISTENING = "listening on http://127.0.0.1:"
START_TIMEOUT_S = 20.0
ENV_ACCESS = "ci-env-access-key"
ENV_SECRET = "ci-env-secret-key-0123456789abcdef0123456789"  # 44 bytes


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mock_server.cli", "serve", *args]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLING_")}
    env.update(extra)
    return env


class Server:
    """A running ``kling-mock serve``; stdout is read line by line on a thread."""

    def __init__(self, args: tuple[str, ...], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            _command(*args),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = ""
        self.lines: list[str] = []
        self.stderr = ""
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._pump_stdout, daemon=True),
            threading.Thread(target=self._pump_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def wait_for(self, prefix: str, timeout: float = START_TIMEOUT_S) -> str:
        """The next stdout line starting with ``prefix``; fails after ``timeout`` or at EOF."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(remaining, 0.0))
            except queue.Empty:
                pytest.fail(f"no line starting {prefix!r} within {timeout} s; got {self.lines}")
            if line is None:
                pytest.fail(f"stdout closed before {prefix!r}; got {self.lines}")
            self.lines.append(line)
            if line.startswith(prefix):
                return line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for thread in self._threads:
            thread.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """Start ``kling-mock serve`` with the given flags; every server is stopped at teardown."""
    started: list[Server] = []

    def start(*args: str, env: dict[str, str] | None = None, listening: str = LISTENING) -> Server:
        server = Server(args, _env() if env is None else env)
        started.append(server)  # before waiting, so a server that never listens is stopped too
        server.url = server.wait_for(listening).removeprefix("listening on ")
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A session that ignores proxy settings: all traffic stays on loopback."""
    with requests.Session() as session:
        session.trust_env = False
        yield session


def _data(response: requests.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 0, body
    return body["data"]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command that must exit on its own (a server that starts instead times out)."""
    return subprocess.run(
        _command(*args),
        cwd=ROOT,
        env=_env() if env is None else env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )


def test_serve_prints_real_port_and_default_account(
    serve: Callable[..., Server], http: requests.Session
) -> None:
    server = serve("--port", "0", "--manual-clock", "--seed", "3", "--quiet")
    port = int(server.url.rsplit(":", 1)[1])
    assert 0 < port < 65536
    assert any(
        line.startswith("account default: ") and f"access_key={MOCK_ACCESS_KEY}" in line
        for line in server.lines
    ), server.lines
    assert _data(http.get(f"{server.url}/__mock/health", timeout=10))["status"] == "ok"
    assert _data(http.get(f"{server.url}/__mock/clock", timeout=10))["mode"] == "manual"
    assert _data(http.get(f"{server.url}/__mock/config", timeout=10))["seed"] == 3


def test_serve_accepts_an_authenticated_create(
    serve: Callable[..., Server], http: requests.Session
) -> None:
    server = serve("--port", "0", "--manual-clock", "--quiet")
    response = http.post(
        f"{server.url}{T2V}",
        json={"prompt": "a lighthouse in a storm"},
        headers=bearer(sign_token(CREDS)),
        timeout=10,
    )
    task = _data(response)
    assert task["task_status"] == "submitted"
    assert task["task_id"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_cleanly_on_signal(serve: Callable[..., Server], signum: int) -> None:
    server = serve("--port", "0", "--manual-clock", "--quiet")
    server.proc.send_signal(signum)
    assert server.proc.wait(timeout=10) == 0
    assert server.wait_for("stopped", timeout=5) == "stopped"
    server.stop()
    assert "Traceback" not in server.stderr


def test_serve_time_scale_runs_a_scaled_real_clock(
    serve: Callable[..., Server], http: requests.Session
) -> None:
    server = serve("--port", "0", "--time-scale", "50", "--quiet")
    clock = _data(http.get(f"{server.url}/__mock/clock", timeout=10))
    assert clock["mode"] == "real"
    assert clock["time_scale"] == 50


def test_serve_honours_a_config_file(
    serve: Callable[..., Server], http: requests.Session, tmp_path: Path
) -> None:
    path = tmp_path / "mock.json"
    path.write_text(json.dumps({"seed": 9, "clock": "manual", "journal_size": 7}))
    server = serve("--port", "0", "--config", str(path), "--quiet")
    config = _data(http.get(f"{server.url}/__mock/config", timeout=10))
    assert (config["seed"], config["journal_size"], config["clock"]) == (9, 7, "manual")
    journal = _data(http.get(f"{server.url}/__mock/requests", timeout=10))
    assert journal["capacity"] == 7


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (json.dumps({"seed": 9, "bogus_key": 1}), "bogus_key"),
        ('{"seed": 9,', "mock.json"),
        (json.dumps({"journal_size": "big"}), "journal_size"),
    ],
    ids=["unknown-key", "bad-json", "wrong-type"],
)
def test_serve_refuses_a_bad_config_file_with_exit_2(
    tmp_path: Path, content: str, named: str
) -> None:
    path = tmp_path / "mock.json"
    path.write_text(content)
    result = _run("--port", "0", "--config", str(path))
    assert result.returncode == 2, result
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert LISTENING not in result.stdout


def test_serve_refuses_a_missing_config_file_with_exit_2(tmp_path: Path) -> None:
    result = _run("--port", "0", "--config", str(tmp_path / "absent.json"))
    assert result.returncode == 2, result
    assert "absent.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_takes_the_default_account_from_the_environment(
    serve: Callable[..., Server], http: requests.Session
) -> None:
    env = _env(KLING_ACCESS_KEY=ENV_ACCESS, KLING_SECRET_KEY=ENV_SECRET)
    server = serve("--port", "0", "--manual-clock", "--quiet", env=env)
    assert any(f"access_key={ENV_ACCESS}" in line for line in server.lines), server.lines
    assert not any(ENV_SECRET in line for line in server.lines)
    assert not any(f"access_key={MOCK_ACCESS_KEY}" in line for line in server.lines)

    own = bearer(sign_token(Credentials(ENV_ACCESS, ENV_SECRET)))
    body = {"prompt": "a lighthouse in a storm"}
    assert _data(http.post(f"{server.url}{T2V}", json=body, headers=own, timeout=10))
    default = bearer(sign_token(CREDS))
    refused = http.post(f"{server.url}{T2V}", json=body, headers=default, timeout=10)
    assert refused.status_code == 401


def test_serve_refuses_a_short_environment_secret_with_exit_2() -> None:
    env = _env(KLING_ACCESS_KEY=ENV_ACCESS, KLING_SECRET_KEY="too-short-secret")
    result = _run("--port", "0", env=env)
    assert result.returncode == 2, result
    assert "secret_key" in result.stderr
    assert "32" in result.stderr
    assert "Traceback" not in result.stderr
    assert "too-short-secret" not in result.stdout + result.stderr


def test_serve_refuses_manual_clock_with_time_scale() -> None:
    result = _run("--port", "0", "--manual-clock", "--time-scale", "5")
    assert result.returncode == 2, result
    assert "--time-scale" in result.stderr
    assert "not allowed" in result.stderr
