"""Run a mock inside this process, on a free loopback port, in a background thread.

This keeps Werkzeug's threaded server (``mock_server.serving``), not gunicorn (the default of
``kling-mock serve``): it starts in milliseconds inside the test process, on a thread, where
gunicorn's arbiter would fork and take over the process's signals. Its connections are this
process's own, so a kept-alive one is never closed for idling (no race between a client reusing
it and the server closing it); they close when the client closes them, or at :meth:`stop`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kling_testkit.control import Clock, ControlError, MockControl

if TYPE_CHECKING:
    from mock_server.backend import Backend
    from mock_server.serving import MockServer


class InProcessMock:
    """A threaded mock server for tests; ``with InProcessMock() as mock: mock.base_url``."""

    def __init__(
        self, config: Mapping[str, Any] | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._config = {"clock": "manual", **(config or {})}
        self._host, self._port = host, port
        self._server: MockServer | None = None
        self._thread: threading.Thread | None = None
        self.backend: Backend | None = None

    def start(self) -> InProcessMock:
        from mock_server import create_app
        from mock_server.serving import make_server

        app = create_app(self._config)
        self.backend = app.extensions["kling_mock"]
        # Quiet: no access log, so a test's output stays about the test.
        self._server = make_server(self._host, self._port, app, quiet=True, keep_alive_s=None)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="kling-mock", daemon=True
        )
        self._thread.start()
        return self

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the mock is not started")
        return f"http://{self._host}:{self._server.server_port}"

    def now(self) -> float:
        """Mock time, as ``GET /__mock/clock`` gives it, read in this process."""
        if self.backend is None:
            raise RuntimeError("the mock is not started")
        return self.backend.now()

    def advance(self, seconds: float) -> float:
        """Move mock time forward, as ``POST /__mock/clock/advance`` does; the new time."""
        if self.backend is None:
            raise RuntimeError("the mock is not started")
        from mock_server.views.control import MAX_ADVANCE_S

        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise ValueError(f"seconds must be a number >= 0; got {seconds!r}")
        if not 0 <= seconds <= MAX_ADVANCE_S:  # the limit POST /__mock/clock/advance has
            raise ValueError(
                f"seconds must be between 0 and {MAX_ADVANCE_S:.0f} (ten years); got {seconds}"
            )
        return self.backend.advance(float(seconds))

    def clock_info(self) -> dict[str, Any]:
        """What ``GET /__mock/clock`` answers, read in this process without a round trip."""
        if self.backend is None:
            raise RuntimeError("the mock is not started")
        clock = self.backend.clock
        now = self.backend.now()
        return {
            "now": now,
            "now_ms": int(now * 1000),
            "mode": "manual" if clock.manual else "real",
            "time_scale": clock.scale,
            "auth_clock": self.backend.config.auth_clock,
        }

    def errors(self) -> list[BaseException]:
        """Unexpected exceptions raised inside the server so far (oldest first)."""
        return [] if self.backend is None else list(self.backend.errors)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.backend is not None:
            self.backend.callbacks.stop()
        self._server = self._thread = None

    def __enter__(self) -> InProcessMock:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class InProcessClock(Clock):
    """The in-process mock's clock on a :class:`MockControl`: the answers and errors of
    ``/__mock/clock``, read and moved in this process without an HTTP round trip."""

    def __init__(self, control: MockControl, mock: InProcessMock) -> None:
        super().__init__(control)
        self._mock = mock

    def now(self) -> float:
        return self._mock.now()

    def advance(self, seconds: float) -> float:
        try:
            return self._mock.advance(seconds)
        except ValueError as exc:
            raise ControlError(f"POST /__mock/clock/advance: {exc}") from None

    def info(self) -> dict[str, Any]:
        return self._mock.clock_info()
