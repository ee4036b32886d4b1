"""A store in Redis, so several server processes serve one mock (``--store redis://...``).

Each operation is one Lua script (``mock_server.redis_lua``), so every invariant holds across
processes: a create checks the external id, counts slots, picks and charges a pack and inserts
in one step. Keys are ``<prefix>:<epoch>:<name>``; a reset moves to a new epoch at once and
then deletes the old epoch's keys. A namespace is a store of its own under a longer prefix.
Wall time is ``time.time()``, which every process on the machine shares.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
import uuid
import weakref
from dataclasses import replace
from decimal import Decimal
from typing import Any

import hiredis
import redis

from mock_server.audit import (
    MAX_EVIDENCE,
    MAX_FETCHED,
    MAX_LOST,
    MAX_POLLED,
    MAX_TOKENS,
    MAX_WAITS,
    Audit,
    Found,
    deadline_detail,
    evidence,
    signed_detail,
)
from mock_server.redis_lua import PRELUDE, SCRIPTS
from mock_server.store import (
    MAX_GATES,
    MILLI,
    Charge,
    ClockState,
    Delivery,
    Fresh,
    Head,
    Lease,
    PackSpec,
    Refusal,
    milli,
    task_from_json,
    task_to_json,
)
from mock_server.tasks import SUCCEED, Task

CHUNK = 1000  # tasks fetched per script call when paging through many
NO_STATE = "KLING_NO_STATE"


def connect(url: str) -> redis.Redis:
    """A client for ``redis://HOST:PORT/DB`` (checked with a PING: a clear error at start)."""
    client = redis.Redis.from_url(url, socket_timeout=30, health_check_interval=30)
    client.ping()
    return client


def _float(value: bytes | str) -> float:
    return float(value.decode() if isinstance(value, bytes) else value)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@functools.lru_cache(maxsize=64)
def _url_key(text: bytes | str) -> bytes:
    """The URL key from its hex form (cached: every request reads it, it rarely changes)."""
    return bytes.fromhex(_text(text))


