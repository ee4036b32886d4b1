"""Where tasks live. The backend talks to the :class:`TaskStore` interface only.

The in-memory store is the default; a shared store (for several server processes) implements the
same methods. Callers hold the backend's lock around compound operations.
"""

from __future__ import annotations

from typing import Protocol

from mock_server.tasks import Task


class TaskStore(Protocol):
    def add(self, task: Task) -> None: ...

    def get(self, task_id: str) -> Task | None: ...

    def by_external_id(self, account: str, external_task_id: str) -> Task | None: ...

    def tasks(self, account: str | None = None, family: str | None = None) -> list[Task]:
        """Tasks newest first, optionally for one account and family."""
        ...

    def page(self, account: str, family: str, offset: int, limit: int) -> list[Task]:
        """``limit`` tasks of one account and family, newest first, skipping ``offset``."""
        ...

    def count(self) -> int:
        """How many tasks are stored."""
        ...

    def newest(self, offset: int, limit: int) -> list[Task]:
        """``limit`` tasks of any account and family, newest first, skipping ``offset``."""
        ...


class InMemoryStore:
    """Tasks in dicts; not thread-safe by itself (the backend locks)."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._external: dict[tuple[str, str], str] = {}
        self._by_owner: dict[
            tuple[str, str], list[str]
        ] = {}  # (account, family) -> ids, oldest first

    def add(self, task: Task) -> None:
        if task.task_id in self._tasks:
            raise KeyError(f"task {task.task_id} exists")
        self._tasks[task.task_id] = task
        self._by_owner.setdefault((task.account, task.family), []).append(task.task_id)
        if task.external_task_id is not None:
            self._external[(task.account, task.external_task_id)] = task.task_id

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def by_external_id(self, account: str, external_task_id: str) -> Task | None:
        task_id = self._external.get((account, external_task_id))
        return None if task_id is None else self._tasks[task_id]

    def tasks(self, account: str | None = None, family: str | None = None) -> list[Task]:
        found = [
            t
            for t in self._tasks.values()
            if (account is None or t.account == account) and (family is None or t.family == family)
        ]
        found.reverse()  # dicts keep insertion order, so this is newest first
        return found

    def page(self, account: str, family: str, offset: int, limit: int) -> list[Task]:
        ids = self._by_owner.get((account, family), [])
        end = len(ids) - offset  # newest first: count back from the end
        return [self._tasks[i] for i in reversed(ids[max(0, end - limit) : max(0, end)])]

    def count(self) -> int:
        return len(self._tasks)

    def newest(self, offset: int, limit: int) -> list[Task]:
        found = []
        for index, task in enumerate(reversed(self._tasks.values())):
            if index >= offset + limit:
                break
            if index >= offset:
                found.append(task)
        return found
