"""Scenarios and fault rules applied to a request: errors, latency and transport faults."""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

from flask import Response, g, request

from kling_testkit.spec.contents import prompt_of
from mock_server.backend import CreateEffects
from mock_server.config import Account
from mock_server.errors import ApiError
from mock_server.rules import Facts
from mock_server.scenarios import HEADER
from mock_server.views.common import backend, json_body


def _prompt() -> str | None:
    try:
        body = json_body()
    except ApiError:  # the create view reports what is wrong with the body
        return None
    if not isinstance(body, dict):
        return None
    prompt = body.get("prompt", prompt_of(body.get("contents")))  # legacy, or the 2026 design
    return prompt if isinstance(prompt, str) else None


def apply(account: Account | None, is_create: bool = False) -> Response | None:
    """Run the request's scenario and the first matching rule; keep create effects in ``g``.

    Returns a response only for transport faults; errors are raised as ApiError.
    """
    mock = backend()
    effects: dict[str, Any] = {}
    scenario_value = request.headers.get(HEADER)
    if scenario_value is not None and account is not None:
        spec = mock.scenario(account, scenario_value)
        effects.update(_effects_of(spec.get("action", {})))
        if "result_ttl_s" in spec:
            effects["result_ttl_s"] = float(spec["result_ttl_s"])
        if spec.get("action", {}).get("type") == "transport":
            return transport(spec["action"]["fault"])
    facts = Facts(
        request.method,
        request.path,
        account.name if account else None,
        dict(request.headers),
        _prompt() if is_create else None,
        is_create,
    )
    rule = mock.pick_rule(facts)
    if rule is not None:
        kind = rule.action["type"]
        if kind == "error":
            raise mock.error_for(rule.action)
        if kind == "latency":
            delay = mock.latency_of(rule)
            g.injected_latency_ms = round(delay * 1000)
            flight = g.get("flight")
            if flight is not None:  # a create held: the same one sent meanwhile is a retry
                g.in_flight = (flight, mock.now())
                mock.in_flight.enter(*g.in_flight)
            time.sleep(delay)
        if kind in ("transport", "gateway"):
            fault = rule.action["fault"] if kind == "transport" else int(rule.action["status"])
            if rule.action.get("when") == "after":
                g.transport_after = fault  # see lose_answer
            else:
                return transport(fault) if isinstance(fault, str) else gateway(fault)
        for key, value in _effects_of(rule.action).items():
            effects.setdefault(key, value)
    g.create_effects = CreateEffects(**effects)
    return None


def lose_answer(response: Response) -> Response:
    """After the request was processed: break the answer if an ``after`` fault asked for it
    (a transport fault, or a gateway's status)."""
    fault = g.get("transport_after")
    if fault is None:
        return response
    return transport(fault) if isinstance(fault, str) else gateway(fault)


_GATEWAY_TITLES = {502: "502 Bad Gateway", 504: "504 Gateway Time-out"}


def gateway(status: int) -> Response:
    """What a proxy in front of the API answers when the API behind it fails: an HTML page for
    502 and 504, an empty body for 503; never the API's envelope."""
    g.transport_fault = f"gateway_{status}"
    if status == 503:
        return Response(b"", 503, content_type="text/html")
    title = _GATEWAY_TITLES[status]
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>gateway</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return Response(page, status, mimetype="text/html")


def _effects_of(action: dict[str, Any]) -> dict[str, Any]:
    if action.get("type") == "outcome":
        return {"outcome": action}
    if action.get("type") == "callback":
        return {"callback_fault": action}
    return {}


def _socket() -> socket.socket | None:
    found = request.environ.get("werkzeug.socket") or request.environ.get("gunicorn.socket")
    return found if isinstance(found, socket.socket) else None


def transport(fault: str) -> Response:
    """A response that breaks the connection the way ``fault`` says."""
    g.transport_fault = fault
    if fault == "malformed_json":
        return Response(
            '{"code": 0, "message": "SUCCEED", "data": {"task_id": ',
            200,
            mimetype="application/json",
        )
    sock = _socket()

    def broken() -> Iterator[bytes]:
        if fault == "truncated":
            yield b'{"code": 0, "message": "SUCCEED", "data": {"task_'
        if sock is not None:
            if fault == "reset":  # linger 0: closing the descriptor sends RST instead of FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                # The server's file objects keep the socket open through close(); detach()
                # hands us the descriptor (theirs becomes -1) so it really closes now.
                os.close(sock.detach())
            else:
                sock.shutdown(socket.SHUT_RDWR)
        # A ConnectionError tells the WSGI server the peer is gone: it stops quietly (gunicorn
        # only for these errno values; Werkzeug for any ConnectionError).
        raise ConnectionAbortedError(errno.ECONNRESET, f"mock transport fault: {fault}")

    response = Response(broken(), 200, mimetype="application/json")
    if fault == "truncated":
        response.headers["Content-Length"] = "4096"
    response.headers["Connection"] = "close"
    return response
