"""``kling-mock serve`` on gunicorn: one gthread worker, every answer in the Kling envelope.

Gunicorn answers requests it cannot parse (request line or headers too long, too many headers,
garbage, an unknown HTTP version, a bad chunk) from its worker's ``handle_error`` with an HTML
page; ``EnvelopeWorker`` answers them in the envelope instead, as ``serving`` does for Werkzeug.
The app is built before the fork (so a bad config stops start-up). With the in-memory store it
is served by ONE worker: the mock's state is in that process's memory, and a second worker would
be a second mock. With the Redis store (``--store redis://...``) any number of workers serve one
mock, and a worker that dies is replaced without losing anything.

Gunicorn needs ``fcntl`` and ``os.fork``: this module is for POSIX only.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask
from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.errors import HaltServer
from gunicorn.http import errors
from gunicorn.workers.gthread import ThreadWorker
from werkzeug.exceptions import BadRequest

from kling_testkit.codes import ErrorCode
from mock_server.serving import refusal_body

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# Gunicorn caps a request line at 8190 bytes; Werkzeug's server allowed 65536.
REQUEST_LINE_LIMIT = 8190
HEADER_COUNT_LIMIT = 100  # as Werkzeug's server (http.server)
HEADER_SIZE_LIMIT = 8190

_E = ErrorCode
_STATUS: list[tuple[type[BaseException], int, str, ErrorCode]] = [
    (errors.LimitRequestLine, 414, "URI Too Long", _E.INVALID_VALUE),
    (errors.LimitRequestHeaders, 431, "Request Header Fields Too Large", _E.INVALID_VALUE),
    (errors.InvalidHTTPVersion, 505, "HTTP Version Not Supported", _E.INVALID_VALUE),
    (errors.InvalidRequestMethod, 501, "Not Implemented", _E.INVALID_METHOD),
    (errors.UnsupportedTransferCoding, 501, "Not Implemented", _E.INVALID_VALUE),
    (errors.ExpectationFailed, 417, "Expectation Failed", _E.INVALID_VALUE),
    (errors.ForbiddenProxyRequest, 403, "Forbidden", _E.INVALID_VALUE),
]


def status_of(exc: BaseException) -> tuple[int, str, ErrorCode]:
    """The HTTP status, reason and Kling code for an error gunicorn met around the app.

    Everything it refuses before the app runs is the client's request (even 505), as in
    ``serving``; anything else is the server's fault (500/5000).
    """
    if isinstance(exc, (errors.InvalidResponseHeader, errors.InvalidResponseHeaderName)):
        return 500, "Internal Server Error", _E.SERVER_ERROR  # the app's fault
    for kind, status, reason, code in _STATUS:
        if isinstance(exc, kind):
            return status, reason, code
    if isinstance(exc, errors.ParseException):
        return 400, "Bad Request", _E.INVALID_VALUE
    return 500, "Internal Server Error", _E.SERVER_ERROR


def refusal(exc: BaseException) -> bytes:
    """The whole HTTP answer (status line, headers, envelope) for ``exc``."""
    status, reason, code = status_of(exc)
    detail = f"{reason}: {exc}" if str(exc) else reason
    body = refusal_body(status, detail, code)
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def _stalled(exc: OSError) -> bool:
    """A read or write that ran out of ``--request-timeout`` (SO_RCVTIMEO/SO_SNDTIMEO)."""
    return isinstance(exc, (BlockingIOError, TimeoutError)) or exc.errno == errno.EAGAIN


class _GuardedInput:
    """``wsgi.input`` whose parse errors (a bad chunk) are the client's 400, not the app's 500.

    Gunicorn parses a chunked body while the app reads it and raises its own errors, which the
    app would take for a crash; Werkzeug's server raises nothing the app cannot answer.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _guard(self, read: Callable[..., Any], *args: Any) -> Any:
        try:
            return read(*args)
        except errors.ParseException as exc:
            raise BadRequest(f"request body is malformed: {exc}"[:300]) from None
        except OSError as exc:
            if not _stalled(exc):
                raise
            raise BadRequest("the request body stopped arriving (--request-timeout)") from None

    def read(self, *args: Any) -> bytes:
        data: bytes = self._guard(self._stream.read, *args)
        return data

    def readline(self, *args: Any) -> bytes:
        data: bytes = self._guard(self._stream.readline, *args)
        return data

    def readlines(self, *args: Any) -> list[bytes]:
        lines: list[bytes] = self._guard(self._stream.readlines, *args)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line


