"""The mock's state and rules, apart from HTTP: accounts, tasks, clock, limits, credits, faults.

Views call these methods and turn :class:`ApiError` into the envelope. One re-entrant lock guards
every compound change, because the server is threaded; network I/O (callbacks) runs outside it.
"""

from __future__ import annotations

import copy
import math
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kling_testkit.codes import ErrorCode
from kling_testkit.pricing import pack_kind, slots, units
from kling_testkit.prompts import blocked_term
from kling_testkit.spec import ContractViolation, check_request, families
from mock_server import credits, limits, render, signing
from mock_server.auth import TokenCache, authenticate
from mock_server.callbacks import Dispatcher
from mock_server.clock import Clock
from mock_server.config import RUNTIME_KEYS, Account, MockConfig
from mock_server.errors import ApiError, ConfigError
from mock_server.journal import Journal
from mock_server.rules import Facts, Rule, RuleSet
from mock_server.scenarios import SCENARIOS, lookup
from mock_server.store import InMemoryStore, TaskStore
from mock_server.tasks import FAILED, SUCCEED, Task, draw_timings


@dataclass(frozen=True)
class CreateEffects:
    """What scenarios and rules asked of one create request."""

    outcome: dict[str, Any] | None = None
    callback_fault: dict[str, Any] | None = None
    result_ttl_s: float | None = None


