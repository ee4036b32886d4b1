"""The mock's own Werkzeug server (``mock_server.serving``) and the in-process mock on it.

What the pytest fixtures rely on, over real loopback sockets: the server stops at once, keeps an
HTTP/1.1 connection open for the next request when that is safe and closes it when not, and
every check of ``tests/test_serving.py`` holds on it too (they run here against this server).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from kling_testkit.auth import bearer, sign_token
from kling_testkit.control import ControlError, MockControl
from kling_testkit.credentials import MOCK_ACCESS_KEY, MOCK_SECRET_KEY, Credentials
from kling_testkit.server import InProcessClock, InProcessMock
from mock_server import create_app
from mock_server.serving import make_server
from tests.test_serving import (
    test_a_chunked_body_over_the_limit_is_too_large_not_malformed,
    test_a_double_slash_is_an_unknown_path_not_a_redirect,
    test_a_doubled_slash_inside_a_path_is_unknown_not_a_redirect,
    test_a_malformed_request_line_is_an_envelope,
    test_an_oversized_header_is_an_envelope,
    test_an_oversized_request_line_is_an_envelope,
    test_options_is_an_envelope,
    test_too_many_headers_is_an_envelope,
)

__all__ = [  # collected here too, against the in-process server (the ``server`` fixture below)
    "test_a_chunked_body_over_the_limit_is_too_large_not_malformed",
    "test_a_double_slash_is_an_unknown_path_not_a_redirect",
    "test_a_doubled_slash_inside_a_path_is_unknown_not_a_redirect",
    "test_a_malformed_request_line_is_an_envelope",
    "test_an_oversized_header_is_an_envelope",
    "test_an_oversized_request_line_is_an_envelope",
    "test_options_is_an_envelope",
    "test_too_many_headers_is_an_envelope",
]

HANG = 3600.0  # a poll interval no test may wait for
T2V = "/v1/videos/text2video"
CREDS = Credentials(MOCK_ACCESS_KEY, MOCK_SECRET_KEY)


@dataclass
class Served:
    url: str  # all that ``tests/test_serving.py``'s checks use of their server


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    """The in-process mock, for the checks imported from ``tests/test_serving.py``."""
    with InProcessMock() as mock:
        yield Served(mock.base_url)


@pytest.fixture
def mock() -> Iterator[InProcessMock]:
    with InProcessMock() as running:
        yield running


def _connect(mock: InProcessMock) -> socket.socket:
    port = int(mock.base_url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def _request(path: str, *, method: str = "GET", body: bytes = b"", extra: str = "") -> bytes:
    token = bearer(sign_token(CREDS))["Authorization"]
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {token}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + extra + "\r\n").encode() + body


class Reader:
    """Reads whole answers (status line, headers, ``Content-Length`` bytes) off one socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            self._more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split()[1]), headers, body

    def closed(self) -> bool:
        """True when the server has closed the connection (EOF or reset), nothing more sent."""
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        return data == b"" and self.buffer == b""

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the server mid-answer")
        self.buffer += data


# -- stopping --------------------------------------------------------------------------------


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


def test_a_stopped_mock_refuses_connections_kept_alive_ones_too() -> None:
    mock = InProcessMock().start()
    session = requests.Session()
    url = f"{mock.base_url}/__mock/health"
    assert session.get(url, timeout=10).json()["code"] == 0  # its connection stays open
    mock.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(url, timeout=10)
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=10)


# -- keep-alive ------------------------------------------------------------------------------


def test_one_connection_serves_many_requests(mock: InProcessMock) -> None:
    with _connect(mock) as sock:
        reader = Reader(sock)
        for _ in range(3):
            sock.sendall(_request(T2V))
            status, headers, body = reader.answer()
            assert status == 200 and b'"code": 0' in body.replace(b'"code":0', b'"code": 0')
            assert headers.get("connection", "").lower() != "close"
        # A POST with a body the app reads to the end keeps the connection too.
        sock.sendall(_request("/__mock/clock/advance", method="POST", body=b'{"seconds": 5}'))
        status, headers, _ = reader.answer()
        assert status == 200 and "connection" not in headers
        sock.sendall(_request("/__mock/health"))
        assert reader.answer()[0] == 200


def test_pipelined_requests_are_answered_in_order(mock: InProcessMock) -> None:
    with _connect(mock) as sock:
        reader = Reader(sock)
        sock.sendall(_request("/__mock/health") + _request("/nowhere") + _request(T2V))
        assert [reader.answer()[0] for _ in range(3)] == [200, 404, 200]


@pytest.mark.parametrize(
    ("request_bytes", "why"),
    [
        (b"GET /__mock/health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", "HTTP/1.0"),
        (b"GET /__mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", "asked"),
        (
            b"POST /__mock/clock/advance HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"e\r\n" + b'{"seconds": 5}' + b"\r\n0\r\n\r\n",
            "a chunked body",
        ),
    ],
)
def test_the_connection_closes_when_it_cannot_be_kept(
    mock: InProcessMock, request_bytes: bytes, why: str
) -> None:
    with _connect(mock) as sock:
        reader = Reader(sock)
        sock.sendall(request_bytes)
        status, headers, _ = reader.answer()
        assert status == 200, why
        assert headers["connection"].lower() == "close", why
        assert reader.closed(), why


def test_a_body_the_app_did_not_read_closes_the_connection() -> None:
    with InProcessMock({"max_body_bytes": 1024}) as mock, _connect(mock) as sock:
        reader = Reader(sock)
        body = b'{"prompt": "' + b"a" * 2000 + b'"}'
        sock.sendall(_request(T2V, method="POST", body=body))
        status, headers, answer = reader.answer()
        assert status == 400 and b"1201" in answer
        assert headers["connection"].lower() == "close"  # its body is still on the wire
        assert reader.closed()


