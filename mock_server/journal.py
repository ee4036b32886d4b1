"""A bounded record of the requests the mock answered, oldest dropped first."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mock_server.audit import Audit
    from mock_server.store import Store


@dataclass(frozen=True)
class Entry:
    time: int  # mock ms
    method: str
    path: str
    account: str | None
    status: int
    code: int | None
    request_id: str | None
    fault: str | None = None  # a transport fault the mock injected into this answer
    latency_ms: int | None = None  # delay a latency rule added before answering
    query: str = ""  # the raw query string, at most MAX_QUERY characters
    headers: dict[str, str] = field(default_factory=dict)  # secrets redacted, bounded
    body: str | None = None  # the request body as text, at most MAX_BODY characters
    body_bytes: int = 0  # the body's real size


MAX_QUERY = 2048
MAX_BODY = 4096
MAX_HEADER = 512
REDACTED = "***"
_SECRET_HEADERS = frozenset(
    {"authorization", "cookie", "x-mock-control-token", "proxy-authorization"}
)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}...[{len(text) - limit} more]"


def redact_headers(headers: Iterable[tuple[str, str]], limit: int = 64) -> dict[str, str]:
    """Request headers with secrets masked (``Authorization: Bearer ***``), bounded in count."""
    out: dict[str, str] = {}
    for name, value in headers:
        if len(out) >= limit:
            break
        if name.lower() in _SECRET_HEADERS:
            scheme, _, rest = value.partition(" ")
            value = f"{scheme} {REDACTED}" if rest else REDACTED
        out[name] = clip(value, MAX_HEADER)
    return out


class Journal:
    """The journal of one mock, kept in its store (bounded: oldest dropped first)."""

    def __init__(self, store: Store, size: int) -> None:
        self._store = store
        self._size = size

    def record(self, entry: Entry, audit: Audit | None = None) -> None:
        """Keep an entry; judge the request it records (``audit``: see
        :meth:`mock_server.store.Store.record`) in the same step."""
        # Entry's fields are plain values and a dict of its own: a shallow copy is enough
        # (dataclasses.asdict deep-copies, about 30 us a request).
        self._store.record(dict(vars(entry)), self._size, audit)

    def snapshot(self, limit: int | None = None) -> dict[str, Any]:
        """The newest ``limit`` entries (all by default), oldest first, and the dropped count."""
        entries, dropped = self._store.journal(limit)
        return {"entries": entries, "dropped": dropped, "capacity": self._size}