class Backend:
    """One mock's whole state. ``reset()`` returns it to how it started.

    Everything a client can grow is bounded: the journal (``journal_size``), callback records,
    rules (``MAX_RULES``), once-scenario gates (``MAX_GATES``, oldest forgotten first), errors
    kept (100). Tasks, and what hangs off them (their params, queued callbacks, running slots),
    are bounded only by the tasks stored: a reset drops them all.
    """

    MAX_GATES = 10_000

    def __init__(self, config: MockConfig, *, url_prefix: str = "") -> None:
        self._lock = threading.RLock()
        self._initial = copy.deepcopy(config)  # nothing the caller keeps is shared with us
        self.url_prefix = url_prefix  # "/ns/<name>" in a namespace: public URLs keep it
        self._setup(self._initial)

    def _setup(self, initial: MockConfig) -> None:
        # A copy of its own: run-time edits (even careless in-place ones) never reach _initial.
        config = self.config = copy.deepcopy(initial)
        start = time.time() if config.clock_start is None else config.clock_start
        self.clock = Clock(start, 0.0 if config.clock == "manual" else config.time_scale)
        self._rng = random.Random(config.seed)
        # Request ids and fault draws use their own streams, so polling never shifts task ids.
        self._request_rng = random.Random(f"{config.seed}:requests")
        self._fault_rng = random.Random(f"{config.seed}:faults")
        self.store: TaskStore = InMemoryStore()
        self.journal = Journal(config.journal_size)
        self.rules = RuleSet()
        for rule in config.rules:
            self.rules.add(rule)
        self._seq = 0
        self._packs = {a.name: credits.place(a.name, a.packs, start) for a in config.accounts}
        self._running: dict[tuple[str, str], limits.Running] = {}  # (account, kind)
        self._windows: dict[str, limits.RateWindow] = {}
        # Once-scenarios: release time per (account, header value), the newest MAX_GATES kept.
        self._gates: OrderedDict[tuple[str, str], float | None] = OrderedDict()
        self.url_key = signing.new_key()
        self._tokens = TokenCache()  # verified signatures; the accounts may differ after reset
        self.errors: list[BaseException] = []
        old = getattr(self, "callbacks", None)
        if old is not None:
            old.stop()
        self.callbacks = Dispatcher(self)

    # -- control ---------------------------------------------------------------------------

    @property
    def initial_config(self) -> MockConfig:
        """The start-up config (a copy: nothing that edits it reaches this mock)."""
        return copy.deepcopy(self._initial)

    def reset(self) -> None:
        """Forget every task, request and rule; restore the start-up config; restart the clock."""
        with self._lock:
            self._setup(self._initial)

    def advance(self, seconds: float) -> float:
        """Move mock time forward and wake the callback sender; delivery happens on its thread."""
        with self._lock:
            now = self.clock.advance(seconds)
        self.callbacks.wake()
        return now

    def patch_config(self, changes: Mapping[str, Any]) -> MockConfig:
        """Apply run-time config changes (see ``RUNTIME_KEYS``); the clock keeps its time."""
        unknown = sorted(set(changes) - RUNTIME_KEYS)
        if unknown:
            raise ConfigError(
                f"{unknown[0]} cannot change at run time; "
                f"changeable: {', '.join(sorted(RUNTIME_KEYS))}"
            )
        with self._lock:
            new = self.config.patched(changes)
            self.clock.set_scale(0.0 if new.clock == "manual" else new.time_scale)
            if "seed" in changes:
                self._rng = random.Random(new.seed)
                self._fault_rng = random.Random(f"{new.seed}:faults")
            self.config = new
        self.callbacks.wake()
        return new

    def request_id(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._request_rng.getrandbits(128), version=4))

    def record_error(self, exc: BaseException) -> None:
        """Keep an unexpected exception (the newest 100) so a test can re-raise it."""
        with self._lock:
            self.errors = [*self.errors[-99:], exc]

    def now(self) -> float:
        return self.clock.now()

    def _retry_after(self, wait: float | None) -> dict[str, str]:
        if wait is None or not self.config.retry_after_header:
            return {}
        return {"Retry-After": str(limits.header_seconds(wait, self.clock.scale))}

    # -- requests: auth, rate, scenarios, rules --------------------------------------------

    def authenticate(self, header: str | None) -> Account:
        config = self.config
        now = self.now() if config.auth_clock == "mock" else time.time()
        return authenticate(header, config.accounts, now, config.token_leeway_s, self._tokens)

    def admit(self, account: Account) -> None:
        """Count a request against the account's rate limit (if one is set); 429/1302 if over."""
        limit = self.config.rate_limit
        if limit is None:
            return
        with self._lock:
            window = self._windows.setdefault(account.name, limits.RateWindow())
            wait = window.admit(self.now(), int(limit["requests"]), float(limit["window_s"]))
        if wait is not None:
            raise ApiError(
                ErrorCode.RATE_LIMITED,
                f"request rate too high: at most {limit['requests']} requests per "
                f"{limit['window_s']:g} s",
                headers=self._retry_after(wait),
            )

    def scenario(self, account: Account, value: str) -> dict[str, Any]:
        """Apply the named scenario's gate or error; return what it asks of a create."""
        found = lookup(value)
        if found is None:
            raise ApiError(
                ErrorCode.INVALID_VALUE,
                f"unknown X-Mock-Scenario {value[:80]!r}; known: {', '.join(SCENARIOS)}",
            )
        name, spec = found
        action = spec.get("action", {})
        if action.get("type") == "error":
            if spec.get("once"):
                self._gate(account, value, action)
            else:
                raise self.error_for(action)
        return {**spec, "name": name}

    def _gate(self, account: Account, key: str, action: dict[str, Any]) -> None:
        now = self.now()
        with self._lock:
            gate = (account.name, key)
            if gate in self._gates:
                release = self._gates[gate]
                if release is None or now >= release:
                    self._gates[gate] = None  # spent: through for good
                    return
            else:
                release = now + float(action.get("retry_after", 0))
                self._gates[gate] = release
                if len(self._gates) > self.MAX_GATES:
                    self._gates.popitem(last=False)  # the oldest gate is forgotten
        wait = release - now if "retry_after" in action else None
        raise self.error_for(action, wait)

    def gate_count(self) -> int:
        with self._lock:
            return len(self._gates)

    def error_for(self, action: Mapping[str, Any], wait: float | None = None) -> ApiError:
        """The ApiError an ``error`` action describes."""
        code = ErrorCode(action["code"])
        if wait is None and "retry_after" in action:
            wait = float(action["retry_after"])
        message = action.get("message") or f"{code.name.lower().replace('_', ' ')} (mock rule)"
        return ApiError(
            code,
            message,
            status=action.get("status"),
            headers=self._retry_after(wait) if wait is not None else {},
        )

    def add_rules(self, rules: list[Any]) -> list[Rule]:
        """Append rules; if any is invalid (ValueError), none is added."""
        with self._lock:
            trial = copy.deepcopy(self.rules)
            added = [trial.add(rule) for rule in rules]  # raises ValueError on a bad rule
            self.rules = trial
            return added

    def rules_snapshot(self) -> list[Rule]:
        with self._lock:
            return self.rules.all()

    def remove_rule(self, rule_id: str) -> bool:
        with self._lock:
            return self.rules.remove(rule_id)

    def clear_rules(self) -> None:
        with self._lock:
            self.rules.clear()

    def pick_rule(self, facts: Facts) -> Rule | None:
        with self._lock:
            return self.rules.pick(facts, self._fault_rng)

    def latency_of(self, rule: Rule) -> float:
        with self._lock:
            return rule.latency(self._fault_rng)

    # -- tasks -----------------------------------------------------------------------------

    def _new_id(self) -> str:
        while True:
            candidate = str(self._rng.randrange(10**17, 10**18))
            if self.store.get(candidate) is None:
                return candidate

    def _prompts(self, params: Mapping[str, Any]) -> list[str]:
        texts = [params.get("prompt")] + [s.get("prompt") for s in params.get("multi_prompt", [])]
        return [t for t in texts if isinstance(t, str)]

    def create_task(
        self,
        account: Account,
        family: str,
        body: object,
        *,
        base_url: str,
        effects: CreateEffects | None = None,
    ) -> Task:
        """Validate a create body, check policy, limits and units, and store a new task."""
        try:
            params = check_request(family, body)
        except ContractViolation as exc:
            raise ApiError(exc.code, exc.message) from None
        effects = effects or CreateEffects()
        config = self.config
        outcome, message = SUCCEED, ""
        term = next(
            (
                t
                for t in (blocked_term(p, config.blocked_terms) for p in self._prompts(params))
                if t
            ),
            None,
        )
        if term is not None:
            if config.policy_action == "reject":
                raise ApiError(ErrorCode.CONTENT_POLICY, config.policy_message)
            outcome, message = FAILED, config.policy_message
        with self._lock:
            now = self.now()
            external = params.get("external_task_id")
            if external is not None and self.store.by_external_id(account.name, external):
                raise ApiError(
                    ErrorCode.INVALID_VALUE,
                    f"external_task_id {external!r} is already used by another task "
                    "of this account",
                )
            kind, need = pack_kind(family), slots(family, params)
            self._check_concurrency(account, kind, need, now)
            cost = units(family, params)
            pack = credits.choose(self._packs.get(account.name, []), kind, cost, now)
            if pack is None:
                wait = credits.wait_for_units(self._packs.get(account.name, []), kind, cost, now)
                raise ApiError(
                    ErrorCode.RESOURCE_PACK_EXHAUSTED,
                    f"Account balance not enough: this task needs {cost} {kind} units",
                    headers=self._retry_after(wait),
                )
            queued, run = draw_timings(
                self._rng,
                family,
                params,
                config.durations,
                config.duration_multipliers,
                config.duration_spread,
            )
            if outcome == SUCCEED and self._rng.random() < config.failure_rate.get(family, 0.0):
                outcome, message = FAILED, config.failure_message
            forced = effects.outcome or {}
            if forced.get("outcome") == "fail":
                outcome, message = FAILED, str(forced.get("message", config.failure_message))
            elif forced.get("outcome") == "slow":
                run *= float(forced.get("factor", 10))
            elif forced.get("outcome") == "stuck":
                run = math.inf
            outputs = 1 if families()[family].output == "video" else 0
            self._seq += 1
            task = Task(
                task_id=self._new_id(),
                account=account.name,
                family=family,
                params=params,
                created_at=now,
                queued_s=queued,
                run_s=run,
                result_ids=tuple(self._new_id() for _ in range(outputs)),
                seq=self._seq,
                outcome=outcome,
                status_msg=message,
                cost=cost,
                slots=need,
                pack_id=pack.pack_id,
                base_url=base_url.rstrip("/"),
                result_ttl_s=effects.result_ttl_s or config.result_ttl_s,
                callback_fault=effects.callback_fault,
            )
            self.store.add(task)
            pack.charge(task)
            self._running.setdefault((account.name, kind), limits.Running()).add(task)
        if "callback_url" in params:
            self.callbacks.schedule(task)
        return task

    def concurrency_of(self, account: Account) -> dict[str, int]:
        """The account's slots per pack kind: its own limits over the config's, kind by kind."""
        return {**self.config.concurrency, **(account.concurrency or {})}

    def _check_concurrency(self, account: Account, kind: str, need: int, now: float) -> None:
        limit = self.concurrency_of(account).get(kind)
        if limit is None:
            return
        running = self._running.setdefault((account.name, kind), limits.Running())
        if running.in_use(now) + need <= limit:
            return
        wait = limits.wait_for_slots(running.tasks(now), now, need, limit)
        raise ApiError(
            ErrorCode.CONCURRENCY_LIMITED,
            f"parallel task over resource pack limit ({limit} {kind} slots; this task "
            f"needs {need})",
            headers=self._retry_after(wait),
        )

    def get_task(self, account: Account, family: str, ident: str) -> Task:
        """Find a task of this account and family by task_id, else by external_task_id."""
        with self._lock:
            task = self.store.get(ident)
            if task is None or task.account != account.name:
                task = self.store.by_external_id(account.name, ident)
        if task is None or task.family != family:
            raise ApiError(ErrorCode.RESOURCE_NOT_FOUND, f"task {ident!r} does not exist")
        return task

    def list_tasks(self, account: Account, family: str, page: int, size: int) -> list[Task]:
        """One page of this account's tasks of a family, newest first."""
        with self._lock:
            return self.store.page(account.name, family, (page - 1) * size, size)

    def all_tasks(self, account: str | None = None, family: str | None = None) -> list[Task]:
        with self._lock:
            return self.store.tasks(account, family)

    def task_count(self) -> int:
        with self._lock:
            return self.store.count()

    def tasks_page(
        self, offset: int, limit: int, account: str | None = None, family: str | None = None
    ) -> list[Task]:
        """Newest first, ``limit`` of them after ``offset``, optionally of one account/family."""
        with self._lock:
            if account is None and family is None:
                return self.store.newest(offset, limit)
            return self.store.tasks(account, family)[offset : offset + limit]

    def find_task(self, task_id: str) -> Task | None:
        with self._lock:
            return self.store.get(task_id)

    # -- results and accounts --------------------------------------------------------------

    def media_url(self, task: Task, name: str) -> str:
        """The signed, expiring URL of one result file of a task."""
        path = render.media_path(task.task_id, name)
        expires = math.ceil(task.ends_at + task.result_ttl_s)
        public = self.config.public_base_url
        base = f"{public.rstrip('/')}{self.url_prefix}" if public else task.base_url.rstrip("/")
        return f"{base}{path}?{signing.signed_query(self.url_key, path, expires)}"

    def render(self, task: Task, at: float | None = None) -> dict[str, Any]:
        """The task object as the API shows it at mock time ``at`` (default now)."""
        return render.task(task, self.now() if at is None else at, self.media_url)

    def accounts_view(self) -> list[dict[str, Any]]:
        """Every account with its packs (documented shape) and the slots its tasks hold now."""
        now = self.now()
        with self._lock:
            return [
                {
                    "name": account.name,
                    "access_key": account.access_key,
                    "concurrency": self.concurrency_of(account),
                    "slots_in_use": {
                        kind: running.in_use(now)
                        for (name, kind), running in self._running.items()
                        if name == account.name
                    },
                    "packs": [
                        {**s.to_api(now), "kind": s.pack.kind}
                        for s in self._packs.get(account.name, [])
                    ],
                }
                for account in self.config.accounts
            ]

    def packs(self, account: Account, name: str | None = None) -> list[dict[str, Any]]:
        """The account's packs in the documented shape (optionally one pack by name)."""
        now = self.now()
        with self._lock:
            return [
                s.to_api(now)
                for s in self._packs.get(account.name, [])
                if name is None or s.pack.name == name
            ]
