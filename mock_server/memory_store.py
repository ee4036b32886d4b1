"""The default store: all state in this process's memory, under one lock.

Zero set-up and the fastest; one process only (``mock_server.redis_store`` is for several).
Charges sit in lists sorted by end time, so a write settles what ended with a few pops and a
read sums only what ended since the last write.
"""

from __future__ import annotations

import bisect
import copy
import heapq
import itertools
import math
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from mock_server.audit import (
    MAX_EVIDENCE,
    MAX_FETCHED,
    MAX_LOST,
    MAX_POLLED,
    MAX_TOKENS,
    MAX_WAITS,
    POLL_STORM,
    RETRY_AFTER_IGNORED,
    RETRY_WITHOUT_IDEMPOTENCY,
    TOKEN_SIGNED,
    Audit,
    Found,
    deadline_detail,
    early_detail,
    evidence,
    retry_detail,
    signed_detail,
    storm_detail,
)
from mock_server.store import (
    MAX_GATES,
    Charge,
    ClockState,
    Delivery,
    Fresh,
    Head,
    Lease,
    PackSpec,
    Refusal,
)
from mock_server.tasks import SUCCEED, Task


@dataclass
class _Ledger:
    """Charges not yet settled, sorted by (ends_at, task_id), with running sums."""

    charges: list[tuple[float, str, Charge]] = field(default_factory=list)
    slots: int = 0
    reserved: Decimal = Decimal(0)
    settled: Decimal = Decimal(0)  # packs: units of tasks that succeeded

    def add(self, entry: tuple[float, str, Charge]) -> None:
        """Add a charge (``(ends_at, task_id, charge)``: one tuple shared by both ledgers)."""
        bisect.insort(self.charges, entry)
        charge = entry[2]
        self.slots += charge.slots
        self.reserved += charge.cost

    def ended(self, now: float) -> list[Charge]:
        cut = bisect.bisect_right(self.charges, (now, "\uffff"))
        return [c for _, _, c in self.charges[:cut]]

    def settle(self, now: float) -> None:
        """Drop what ended by ``now`` (a write: mock time only moves forward)."""
        done = self.ended(now)
        for charge in done:
            self.slots -= charge.slots
            self.reserved -= charge.cost
            if charge.succeeds:
                self.settled += charge.cost
        del self.charges[: len(done)]


@dataclass
class _State:
    """One epoch's state."""

    epoch: int
    clock: ClockState
    origin: float
    url_key: bytes
    config: dict[str, Any]
    rules: dict[str, Any]
    config_version: int = 1
    rules_version: int = 1
    counters: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    external: dict[tuple[str, str], str] = field(default_factory=dict)
    owners: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # oldest first
    running: dict[tuple[str, str], _Ledger] = field(default_factory=dict)
    packs: dict[str, _Ledger] = field(default_factory=dict)
    windows: dict[str, deque[float]] = field(default_factory=dict)
    gates: OrderedDict[tuple[str, str], float | None] = field(default_factory=OrderedDict)
    journal: deque[dict[str, Any]] = field(default_factory=deque)
    dropped: int = 0
    counts: dict[str, list[int]] = field(default_factory=dict)  # rule id -> [fired, skipped]
    queue: list[tuple[float, int, Delivery]] = field(default_factory=list)
    leases: dict[str, tuple[float, Delivery]] = field(default_factory=dict)
    attempts: deque[dict[str, Any]] = field(default_factory=deque)
    tallies: dict[str, dict[str, int]] = field(default_factory=dict)  # account -> counter -> n
    # (account, scope) -> (until, store wall time of the wait's first 429)
    waits: OrderedDict[tuple[str, str], tuple[float, float]] = field(default_factory=OrderedDict)
    polls: OrderedDict[tuple[str, str], tuple[float, int]] = field(default_factory=OrderedDict)
    lost: OrderedDict[tuple[str, str], float] = field(default_factory=OrderedDict)
    tokens: OrderedDict[tuple[str, str], None] = field(default_factory=OrderedDict)
    fetched: OrderedDict[str, None] = field(default_factory=OrderedDict)
    # (account, finding id) -> [count, first MAX_EVIDENCE offending requests]
    findings: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions_of: dict[str, OrderedDict[str, None]] = field(default_factory=dict)  # oldest first


