"""Every answer from ``kling-mock serve``'s port is JSON in the envelope, over a real socket.

These go below Flask: request lines and headers the server itself refuses, automatic OPTIONS,
slash merging, chunked bodies. Whatever server ``kling-mock serve`` runs must pass them.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.test_cli import LISTENING, Server, _env, serve

__all__ = ["serve"]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """One manual-clock ``kling-mock serve`` for this module."""
    running = Server(("--port", "0", "--manual-clock", "--quiet"), _env())
    running.url = running.wait_for(LISTENING).removeprefix("listening on ")
    yield running
    running.stop()


def raw_exchange(url: str, request: bytes, body_chunks: Iterable[bytes] = ()) -> bytes:
    """Send raw bytes to the server and read its answer."""
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"  # loopback only
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=30) as sock:
        sock.sendall(request)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the body is all sent
        answer = b""
        while not _complete(answer):
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
    return answer


def _complete(answer: bytes) -> bool:
    """Headers and ``Content-Length`` bytes of body have arrived."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return length is not None and len(body) >= int(length.group(1))


def parse(answer: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, json.loads(body)


def assert_envelope(answer: bytes, status: int, code: int, says: str = "") -> None:
    found, headers, body = parse(answer)
    assert found == status, answer[:300]
    assert headers["content-type"].startswith("application/json")
    assert body["code"] == code and body["request_id"]
    assert says in body["message"]


@pytest.mark.parametrize("path", ["/__mock/health", "/v1/videos/text2video", "/nowhere"])
def test_options_is_an_envelope(server: Server, path: str) -> None:
    response = requests.options(server.url + path, timeout=10)
    assert response.headers["Content-Type"] == "application/json"
    assert response.status_code == 404 and response.json()["code"] in (1202, 1203)


@pytest.mark.parametrize("path", ["/v1//videos/text2video", "/__mock//health", "/v1/videos//"])
def test_a_doubled_slash_inside_a_path_is_unknown_not_a_redirect(server: Server, path: str) -> None:
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    answer = raw_exchange(server.url, request)
    assert_envelope(answer, 404, 1203, "no such endpoint")
    assert b"location:" not in answer.lower()


def test_a_double_slash_is_an_unknown_path_not_a_redirect(server: Server) -> None:
    request = b"GET //v1/videos/text2video HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    found, headers, body = parse(raw_exchange(server.url, request))
    # Werkzeug's server reads //v1/... as /v1/... (then auth answers); Flask alone says 404.
    assert (found, body["code"]) in ((401, 1001), (404, 1203))
    assert headers["content-type"] == "application/json" and "location" not in headers


def test_an_oversized_request_line_is_an_envelope(server: Server) -> None:
    path = "/" + "a" * 70_000
    answer = raw_exchange(server.url, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    assert_envelope(answer, 414, 1201, "refused")


def test_an_oversized_header_is_an_envelope(server: Server) -> None:
    big = "a" * 70_000
    answer = raw_exchange(server.url, f"GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n".encode())
    assert_envelope(answer, 431, 1201, "refused")


def test_too_many_headers_is_an_envelope(server: Server) -> None:
    many = "".join(f"X-H{i}: {i}\r\n" for i in range(150))
    answer = raw_exchange(server.url, f"GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode())
    assert_envelope(answer, 431, 1201, "refused")


@pytest.mark.parametrize(
    "line", [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"G\x00T / HTTP/1.1\r\n\r\n"]
)
def test_a_malformed_request_line_is_an_envelope(server: Server, line: bytes) -> None:
    found, headers, body = parse(raw_exchange(server.url, line))
    assert 400 <= found < 600 and headers["content-type"].startswith("application/json")
    assert body["code"] in (1201, 1202, 1203) and body["request_id"]


def test_a_chunked_body_over_the_limit_is_too_large_not_malformed(server: Server) -> None:
    head = (
        b"POST /__mock/faults HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    chunk = b'{"a": "' + b"a" * 65_000

    def chunks() -> Iterator[bytes]:
        yield b"%x\r\n%s\r\n" % (len(chunk), chunk)
        filler = b"a" * 65_536
        for _ in range(20 * 16):  # 20 MiB in all, over the 16 MiB limit
            yield b"%x\r\n%s\r\n" % (len(filler), filler)
        yield b'2\r\n"}\r\n0\r\n\r\n'

    answer = raw_exchange(server.url, head, chunks())
    assert_envelope(answer, 400, 1201, "larger than")


def test_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mock_server.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0
    assert re.fullmatch(r"kling-mock \d+\.\d+\.\d+\S*\n", done.stdout), done.stdout


def test_a_non_loopback_bind_warns_and_drops_the_host_check(
    serve: Callable[..., Server],
) -> None:
    running = serve("--host", "0.0.0.0", "--port", "0", "--quiet", listening="listening on ")
    url = running.url.replace("0.0.0.0", "127.0.0.1")  # traffic stays on loopback
    response = requests.get(f"{url}/__mock/health", headers={"Host": "box.lan:1"}, timeout=10)
    assert response.status_code == 200
    running.stop()
    assert "not a loopback address" in running.stderr


def test_a_control_token_from_the_environment_is_required(
    serve: Callable[..., Server],
) -> None:
    token = "env-control-token-0123456789abcdef0123"
    running = serve("--port", "0", env=_env(KLING_MOCK_CONTROL_TOKEN=token))
    assert requests.get(f"{running.url}/__mock/health", timeout=10).status_code == 401
    headers = {"X-Mock-Control-Token": token}
    assert requests.get(f"{running.url}/__mock/health", headers=headers, timeout=10).ok
    running.stop()
    assert token not in "\n".join(running.lines) + running.stderr
