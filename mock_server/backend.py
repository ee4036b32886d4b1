"""The mock's rules, apart from HTTP and apart from its state: accounts, tasks, clock, limits,
credits, faults.

Views call these methods and turn :class:`ApiError` into the envelope. Every piece of mutable
state is in the store (``mock_server.store``), behind atomic operations, so one backend per
process can serve a mock that several processes share. What a backend keeps itself is derived
and per process: the config and rules parsed from the store's documents (rebuilt when their
version changes), verified tokens, unexpected errors. Network I/O (callbacks) runs apart.
"""

from __future__ import annotations

import copy
import json
import math
import random
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kling_testkit.codes import ErrorCode
from kling_testkit.pricing import pack_kind, slots, units
from kling_testkit.prompts import blocked_term
from kling_testkit.spec import ContractViolation, check_request, families
from kling_testkit.spec.document import DESIGN_2026, pack_kinds
from mock_server import (
    credits,
    faces,
    limits,
    profiles,
    render,
    selections,
    signing,
    sources,
)
from mock_server.audit import (
    InFlight,
)
from mock_server.auth import TokenCache, authenticate
from mock_server.callbacks import Dispatcher
from mock_server.clock import Clock
from mock_server.config import RUNTIME_KEYS, Account, MockConfig, is_withdrawn
from mock_server.errors import ApiError, ConfigError
from mock_server.ids import draw_seed, task_id_of
from mock_server.journal import Journal
from mock_server.judge import Judge
from mock_server.memory_store import MemoryStore
from mock_server.rules import Facts, Rule, RuleSet
from mock_server.scenarios import SCENARIOS, lookup
from mock_server.store import MAX_GATES, ClockState, Fresh, Head, PackSpec, Refusal, Store
from mock_server.tasks import FAILED, SUCCEED, Task, draw_timings

"""The counters of ``GET /__mock/counters`` (with ``units_spent``), per account."""
REQUEST_BLOCK = 256  # request-id numbers a process reserves at a time
ID_BLOCK = 64  # task-id numbers a process reserves at a time


@dataclass(frozen=True)
class CreateEffects:
    """What scenarios and rules asked of one create request."""

    outcome: dict[str, Any] | None = None
    callback_fault: dict[str, Any] | None = None
    result_ttl_s: float | None = None


def runtime_of(config: MockConfig) -> dict[str, Any]:
    """The run-time part of a config as the store keeps it (JSON-ready)."""
    data = {key: getattr(config, key) for key in sorted(RUNTIME_KEYS)}
    loaded: dict[str, Any] = json.loads(json.dumps(data))
    return loaded