class MemoryStore:
    """A :class:`~mock_server.store.Store` in this process's memory; thread-safe."""

    shared = False

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._state: _State | None = None
        self._epochs = itertools.count(1)
        self._leases = itertools.count(1)

    def wall(self) -> float:
        return time.monotonic()

    @property
    def _s(self) -> _State:
        if self._state is None:
            raise RuntimeError("the store was not started")
        return self._state

    # -- epochs --------------------------------------------------------------------------------

    def start(self, fresh: Fresh) -> None:
        with self._lock:
            if self._state is None:
                self.reset(fresh)

    def reset(self, fresh: Fresh) -> None:
        with self._lock:
            self._state = _State(
                epoch=next(self._epochs),
                clock=fresh.clock,
                origin=fresh.clock.base,
                url_key=fresh.url_key,
                config=fresh.config,
                rules=fresh.rules,
            )

    def drop(self) -> None:
        return None  # the state goes with this object; requests in flight may still finish

    def head(self, task_id: str | None = None) -> Head:
        with self._lock:
            s = self._s
            peek = None if task_id is None else (task_id, s.tasks.get(task_id))
            return Head(
                s.epoch, s.clock, s.origin, s.config_version, s.rules_version, s.url_key, peek
            )

    def close(self) -> None:
        return None

    # -- clock and config ----------------------------------------------------------------------

    def advance(self, seconds: float) -> ClockState:
        with self._lock:
            s = self._s
            s.clock = replace(s.clock, base=s.clock.base + seconds)
            return s.clock

    def config(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            return self._s.config_version, self._s.config

    def put_config(self, version: int, config: dict[str, Any], scale: float) -> bool:
        with self._lock:
            s = self._s
            if s.config_version != version:
                return False
            wall = self.wall()
            s.clock = ClockState(s.clock.now(wall), wall, scale)
            s.config, s.config_version = config, version + 1
            return True

    def take(self, counter: str, count: int = 1) -> int:
        with self._lock:
            first = self._s.counters.get(counter, 0)
            self._s.counters[counter] = first + count
            return first

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
        with self._lock:
            s = self._s
            external = task.external_task_id
            if external is not None and (task.account, external) in s.external:
                return Refusal("external")
            running = s.running.setdefault((task.account, kind), _Ledger())
            running.settle(now)
            if slot_limit is not None and running.slots + task.slots > slot_limit:
                return Refusal("slots", tuple(c for _, _, c in running.charges))
            chosen = None
            for spec in sorted(packs, key=lambda p: (p.invalid_at, p.name)):
                ledger = s.packs.setdefault(spec.pack_id, _Ledger())
                ledger.settle(now)
                if spec.kind != kind or not spec.effective_at <= now < spec.invalid_at:
                    continue
                if max(Decimal(0), spec.total - ledger.settled) - ledger.reserved >= task.cost:
                    chosen = spec
                    break
            if chosen is None:
                return Refusal("units")
            task = replace(task, pack_id=chosen.pack_id)
            charge = Charge(
                task.task_id, task.ends_at, task.slots, task.cost, task.outcome == SUCCEED
            )
            entry = (charge.ends_at, charge.task_id, charge)
            running.add(entry)
            s.packs[chosen.pack_id].add(entry)
            s.tasks[task.task_id] = task
            tally = s.tallies.setdefault(task.account, {})
            tally["tasks_created"] = tally.get("tasks_created", 0) + 1
            s.owners.setdefault((task.account, task.family), []).append(task.task_id)
            if external is not None:
                s.external[(task.account, external)] = task.task_id
            if max_tasks is not None and len(s.tasks) > max_tasks:
                self._evict(s, max_tasks, now)
            return task

    @staticmethod
    def _evict(s: _State, max_tasks: int, now: float) -> None:
        """Forget the oldest finished tasks, down to 90% of ``max_tasks`` (amortised)."""
        goal = len(s.tasks) - max(1, max_tasks * 9 // 10)
        gone: list[Task] = []
        for task in s.tasks.values():
            if len(gone) >= goal:
                break
            if task.ends_at <= now:
                gone.append(task)
        for task in gone:
            del s.tasks[task.task_id]
            if task.external_task_id is not None:
                s.external.pop((task.account, task.external_task_id), None)
        dead = {t.task_id for t in gone}
        for key in {(t.account, t.family) for t in gone}:
            s.owners[key] = [i for i in s.owners[key] if i not in dead]

    def get(self, task_id: str) -> Task | None:
        with self._lock:
            return self._s.tasks.get(task_id)

    def by_external_id(self, account: str, external_task_id: str) -> Task | None:
        with self._lock:
            s = self._s
            task_id = s.external.get((account, external_task_id))
            return None if task_id is None else s.tasks.get(task_id)

    def page(self, account: str, family: str, offset: int, limit: int) -> list[Task]:
        with self._lock:
            s = self._s
            ids = s.owners.get((account, family), [])
            end = len(ids) - offset  # newest first: count back from the end
            return [s.tasks[i] for i in reversed(ids[max(0, end - limit) : max(0, end)])]

    def select(
        self, offset: int, limit: int, account: str | None = None, family: str | None = None
    ) -> list[Task]:
        with self._lock:
            if account is not None and family is not None:
                return self.page(account, family, offset, limit)
            found: list[Task] = []
            skipped = 0
            for task in reversed(self._s.tasks.values()):  # insertion order: newest last
                if len(found) >= limit:
                    break
                if (account is None or task.account == account) and (
                    family is None or task.family == family
                ):
                    if skipped < offset:
                        skipped += 1
                    else:
                        found.append(task)
            return found

    def count(self) -> int:
        with self._lock:
            return len(self._s.tasks)

    def running(self, account: str, kind: str, now: float) -> list[Charge]:
        with self._lock:
            ledger = self._s.running.get((account, kind))
            return [] if ledger is None else [c for _, _, c in ledger.charges if c.ends_at > now]

    def pack_usage(self, pack_id: str, now: float) -> tuple[Decimal, Decimal]:
        with self._lock:
            ledger = self._s.packs.get(pack_id)
            if ledger is None:
                return Decimal(0), Decimal(0)
            ended = ledger.ended(now)
            consumed = ledger.settled + sum((c.cost for c in ended if c.succeeds), Decimal(0))
            return consumed, ledger.reserved - sum((c.cost for c in ended), Decimal(0))

    # -- requests ------------------------------------------------------------------------------

    def admit(self, account: str, now: float, limit: int, window_s: float) -> float | None:
        with self._lock:
            times = self._s.windows.setdefault(account, deque())
            while times and times[0] <= now - window_s:
                times.popleft()
            if len(times) >= limit:
                return times[0] + window_s - now
            times.append(now)
            return None

    def gate(self, account: str, key: str, now: float, hold_s: float) -> float | None:
        with self._lock:
            gates = self._s.gates
            name = (account, key)
            if name in gates:
                release = gates[name]
                if release is None or now >= release:
                    gates[name] = None  # spent: through for good
                    return None
                return release
            gates[name] = now + hold_s
            if len(gates) > MAX_GATES:
                gates.popitem(last=False)  # the oldest gate is forgotten
            return now + hold_s

    def gate_count(self) -> int:
        with self._lock:
            return len(self._s.gates)

    def record(self, entry: dict[str, Any], capacity: int, audit: Audit | None = None) -> None:
        with self._lock:
            s = self._s
            if audit is not None:
                self._audit(s, entry, audit)
            s.journal.append(entry)
            while len(s.journal) > capacity:
                s.journal.popleft()
                s.dropped += 1

    @staticmethod
    def _find(s: _State, account: str, fid: str, shown: dict[str, Any]) -> None:
        item = s.findings.setdefault((account, fid), [0, []])
        item[0] += 1
        if len(item[1]) < MAX_EVIDENCE:
            item[1].append(shown)

    @staticmethod
    def _remember(table: OrderedDict[Any, Any], key: Any, value: Any, limit: int) -> None:
        """Set ``key`` keeping its place (first seen, first forgotten); at most ``limit``."""
        table[key] = value
        if len(table) > limit:
            table.popitem(last=False)

    def _audit(self, s: _State, entry: dict[str, Any], a: Audit) -> None:
        account = a.account

        def find(fid: str, detail: str) -> None:
            self._find(s, account, fid, evidence(entry, detail))

        if a.counted:
            tally = s.tallies.setdefault(account, {})
            tally["requests"] = tally.get("requests", 0) + 1
        late = 0.0
        for scope in a.scopes:  # early: before the wait's end, past the grace after its 429
            until, told_wall = s.waits.get((account, scope), (-math.inf, math.inf))
            if a.now < until and a.wall > told_wall + a.grace_s and until - a.now > late:
                late, worst = until - a.now, scope
        if late > 0:
            find(RETRY_AFTER_IGNORED, early_detail(late, worst))
        if a.poll is not None:
            key = (account, a.poll)
            last, count = s.polls.get(key, (-math.inf, 0))
            count += 1
            self._remember(s.polls, key, (a.now, count), MAX_POLLED)
            gap = a.now - last
            if count > a.max_polls or gap < a.poll_interval_s:
                find(POLL_STORM, storm_detail(gap, a.poll_interval_s, count, a.max_polls))
            elif a.poll_age is not None and a.poll_age > a.poll_deadline_s:
                find(POLL_STORM, deadline_detail(a.poll_age, a.poll_deadline_s))
        if a.create_key is not None:
            key = (account, a.create_key)
            then = s.lost.get(key)
            if then is not None and 0 <= a.now - then <= a.retry_window_s:
                find(RETRY_WITHOUT_IDEMPOTENCY, retry_detail(a.now - then))
            elif a.overlap_detail is not None:
                find(RETRY_WITHOUT_IDEMPOTENCY, a.overlap_detail)
            if a.lost:
                self._remember(s.lost, key, a.now, MAX_LOST)
        if a.token is not None and (account, a.token) not in s.tokens:
            self._remember(s.tokens, (account, a.token), None, MAX_TOKENS)
            find(TOKEN_SIGNED, signed_detail())
            for fid, detail in a.token_findings:
                find(fid, detail)
        if a.fetched is not None:
            self._remember(s.fetched, a.fetched, None, MAX_FETCHED)
        for fid, detail in a.findings:
            find(fid, detail)
        if a.told is not None:
            s.tallies.setdefault(account, {})
            s.tallies[account]["rate_limited"] = s.tallies[account].get("rate_limited", 0) + 1
            scope, until = a.told
            old_until, old_wall = s.waits.get((account, scope), (-math.inf, a.told_wall))
            # A wait still running keeps the wall time of its first 429 (the client has known
            # since then); a new wait starts its grace now.
            self._remember(
                s.waits,
                (account, scope),
                (max(until, old_until), old_wall if a.now < old_until else a.told_wall),
                MAX_WAITS,
            )

    def journal(self, limit: int | None) -> tuple[list[dict[str, Any]], int]:
        with self._lock:
            entries = list(self._s.journal)
            dropped = self._s.dropped
        if limit is not None:
            entries = entries[-limit:] if limit else []
        return entries, dropped

    # -- what clients did ----------------------------------------------------------------------

    def bump(self, account: str, counter: str, count: int = 1) -> None:
        with self._lock:
            tally = self._s.tallies.setdefault(account, {})
            tally[counter] = tally.get(counter, 0) + count

    def counters(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {account: dict(tally) for account, tally in self._s.tallies.items()}

    def audit(self) -> Found:
        with self._lock:
            found: Found = {}
            for (account, fid), (count, kept) in self._s.findings.items():
                found.setdefault(account, {})[fid] = (count, [dict(e) for e in kept])
            return found

    def note(self, account: str, fid: str, shown: dict[str, Any]) -> None:
        with self._lock:
            self._find(self._s, account, fid, shown)

    def fetched(self) -> set[str]:
        with self._lock:
            return set(self._s.fetched)

    # -- fault rules ---------------------------------------------------------------------------

    def rules(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            return self._s.rules_version, self._s.rules

    def put_rules(self, version: int, doc: dict[str, Any]) -> bool:
        with self._lock:
            s = self._s
            if s.rules_version != version:
                return False
            kept = {str(r["id"]) for r in doc["rules"]}
            s.counts = {k: v for k, v in s.counts.items() if k in kept}
            s.rules, s.rules_version = doc, version + 1
            return True

    def fire(self, rule_id: str, times: int | None, won: bool = True) -> bool:
        with self._lock:
            count = self._s.counts.setdefault(rule_id, [0, 0])
            if times is not None and count[0] >= times:
                return False
            count[0 if won else 1] += 1
            return won

    def rule_counts(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            return {k: (v[0], v[1]) for k, v in self._s.counts.items()}

    # -- sessions (multi-elements selections, identified faces) ------------------------------

    def session(self, session_id: str) -> dict[str, Any] | None:
        with self._lock:
            doc = self._s.sessions.get(session_id)
            return None if doc is None else copy.deepcopy(doc)

    def put_session(
        self, account: str, session_id: str, doc: dict[str, Any], version: int, keep: int
    ) -> bool:
        with self._lock:
            s = self._s
            held = s.sessions.get(session_id)
            if (0 if held is None else int(held["version"])) != version:
                return False
            s.sessions[session_id] = copy.deepcopy(doc)
            if held is None:
                own = s.sessions_of.setdefault(account, OrderedDict())
                own[session_id] = None
                while len(own) > keep:
                    gone, _ = own.popitem(last=False)
                    del s.sessions[gone]
            return True

    # -- callbacks -----------------------------------------------------------------------------

    def push(self, delivery: Delivery, epoch: int | None = None) -> bool:
        with self._lock:
            s = self._s
            if epoch is not None and epoch != s.epoch:
                return False
            heapq.heappush(s.queue, (delivery.due, delivery.seq, delivery))
            return True

    def lease(self, now: float, hold_s: float) -> Lease | None:
        with self._lock:
            s = self._s
            wall = self.wall()
            for token, (expires, delivery) in list(s.leases.items()):
                if expires <= wall:  # its sender died: queue it again
                    del s.leases[token]
                    heapq.heappush(s.queue, (delivery.due, delivery.seq, delivery))
            if not s.queue or s.queue[0][0] > now:
                return None
            delivery = heapq.heappop(s.queue)[2]
            token = str(next(self._leases))
            s.leases[token] = (wall + hold_s, delivery)
            return Lease(token, s.epoch, delivery)

    def release(self, lease: Lease) -> None:
        with self._lock:
            if self._s.epoch == lease.epoch:
                self._s.leases.pop(lease.token, None)

    def pending(self) -> tuple[int, int, float | None]:
        with self._lock:
            queue = self._s.queue
            return len(queue), len(self._s.leases), queue[0][0] if queue else None

    def add_attempt(self, record: dict[str, Any], epoch: int, capacity: int) -> None:
        with self._lock:
            s = self._s
            if epoch != s.epoch:
                return
            s.attempts.append(record)
            while len(s.attempts) > capacity:
                s.attempts.popleft()

    def attempts(self, task_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self._s.attempts if task_id is None or r["task_id"] == task_id]
