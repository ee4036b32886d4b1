"""The store interface itself, on both stores: epochs, reads without effects, eviction, leases,
counters and ids, and atomic creates under threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask

from mock_server import Backend
from mock_server.ids import task_id_of
from mock_server.redis_store import connect
from mock_server.store import ClockState, Delivery, Fresh, Store
from mock_server.stores import StoreFactory
from mock_server.tasks import Task
from tests.conftest import T2V, accepted, create

pytestmark = pytest.mark.both_stores


def _store(stores: Callable[[], StoreFactory]) -> Store:
    store = stores().root()
    store.start(
        Fresh(ClockState(1000.0, store.wall(), 0.0), {"seed": 1}, {"next": 1, "rules": []}, b"k")
    )
    return store


def _task(task_id: str, ends_in: float = 10.0, **fields: Any) -> Task:
    values: dict[str, Any] = {
        "task_id": task_id,
        "account": "a",
        "family": "text2video",
        "params": {"prompt": "x"},
        "created_at": 1000.0,
        "queued_s": 0.0,
        "run_s": ends_in,
        "result_ids": (),
        "seq": int(task_id) if task_id.isdigit() else 0,
        "base_url": "http://127.0.0.1",
        "result_ttl_s": 60.0,
        "cost": Decimal("1.5"),
        **fields,
    }
    return Task(**values)


def test_a_reset_forgets_everything_at_once(stores: Callable[[], StoreFactory]) -> None:
    store = _store(stores)
    store.take("ids", 5)
    store.record({"n": 1}, 10)
    store.advance(50)
    epoch = store.head().epoch
    fresh = Fresh(ClockState(7.0, store.wall(), 0.0), {"seed": 2}, {"next": 1, "rules": []}, b"z")
    store.reset(fresh)
    head = store.head()
    assert head.epoch > epoch and head.clock.base == 7.0 and head.url_key == b"z"
    assert store.take("ids") == 0 and store.journal(None) == ([], 0)
    assert store.config() == (1, {"seed": 2})


ONLY_SHARED = pytest.mark.parametrize("store_kind", ["redis"], indirect=True)


@ONLY_SHARED  # a memory store is one process's: a new one starts empty
def test_start_keeps_a_mock_that_is_already_there(stores: Callable[[], StoreFactory]) -> None:
    factory = stores()
    first = factory.root()
    fresh = Fresh(ClockState(5.0, first.wall(), 0.0), {}, {"next": 1, "rules": []}, b"k")
    first.start(fresh)
    first.advance(10)
    again = factory.root()
    again.start(Fresh(ClockState(99.0, again.wall(), 0.0), {}, {"next": 1, "rules": []}, b"q"))
    assert again.head().clock.base == 15.0  # the restart sees the running mock's clock


def _put(store: Store, task: Task) -> None:
    made = store.create(
        task, kind="video", slot_limit=None, packs=(_pack(),), now=1000.0, max_tasks=None
    )
    assert isinstance(made, Task)


def test_a_head_can_read_one_task_in_the_same_step(stores: Callable[[], StoreFactory]) -> None:
    store = _store(stores)
    assert store.head().peek is None
    assert store.head("1").peek == ("1", None)
    _put(store, _task("1"))
    head = store.head("1")
    assert head.peek == ("1", store.get("1")) and head.peek[1] is not None
    assert head.peek[1].task_id == "1" and head.clock == store.head().clock


@ONLY_SHARED
def test_redis_connections_recover_from_a_kill_and_a_script_flush(
    stores: Callable[[], StoreFactory], redis_url: str
) -> None:
    """A Redis restart drops every connection and forgets every script: the next operation
    reconnects and loads its script again, on each thread, and nothing stored is lost."""
    store = _store(stores)
    _put(store, _task("1"))
    admin = connect(redis_url)
    try:
        seen: list[Any] = []
        for _ in range(2):
            worker = threading.Thread(target=lambda: seen.append(store.get("1")))
            worker.start()
            worker.join()
            assert seen[-1] is not None
            admin.client_kill_filter(_type="normal", skipme=True)
            admin.script_flush()
            got = store.get("1")
            assert got is not None and got.task_id == "1"
            assert store.head("1").peek == ("1", got)
    finally:
        admin.close()


def test_reads_change_nothing(stores: Callable[[], StoreFactory]) -> None:
    store = _store(stores)
    packs = [_pack()]
    for n in range(3):
        assert isinstance(
            store.create(
                _task(str(n), 10.0 * (n + 1)),
                kind="video",
                slot_limit=None,
                packs=packs,
                now=1000.0,
                max_tasks=None,
            ),
            Task,
        )
    views = []
    for _ in range(2):  # the same reads at the same time give the same answers
        views.append(
            (
                store.pack_usage("p", 1025.0),
                [c.task_id for c in store.running("a", "video", 1025.0)],
                [t.task_id for t in store.select(0, 10)],
                store.count(),
            )
        )
        store.pack_usage("p", 5000.0)  # a read far ahead settles nothing
        store.running("a", "video", 5000.0)
    assert views[0] == views[1]
    assert views[0][0] == (Decimal("3.0"), Decimal("1.5"))  # two ended by 1025, one running
    assert views[0][1] == ["2"]


def _pack(total: str = "100") -> Any:
    from mock_server.store import PackSpec

    return PackSpec("p", "video-pack", "video", Decimal(total), 0.0, 10**12)


def test_max_tasks_forgets_the_oldest_finished_tasks(stores: Callable[[], StoreFactory]) -> None:
    store = _store(stores)
    packs = [_pack("100000")]
    stuck = _task("0", float("inf"), params={"prompt": "x", "external_task_id": "keep"})
    store.create(stuck, kind="video", slot_limit=None, packs=packs, now=1000.0, max_tasks=20)
    for n in range(1, 40):
        task = _task(str(n), 1.0, params={"prompt": "x", "external_task_id": f"e{n}"})
        store.create(task, kind="video", slot_limit=None, packs=packs, now=1000.0 + n, max_tasks=20)
    assert store.count() <= 20
    assert store.get("0") is not None  # never finished: kept
    assert store.by_external_id("a", "keep") is not None
    assert store.get("1") is None and store.by_external_id("a", "e1") is None
    assert store.get("39") is not None  # the newest is kept
    listed = store.page("a", "text2video", 0, 100)
    assert len(listed) == store.count() and listed[0].task_id == "39"
    assert [t.task_id for t in store.select(0, 100)] == [t.task_id for t in listed]


def test_a_mock_with_max_tasks_stays_bounded(make_app: Callable[..., Flask], auth: Any) -> None:
    app = make_app(max_tasks=10, durations={"text2video": {"queue_s": 1, "run_s": 1}})
    client, mock = app.test_client(), app.extensions["kling_mock"]
    for _ in range(30):
        accepted(create(client, auth))
        mock.advance(5)
    assert mock.task_count() <= 10
    newest = client.get(T2V, headers=auth).json["data"]
    assert len(newest) == mock.task_count()


def test_an_expired_lease_is_delivered_again(stores: Callable[[], StoreFactory]) -> None:
    store = _store(stores)
    delivery = Delivery(1000.0, 1, _task("1"), 0)
    store.push(delivery)
    first = store.lease(1000.0, hold_s=0.0)  # its sender "dies": the lease runs out at once
    assert first is not None and store.pending() == (0, 1, None)
    again = store.lease(1000.0, hold_s=60.0)
    assert again is not None and again.delivery == delivery
    assert store.lease(1000.0, hold_s=60.0) is None  # now held: nobody else gets it
    store.release(again)
    assert store.pending() == (0, 0, None)


def test_a_delivery_from_a_past_epoch_is_dropped(stores: Callable[[], StoreFactory]) -> None:
    store = _store(stores)
    old = store.head().epoch
    store.reset(Fresh(ClockState(0.0, store.wall(), 0.0), {}, {"next": 1, "rules": []}, b"k"))
    assert not store.push(Delivery(0.0, 1, _task("1"), 0), epoch=old)
    store.add_attempt({"task_id": "1"}, old, 10)
    assert store.pending() == (0, 0, None) and store.attempts() == []


def test_ids_never_repeat() -> None:
    ids = {task_id_of(7, n) for n in range(200_000)}
    assert len(ids) == 200_000
    assert all(len(i) == 18 and i[0] != "0" for i in ids)


def test_concurrent_creates_never_exceed_a_limit_or_a_pack(
    stores: Callable[[], StoreFactory],
) -> None:
    store = _store(stores)
    packs = [_pack("30")]  # 20 tasks of 1.5 units
    made: list[Task] = []
    lock = threading.Lock()

    def worker(base: int) -> None:
        for n in range(25):
            task = _task(str(base * 100 + n), 5.0 if n % 2 else 50.0)
            found = store.create(
                task, kind="video", slot_limit=12, packs=packs, now=1000.0, max_tasks=None
            )
            if isinstance(found, Task):
                with lock:
                    made.append(found)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 12 and store.count() == 12
    assert sum(c.slots for c in store.running("a", "video", 1000.0)) == 12
    assert store.pack_usage("p", 1000.0) == (Decimal(0), Decimal("18.0"))


@ONLY_SHARED  # a memory store belongs to one backend
def test_the_backend_reads_only_the_store(make_app: Callable[..., Flask], auth: Any) -> None:
    """Two backends on one store are one mock: what one does, the other sees."""
    app = make_app()
    mock: Backend = app.extensions["kling_mock"]
    twin = Backend(mock.initial_config, store=mock.store)
    task_id = accepted(create(app.test_client(), auth))
    twin.advance(1000)
    twin.add_rules([{"action": {"type": "error", "code": 5000}, "times": 1}])
    assert mock.now() == twin.now() and mock.find_task(task_id) == twin.find_task(task_id)
    assert app.test_client().get(f"{T2V}/{task_id}", headers=auth).status_code == 500
    assert [r.fired for r in twin.rules_snapshot()] == [1]
    twin.callbacks.stop()


def test_a_session_is_written_only_over_the_version_it_was_read_at(
    stores: Callable[[], StoreFactory],
) -> None:
    store = _store(stores)
    assert store.session("s1") is None
    assert store.put_session("a", "s1", {"version": 1, "marks": []}, 0, 2)
    assert not store.put_session("a", "s1", {"version": 1, "marks": ["lost"]}, 0, 2)  # not new
    read = store.session("s1")
    assert read == {"version": 1, "marks": []}
    assert store.put_session("a", "s1", {"version": 2, "marks": ["first"]}, 1, 2)
    # A second writer that read version 1 too finds it gone and must read again.
    assert not store.put_session("a", "s1", {"version": 2, "marks": ["second"]}, 1, 2)
    assert store.session("s1") == {"version": 2, "marks": ["first"]}
    # An account keeps its newest sessions; another account's are not counted with them.
    assert store.put_session("b", "t1", {"version": 1}, 0, 2)
    assert store.put_session("a", "s2", {"version": 1}, 0, 2)
    assert store.put_session("a", "s3", {"version": 1}, 0, 2)
    assert store.session("s1") is None and store.session("s2") is not None
    assert store.session("t1") is not None