def test_an_idle_connection_is_closed() -> None:
    app = create_app({"clock": "manual"})
    server = make_server("127.0.0.1", 0, app, quiet=True, keep_alive_s=0.2)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=30) as sock:
            reader = Reader(sock)
            sock.sendall(_request("/__mock/health"))
            assert reader.answer()[0] == 200
            assert reader.closed()  # after 0.2 s of silence, not the socket's 30 s timeout
    finally:
        server.shutdown()


def test_the_servers_own_refusal_on_a_kept_connection_is_an_envelope_and_closes_it(
    mock: InProcessMock,
) -> None:
    with _connect(mock) as sock:
        reader = Reader(sock)
        sock.sendall(_request("/__mock/health"))
        assert reader.answer()[0] == 200
        sock.sendall(b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, body = reader.answer()
        assert status == 414 and headers["content-type"] == "application/json"
        assert b'"code": 1201' in body
        assert reader.closed()


# -- transport faults on a kept-alive connection ---------------------------------------------


def _fault(control: MockControl, fault: str) -> None:
    control.add_fault(
        match={"method": "GET"}, action={"type": "transport", "fault": fault}, times=1
    )


@pytest.mark.parametrize("fault", ["reset", "empty", "truncated"])
def test_a_transport_fault_breaks_a_kept_alive_connection_and_the_next_request_works(
    mock: InProcessMock, fault: str
) -> None:
    control = MockControl(mock.base_url)
    session = requests.Session()
    headers = bearer(sign_token(CREDS))
    url = f"{mock.base_url}{T2V}"
    assert session.get(url, headers=headers, timeout=10).json()["code"] == 0  # kept alive
    _fault(control, fault)
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        session.get(url, headers=headers, timeout=10)
    assert session.get(url, headers=headers, timeout=10).json()["code"] == 0
    entries = [e for e in control.requests() if e["path"] == T2V]
    assert [e["fault"] for e in entries] == [None, fault, None]
    assert mock.errors() == []


def test_reset_on_a_kept_alive_connection_is_a_reset(mock: InProcessMock) -> None:
    control = MockControl(mock.base_url)
    with _connect(mock) as sock:
        reader = Reader(sock)
        sock.sendall(_request(T2V))
        assert reader.answer()[0] == 200
        _fault(control, "reset")
        sock.sendall(_request(T2V))
        with pytest.raises(ConnectionResetError):
            while sock.recv(65536):
                pass


def test_malformed_json_keeps_the_connection(mock: InProcessMock) -> None:
    control = MockControl(mock.base_url)
    with _connect(mock) as sock:
        reader = Reader(sock)
        _fault(control, "malformed_json")
        sock.sendall(_request(T2V))
        status, _, body = reader.answer()
        assert status == 200 and body.startswith(b'{"code": 0') and not body.endswith(b"}")
        sock.sendall(_request(T2V))
        assert reader.answer()[0] == 200


def test_truncated_sends_the_head_and_part_of_the_body_then_closes(mock: InProcessMock) -> None:
    control = MockControl(mock.base_url)
    _fault(control, "truncated")
    with _connect(mock) as sock:
        sock.sendall(_request(T2V))
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while data := sock.recv(65536):
                answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"\r\ncontent-length: 4096\r\n" in head.lower() + b"\r\n"
    assert 0 < len(body) < 4096


# -- the in-process mock ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [{}, {"auth_clock": "mock"}, {"clock": "real", "time_scale": 60}],
)
def test_clock_info_in_process_is_what_the_control_api_answers(config: dict[str, Any]) -> None:
    with InProcessMock(config) as mock:
        control = MockControl(mock.base_url)
        over_http, here = control.clock.info(), mock.clock_info()
        assert set(here) == set(over_http)
        for key in ("mode", "time_scale", "auth_clock"):
            assert here[key] == over_http[key]
        if over_http["mode"] == "manual":
            assert here["now"] == over_http["now"]
        control.configure(auth_clock="wall" if here["auth_clock"] == "mock" else "mock")
        assert mock.clock_info()["auth_clock"] == control.clock.info()["auth_clock"]


def test_now_and_advance_in_process_are_the_control_apis(mock: InProcessMock) -> None:
    control = MockControl(mock.base_url)
    start = control.clock.now()
    assert mock.now() == start
    assert mock.advance(90) == start + 90 == control.clock.now()
    assert control.clock.advance(10) == start + 100 == mock.now()
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="seconds"):
            mock.advance(bad)
    assert mock.now() == start + 100


def test_the_in_process_clock_answers_and_refuses_as_the_http_one(mock: InProcessMock) -> None:
    over_http = MockControl(mock.base_url)
    here = MockControl(mock.base_url)
    here.clock = InProcessClock(here, mock)
    start = over_http.clock.now()
    assert here.clock.advance(30) == start + 30 == over_http.clock.now()
    assert here.clock.info() == over_http.clock.info()
    for bad in (-1.0, 11 * 365 * 86400.0, True, float("inf"), float("nan")):
        with pytest.raises(ControlError) as by_http:
            over_http.clock.advance(bad)
        with pytest.raises(ControlError) as in_process:
            here.clock.advance(bad)
        assert "seconds" in str(by_http.value) and "seconds" in str(in_process.value)
        assert str(in_process.value).startswith("POST /__mock/clock/advance: ")
    assert here.clock.now() == start + 30
    assert here.reset() is None and here.clock.now() != start + 30  # the rest is still HTTP
