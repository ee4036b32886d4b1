"""Where every piece of a mock's mutable state lives: the :class:`Store` interface.

The backend (``mock_server.backend``) is rules over a store: it decides, the store keeps. Each
method is atomic on its own, and each compound change that an invariant rests on is one method
(``create`` checks the external id, counts slots, picks and charges a pack and inserts, at once),
so several server processes can share one store (``mock_server.redis_store``) as safely as
threads share the in-memory one (``mock_server.memory_store``). Reads never change anything.

State kept here: the clock and the run-time config (versioned), the URL-signing key, counters
(ids and seeded draws come from the seed plus a counter, so processes never repeat one), tasks
with their external ids, running slots and pack charges, rate windows, scenario gates, fault
rules with their use counts, the request journal, and the callback queue with its records.
``reset`` starts a new epoch: everything above is gone at once, for every process.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from mock_server.audit import Audit, Found
from mock_server.tasks import Task


@dataclass(frozen=True)
class ClockState:
    """Mock time ``base`` at the store's wall time ``anchor``, moving ``scale`` times as fast."""

    base: float
    anchor: float
    scale: float

    def now(self, wall: float) -> float:
        return self.base + (wall - self.anchor) * self.scale if self.scale else self.base


@dataclass(frozen=True)
class Head:
    """What every request reads first: the epoch, the clock and the versions of the config
    and rules (so a process rebuilds its cached copies only when they changed)."""

    epoch: int
    clock: ClockState
    origin: float  # mock time the clock started at (packs are placed from it)
    config_version: int
    rules_version: int
    url_key: bytes
    # ``head(task_id)`` also reads that task in the same step: (task_id, the task or None).
    peek: tuple[str, Task | None] | None = None


@dataclass(frozen=True)
class Fresh:
    """The state a new epoch starts with (start-up, reset)."""

    clock: ClockState
    config: dict[str, Any]  # the run-time part of the config (``RUNTIME_KEYS``), JSON-ready
    rules: dict[str, Any]  # a rules document (``RuleSet.to_doc``)
    url_key: bytes


@dataclass(frozen=True)
class PackSpec:
    """A resource pack placed on the timeline: what never changes about it."""

    pack_id: str
    name: str
    kind: str
    total: Decimal
    effective_at: float
    invalid_at: float


@dataclass(frozen=True, slots=True)
class Charge:
    """What a task holds until it ends: slots of its account, units reserved on its pack."""

    task_id: str
    ends_at: float
    slots: int
    cost: Decimal
    succeeds: bool


@dataclass(frozen=True)
class Refusal:
    """Why ``create`` stored nothing: ``external`` (the id is taken), ``slots`` (``running``
    says what holds them) or ``units`` (no online pack covers the cost)."""

    reason: str
    running: tuple[Charge, ...] = ()


@dataclass(frozen=True)
class Delivery:
    """One callback attempt waiting in the queue."""

    due: float
    seq: int
    task: Task
    step: int  # index into task.transitions()
    attempt: int = 1
    copies: int = 1  # 2 with the "duplicate" fault


@dataclass(frozen=True)
class Lease:
    """A delivery taken from the queue by one sender; ``epoch`` is the epoch it was taken in."""

    token: str
    epoch: int
    delivery: Delivery


