"""The mock's own Werkzeug server (``mock_server.serving``) and the in-process mock on it.

What the pytest fixtures rely on, over real loopback sockets: the server stops at once.
"""

from __future__ import annotations

import threading

import requests

from kling_testkit.server import InProcessMock
from mock_server import create_app
from mock_server.serving import make_server

HANG = 3600.0  # a poll interval no test may wait for


def test_shutdown_does_not_wait_for_the_poll_interval() -> None:
    server = make_server("127.0.0.1", 0, create_app({"clock": "manual"}), quiet=True)
    serving = threading.Thread(target=server.serve_forever, args=(HANG,), daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{server.server_port}/__mock/health"
    assert requests.get(url, timeout=10).json()["code"] == 0
    stopping = threading.Thread(target=server.shutdown, daemon=True)
    stopping.start()
    stopping.join(timeout=30)  # socketserver's shutdown() would sit out the whole hour
    assert not stopping.is_alive()
    serving.join(timeout=30)
    assert not serving.is_alive()


def test_shutdown_before_serving_returns() -> None:
    server = make_server("127.0.0.1", 0, create_app({"clock": "manual"}), quiet=True)
    stopping = threading.Thread(target=server.shutdown, daemon=True)
    stopping.start()
    stopping.join(timeout=30)
    assert not stopping.is_alive()
    server.server_close()


def test_a_stopped_mock_refuses_connections() -> None:
    mock = InProcessMock().start()
    url = f"{mock.base_url}/__mock/health"
    assert requests.get(url, timeout=10).json()["code"] == 0
    mock.stop()
    try:
        requests.get(url, timeout=10)
    except requests.ConnectionError:
        pass
    else:
        raise AssertionError("a stopped mock still answered")
