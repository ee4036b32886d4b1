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
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mock_server.backend import Backend

PREFIX = "/ns/"
BACKEND_KEY = "kling_mock.backend"
"""The WSGI environ key that carries a namespace's backend to the (shared) app's views."""
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A namespace name: up to 64 letters, digits, dots, dashes and underscores."""

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class Registry(Protocol):
    """Which namespaces exist, least recently used first, shared by the processes of a mock."""

    def touch(self, name: str, limit: int) -> list[str]:
        """Mark ``name`` used now; the names dropped to stay within ``limit``."""
        ...

    def remove(self, name: str) -> bool: ...

    def names(self) -> list[str]: ...


class LocalRegistry:
    """The namespaces of a mock served by one process."""

    def __init__(self) -> None:
        self._names: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def touch(self, name: str, limit: int) -> list[str]:
        with self._lock:
            self._names[name] = None
            self._names.move_to_end(name)
            evicted = []
            while len(self._names) > limit:
                evicted.append(self._names.popitem(last=False)[0])
            return evicted

    def remove(self, name: str) -> bool:
        with self._lock:
            if name not in self._names:
                return False
            del self._names[name]
            return True

    def names(self) -> list[str]:
        with self._lock:
            return list(self._names)


class Namespaces:
    """The namespaces of one mock, newest use last; thread-safe.

    This process keeps a backend per namespace it served; the registry (shared with the other
    processes when the store is) says which exist, and dropping one drops its state in its store.
    """

    def __init__(
        self,
        factory: Callable[[str], Backend],
        limit: int,
        registry: Registry | None = None,
    ) -> None:
        self._factory = factory
        self._limit = limit
        self._registry: Registry = registry if registry is not None else LocalRegistry()
        self._apps: dict[str, Backend] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Backend:
        """The namespace's mock, made now if it is new (dropping the least recently used)."""
        evicted = self._registry.touch(name, self._limit)
        with self._lock:
            app = self._apps.get(name)
        if app is None:
            made = self._factory(name)
            with self._lock:
                app = self._apps.setdefault(name, made)
            if app is not made:
                _stop(made, forget=False)
        for old in evicted:
            self._forget(old)
        return app

    def _forget(self, name: str) -> None:
        with self._lock:
            app = self._apps.pop(name, None)
        if app is None:
            app = self._factory(name)  # another process served it: drop its state all the same
        _stop(app, forget=True)

    def drop(self, name: str) -> bool:
        if not self._registry.remove(name):
            return False
        self._forget(name)
        return True

    def drop_all(self) -> int:
        names = self._registry.names()
        return sum(self.drop(name) for name in names)

    def names(self) -> list[str]:
        return self._registry.names()

    @property
    def limit(self) -> int:
        return self._limit


def _stop(mock: Backend, *, forget: bool) -> None:
    mock.callbacks.stop()
    if forget:
        mock.drop()


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