class Store(Protocol):
    """Every piece of a mock's mutable state, behind atomic operations."""

    shared: bool
    """True when other processes may change the state too (so wake-ups must poll)."""

    def wall(self) -> float:
        """The store's wall clock, which clock anchors are read against."""
        ...

    # -- epochs --------------------------------------------------------------------------------

    def start(self, fresh: Fresh) -> None:
        """Begin with ``fresh`` unless the store already holds a mock (a restart keeps it)."""
        ...

    def reset(self, fresh: Fresh) -> None:
        """A new epoch with ``fresh``: all else is forgotten at once."""
        ...

    def drop(self) -> None:
        """Delete the state for good (a dropped namespace)."""
        ...

    def head(self, task_id: str | None = None) -> Head:
        """The head; with ``task_id``, that task read in the same step (``Head.peek``)."""
        ...

    def close(self) -> None: ...

    # -- clock and config ----------------------------------------------------------------------

    def advance(self, seconds: float) -> ClockState: ...

    def config(self) -> tuple[int, dict[str, Any]]:
        """The run-time config and its version."""
        ...

    def put_config(self, version: int, config: dict[str, Any], scale: float) -> bool:
        """Replace the config if its version is still ``version``; the clock takes ``scale``
        without a jump. False (nothing changed) if another change came first."""
        ...

    def take(self, counter: str, count: int = 1) -> int:
        """Reserve ``count`` numbers of a named counter; the first of them (counting from 0)."""
        ...

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
        """Check the external id, the slots and the units, then store and charge ``task`` (its
        ``pack_id`` set to the pack chosen) and count it in the account's ``tasks_created``, at
        once. Past ``max_tasks`` the oldest finished tasks are forgotten."""
        ...

    def get(self, task_id: str) -> Task | None: ...

    def by_external_id(self, account: str, external_task_id: str) -> Task | None: ...

    def page(self, account: str, family: str, offset: int, limit: int) -> list[Task]:
        """``limit`` tasks of one account and family, newest first, skipping ``offset``."""
        ...

    def select(
        self, offset: int, limit: int, account: str | None = None, family: str | None = None
    ) -> list[Task]:
        """``limit`` tasks newest first after ``offset``, optionally of one account/family."""
        ...

    def count(self) -> int: ...

    def running(self, account: str, kind: str, now: float) -> list[Charge]:
        """The account's tasks of a pack kind that hold slots at ``now``."""
        ...

    def pack_usage(self, pack_id: str, now: float) -> tuple[Decimal, Decimal]:
        """Units of a pack consumed (by tasks that succeeded by ``now``) and reserved (by
        tasks still running)."""
        ...

    # -- requests ------------------------------------------------------------------------------

    def admit(self, account: str, now: float, limit: int, window_s: float) -> float | None:
        """Count a request in the account's sliding window; None, or seconds until admitted."""
        ...

    def gate(self, account: str, key: str, now: float, hold_s: float) -> float | None:
        """A once-scenario gate: None lets the request through (for good once released), else
        the release time (set to ``now + hold_s`` on first sight). The newest
        ``MAX_GATES`` gates are kept."""
        ...

    def gate_count(self) -> int: ...

    def record(self, entry: dict[str, Any], capacity: int, audit: Audit | None = None) -> None:
        """Append a journal entry; keep the newest ``capacity``. With ``audit``, also judge the
        request in the same step (:mod:`mock_server.audit`): count it in the account's
        ``requests``, record each finding it makes with the entry as evidence (the first
        ``MAX_EVIDENCE`` per finding), update its task's poll record, its token's and its
        download's, and, when it was
        answered 429 with a Retry-After (``audit.told``), count it as rate limited and
        remember the wait."""
        ...

    def journal(self, limit: int | None) -> tuple[list[dict[str, Any]], int]:
        """The newest ``limit`` entries (all by default), oldest first, and how many fell off."""
        ...

    # -- what clients did ----------------------------------------------------------------------

    def bump(self, account: str, counter: str, count: int = 1) -> None:
        """Add to one of an account's counters."""
        ...

    def counters(self) -> dict[str, dict[str, int]]:
        """Every account's counters."""
        ...

    def audit(self) -> Found:
        """Per account, per finding id: (count, the first offending requests' evidence)."""
        ...

    def note(self, account: str, fid: str, shown: dict[str, Any]) -> None:
        """Record a finding made outside a request's journal step (a callback the account's
        receiver failed), with ``shown`` as its evidence."""
        ...

    def fetched(self) -> set[str]:
        """The tasks whose result was downloaded (the newest ``MAX_FETCHED``)."""
        ...

    # -- fault rules ---------------------------------------------------------------------------

    def rules(self) -> tuple[int, dict[str, Any]]:
        """The rules document and its version."""
        ...

    def put_rules(self, version: int, doc: dict[str, Any]) -> bool:
        """Replace the rules if still at ``version``; counts of rules gone are dropped."""
        ...

    def fire(self, rule_id: str, times: int | None, won: bool = True) -> bool:
        """A rule matched: unless it has used up ``times``, count a use (``won``) or a lost
        probability draw; whether it fired."""
        ...

    def rule_counts(self) -> dict[str, tuple[int, int]]:
        """(fired, skipped) per rule id."""
        ...

    # -- sessions (multi-elements selections, identified faces) ----------------------------------

    def session(self, session_id: str) -> dict[str, Any] | None:
        """The session stored under ``session_id`` (a JSON object), if any."""
        ...

    def put_session(
        self, account: str, session_id: str, doc: dict[str, Any], version: int, keep: int
    ) -> bool:
        """Store ``doc`` (whose ``version`` is ``version + 1``) if the stored session is still
        at ``version`` (0: none is stored yet); whether it was. A new session makes the
        account's oldest go once it has more than ``keep``."""
        ...

    # -- callbacks -----------------------------------------------------------------------------

    def push(self, delivery: Delivery, epoch: int | None = None) -> bool:
        """Queue a delivery (dropped when ``epoch`` is given and is not the current one)."""
        ...

    def lease(self, now: float, hold_s: float) -> Lease | None:
        """Take the earliest delivery due at ``now`` for ``hold_s`` wall seconds; one whose
        sender died is queued again when its lease runs out."""
        ...

    def release(self, lease: Lease) -> None:
        """The leased delivery was handled."""
        ...

    def pending(self) -> tuple[int, int, float | None]:
        """(queued, leased) deliveries and the earliest due time, read at once (a sender in
        another process may lease one between two separate reads)."""
        ...

    def add_attempt(self, record: dict[str, Any], epoch: int, capacity: int) -> None:
        """Keep a callback attempt record (unless the epoch has passed); the newest
        ``capacity``."""
        ...

    def attempts(self, task_id: str | None = None) -> list[dict[str, Any]]: ...


MAX_GATES = 10_000
MILLI = Decimal(1000)


def milli(amount: Decimal) -> int:
    """Units as whole thousandths (prices and totals have at most three decimals)."""
    return int(amount * MILLI)


def task_to_json(task: Task) -> str:
    """A task as JSON (an endless ``run_s`` is null), ``pack_id`` last."""
    data = {
        "task_id": task.task_id,
        "account": task.account,
        "family": task.family,
        "params": task.params,
        "created_at": task.created_at,
        "queued_s": task.queued_s,
        "run_s": task.run_s if math.isfinite(task.run_s) else None,
        "result_ids": list(task.result_ids),
        "seq": task.seq,
        "base_url": task.base_url,
        "result_ttl_s": task.result_ttl_s,
        "outcome": task.outcome,
        "status_msg": task.status_msg,
        "cost": str(task.cost),
        "slots": task.slots,
        "callback_fault": task.callback_fault,
        "parent": task.parent,
        "pack_id": task.pack_id,
    }
    return json.dumps(data, separators=(",", ":"))


def task_from_json(text: str | bytes) -> Task:
    data = json.loads(text)
    data["run_s"] = math.inf if data["run_s"] is None else data["run_s"]
    data["result_ids"] = tuple(data["result_ids"])
    data["cost"] = Decimal(data["cost"])
    return Task(**data)
