"""A Hypothesis state machine over a mock: create, poll, advance, list, download, in any order.

    from kling_testkit.stateful import KlingLifecycleMachine

    class Lifecycle(KlingLifecycleMachine):
        base_url = "http://127.0.0.1:8000"   # a running mock (its /__mock API is used)

    TestLifecycle = Lifecycle.TestCase

Invariants checked after every step: a status only moves forward and a terminal one stays, ids
are unique, the units charged equal the deductions of the succeeded tasks (nothing is charged
twice), and an expired result URL is never served. The tasks are of both designs: legacy
text-to-video and image generation, and a 2026 text-to-video model (queried through
``/tasks``), sharing one account and its packs; each design's lists hold its own tasks only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import requests
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from kling_testkit.client import KlingClient
from kling_testkit.control import MockControl
from kling_testkit.credentials import Credentials
from kling_testkit.retry import NO_RETRIES
from kling_testkit.spec.document import DESIGN_2026, families
from kling_testkit.spec.statuses import (
    RANK,
    RANK_2026,
    SUBMITTED,
    SUCCEED,
    SUCCEEDED,
    TERMINAL,
    TERMINAL_2026,
)

ORDER = {**RANK, **RANK_2026}
"""Rank of each status along the lifecycle, in either design's spelling (from the contract)."""
FAMILIES = ("text2video", "image_generation", "text-to-video/kling-2.5-turbo")
"""Two legacy families and a 2026 one (the cheapest text-to-video of that design)."""


def _new(family: str) -> bool:
    return families()[family].design == DESIGN_2026


def _status(family: str, task: dict[str, Any]) -> str:
    return str(task["status"] if _new(family) else task["task_status"])


class KlingLifecycleMachine(RuleBasedStateMachine):
    """Subclass with ``base_url`` (or override :meth:`make_target`) to run it on a mock."""

    base_url: ClassVar[str] = ""
    credentials: ClassVar[Credentials | None] = None
    tasks = Bundle("tasks")

    def __init__(self) -> None:
        super().__init__()
        self.client, self.control = self.make_target()
        self.control.reset()
        self.control.configure(concurrency={"video": 10_000, "image": 10_000})
        self.seen: dict[str, tuple[str, str]] = {}  # task_id -> (family, last status)

    def make_target(self) -> tuple[KlingClient, MockControl]:
        """The client and control handle the machine drives."""
        if not self.base_url:
            raise TypeError(f"{type(self).__name__} needs base_url or make_target()")
        credentials = self.credentials or Credentials.mock_default()
        return (
            KlingClient(self.base_url, credentials, retry=NO_RETRIES),
            MockControl(self.base_url),
        )

    @rule(target=tasks, family=st.sampled_from(FAMILIES), n=st.integers(1, 4), fail=st.booleans())
    def create(self, family: str, n: int, fail: bool) -> tuple[str, str]:
        prompt = f"a lighthouse, take {len(self.seen)}"
        body: dict[str, Any] = {"prompt": prompt}
        if _new(family):
            body = {"contents": [{"type": "prompt", "text": prompt}]}
        if family == "image_generation":
            body["n"] = n
        if fail:
            self.control.add_fault(action={"type": "outcome", "outcome": "fail"}, times=1)
        created = self.client.create_task(family, body)
        task_id = str(created["id"] if _new(family) else created["task_id"])
        assert task_id not in self.seen, f"task id {task_id} was handed out twice"
        self.seen[task_id] = (family, SUBMITTED)
        return family, task_id

    @rule(task=tasks)
    def poll(self, task: tuple[str, str]) -> None:
        family, task_id = task
        status = _status(family, self.client.get_task(family, task_id))
        before = self.seen[task_id][1]
        assert ORDER[status] >= ORDER[before], f"{task_id} went from {before} to {status}"
        if before in TERMINAL | TERMINAL_2026:
            assert status == before, f"{task_id} left terminal status {before} for {status}"
        self.seen[task_id] = (family, status)

    @rule(seconds=st.sampled_from([0.5, 5, 30, 120, 3600, 30 * 86400]))
    def advance(self, seconds: float) -> None:
        self.control.clock.advance(seconds)

    @rule(family=st.sampled_from(FAMILIES))
    def list_all(self, family: str) -> None:
        if _new(family):  # POST /tasks from the epoch (by default only the last 30 days)
            listed = [t["id"] for t in self.client.iter_tasks(limit=7, start_time=0)]
            mine = {i for i, (f, _) in self.seen.items() if _new(f)}
        else:
            listed = [t["task_id"] for t in self.client.list_tasks(family, size=500)]
            mine = {i for i, (f, _) in self.seen.items() if f == family}
        assert len(listed) == len(set(listed)), "a list repeats a task"
        assert set(listed) == mine

    @rule(task=tasks)
    def download(self, task: tuple[str, str]) -> None:
        family, task_id = task
        current = self.client.get_task(family, task_id)
        if _status(family, current) not in (SUCCEED, SUCCEEDED):
            return
        if _new(family):
            url = current["outputs"][0]["url"]
        else:
            files = current["task_result"].get("videos") or current["task_result"]["images"]
            url = files[0]["url"]
        expires = int(parse_qs(urlsplit(url).query)["expires"][0])
        now = self.control.clock.now()
        answer = requests.get(url, timeout=10)
        if now >= expires:
            assert answer.status_code == 403, f"an expired URL was served ({url})"
        else:
            assert answer.status_code == 200 and answer.content

    @invariant()
    def nothing_is_charged_twice(self) -> None:
        if not self.seen:
            return
        tasks = [t["task"] for t in self.control.tasks()]
        deducted = sum(
            (
                Decimal(t.get("final_unit_deduction", "0"))
                for t in tasks
                if t["task_status"] == SUCCEED
            ),
            Decimal(0),
        )
        packs = self.client.request(
            "GET", "/account/costs", params={"start_time": 0, "end_time": 1}
        )
        used = sum(
            (
                Decimal(str(p["total_quantity"])) - Decimal(str(p["remaining_quantity"]))
                for p in packs.get("resource_pack_subscribe_infos", [])
            ),
            Decimal(0),
        )
        assert used == deducted, f"packs show {used} units used, tasks {deducted}"
