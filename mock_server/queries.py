"""The 2026 design's queries: ``GET /tasks`` by ids and ``POST /tasks``, a cursor list.

Both see only the account's tasks of the 2026 design: a task created through ``/v1`` is not
found here, and one created here is not found through ``/v1`` (its family is not theirs).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kling_testkit.spec.document import DESIGN_2026, designs
from kling_testkit.spec.statuses import STATUSES_2026
from mock_server.config import Account
from mock_server.render import status_2026
from mock_server.store import Store
from mock_server.tasks import Task, to_ms

MAX_IDS = 100
"""Ids one ``GET /tasks`` may ask for (undocumented: this mock's bound)."""
DEFAULT_WINDOW_MS = 30 * 24 * 3600 * 1000
"""``start_time`` when a list names none: 30 days before ``end_time`` (documented)."""
PRODUCT_TYPES = {"video": "video", "image": "image", "try_on": "try_on"}
"""``product_type`` filter values and the pack kind each stands for."""
SCAN = 500  # tasks read from the store at a time while listing
SLACK_MS = 1000
"""How far out of creation-time order a family's list may be (the processes of one mock
insert tasks they created a moment apart in the order they finish): a list reads this much
past the point where it has enough."""


class QueryError(ValueError):
    """A query the API refuses (400/1201); the message says why."""


def is_2026(task: Task) -> bool:
    return task.family in designs(DESIGN_2026)


def find(store: Store, account: Account, idents: Iterable[str], external: bool) -> list[Task]:
    """The account's 2026 tasks with these ids (or external ids), in the order asked; an
    unknown id is left out, and an id asked twice answered once."""
    found: list[Task] = []
    seen: set[str] = set()
    for ident in idents:
        task = store.by_external_id(account.name, ident) if external else store.get(ident)
        if task is None or task.account != account.name or not is_2026(task):
            continue
        if task.task_id not in seen:
            seen.add(task.task_id)
            found.append(task)
    return found


def split_ids(value: str) -> list[str]:
    """A comma-separated id list, each id once, at most ``MAX_IDS``."""
    idents = list(dict.fromkeys(value.split(",")))
    if len(idents) > MAX_IDS:
        raise QueryError(f"at most {MAX_IDS} ids per query; got {len(idents)}")
    return idents


@dataclass(frozen=True)
class Window:
    """Where a list is: its time window (ms), and the creation number it continues below."""

    start_ms: int
    end_ms: int
    below: tuple[int, int] | None = None  # (create time, seq) of the previous page's last
    epoch: int = 0

    def cursor(self, last: Task) -> str:
        key = order(last)
        data = {"s": self.start_ms, "e": self.end_ms, "t": key[0], "q": key[1], "p": self.epoch}
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _millis(value: Any) -> int:
    return int(value)  # the schema allows an integer or a string of digits only


def window(body: dict[str, Any], now_ms: int, epoch: int) -> Window:
    """The window a list body asks for: its cursor's, else its times (documented defaults:
    the end is now, the start 30 days before the end)."""
    if "cursor" in body:
        return _decode(str(body["cursor"]), epoch)
    end = _millis(body["end_time"]) if "end_time" in body else now_ms
    start = _millis(body["start_time"]) if "start_time" in body else end - DEFAULT_WINDOW_MS
    if start >= end:
        raise QueryError(f"start_time must be before end_time; got {start} and {end}")
    return Window(start, end, None, epoch)


def _decode(cursor: str, epoch: int) -> Window:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        fields = [data["s"], data["e"], data["t"], data["q"], data["p"]]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise QueryError("cursor is invalid: pass next_cursor of the previous page") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in fields):
        raise QueryError("cursor is invalid: pass next_cursor of the previous page")
    if fields[4] != epoch:
        raise QueryError("cursor has expired: the mock was reset since it was given")
    return Window(fields[0], fields[1], (fields[2], fields[3]), epoch)


def order(task: Task) -> tuple[int, int]:
    """Where a task sorts in a list, newest first: its create time (ms), then its number."""
    return to_ms(task.created_at), task.seq


def filters(body: dict[str, Any]) -> tuple[set[str] | None, set[str] | None]:
    """The statuses and pack kinds a list keeps (None: all)."""
    statuses: set[str] | None = None
    kinds: set[str] | None = None
    known = set(STATUSES_2026)
    for item in body.get("filters", ()):
        values = set(item["values"])
        if item["key"] == "status":
            wrong = sorted(values - known)
            if wrong:
                raise QueryError(
                    f"filters: status {wrong[0]!r} is not one of {', '.join(sorted(known))}"
                )
            statuses = values if statuses is None else statuses & values
        else:
            wrong = sorted(values - set(PRODUCT_TYPES))
            if wrong:
                raise QueryError(
                    f"filters: product_type {wrong[0]!r} is not one of {', '.join(PRODUCT_TYPES)}"
                )
            wanted = {PRODUCT_TYPES[v] for v in values}
            kinds = wanted if kinds is None else kinds & wanted
    return statuses, kinds


def page(
    store: Store,
    account: Account,
    where: Window,
    limit: int,
    now: float,
    statuses: set[str] | None = None,
    kinds: set[str] | None = None,
) -> tuple[list[Task], bool]:
    """Up to ``limit`` of the account's 2026 tasks in the window, newest first, below the
    cursor's place; and whether more follow. Each family's list is read newest first, only
    as far as the page needs (``limit + 1`` matches, or the window's start)."""
    found: list[Task] = []
    for family in designs(DESIGN_2026).values():
        if kinds is not None and family.pack not in kinds:
            continue
        found += _scan(store, account.name, family.name, where, limit + 1, now, statuses)
    found.sort(key=order, reverse=True)
    return found[:limit], len(found) > limit


def _scan(
    store: Store,
    account: str,
    family: str,
    where: Window,
    want: int,
    now: float,
    statuses: set[str] | None,
) -> list[Task]:
    """The family's tasks that match, from its newest, until ``want`` of them are found and
    the list is ``SLACK_MS`` older than the oldest of them (or it leaves the window)."""
    kept: list[Task] = []
    stop_below = where.start_ms - SLACK_MS
    offset = 0
    while True:
        batch = store.page(account, family, offset, SCAN)
        for task in batch:
            created = to_ms(task.created_at)
            if created < stop_below:
                return kept
            if not where.start_ms <= created <= where.end_ms:
                continue
            if where.below is not None and order(task) >= where.below:
                continue
            if statuses is not None and status_2026(task.status_at(now)) not in statuses:
                continue
            kept.append(task)
            if len(kept) == want:
                stop_below = max(stop_below, min(to_ms(t.created_at) for t in kept) - SLACK_MS)
        if len(batch) < SCAN:
            return kept
        offset += SCAN