def guarded(app: WSGIApplication) -> WSGIApplication:
    """``app`` with its ``wsgi.input`` wrapped in ``_GuardedInput``."""

    def wrapper(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ["wsgi.input"] = _GuardedInput(environ["wsgi.input"])
        return app(environ, start_response)

    return wrapper


class EnvelopeWorker(ThreadWorker):  # type: ignore[misc]
    """Gunicorn's threaded worker with its own error answers in the Kling envelope, and a
    bound on a client that stops in the middle of a request (``--request-timeout``)."""

    request_timeout_s = 30

    def handle(self, conn: Any) -> Any:
        # Gunicorn waits (bounded) for a new connection's first bytes, then reads the rest of
        # the request blocking, without a limit: a client that stops sending would hold this
        # thread for good. A kernel timeout on the socket bounds every read and write (it
        # survives the setblocking() calls gunicorn makes).
        wait = struct.pack("ll", self.request_timeout_s, 0)
        try:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, wait)
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, wait)
        except OSError:
            pass  # the client is already gone: the handling below finds out
        return super().handle(conn)

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        if status_of(exc)[2] is ErrorCode.SERVER_ERROR:
            self.log.exception("Error handling request")
        else:
            self.log.warning("Invalid request from %s: %s", (addr or ("",))[0], exc)
        try:
            util.write_nonblock(client, refusal(exc))
        except Exception:  # the client may be gone already
            self.log.debug("Failed to send the error answer.")


@dataclass(frozen=True)
class Options:
    host: str
    port: int
    threads: int
    keep_alive_s: int
    graceful_s: int
    quiet: bool
    request_timeout_s: int = 30
    workers: int = 1
    shared_store: bool = False  # the state is in Redis: more workers, and a dead one replaced


WORKER_DIED = 3  # exit status of kling-mock serve when its worker died


def _halt_unless_stopping(arbiter: Any, worker: Any) -> None:
    """The worker died while serving (killed, timed out): stop, do not start a fresh mock.

    Gunicorn would spawn a new worker with the state of start-up, silently forgetting every
    task; a client would see a different mock on the same port. ``stop`` empties ``LISTENERS``
    before it stops the worker, so an exit during shutdown passes.
    """
    if arbiter.LISTENERS:
        raise HaltServer(
            f"the worker (pid {worker.pid}) died; the mock's state died with it", WORKER_DIED
        )


class MockApplication(BaseApplication):  # type: ignore[misc]
    """Gunicorn embedded: the given app, options from the command line only (no config file)."""

    def __init__(
        self,
        app: Flask,
        options: Options,
        on_ready: Callable[[int], None],
        on_exit: Callable[[], None],
    ) -> None:
        self._app, self._options = app, options
        self._on_ready, self._on_exit = on_ready, on_exit
        super().__init__()

    def load_config(self) -> None:
        opts = self._options
        host = f"[{opts.host}]" if ":" in opts.host else opts.host
        settings: dict[str, Any] = {
            "bind": [f"{host}:{opts.port}"],
            "workers": opts.workers,
            "worker_class": type(
                "EnvelopeWorker", (EnvelopeWorker,), {"request_timeout_s": opts.request_timeout_s}
            ),
            "threads": opts.threads,
            "keepalive": opts.keep_alive_s,
            "graceful_timeout": opts.graceful_s,
            "max_requests": 0,  # a restarted worker would be a fresh mock
            "limit_request_line": REQUEST_LINE_LIMIT,
            "limit_request_fields": HEADER_COUNT_LIMIT,
            "limit_request_field_size": HEADER_SIZE_LIMIT,
            "loglevel": "warning" if opts.quiet else "info",
            "accesslog": None if opts.quiet else "-",
            "errorlog": "-",
            "proc_name": "kling-mock",
            "when_ready": lambda arbiter: self._on_ready(
                arbiter.LISTENERS[0].sock.getsockname()[1]
            ),
            "on_exit": lambda arbiter: self._on_exit(),
        }
        if not opts.shared_store:
            settings["child_exit"] = _halt_unless_stopping
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self) -> WSGIApplication:
        logging.getLogger("gunicorn.error").addFilter(_quiet_stalls)
        return guarded(self._app)


def _quiet_stalls(record: logging.LogRecord) -> bool:
    """A client that stalled past --request-timeout is one warning line, not a traceback."""
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, OSError) and _stalled(exc):
        record.msg, record.args, record.exc_info = "a client stalled mid-request; closed", (), None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
    return True


def run(
    app: Flask, options: Options, on_ready: Callable[[int], None], on_exit: Callable[[], None]
) -> int:
    """Serve until SIGINT or SIGTERM (gunicorn's arbiter handles both); the exit status."""
    try:
        MockApplication(app, options, on_ready, on_exit).run()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    sys.stdout.flush()
    return 0
