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
import multiprocessing
import socket
import struct
import sys
import time
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


class Balance:
    """Spreads connections evenly over the workers (``--workers N``, N > 1).

    Every worker waits on the one listening socket and whichever wakes first accepts, so a
    client that opens its connections at once and keeps them alive (wrk, Locust's users) may
    find 13 of 16 on one worker and the other nearly idle: the run then measures one process.
    Here each worker publishes how many connections it holds in shared memory, and a worker
    holding more than another waits (0.5 ms at a time, 50 ms at most, in case the other is
    stuck) so that the other takes the connection.
    """

    WAIT_S = 0.0005
    GIVE_UP_S = 0.05
    FREE = -1

    def __init__(self, slots: int) -> None:
        # Shared with the workers by fork; slot i holds worker i's connection count, or FREE.
        self._counts = multiprocessing.RawArray("l", [self.FREE] * (2 * slots))
        self._waiting_since: float | None = None  # this process's (each worker has its own)

    def claim(self, worker: Any) -> None:
        """In the arbiter, before the fork: give the new worker a free slot."""
        slot = next((i for i, count in enumerate(self._counts) if count == self.FREE), None)
        if slot is not None:  # else (never seen) the worker accepts as gunicorn's do
            self._counts[slot] = 0
        worker.balance_slot = slot

    def release(self, worker: Any) -> None:
        """In the arbiter, once the worker has exited."""
        slot = getattr(worker, "balance_slot", None)
        if slot is not None:
            self._counts[slot] = self.FREE

    def publish(self, slot: int, connections: int) -> None:
        self._counts[slot] = connections

    def wait_turn(self, slot: int, connections: int) -> bool:
        """True when another worker holds fewer connections and should take this one (after
        a short sleep, so that the listener, still readable, does not spin this loop)."""
        fewer = any(
            count != self.FREE and count < connections
            for i, count in enumerate(self._counts)
            if i != slot
        )
        now = time.monotonic()
        if not fewer or (
            self._waiting_since is not None and now - self._waiting_since > self.GIVE_UP_S
        ):
            self._waiting_since = None
            return False
        if self._waiting_since is None:
            self._waiting_since = now
        time.sleep(self.WAIT_S)
        return True


class EnvelopeWorker(ThreadWorker):  # type: ignore[misc]
    """Gunicorn's threaded worker with its own error answers in the Kling envelope, a bound on
    a client that stops in the middle of a request (``--request-timeout``), and with several
    workers its share of the connections (``Balance``)."""

    request_timeout_s = 30
    balance: Balance | None = None
    balance_slot: int | None = None  # set by Balance.claim before the fork

    def accept(self, listener: Any) -> None:
        balance, slot = self.balance, self.balance_slot
        if balance is not None and slot is not None and balance.wait_turn(slot, self.nr_conns):
            return
        super().accept(listener)
        if balance is not None and slot is not None:
            balance.publish(slot, self.nr_conns)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        super().wait_for_and_dispatch_events(timeout)
        if self.balance is not None and self.balance_slot is not None:  # closed meanwhile
            self.balance.publish(self.balance_slot, self.nr_conns)

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
        balance = Balance(opts.workers) if opts.workers > 1 and opts.shared_store else None
        worker_class = type(
            "EnvelopeWorker",
            (EnvelopeWorker,),
            {"request_timeout_s": opts.request_timeout_s, "balance": balance},
        )
        settings: dict[str, Any] = {
            "bind": [f"{host}:{opts.port}"],
            "workers": opts.workers,
            "worker_class": worker_class,
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
        if balance is not None:
            settings["pre_fork"] = lambda arbiter, worker: balance.claim(worker)
            settings["child_exit"] = lambda arbiter, worker: balance.release(worker)
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
