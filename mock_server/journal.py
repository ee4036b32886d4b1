"""A bounded record of the requests the mock answered, oldest dropped first."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any


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


class Journal:
    """Thread-safe ring of :class:`Entry`; counts what fell off the end."""

    def __init__(self, size: int) -> None:
        self._entries: deque[Entry] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._dropped = 0

    def record(self, entry: Entry) -> None:
        with self._lock:
            if len(self._entries) == self._entries.maxlen:
                self._dropped += 1
            self._entries.append(entry)

    def snapshot(self, limit: int | None = None) -> dict[str, Any]:
        """The newest ``limit`` entries (all by default), oldest first, and the dropped count."""
        with self._lock:
            entries = list(self._entries)
            dropped = self._dropped
        if limit is not None:
            entries = entries[-limit:] if limit else []
        return {
            "entries": [asdict(e) for e in entries],
            "dropped": dropped,
            "capacity": self._entries.maxlen,
        }
