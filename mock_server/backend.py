"""The mock's state and rules, apart from HTTP: accounts, tasks, clock, journal.

Views call these methods and turn :class:`ApiError` into the envelope. One re-entrant lock guards
every compound change, because the server is threaded.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from kling_testkit.codes import ErrorCode
from kling_testkit.spec import ContractViolation, check_request, families
from mock_server.auth import authenticate
from mock_server.clock import Clock
from mock_server.config import RUNTIME_KEYS, Account, MockConfig
from mock_server.errors import ApiError, ConfigError
from mock_server.journal import Journal
from mock_server.store import InMemoryStore, TaskStore
from mock_server.tasks import Task, draw_timings


class Backend:
    """One mock's whole state. ``reset()`` returns it to how it started."""

    def __init__(self, config: MockConfig) -> None:
        self._lock = threading.RLock()
        self._initial = config
        self._setup(config)

    def _setup(self, config: MockConfig) -> None:
        self.config = config
        start = time.time() if config.clock_start is None else config.clock_start
        self.clock = Clock(start, 0.0 if config.clock == "manual" else config.time_scale)
        self._rng = random.Random(config.seed)
        self.store: TaskStore = InMemoryStore()
        self.journal = Journal(config.journal_size)
        self._seq = 0
        # Request ids draw from their own stream, so polling never shifts task ids.
        self._request_rng = random.Random(f"{config.seed}:requests")
        self.errors: list[BaseException] = []

    # -- control ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every task and request, restore the start-up config, restart the clock."""
        with self._lock:
            self._setup(self._initial)

    def advance(self, seconds: float) -> float:
        with self._lock:
            return self.clock.advance(seconds)

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
            self.config = new
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

    # -- auth ------------------------------------------------------------------------------

    def authenticate(self, header: str | None) -> Account:
        config = self.config
        now = self.now() if config.auth_clock == "mock" else time.time()
        return authenticate(header, config.accounts, now, config.token_leeway_s)

    # -- tasks -----------------------------------------------------------------------------

    def _new_id(self) -> str:
        while True:
            candidate = str(self._rng.randrange(10**17, 10**18))
            if self.store.get(candidate) is None:
                return candidate

    def create_task(self, account: Account, family: str, body: object) -> Task:
        """Validate a create body and store a new task that starts now."""
        try:
            params = check_request(family, body)
        except ContractViolation as exc:
            raise ApiError(exc.code, exc.message) from None
        with self._lock:
            external = params.get("external_task_id")
            if external is not None and self.store.by_external_id(account.name, external):
                raise ApiError(
                    ErrorCode.INVALID_VALUE,
                    f"external_task_id {external!r} is already used by another task "
                    "of this account",
                )
            config = self.config
            queued, run = draw_timings(
                self._rng,
                family,
                params,
                config.durations,
                config.duration_multipliers,
                config.duration_spread,
            )
            outputs = 1 if families()[family].output == "video" else 0
            self._seq += 1
            task = Task(
                task_id=self._new_id(),
                account=account.name,
                family=family,
                params=params,
                created_at=self.now(),
                queued_s=queued,
                run_s=run,
                result_ids=tuple(self._new_id() for _ in range(outputs)),
                seq=self._seq,
            )
            self.store.add(task)
            return task

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

    def find_task(self, task_id: str) -> Task | None:
        with self._lock:
            return self.store.get(task_id)
