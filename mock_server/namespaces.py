"""Namespaces: ``/ns/<name>/...`` is a whole mock of its own, made on first use.

Each namespace has its own clock, config, tasks, rules, journal, callbacks and control API
(``/ns/<name>/__mock/...``), built from the start-up config of the mock that serves it. Any
client configured with a base URL of ``http://host/ns/<name>`` is isolated untouched, result
URLs included. They are bounded in number: past ``max_namespaces`` the one used least recently
is dropped. ``DELETE /__mock/namespaces/<name>`` drops one at once.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mock_server.backend import Backend

PREFIX = "/ns/"
BACKEND_KEY = "kling_mock.backend"
"""The WSGI environ key that carries a namespace's backend to the (shared) app's views."""
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A namespace name: up to 64 letters, digits, dots, dashes and underscores."""

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class Namespaces:
    """The namespaces of one mock, newest use last; thread-safe."""

    def __init__(self, factory: Callable[[str], Backend], limit: int) -> None:
        self._factory = factory
        self._limit = limit
        self._apps: OrderedDict[str, Backend] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str) -> Backend:
        """The namespace's mock, made now if it is new (dropping the least recently used)."""
        with self._lock:
            app = self._apps.get(name)
            if app is not None:
                self._apps.move_to_end(name)
                return app
        made = self._factory(name)
        with self._lock:
            app = self._apps.setdefault(name, made)
            self._apps.move_to_end(name)
            evicted = []
            while len(self._apps) > self._limit:
                evicted.append(self._apps.popitem(last=False)[1])
        for old in [*evicted, *([made] if app is not made else [])]:
            _stop(old)
        return app

    def drop(self, name: str) -> bool:
        with self._lock:
            app = self._apps.pop(name, None)
        if app is not None:
            _stop(app)
        return app is not None

    def drop_all(self) -> int:
        with self._lock:
            apps = list(self._apps.values())
            self._apps.clear()
        for app in apps:
            _stop(app)
        return len(apps)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._apps)

    @property
    def limit(self) -> int:
        return self._limit


def _stop(mock: Backend) -> None:
    mock.callbacks.stop()


class Dispatcher:
    """WSGI middleware: ``/ns/<name>/rest`` is served as ``/rest`` by the same app, with the
    namespace's backend in the environ (one Flask app for all; a namespace is only its state).

    ``SCRIPT_NAME`` gains ``/ns/<name>``, so URLs the namespace builds (result URLs, the served
    document's ``servers``) point back into it. Anything else is the root mock's.
    """

    def __init__(self, root: WsgiApp, namespaces: Namespaces) -> None:
        self.root = root
        self.namespaces = namespaces

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX):
            name, _, rest = path[len(PREFIX) :].partition("/")
            if NAME.fullmatch(name):
                inner = dict(environ)
                inner[BACKEND_KEY] = self.namespaces.get(name)
                inner["SCRIPT_NAME"] = f"{environ.get('SCRIPT_NAME', '')}{PREFIX}{name}"
                inner["PATH_INFO"] = f"/{rest}"
                return self.root(inner, start_response)
        return self.root(environ, start_response)