class Backend:
    """One mock's rules over its store. ``reset()`` returns it to how it started.

    Everything a client can grow is bounded: the journal (``journal_size``), callback records,
    rules (``MAX_RULES``), once-scenario gates (``MAX_GATES``, oldest forgotten first), errors
    kept (100), and tasks with ``max_tasks`` (the oldest finished ones are forgotten).
    """

    MAX_GATES = MAX_GATES

    def __init__(
        self, config: MockConfig, *, url_prefix: str = "", store: Store | None = None
    ) -> None:
        self._initial = copy.deepcopy(config)  # nothing the caller keeps is shared with us
        self._initial_runtime = runtime_of(self._initial)  # a store document equal to it
        self.url_prefix = url_prefix  # "/ns/<name>" in a namespace: public URLs keep it
        self.store: Store = store if store is not None else MemoryStore()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._config_key: tuple[int, int] = (-1, -1)
        self._config = self._initial
        self._rules_key: tuple[int, int] = (-1, -1)
        self._rules = RuleSet()
        # Counter numbers this process holds: counter -> (epoch, next, end).
        self._blocks: dict[str, tuple[int, int, int]] = {}
        self._tokens = TokenCache()  # verified signatures, per accounts object (kept by reset)
        self.errors: list[BaseException] = []
        self.journal = Journal(self.store, config.journal_size)
        self.in_flight = InFlight()  # creates being answered in this process (see audit)
        self.judge = Judge(self)
        self.clock = Clock(lambda: self._head().clock, self.store.wall, self.store.advance)
        self.store.start(self._fresh())
        self.callbacks = Dispatcher(self)

    def _fresh(self) -> Fresh:
        config = self._initial
        start = time.time() if config.clock_start is None else config.clock_start
        scale = 0.0 if config.clock == "manual" else config.time_scale
        rules = RuleSet()
        for rule in config.rules:
            rules.add(rule)
        return Fresh(
            clock=ClockState(start, self.store.wall(), scale),
            config=self._initial_runtime,  # never changed in place: a patch makes a new one
            rules=rules.to_doc(),
            url_key=signing.new_key(),
        )

    # -- what this process caches of the store ---------------------------------------------

    def pin(self, task_id: str | None = None) -> None:
        """Read the store's head once for the rest of this request (on this thread); with
        ``task_id`` (a task query), that task in the same read, which ``get_task`` then uses."""
        self._local.head = self.store.head(task_id)

    def unpin(self) -> None:
        self._local.head = None

    def _head(self) -> Head:
        head: Head | None = getattr(self._local, "head", None)
        return head if head is not None else self.store.head()

    def epoch(self) -> int:
        return self.store.head().epoch

    @property
    def config(self) -> MockConfig:
        """The config in force (rebuilt from the store's document when it changed)."""
        head = self._head()
        key = (head.epoch, head.config_version)
        if key != self._config_key:
            version, data = self.store.config()
            # After a reset the document is the start-up one: no config to rebuild.
            built = self._initial if data == self._initial_runtime else self._initial.patched(data)
            with self._lock:
                self._config_key, self._config = (head.epoch, version), built
            return built
        return self._config

    def _ruleset(self) -> RuleSet:
        head = self._head()
        key = (head.epoch, head.rules_version)
        if key != self._rules_key:
            version, doc = self.store.rules()
            built = RuleSet.from_doc(doc)
            with self._lock:
                self._rules_key, self._rules = (head.epoch, version), built
            return built
        return self._rules

    @property
    def url_key(self) -> bytes:
        return self._head().url_key

    def _draw(self, stream: str) -> random.Random:
        """A generator for the next draw of a seeded stream (the seed plus a shared counter)."""
        number = self.store.take(stream)
        return random.Random(draw_seed(self.config.seed, stream, number))

    # -- control ---------------------------------------------------------------------------

    @property
    def initial_seed(self) -> int:
        """The start-up config's seed (ids made before a change of ``seed`` still decode)."""
        return self._initial.seed

    @property
    def initial_config(self) -> MockConfig:
        """The start-up config (a copy: nothing that edits it reaches this mock)."""
        return copy.deepcopy(self._initial)

    def reset(self) -> None:
        """Forget every task, request and rule; restore the start-up config; restart the clock."""
        old = self.callbacks
        old.stop()
        self.unpin()
        self.store.reset(self._fresh())
        with self._lock:
            self.errors = []
            self._blocks = {}
        self.callbacks = Dispatcher(self)

    def drop(self) -> None:
        """Stop sending callbacks and delete the state (a dropped namespace)."""
        self.callbacks.stop()
        self.store.drop()

    def advance(self, seconds: float) -> float:
        """Move mock time forward and wake the callback sender; delivery happens on its thread."""
        self.store.advance(seconds)
        self.unpin()
        self.callbacks.wake()
        return self.now()

    def patch_config(self, changes: Mapping[str, Any]) -> MockConfig:
        """Apply run-time config changes (see ``RUNTIME_KEYS``); the clock keeps its time."""
        unknown = sorted(set(changes) - RUNTIME_KEYS)
        if unknown:
            raise ConfigError(
                f"{unknown[0]} cannot change at run time; "
                f"changeable: {', '.join(sorted(RUNTIME_KEYS))}"
            )
        self.unpin()
        while True:
            version, data = self.store.config()
            new = self._initial.patched(data).patched(changes)
            scale = 0.0 if new.clock == "manual" else new.time_scale
            if self.store.put_config(version, runtime_of(new), scale):
                break
        self.callbacks.wake()
        return new

    def _reserve(self, counter: str, count: int, block: int) -> int:
        """``count`` consecutive numbers of a store counter, from a block this process holds
        (one round trip per block; a block from an epoch that has passed is not used)."""
        epoch = self._head().epoch
        with self._lock:
            held_epoch, number, end = self._blocks.get(counter, (-1, 0, 0))
            if held_epoch != epoch or number + count > end:
                number = self.store.take(counter, block)
                end = number + block
            self._blocks[counter] = (epoch, number + count, end)
        return number

    def reserve_id(self) -> int:
        """A number of the id sequence that no task takes (a selection session's id)."""
        return self._reserve("ids", 1, ID_BLOCK)

    def request_id(self) -> str:
        number = self._reserve("requests", 1, REQUEST_BLOCK)
        bits = draw_seed(self._initial.seed, "requests", number)
        return str(uuid.UUID(int=bits, version=4))

    def record_error(self, exc: BaseException) -> None:
        """Keep an unexpected exception (the newest 100) so a test can re-raise it."""
        with self._lock:
            self.errors = [*self.errors[-99:], exc]

    def now(self) -> float:
        return self._head().clock.now(self.store.wall())

    def _retry_after(self, wait: float | None) -> dict[str, str]:
        if wait is None or not self.config.retry_after_header:
            return {}
        return {"Retry-After": str(limits.header_seconds(wait, self.clock.scale))}

    # -- requests: auth, rate, scenarios, rules --------------------------------------------

    def authenticate(self, header: str | None, notes: dict[str, Any] | None = None) -> Account:
        """The account the header proves (``notes``: see :func:`mock_server.auth.authenticate`)."""
        config = self.config
        now = self.token_now()
        return authenticate(
            header, config.accounts, now, config.token_leeway_s, self._tokens, notes
        )

    def token_now(self) -> float:
        """Now on the clock tokens are checked against (``auth_clock``)."""
        return self.now() if self.config.auth_clock == "mock" else time.time()

    def admit(self, account: Account) -> None:
        """Count a request against the account's rate limit (if one is set); 429/1302 if over."""
        limit = self.config.rate_limit
        if limit is None:
            return
        wait = self.store.admit(
            account.name, self.now(), int(limit["requests"]), float(limit["window_s"])
        )
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
        release = self.store.gate(account.name, key, now, float(action.get("retry_after", 0)))
        if release is None:
            return
        wait = release - now if "retry_after" in action else None
        raise self.error_for(action, wait)

    def gate_count(self) -> int:
        return self.store.gate_count()

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

    def _edit_rules(self, edit: Any) -> Any:
        """Apply ``edit(ruleset)`` to the store's rules, again if another change came first."""
        self.unpin()
        while True:
            version, doc = self.store.rules()
            rules = RuleSet.from_doc(doc)
            result = edit(rules)
            if self.store.put_rules(version, rules.to_doc()):
                return result

    def add_rules(self, rules: list[Any]) -> list[Rule]:
        """Append rules; if any is invalid (ValueError), none is added."""
        added: list[Rule] = self._edit_rules(lambda found: [found.add(rule) for rule in rules])
        return added

    def rules_snapshot(self) -> list[Rule]:
        """The rules in order, with their use counts."""
        self.unpin()
        counts = self.store.rule_counts()
        found = []
        for rule in self._ruleset().all():
            fired, skipped = counts.get(rule.id, (0, 0))
            found.append(
                Rule(rule.id, rule.match, rule.action, rule.times, rule.probability, fired, skipped)
            )
        return found

    def remove_rule(self, rule_id: str) -> bool:
        removed: bool = self._edit_rules(lambda found: found.remove(rule_id))
        return removed

    def clear_rules(self) -> None:
        self._edit_rules(lambda found: found.clear())

    def pick_rule(self, facts: Facts) -> Rule | None:
        """The first rule that matches, has uses left and wins its draw; count the use."""
        for rule in self._ruleset().all():
            if not rule.matches(facts):
                continue
            won = rule.probability >= 1.0 or self._draw("faults").random() < rule.probability
            if self.store.fire(rule.id, rule.times, won):
                return rule
        return None

    def latency_of(self, rule: Rule) -> float:
        return rule.latency(self._draw("faults"))

    # -- tasks -----------------------------------------------------------------------------

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
        params, parent = sources.parent_of(self, account, family, params)
        session = families()[family].session
        if session is not None:  # a multi-elements selection, or the faces of a lip-sync
            named = selections if session["kind"] == selections.KIND else faces
            params, parent = named.for_create(self, account, params)
        model = params.get("model_name")
        if is_withdrawn(config.withdrawn_models, family, model):  # as for a model not served
            raise ApiError(ErrorCode.INVALID_VALUE, f"model_name '{model}' is invalid")
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
        now = self.now()
        kind, need = pack_kind(family), slots(family, params)
        outputs = render.result_ids(family)
        number = self._reserve("ids", 1 + outputs, ID_BLOCK)  # the task's id, its results' ids
        rng = random.Random(draw_seed(config.seed, "task", number))
        queued, run = draw_timings(
            rng,
            family,
            params,
            config.durations,
            config.duration_multipliers,
            config.duration_spread,
        )
        if outcome == SUCCEED and rng.random() < config.failure_rate.get(family, 0.0):
            outcome, message = FAILED, config.failure_message
        forced = effects.outcome or {}
        if forced.get("outcome") == "fail":
            outcome, message = FAILED, str(forced.get("message", config.failure_message))
        elif forced.get("outcome") == "slow":
            run *= float(forced.get("factor", 10))
        elif forced.get("outcome") == "stuck":
            run = math.inf
        candidate = Task(
            task_id=task_id_of(config.seed, number),
            account=account.name,
            family=family,
            params=params,
            created_at=now,
            queued_s=queued,
            run_s=run,
            result_ids=tuple(task_id_of(config.seed, number + 1 + i) for i in range(outputs)),
            seq=number,
            outcome=outcome,
            status_msg=message,
            cost=units(family, params, float(parent["duration"]) if parent else None),
            slots=need,
            base_url=base_url.rstrip("/"),
            result_ttl_s=effects.result_ttl_s or config.result_ttl_s,
            callback_fault=effects.callback_fault,
            parent=parent,
        )
        packs = self.pack_specs(account)
        result = self.store.create(
            candidate,
            kind=kind,
            slot_limit=self.concurrency_of(account).get(kind),
            packs=packs,
            now=now,
            max_tasks=config.max_tasks,
        )
        if isinstance(result, Refusal):
            raise self._refusal(result, candidate, kind, packs, account, now)
        if "callback_url" in params:
            self.callbacks.schedule(result)
        return result

    def _refusal(
        self,
        refusal: Refusal,
        task: Task,
        kind: str,
        packs: tuple[PackSpec, ...],
        account: Account,
        now: float,
    ) -> ApiError:
        if refusal.reason == "external":
            return ApiError(
                ErrorCode.INVALID_VALUE,
                f"external_task_id {task.external_task_id!r} is already used by another task "
                "of this account",
            )
        if refusal.reason == "slots":
            limit = self.concurrency_of(account)[kind]
            wait = limits.wait_for_slots(refusal.running, now, task.slots, limit)
            return ApiError(
                ErrorCode.CONCURRENCY_LIMITED,
                f"parallel task over resource pack limit ({limit} {kind} slots; this task "
                f"needs {task.slots})",
                headers=self._retry_after(wait),
            )
        wait = credits.wait_for_units(packs, kind, task.cost, now)
        return ApiError(
            ErrorCode.RESOURCE_PACK_EXHAUSTED,
            f"Account balance not enough: this task needs {task.cost} {kind} units",
            headers=self._retry_after(wait),
        )

    def pack_specs(self, account: Account) -> tuple[PackSpec, ...]:
        return credits.place(account.name, account.packs, self._head().origin)

    def concurrency_of(self, account: Account) -> dict[str, int]:
        """The account's slots per pack kind: its own limits over the config's, kind by kind."""
        return {**self.config.concurrency, **(account.concurrency or {})}

    def get_task(self, account: Account, family: str, ident: str) -> Task:
        """Find a task of this account and family by task_id, else by external_task_id."""
        peek = self._head().peek
        task = peek[1] if peek is not None and peek[0] == ident else self.store.get(ident)
        if task is None or task.account != account.name:
            task = self.store.by_external_id(account.name, ident)
        if task is None or task.family != family:
            raise ApiError(ErrorCode.RESOURCE_NOT_FOUND, f"task {ident!r} does not exist")
        return task

    def list_tasks(self, account: Account, family: str, page: int, size: int) -> list[Task]:
        """One page of this account's tasks of a family, newest first."""
        return self.store.page(account.name, family, (page - 1) * size, size)

    def all_tasks(self, account: str | None = None, family: str | None = None) -> list[Task]:
        return self.store.select(0, self.store.count(), account, family)

    def task_count(self) -> int:
        return self.store.count()

    def tasks_page(
        self, offset: int, limit: int, account: str | None = None, family: str | None = None
    ) -> list[Task]:
        """Newest first, ``limit`` of them after ``offset``, optionally of one account/family."""
        return self.store.select(offset, limit, account, family)

    def find_task(self, task_id: str) -> Task | None:
        return self.store.get(task_id)

    # -- results and accounts --------------------------------------------------------------

    @staticmethod
    def url_expiry(task: Task) -> int:
        """When a task's result URLs stop working (mock time, whole seconds)."""
        return math.ceil(task.ends_at + task.result_ttl_s)

    def media_url(self, task: Task, name: str) -> str:
        """The signed, expiring URL of one result file of a task."""
        path = render.media_path(task.task_id, name)
        return self.signed_url(task.base_url, path, self.url_expiry(task))

    def signed_url(self, base_url: str, path: str, expires: int) -> str:
        """``path`` on the mock's public base URL (else ``base_url``, the one its request
        came to), signed to work until ``expires`` (mock time, whole seconds)."""
        public = self.config.public_base_url
        base = f"{public.rstrip('/')}{self.url_prefix}" if public else base_url.rstrip("/")
        return f"{base}{path}?{signing.signed_query(self.url_key, path, expires)}"

    def render(self, task: Task, at: float | None = None) -> dict[str, Any]:
        """The task object in the legacy shape at mock time ``at`` (default now): what the
        control API and the dashboard show for a task of either design."""
        return render.task(task, self.now() if at is None else at, self.media_url)

    def render_api(
        self, task: Task, at: float | None = None, profile: str = profiles.CURRENT
    ) -> dict[str, Any]:
        """The task object as its own design's API shows it (a query, a list, a callback): a
        2026 task in the new shape, a legacy one in the response ``profile``."""
        now = self.now() if at is None else at
        if families()[task.family].design == DESIGN_2026:
            return render.task_2026(task, now, self.media_url)
        return profiles.task(render.task(task, now, self.media_url), profile)

    def accounts_view(self) -> list[dict[str, Any]]:
        """Every account with its packs (documented shape) and the slots its tasks hold now."""
        now = self.now()
        kinds = sorted(pack_kinds())
        return [
            {
                "name": account.name,
                "access_key": account.access_key,
                "concurrency": self.concurrency_of(account),
                "slots_in_use": {
                    kind: sum(c.slots for c in self.store.running(account.name, kind, now))
                    for kind in kinds
                },
                "packs": [
                    {**pack, "kind": spec.kind}
                    for spec, pack in zip(
                        self.pack_specs(account), self._pack_views(account, now), strict=True
                    )
                ],
            }
            for account in self.config.accounts
        ]

    def _pack_views(self, account: Account, now: float) -> list[dict[str, Any]]:
        return [
            credits.to_api(spec, pack, self.store.pack_usage(spec.pack_id, now)[0], now)
            for spec, pack in zip(self.pack_specs(account), account.packs, strict=True)
        ]

    def packs(self, account: Account, name: str | None = None) -> list[dict[str, Any]]:
        """The account's packs in the documented shape (optionally one pack by name)."""
        now = self.now()
        return [
            view
            for view in self._pack_views(account, now)
            if name is None or view["resource_pack_name"] == name
        ]
