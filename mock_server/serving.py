"""The mock's HTTP server: every answer from its port is the Kling envelope, even the server's own.

Flask never sees a request line or headers the server refuses to parse (too long, too many,
garbage): the server answers those itself, and Werkzeug's server, like ``http.server``, answers
with an HTML page. The handler here answers them in the envelope instead. Any other server that
runs the app needs the same treatment (``mock_server.production`` does it for gunicorn, the
default of ``kling-mock serve``); ``tests/test_serving.py`` checks it over a real socket.
"""

from __future__ import annotations

import json
import selectors
import socket
import threading
import uuid

from flask import Flask
from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer, WSGIRequestHandler

from kling_testkit.codes import ErrorCode


def _code_for(status: int) -> ErrorCode:
    """Everything the server refuses before the app runs is the client's request (even 505)."""
    if status == 501:  # a method the HTTP parser does not know
        return ErrorCode.INVALID_METHOD
    return ErrorCode.INVALID_VALUE


def refusal_body(status: int, reason: str, code: ErrorCode | None = None) -> bytes:
    """The envelope for a request the server refused before the app ran."""
    return json.dumps(
        {
            "code": int(code if code is not None else _code_for(status)),
            "message": f"the server refused the request: {reason}"[:300],
            "request_id": str(uuid.uuid4()),
        }
    ).encode()


class EnvelopeRequestHandler(WSGIRequestHandler):
    """Werkzeug's request handler with the server's own errors in the Kling envelope."""

    quiet = False  # no access log line per request

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        self.log_error("code %d, message %s", code, message)
        reason = message or self.responses.get(code, ("error",))[0]
        body = refusal_body(code, reason)
        # A garbled request line leaves the version at HTTP/0.9, which has no status line or
        # headers; answer as HTTP/1.1 so the client can tell what happened.
        self.request_version = "HTTP/1.1"
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if not self.quiet:
            super().log_request(code, size)


class QuietRequestHandler(EnvelopeRequestHandler):
    quiet = True


class MockServer(ThreadedWSGIServer):
    """Werkzeug's threaded server that stops at once.

    ``socketserver`` notices ``shutdown()`` only when its poll interval runs out (the
    in-process mock's session stop waited 50 ms for it); here a byte on a socket pair wakes
    the loop as soon as it is asked to stop.
    """

    def __init__(self, host: str, port: int, app: Flask, handler: type[WSGIRequestHandler]):
        super().__init__(host, port, app, handler)
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve until :meth:`shutdown`; ``poll_interval`` only paces ``service_actions``."""
        self._stopped.clear()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self, selectors.EVENT_READ)
                selector.register(self._wake_reader, selectors.EVENT_READ)
                while not self._stop.is_set():
                    ready = selector.select(poll_interval)
                    if self._stop.is_set():
                        break
                    if any(key.fileobj is self for key, _ in ready):
                        self._accept()
                    self.service_actions()
        finally:
            self._stop.clear()
            self._stopped.set()
            self.server_close()

    def _accept(self) -> None:
        """Take one waiting connection and hand it to a thread (``socketserver``'s steps)."""
        try:
            request, client_address = self.get_request()
        except OSError:
            return
        if not self.verify_request(request, client_address):
            self.shutdown_request(request)
            return
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)
        except BaseException:
            self.shutdown_request(request)
            raise

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` and wait until it has returned."""
        self._stop.set()
        try:
            self._wake_writer.send(b"x")
        except OSError:  # closed already: the loop is not running
            return
        self._stopped.wait()

    def server_close(self) -> None:
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()


def make_server(host: str, port: int, app: Flask, *, quiet: bool = False) -> BaseWSGIServer:
    """A threaded server for ``app`` on ``host:port`` (0 picks a free port)."""
    return MockServer(host, port, app, QuietRequestHandler if quiet else EnvelopeRequestHandler)