def _glob_escape(text: str) -> str:
    """``text`` matched literally in a SCAN pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _delivery_json(delivery: Delivery) -> str:
    return json.dumps(
        {
            "due": delivery.due,
            "seq": delivery.seq,
            "task": task_to_json(delivery.task),
            "step": delivery.step,
            "attempt": delivery.attempt,
            "copies": delivery.copies,
        },
        separators=(",", ":"),
    )


def _delivery(text: bytes | str) -> Delivery:
    data = json.loads(text)
    return Delivery(
        data["due"],
        data["seq"],
        task_from_json(data["task"]),
        data["step"],
        data["attempt"],
        data["copies"],
    )


def _judged(a: Audit) -> dict[str, Any]:
    """The audit as the ``record`` script reads it: the fields that are set (JSON null would
    be truthy in Lua), the limits, and the texts Python words."""
    doc: dict[str, Any] = {
        "account": a.account,
        "now": float(a.now),
        "wall": float(a.wall),
        "grace_s": float(a.grace_s),
        "counted": a.counted,
        "scopes": list(a.scopes),
        "findings": [list(pair) for pair in a.findings],
        "max_evidence": MAX_EVIDENCE,
    }
    if a.told is not None:
        doc.update(told=[a.told[0], float(a.told[1])], told_wall=float(a.told_wall))
        doc["max_waits"] = MAX_WAITS
    if a.poll is not None:
        doc.update(
            poll=a.poll,
            poll_interval_s=float(a.poll_interval_s),
            interval_text=f"{a.poll_interval_s:g}",
            max_polls=a.max_polls,
            max_polled=MAX_POLLED,
            poll_deadline_s=float(a.poll_deadline_s),
        )
        if a.poll_age is not None:
            doc.update(
                poll_age=float(a.poll_age),
                deadline_detail=deadline_detail(a.poll_age, a.poll_deadline_s),
            )
    if a.create_key is not None:
        doc.update(
            create_key=a.create_key,
            lost=a.lost,
            retry_window_s=float(a.retry_window_s),
            max_lost=MAX_LOST,
        )
        if a.overlap_detail is not None:
            doc["overlap_detail"] = a.overlap_detail
    if a.token is not None:
        doc.update(
            token=a.token,
            token_findings=[list(pair) for pair in a.token_findings],
            signed_detail=signed_detail(),
            max_tokens=MAX_TOKENS,
        )
    if a.fetched is not None:
        doc.update(fetched=a.fetched, max_fetched=MAX_FETCHED)
    return doc


class RedisStore:
    """A :class:`~mock_server.store.Store` in Redis, shared by every process that uses it."""

    shared = True

    def __init__(self, client: redis.Redis, prefix: str = "kling-mock") -> None:
        self._client = client
        self.prefix = prefix
        self._epoch_key = f"{prefix}:epoch"
        self._scripts = {
            name: client.register_script(PRELUDE + body) for name, body in SCRIPTS.items()
        }
        self._fresh: Fresh | None = None
        self._fresh_lock = threading.Lock()
        # One connection per thread (and process), outside redis-py's pool: a script call is
        # then a write and a read on it, about half the client's time of a pooled call. A
        # thread's connection closes when the thread ends; ``close`` closes them all.
        self._local = threading.local()
        self._connections: weakref.WeakSet[redis.Connection] = weakref.WeakSet()

    def _connection(self) -> Any:
        held = getattr(self._local, "held", None)
        if held is not None and held[0] == os.getpid():
            return held[1]
        pool = self._client.connection_pool
        connection = pool.connection_class(**pool.connection_kwargs)
        self._local.held = (os.getpid(), connection)  # a forked child makes its own
        self._connections.add(connection)
        return connection

    def _call(self, name: str, args: tuple[Any, ...]) -> Any:
        """EVALSHA the script on this thread's connection (loaded first if the server lacks
        it; sent once more on a fresh connection if the old one broke before an answer)."""
        script = self._scripts[name]
        # hiredis packs the command in C (redis-py's own packing took most of a call's time);
        # floats go as repr(), as redis-py sends them.
        words = [repr(a) if isinstance(a, float) else a for a in args]
        command = ("EVALSHA", script.sha, 1, self._epoch_key, self.prefix, *words)
        packed = hiredis.pack_command(command)  # type: ignore[arg-type]  # its stub: 1-tuple
        for attempt in range(3):
            connection = self._connection()
            try:
                connection.send_packed_command([packed], check_health=False)
                return connection.read_response()
            except redis.exceptions.NoScriptError:
                if attempt == 2:
                    raise
                self._client.script_load(script.script)
            except (redis.ConnectionError, redis.TimeoutError):
                connection.disconnect()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _run(self, name: str, *args: Any) -> Any:
        try:
            return self._call(name, args)
        except redis.ResponseError as exc:
            if NO_STATE not in str(exc) or self._fresh is None:
                raise
        # The state is gone (dropped by another process, or the server was emptied): begin
        # again from the start-up state, as a new namespace would.
        self._begin(self._fresh)
        return self._call(name, args)

    def wall(self) -> float:
        return time.time()

    # -- epochs --------------------------------------------------------------------------------

    @staticmethod
    def _fresh_args(fresh: Fresh) -> list[Any]:
        return [
            repr(fresh.clock.base),
            repr(fresh.clock.anchor),
            repr(fresh.clock.scale),
            json.dumps(fresh.config),
            json.dumps(fresh.rules),
            fresh.url_key.hex(),
        ]

    def _begin(self, fresh: Fresh) -> None:
        self._scripts["start"](keys=[self._epoch_key], args=[self.prefix, *self._fresh_args(fresh)])

    def start(self, fresh: Fresh) -> None:
        with self._fresh_lock:
            self._fresh = fresh
        self._begin(fresh)

    def reset(self, fresh: Fresh) -> None:
        with self._fresh_lock:
            self._fresh = fresh
        old = self._scripts["reset"](
            keys=[self._epoch_key], args=[self.prefix, *self._fresh_args(fresh)]
        )
        self.forget(f"{_glob_escape(self.prefix)}:{_text(old)}:*")

    def drop(self) -> None:
        """Delete this store's state for good (a later use begins afresh)."""
        self._client.delete(self._epoch_key)
        self.forget(f"{_glob_escape(self.prefix)}:*")

    def forget(self, pattern: str) -> None:
        """Delete the keys matching ``pattern`` (an old epoch's)."""
        batch = []
        for key in self._client.scan_iter(match=pattern, count=1000):
            if _text(key) == self._epoch_key:
                continue
            batch.append(key)
            if len(batch) >= 500:
                self._client.unlink(*batch)
                batch = []
        if batch:
            self._client.unlink(*batch)

    def head(self, task_id: str | None = None) -> Head:
        if task_id is None:
            epoch, base, anchor, scale, origin, cv, rv, key, _ = self._run("head")
            peek = None
        else:
            epoch, base, anchor, scale, origin, cv, rv, key, text = self._run("head", task_id)
            peek = (task_id, None if text is None else task_from_json(text))
        return Head(
            int(epoch),
            ClockState(_float(base), _float(anchor), _float(scale)),
            _float(origin),
            int(cv),
            int(rv),
            _url_key(key),
            peek,
        )

    def close(self) -> None:
        for connection in list(self._connections):
            connection.disconnect()  # type: ignore[no-untyped-call]
        self._client.close()

    # -- clock and config ----------------------------------------------------------------------

    def advance(self, seconds: float) -> ClockState:
        base, anchor, scale = self._run("advance", repr(float(seconds)))
        return ClockState(_float(base), _float(anchor), _float(scale))

    def config(self) -> tuple[int, dict[str, Any]]:
        version, text = self._run("config")
        return int(version), json.loads(text)

    def put_config(self, version: int, config: dict[str, Any], scale: float) -> bool:
        done = self._run(
            "put_config", version, json.dumps(config), repr(float(scale)), repr(self.wall())
        )
        return bool(done)

    def take(self, counter: str, count: int = 1) -> int:
        return int(self._run("take", counter, count))

    # -- tasks ---------------------------------------------------------------------------------

    def create(
        self,
        task: Task,
        *,
        kind: str,
        slot_limit: int | None,
        packs: tuple[PackSpec, ...],
        now: float,
        max_tasks: int | None,
    ) -> Task | Refusal:
        text = task_to_json(replace(task, pack_id=None))
        if not text.endswith('"pack_id":null}'):
            raise AssertionError("task_to_json must write pack_id last")
        pack_args: list[Any] = []
        for spec in sorted(packs, key=lambda p: (p.invalid_at, p.name)):
            pack_args += [
                spec.pack_id,
                spec.kind,
                milli(spec.total),
                repr(spec.effective_at),
                repr(spec.invalid_at),
            ]
        answer = self._run(
            "create",
            text[: -len("null}")],
            task.task_id,
            task.account,
            task.family,
            task.external_task_id or "",
            kind,
            task.slots,
            milli(task.cost),
            1 if task.outcome == SUCCEED else 0,
            repr(task.ends_at) if task.ends_at != float("inf") else "+inf",
            "" if slot_limit is None else slot_limit,
            repr(now),
            "" if max_tasks is None else max_tasks,
            *pack_args,
        )
        verdict = _text(answer[0])
        if verdict == "ok":
            return replace(task, pack_id=_text(answer[1]))
        if verdict == "slots":
            flat = answer[1]
            return Refusal("slots", tuple(self._charges(flat)))
        return Refusal(verdict)

    @staticmethod
    def _charges(flat: list[Any]) -> list[Charge]:
        found = []
        for member, score in zip(flat[::2], flat[1::2], strict=True):
            task_id, _, slots = _text(member).rpartition("|")
            found.append(Charge(task_id, _float(score), int(slots), Decimal(0), True))
        return found

    def get(self, task_id: str) -> Task | None:
        text = self._run("get", task_id)
        return None if text is None else task_from_json(text)

    def by_external_id(self, account: str, external_task_id: str) -> Task | None:
        text = self._run("by_external", account, external_task_id)
        return None if text is None else task_from_json(text)

    def _range(self, index: str, offset: int, limit: int) -> list[Task]:
        found: list[Task] = []
        while len(found) < limit:
            take = min(CHUNK, limit - len(found))
            first = offset + len(found)
            texts = self._run("range", index, first, first + take - 1)
            found += [task_from_json(t) for t in texts if t is not None]
            if len(texts) < take:
                break
        return found

    def page(self, account: str, family: str, offset: int, limit: int) -> list[Task]:
        return self._range(f"own:{account}\0{family}", offset, limit)

    def select(
        self, offset: int, limit: int, account: str | None = None, family: str | None = None
    ) -> list[Task]:
        if account is not None and family is not None:
            return self.page(account, family, offset, limit)
        if account is None and family is None:
            return self._range("all", offset, limit)
        found: list[Task] = []
        skipped, rank = 0, 0
        while len(found) < limit:
            texts = self._run("range", "all", rank, rank + CHUNK - 1)
            rank += CHUNK
            for text in texts:
                if text is None:
                    continue
                task = task_from_json(text)
                if (account is None or task.account == account) and (
                    family is None or task.family == family
                ):
                    if skipped < offset:
                        skipped += 1
                    elif len(found) < limit:
                        found.append(task)
            if len(texts) < CHUNK:
                break
        return found

    def count(self) -> int:
        return int(self._run("count"))

    def running(self, account: str, kind: str, now: float) -> list[Charge]:
        return self._charges(self._run("running", f"{account}\0{kind}", repr(now)))

    def pack_usage(self, pack_id: str, now: float) -> tuple[Decimal, Decimal]:
        reserved, settled, ended = self._run("pack_usage", pack_id, repr(now))
        consumed, held = int(settled), int(reserved)
        for member in ended:
            _, cost, succeeds = _text(member).rsplit("|", 2)
            held -= int(cost)
            if succeeds == "1":
                consumed += int(cost)
        return Decimal(consumed) / MILLI, Decimal(held) / MILLI

    # -- requests ------------------------------------------------------------------------------

    def admit(self, account: str, now: float, limit: int, window_s: float) -> float | None:
        wait = self._run("admit", account, repr(now), limit, repr(float(window_s)))
        return None if wait is None else _float(wait)

    def gate(self, account: str, key: str, now: float, hold_s: float) -> float | None:
        release = self._run("gate", f"{account}\0{key}", repr(now), repr(float(hold_s)), MAX_GATES)
        return None if release is None else _float(release)

    def gate_count(self) -> int:
        return int(self._run("gate_count"))

    def record(self, entry: dict[str, Any], capacity: int, audit: Audit | None = None) -> None:
        extra: list[Any] = []
        if audit is not None:
            base = json.dumps(evidence(entry, ""), separators=(",", ":"))
            prefix = base[: -len('""}')]  # the script appends the detail and the brace
            extra = [json.dumps(_judged(audit), separators=(",", ":")), prefix]
        self._run("record", json.dumps(entry, separators=(",", ":")), capacity, *extra)

    def journal(self, limit: int | None) -> tuple[list[dict[str, Any]], int]:
        dropped, entries = self._run("journal", -1 if limit is None else limit)
        return [json.loads(e) for e in entries], int(dropped)

    # -- what clients did ----------------------------------------------------------------------

    def bump(self, account: str, counter: str, count: int = 1) -> None:
        self._run("bump", f"{account}\0{counter}", count)

    def counters(self) -> dict[str, dict[str, int]]:
        flat = self._run("counters")
        found: dict[str, dict[str, int]] = {}
        for field, value in zip(flat[::2], flat[1::2], strict=True):
            account, _, counter = _text(field).partition("\0")
            found.setdefault(account, {})[counter] = int(value)
        return found

    def audit(self) -> Found:
        found: Found = {}
        for field, count, kept in self._run("audit"):
            account, _, fid = _text(field).partition("\0")
            found.setdefault(account, {})[fid] = (int(count), [json.loads(e) for e in kept])
        return found

    def note(self, account: str, fid: str, shown: dict[str, Any]) -> None:
        self._run("note", f"{account}\0{fid}", json.dumps(shown), MAX_EVIDENCE)

    def fetched(self) -> set[str]:
        return {_text(task_id) for task_id in self._run("fetched")}

    # -- fault rules ---------------------------------------------------------------------------

    def rules(self) -> tuple[int, dict[str, Any]]:
        version, text = self._run("rules")
        return int(version), json.loads(text)

    def put_rules(self, version: int, doc: dict[str, Any]) -> bool:
        ids = [str(rule["id"]) for rule in doc["rules"]]
        return bool(self._run("put_rules", version, json.dumps(doc), *ids))

    def fire(self, rule_id: str, times: int | None, won: bool = True) -> bool:
        return bool(self._run("fire", rule_id, "" if times is None else times, 1 if won else 0))

    def rule_counts(self) -> dict[str, tuple[int, int]]:
        flat = self._run("rule_counts")
        counts: dict[str, list[int]] = {}
        for field, value in zip(flat[::2], flat[1::2], strict=True):
            kind, _, rule_id = _text(field).partition(":")
            counts.setdefault(rule_id, [0, 0])[0 if kind == "f" else 1] = int(value)
        return {k: (v[0], v[1]) for k, v in counts.items()}

    # -- sessions (multi-elements selections, identified faces) ------------------------------

    def session(self, session_id: str) -> dict[str, Any] | None:
        text = self._run("session", session_id)
        return None if text is None else dict(json.loads(text))

    def put_session(
        self, account: str, session_id: str, doc: dict[str, Any], version: int, keep: int
    ) -> bool:
        text = json.dumps(doc, separators=(",", ":"))
        return bool(self._run("put_session", account, session_id, text, version, keep))

    # -- callbacks -----------------------------------------------------------------------------

    def push(self, delivery: Delivery, epoch: int | None = None) -> bool:
        return bool(
            self._run(
                "push",
                _delivery_json(delivery),
                repr(delivery.due),
                "" if epoch is None else epoch,
            )
        )

    def lease(self, now: float, hold_s: float) -> Lease | None:
        token = uuid.uuid4().hex
        found = self._run("lease", repr(now), repr(self.wall()), repr(float(hold_s)), token)
        if found is None:
            return None
        epoch, item = found
        return Lease(token, int(epoch), _delivery(item))

    def release(self, lease: Lease) -> None:
        self._run("release", lease.token, lease.epoch)

    def pending(self) -> tuple[int, int, float | None]:
        queued, leased, due = self._run("pending")
        return int(queued), int(leased), None if due is None else _float(due)

    def add_attempt(self, record: dict[str, Any], epoch: int, capacity: int) -> None:
        self._run("add_attempt", json.dumps(record, separators=(",", ":")), epoch, capacity)

    def attempts(self, task_id: str | None = None) -> list[dict[str, Any]]:
        found = [json.loads(r) for r in self._run("attempts")]
        return [r for r in found if task_id is None or r["task_id"] == task_id]


_TOUCH = r"""
redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), ARGV[1])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
if over <= 0 then return {} end
local gone = redis.call('ZRANGE', KEYS[1], 0, over - 1)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
return gone
"""


class RedisRegistry:
    """The namespaces of a mock whose state is in Redis, least recently used first."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self._client = client
        self._key = key
        self._touch = client.register_script(_TOUCH)

    def touch(self, name: str, limit: int) -> list[str]:
        gone = self._touch(keys=[self._key, f"{self._key}:uses"], args=[name, limit])
        return [_text(n) for n in gone]

    def remove(self, name: str) -> bool:
        return bool(self._client.zrem(self._key, name))

    def names(self) -> list[str]:
        found: Any = self._client.zrange(self._key, 0, -1)
        return [_text(n) for n in found]
