"""``kling-mock serve`` on gunicorn (its default): transport faults, flags, keep-alive, errors.

``tests/test_serving.py`` checks the envelope on whatever the default server is; this module
checks what the gunicorn route adds: the raw socket for transport faults, the one-worker rule,
the bounded flags and ``--server werkzeug``.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import CREDS, T2V
from tests.test_cli import LISTENING, Server, _run, serve
from tests.test_serving import assert_envelope, parse, raw_exchange, server

pytest.importorskip("gunicorn", reason="gunicorn runs on POSIX only")
from gunicorn.http import errors

from kling_testkit.auth import bearer, sign_token
from mock_server import production

__all__ = ["serve", "server"]  # fixtures


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1" and parts.port  # loopback only
    return parts.hostname, parts.port


def _add_transport_fault(url: str, fault: str) -> None:
    rule = {"match": {"method": "GET"}, "action": {"type": "transport", "fault": fault}}
    response = requests.post(f"{url}/__mock/faults", json={**rule, "times": 1}, timeout=10)
    assert response.status_code == 200, response.text


def _get_raw(url: str, path: str) -> tuple[bytes, BaseException | None]:
    """GET ``path`` on a fresh connection; everything read until EOF, and how reading ended."""
    token = bearer(sign_token(CREDS))["Authorization"]
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {token}\r\n\r\n").encode()
    answer = b""
    with socket.create_connection(_address(url), timeout=30) as sock:
        sock.sendall(request)
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError as exc:
                return answer, exc
            if not data:
                return answer, None
            answer += data


def test_the_banner_names_the_server(server: Server) -> None:
    assert any("server: gunicorn" in line for line in server.lines), server.lines


def test_reset_sends_an_rst(server: Server) -> None:
    _add_transport_fault(server.url, "reset")
    answer, error = _get_raw(server.url, T2V)
    assert isinstance(error, ConnectionResetError)
    assert answer == b""


def test_empty_closes_without_an_answer(server: Server) -> None:
    _add_transport_fault(server.url, "empty")
    answer, error = _get_raw(server.url, T2V)
    assert (answer, error) == (b"", None)


def test_truncated_sends_less_than_its_content_length(server: Server) -> None:
    _add_transport_fault(server.url, "truncated")
    answer, _ = _get_raw(server.url, T2V)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"content-length: 4096" in head.lower()
    assert 0 < len(body) < 4096


def test_malformed_json_is_a_200_that_is_not_json(server: Server) -> None:
    _add_transport_fault(server.url, "malformed_json")
    response = requests.get(f"{server.url}{T2V}", headers=bearer(sign_token(CREDS)), timeout=10)
    assert response.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_after_transport_faults_the_server_answers_and_logged_no_traceback(
    serve: Callable[..., Server],
) -> None:
    running = serve("--port", "0", "--manual-clock", "--quiet")
    for fault in ("reset", "empty", "truncated"):
        _add_transport_fault(running.url, fault)
        _get_raw(running.url, T2V)
    response = requests.get(f"{running.url}{T2V}", headers=bearer(sign_token(CREDS)), timeout=10)
    assert response.status_code == 200 and response.json()["code"] == 0
    running.stop()
    assert "Traceback" not in running.stderr


def test_keep_alive_answers_two_requests_on_one_connection(server: Server) -> None:
    one = b"GET /__mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(_address(server.url), timeout=30) as sock:
        answers = []
        for _ in range(2):
            sock.sendall(one)
            answer = b""
            while b"}}" not in answer:  # the health body ends with two braces
                data = sock.recv(65536)
                assert data, answers
                answer += data
            answers.append(answer)
    for answer in answers:
        status, headers, body = parse(answer)
        assert status == 200 and body["code"] == 0
        assert headers.get("connection", "keep-alive").lower() != "close"


@pytest.mark.parametrize("path", ["/__mock/faults", T2V])
def test_a_bad_chunk_size_is_a_400_envelope_not_a_crash(server: Server, path: str) -> None:
    token = bearer(sign_token(CREDS))["Authorization"]
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: {token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        "zz\r\n{}\r\n0\r\n\r\n"
    ).encode()
    found, headers, body = parse(raw_exchange(server.url, request))
    assert found == 400 and headers["content-type"] == "application/json"
    assert body["code"] == 1201 and "malformed" in body["message"]


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (errors.LimitRequestLine(9000, 8190), 414, 1201),
        (errors.LimitRequestHeaders("too many"), 431, 1201),
        (errors.InvalidHTTPVersion("HTTP/9.9"), 505, 1201),
        (errors.InvalidRequestLine("GARBAGE"), 400, 1201),
        (errors.InvalidRequestMethod("get"), 501, 1202),
        (errors.InvalidChunkSize("zz"), 400, 1201),
        (RuntimeError("boom"), 500, 5000),
    ],
)
def test_refusal_is_an_envelope_with_the_status(exc: BaseException, status: int, code: int) -> None:
    assert_envelope(production.refusal(exc), status, code, "refused")


def test_more_than_one_worker_is_refused_naming_the_shared_store() -> None:
    result = _run("--port", "0", "--workers", "2")
    assert result.returncode == 2, result
    assert "shared store" in result.stderr
    assert LISTENING not in result.stdout


@pytest.mark.parametrize("threads", ["0", "257", "many"])
def test_threads_out_of_bounds_is_refused(threads: str) -> None:
    result = _run("--port", "0", "--threads", threads)
    assert result.returncode == 2, result
    assert "--threads" in result.stderr
    assert "Traceback" not in result.stderr


def test_threads_and_keep_alive_in_bounds_serve(serve: Callable[..., Server]) -> None:
    running = serve("--port", "0", "--quiet", "--threads", "2", "--keep-alive", "1")
    assert requests.get(f"{running.url}/__mock/health", timeout=10).json()["code"] == 0


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux only")
def test_cpu_pins_the_server(serve: Callable[..., Server]) -> None:
    cpu = min(os.sched_getaffinity(0))
    running = serve("--port", "0", "--quiet", "--cpu", str(cpu))
    assert os.sched_getaffinity(running.proc.pid) == {cpu}
    assert requests.get(f"{running.url}/__mock/health", timeout=10).json()["code"] == 0


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux only")
def test_cpu_that_does_not_exist_is_refused() -> None:
    result = _run("--port", "0", "--cpu", "100000")
    assert result.returncode == 2, result
    assert "--cpu" in result.stderr and "Traceback" not in result.stderr


def test_the_werkzeug_server_is_still_available_with_the_envelope(
    serve: Callable[..., Server],
) -> None:
    running = serve("--port", "0", "--quiet", "--server", "werkzeug")
    assert any("server: werkzeug" in line for line in running.lines), running.lines
    answer = raw_exchange(running.url, b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_envelope(answer, 414, 1201, "refused")
    _add_transport_fault(running.url, "reset")
    _, error = _get_raw(running.url, T2V)
    assert isinstance(error, ConnectionResetError)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc (Linux)")
def test_a_dead_worker_stops_the_server_instead_of_starting_a_fresh_mock(
    serve: Callable[..., Server],
) -> None:
    running = serve("--port", "0", "--quiet")
    # An answer means the worker is up (the port is bound, and announced, before it forks).
    assert requests.get(f"{running.url}/__mock/health", timeout=10).json()["code"] == 0
    pid = running.proc.pid
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        children = [int(child) for child in listing.read().split()]
    assert len(children) == 1, children  # one worker: one mock
    os.kill(children[0], signal.SIGKILL)
    assert running.proc.wait(timeout=30) == production.WORKER_DIED
    running.stop()
    assert "state died with it" in running.stderr


def test_a_client_that_stops_mid_request_frees_its_thread(serve: Callable[..., Server]) -> None:
    running = serve("--port", "0", "--quiet", "--threads", "1", "--request-timeout", "1")
    with socket.create_connection(_address(running.url), timeout=20) as stalled:
        stalled.sendall(b"GET /__mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and nothing more
        # The one thread is held by the stalled request until the timeout drops it; then the
        # next client is served. Without the bound this waits for ever (here: the 20 s limit).
        answer = requests.get(f"{running.url}/__mock/health", timeout=20)
        assert answer.json()["code"] == 0
        assert stalled.recv(65536) in (b"",)  # the server closed the stalled connection
    assert "Traceback" not in running.stderr


def test_a_body_that_stops_arriving_is_a_400_envelope(serve: Callable[..., Server]) -> None:
    running = serve("--port", "0", "--quiet", "--request-timeout", "1")
    token = bearer(sign_token(CREDS))["Authorization"]
    head = (
        f"POST {T2V} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    with socket.create_connection(_address(running.url), timeout=20) as sock:
        sock.sendall(head.encode() + b'{"prompt": "a')  # 13 of the 100 bytes promised
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    status, _, body = parse(answer)
    assert status == 400
    assert body["code"] == 1201 and "stopped arriving" in body["message"]
