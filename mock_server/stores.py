"""Where a mock keeps its state: the stores of the root mock and of each namespace.

``memory`` (the default) keeps it in this process; ``redis://HOST:PORT/DB`` in a Redis server
that several processes share. Only the Redis store imports redis-py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mock_server.errors import ConfigError
from mock_server.memory_store import MemoryStore
from mock_server.namespaces import LocalRegistry, Registry
from mock_server.store import Store

if TYPE_CHECKING:
    import redis

PREFIX = "kling-mock"


class StoreFactory:
    """Makes the stores of one mock (root and namespaces) and its namespace registry."""

    def __init__(self, client: redis.Redis | None = None, prefix: str = PREFIX) -> None:
        self._client = client
        self._prefix = prefix

    @classmethod
    def of(cls, url: str | StoreFactory | None) -> StoreFactory:
        """The factory for a ``--store`` value (None or ``memory``: this process's memory)."""
        if isinstance(url, StoreFactory):
            return url
        if url is None or url == "memory":
            return cls()
        if urlsplit(url).scheme not in ("redis", "unix"):
            raise ConfigError(f"store must be 'memory' or redis://HOST:PORT/DB; got {url[:200]!r}")
        from mock_server.redis_store import connect

        try:
            return cls(connect(url))
        except Exception as exc:  # redis-py raises several kinds; all mean "cannot use it"
            raise ConfigError(f"store {url[:200]}: cannot reach Redis ({exc})") from None

    @property
    def shared(self) -> bool:
        return self._client is not None

    def root(self) -> Store:
        return self._make(self._prefix)

    def namespace(self, name: str) -> Store:
        return self._make(f"{self._prefix}:ns:{name}")

    def _make(self, prefix: str) -> Store:
        if self._client is None:
            return MemoryStore()
        from mock_server.redis_store import RedisStore

        return RedisStore(self._client, prefix)

    def registry(self) -> Registry:
        if self._client is None:
            return LocalRegistry()
        from mock_server.redis_store import RedisRegistry

        return RedisRegistry(self._client, f"{self._prefix}:namespaces")
