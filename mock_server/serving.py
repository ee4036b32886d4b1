"""The mock's HTTP server: every answer from its port is the Kling envelope, even the server's own.

Flask never sees a request line or headers the server refuses to parse (too long, too many,
garbage): the server answers those itself, and Werkzeug's server, like ``http.server``, answers
with an HTML page. The handler here answers them in the envelope instead. Any other server that
runs the app needs the same treatment (``mock_server.production`` does it for gunicorn, the
default of ``kling-mock serve``); ``tests/test_serving.py`` checks it over a real socket.

Werkzeug's server also closes the connection after every answer, so each request paid for a new
TCP connection and a new server thread; the handler here keeps an HTTP/1.1 connection open for
the next request whenever that is safe (see :meth:`EnvelopeRequestHandler.run_wsgi`), which is
what makes the in-process mock of the pytest fixtures cheap per request.
"""

from __future__ import annotations

import contextlib
import io
import json
import selectors
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from types import TracebackType

from flask import Flask
from werkzeug.exceptions import InternalServerError
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from kling_testkit.codes import ErrorCode

KEEP_ALIVE_S = 5.0
"""Seconds a kept-alive connection may sit idle before the server closes it, by default (the
default of gunicorn in ``kling-mock serve``)."""

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


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


class _CountedInput:
    """A request body (``Content-Length`` bytes) that counts what the app reads of it."""

    def __init__(self, stream: io.BufferedIOBase, length: int) -> None:
        self._stream = stream
        self.left = length

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self.left:
            size = self.left
        data = self._stream.read(size) if size else b""
        self.left -= len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        view = memoryview(buffer)[: self.left]
        count = self._stream.readinto(view) if len(view) else 0
        self.left -= count
        return count

    def readline(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self.left:
            size = self.left
        line = self._stream.readline(size) if size else b""
        self.left -= len(line)
        return line

    def readable(self) -> bool:
        return True


class EnvelopeRequestHandler(WSGIRequestHandler):
    """Werkzeug's request handler with the server's own errors in the Kling envelope, and
    HTTP/1.1 keep-alive."""

    quiet = False  # no access log line per request
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # buffered: the status line, headers and body leave in one packet on flush
    server: MockServer

    def setup(self) -> None:
        super().setup()
        self._answered = False  # at least one answer went out on this connection
        self.server.opened(self.connection)
        if self.connection.family in (socket.AF_INET, socket.AF_INET6):
            # The answer is written when it is complete: nothing to gain from Nagle's
            # algorithm, only a delayed ACK to wait for on a kept-alive connection.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.closed(self.connection)

    def handle_one_request(self) -> None:
        if self._answered and not self._next_request_arrives():
            self.close_connection = True
            return
        super().handle_one_request()

    def _next_request_arrives(self) -> bool:
        """Wait (at most the server's ``keep_alive_s``) on a kept-alive connection for the next
        request; False when the client or the server closed it, or it sat idle too long."""
        try:
            self.connection.settimeout(self.server.keep_alive_s)
            return bool(self.rfile.peek(1))  # type: ignore[attr-defined]
        except OSError:  # idle too long (TimeoutError), or the server closed it
            return False
        finally:
            with contextlib.suppress(OSError):
                self.connection.settimeout(None)

    def run_wsgi(self) -> None:
        """Werkzeug's ``run_wsgi``, but the connection is kept for the next request when safe.

        Werkzeug always answers ``Connection: close``, because ``http.server`` cannot tell
        where an unread request body ends. Here the body is counted as the app reads it, and
        the connection stays open only when the request is HTTP/1.1 without ``Connection:
        close``, its body (by ``Content-Length``; a chunked one closes) was read to the end,
        the answer's length is known (``Content-Length``, or chunked here), the app did not
        say ``Connection: close`` (transport faults do), and nothing went wrong on the way.
        """
        self._answered = True
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
        self.environ = environ = self.make_environ()
        body: _CountedInput | None = None
        if self.request_version != "HTTP/1.1" or "wsgi.input_terminated" in environ:
            self.close_connection = True  # HTTP/1.0, or a chunked body
        else:
            try:
                length = max(int(environ.get("CONTENT_LENGTH") or 0), 0)
            except ValueError:
                length = 0
                self.close_connection = True
            body = _CountedInput(self.rfile, length)
            environ["wsgi.input"] = body
        status: str | None = None
        headers: list[tuple[str, str]] = []
        sent = False
        chunked = False

        def start_response(
            new_status: str, new_headers: list[tuple[str, str]], exc_info: _ExcInfo | None = None
        ) -> Callable[[bytes], None]:
            nonlocal status, headers
            if exc_info is not None:
                try:
                    if sent:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif status is not None:
                raise AssertionError("Headers already set")
            status, headers = new_status, new_headers
            return write

        def send_head() -> None:
            nonlocal sent, chunked
            assert status is not None, "write() before start_response"
            sent = True
            code_text, _, reason = status.partition(" ")
            code = int(code_text)
            self.send_response(code, reason)
            keys = set()
            for key, value in headers:
                self.send_header(key, value)  # "Connection: close" sets close_connection
                keys.add(key.lower())
            no_body = self.command == "HEAD" or code < 200 or code in (204, 304)
            if "content-length" not in keys and not no_body:
                if self.request_version == "HTTP/1.1":
                    chunked = True
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.close_connection = True  # the end of the body is the end of the data
            if body is None or body.left:
                self.close_connection = True  # what is left of the body cannot be skipped
            if self.close_connection and "connection" not in keys:
                self.send_header("Connection", "close")
            self.end_headers()

        def write(data: bytes) -> None:
            assert isinstance(data, bytes), "applications must write bytes"
            if not sent:
                send_head()
            if data:
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                else:
                    self.wfile.write(data)
            self.wfile.flush()

        def execute(app: Callable[..., Iterable[bytes]]) -> None:
            answer = app(environ, start_response)
            try:
                for data in answer:
                    write(data)
                if not sent:
                    write(b"")
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
            finally:
                if body is None or body.left:  # the connection closes: see _drain
                    self._drain()
                close = getattr(answer, "close", None)
                if close is not None:
                    close()

        try:
            execute(self.server.app)
        except (ConnectionError, TimeoutError) as exc:
            self.close_connection = True
            self.connection_dropped(exc, environ)
        except Exception as exc:
            self.close_connection = True
            if self.server.passthrough_errors:
                raise
            if not sent:
                status, headers = None, []
                with contextlib.suppress(Exception):
                    execute(InternalServerError())
            from werkzeug.debug.tbtools import DebugTraceback

            trace = DebugTraceback(exc).render_traceback_text()
            self.server.log("error", f"Error on request:\n{trace}")

    def _drain(self) -> None:
        """Read (and drop) what the client still sends before the connection closes, as
        Werkzeug does, so a client still sending a refused body sees the answer, not a reset."""
        with selectors.DefaultSelector() as selector:
            try:
                selector.register(self.connection, selectors.EVENT_READ)
            except (OSError, ValueError):  # closed already (a transport fault)
                return
            total = reads = 0
            while selector.select(timeout=0.01):
                try:
                    data = self.rfile.read1(10_000_000)
                except OSError:
                    return
                total += len(data)
                reads += 1
                if not data or total >= 10_000_000_000 or reads > 1000:
                    return

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

    def __init__(
        self,
        host: str,
        port: int,
        app: Flask,
        handler: type[WSGIRequestHandler],
        keep_alive_s: float | None = KEEP_ALIVE_S,
    ) -> None:
        super().__init__(host, port, app, handler)
        self.keep_alive_s = keep_alive_s  # None: a kept-alive connection may idle for ever
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._closing = False

    def opened(self, connection: socket.socket) -> None:
        """A handler took ``connection``; :meth:`server_close` will close it."""
        with self._lock:
            closing = self._closing
            if not closing:
                self._connections.add(connection)
        if closing:
            _hang_up(connection)

    def closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

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
        """Close the port and every connection still open, so a client's kept-alive
        connection cannot reach a stopped mock."""
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()
        with self._lock:
            self._closing = True
            connections, self._connections = self._connections, set()
        for connection in connections:
            _hang_up(connection)


def _hang_up(connection: socket.socket) -> None:
    """End a connection another thread may be waiting on (its handler then sees EOF)."""
    with contextlib.suppress(OSError):  # closed already
        connection.shutdown(socket.SHUT_RDWR)


def make_server(
    host: str,
    port: int,
    app: Flask,
    *,
    quiet: bool = False,
    keep_alive_s: float | None = KEEP_ALIVE_S,
) -> MockServer:
    """A threaded server for ``app`` on ``host:port`` (0 picks a free port) that closes a
    kept-alive connection after ``keep_alive_s`` idle seconds (None: only when the client does,
    or at ``server_close``)."""
    handler = QuietRequestHandler if quiet else EnvelopeRequestHandler
    return MockServer(host, port, app, handler, keep_alive_s)
