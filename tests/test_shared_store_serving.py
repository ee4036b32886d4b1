"""``kling-mock serve --store redis://... --workers 2``: one mock served by two processes.

Real sockets, a real Redis server, real gunicorn workers. Each test drives the mock at full
speed from several threads, then checks the invariants: every accepted task is listed and
queryable, units balance, no slot is left held, a limit is never exceeded across processes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from kling_testkit.auth import bearer, sign_token
from tests.conftest import CREDS, T2V, Receiver
from tests.test_cli import Server, serve
from tests.test_contract_runner import run_contract

pytest.importorskip("gunicorn", reason="gunicorn runs on POSIX only")

__all__ = ["serve"]  # fixture

HEADERS = bearer(sign_token(CREDS))
UNLIMITED = {"video": 100_000, "image": 100_000}
BIG_PACKS = [
    {"name": "video", "kind": "video", "total": 1_000_000},
    {"name": "image", "kind": "image", "total": 1_000_000},
]


@pytest.fixture
def store(redis_url: str) -> Iterator[str]:
    """The test Redis, emptied before and after (the served mock keeps its keys there)."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield redis_url
    client.flushdb()
    client.close()


def _config(tmp_path: Path, **extra: Any) -> str:
    data = {
        "clock": "manual",
        "seed": 3,
        "concurrency": UNLIMITED,
        "accounts": [
            {
                "name": "default",
                "access_key": CREDS.access_key,
                "secret_key": CREDS.secret_key,
                "packs": BIG_PACKS,
            }
        ],
        **extra,
    }
    path = tmp_path / "mock.json"
    path.write_text(json.dumps(data))
    return str(path)


def _start(serve: Callable[..., Server], store: str, config: str, workers: int = 2) -> Server:
    return serve(
        "--port", "0", "--quiet", "--store", store, "--workers", str(workers), "--config", config
    )  # fmt: skip


def _workers(server: Server, expected: int = 2) -> list[int]:
    """The worker pids, once ``expected`` of them run (the port is announced before the fork)."""
    pid = server.proc.pid
    deadline = time.monotonic() + 30
    while True:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            found = [int(child) for child in listing.read().split()]
        if len(found) == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.05)  # waiting for processes to start, not for a job


def _creates(url: str, count: int, threads: int = 8, **body: Any) -> list[str]:
    """POST ``count`` creates from ``threads`` threads; the ids of those answered 200."""

    def worker(share: int) -> list[str]:
        accepted = []
        with requests.Session() as http:
            for i in range(share):
                try:
                    answer = http.post(
                        f"{url}{T2V}",
                        json={"prompt": f"a kite number {i}", **body},
                        headers=HEADERS,
                        timeout=30,
                    )
                except requests.ConnectionError:
                    continue  # a worker died under this request: not accepted
                if answer.status_code == 200:
                    accepted.append(answer.json()["data"]["task_id"])
        return accepted

    shares = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        return [task_id for found in pool.map(worker, shares) for task_id in found]


def _data(response: requests.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _balance(url: str) -> tuple[Decimal, Decimal, dict[str, int]]:
    """Units spent by the tasks that succeeded, units the packs say are gone, slots held."""
    listed = _data(requests.get(f"{url}/__mock/tasks?limit=10000", timeout=30))
    spent = sum(
        (
            Decimal(t["task"]["final_unit_deduction"])
            for t in listed
            if t["task"]["task_status"] == "succeed"
        ),
        Decimal(0),
    )
    (account,) = _data(requests.get(f"{url}/__mock/accounts", timeout=30))
    left = {p["kind"]: Decimal(str(p["remaining_quantity"])) for p in account["packs"]}
    return spent, Decimal(1_000_000) - left["video"], account["slots_in_use"]


def check_invariants(url: str, accepted: list[str]) -> None:
    """Every accepted task is listed once and queryable; once tasks have ended, the units gone
    are exactly the successful tasks' costs (read before and after a write settles them) and
    no slot is left held."""
    listed = _data(requests.get(f"{url}/__mock/tasks?limit=10000", timeout=30))
    ids = [t["task"]["task_id"] for t in listed]
    assert len(ids) == len(set(ids)), "a task is listed twice"
    assert set(accepted) <= set(ids), f"{len(set(accepted) - set(ids))} accepted tasks are lost"
    with requests.Session() as http:
        for task_id in accepted:
            assert _data(http.get(f"{url}{T2V}/{task_id}", headers=HEADERS, timeout=30))
    advance = {"seconds": 86400}
    _data(requests.post(f"{url}/__mock/clock/advance", json=advance, timeout=30))
    spent, gone, slots = _balance(url)  # read before any write settles the ended tasks
    assert spent == gone and set(slots.values()) == {0}
    assert len(_creates(url, 1, threads=1)) == 1  # a write: it settles what ended
    spent, gone, slots = _balance(url)
    assert spent == gone and slots == {"audio": 0, "image": 0, "try_on": 0, "video": 1}
    _data(requests.post(f"{url}/__mock/clock/advance", json=advance, timeout=30))
    spent, gone, slots = _balance(url)
    assert spent == gone > 0 and set(slots.values()) == {0}


@pytest.mark.parametrize("workers", [1, 2], ids=["memory-1-worker", "redis-2-workers"])
def test_nothing_is_lost_at_full_speed(
    serve: Callable[..., Server], store: str, tmp_path: Path, workers: int
) -> None:
    server = _start(serve, store if workers > 1 else "memory", _config(tmp_path), workers)
    assert len(_workers(server, workers)) == workers
    accepted = _creates(server.url, 1200)
    assert len(accepted) == 1200 and len(set(accepted)) == 1200  # ids never repeat
    check_invariants(server.url, accepted)


def test_a_limit_holds_across_processes(
    serve: Callable[..., Server], store: str, tmp_path: Path
) -> None:
    server = _start(serve, store, _config(tmp_path, concurrency={"video": 37, "image": 5}))
    accepted = _creates(server.url, 300)
    assert len(accepted) == 37  # the clock stands still: no slot frees, none is handed twice
    (account,) = _data(requests.get(f"{server.url}/__mock/accounts", timeout=30))
    assert account["slots_in_use"]["video"] == 37
    check_invariants(server.url, accepted)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc (Linux)")
def test_killing_a_worker_mid_run_loses_no_accepted_task(
    serve: Callable[..., Server], store: str, tmp_path: Path
) -> None:
    server = _start(serve, store, _config(tmp_path))
    first = _creates(server.url, 200)
    victim = _workers(server)[0]
    found: list[str] = []
    load = threading.Thread(target=lambda: found.extend(_creates(server.url, 1200)))
    load.start()
    os.kill(victim, signal.SIGKILL)  # mid-run: the load is under way
    load.join(timeout=120)
    assert not load.is_alive()
    assert server.proc.poll() is None, "the server must survive a worker's death"
    # gunicorn replaced the worker; the replacement serves the same state.
    assert victim not in _workers(server)
    check_invariants(server.url, first + found)
    assert len(first) == 200 and len(found) > 600  # most of the load went through


def test_a_restarted_mock_on_the_same_redis_sees_every_task(
    serve: Callable[..., Server], store: str, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    before = _start(serve, store, config)
    accepted = _creates(before.url, 300)
    clock = _data(requests.get(f"{before.url}/__mock/clock", timeout=30))["now"]
    before.stop()
    after = _start(serve, store, config)
    assert _data(requests.get(f"{after.url}/__mock/clock", timeout=30))["now"] == clock
    check_invariants(after.url, accepted)


def test_each_callback_is_sent_once_across_workers(
    serve: Callable[..., Server], store: str, tmp_path: Path, receiver: Receiver
) -> None:
    server = _start(serve, store, _config(tmp_path))
    accepted = _creates(server.url, 40, threads=4, callback_url=f"{receiver.url}/hook")
    assert len(accepted) == 40
    _data(requests.post(f"{server.url}/__mock/clock/advance", json={"seconds": 3600}, timeout=30))
    # Every task sends three callbacks (submitted, processing, succeed); each exactly once.
    assert receiver.wait_for(120, timeout=60), len(receiver.calls)
    idle = _data(requests.post(f"{server.url}/__mock/callbacks/wait", json={"timeout": 30}))
    assert idle["idle"] and idle["pending"] == 0
    seen = [json.loads(call["body"])["task_id"] for call in receiver.calls]
    assert len(seen) == 120
    assert {task_id: seen.count(task_id) for task_id in set(seen)} == dict.fromkeys(accepted, 3)


def test_the_contract_suite_passes_against_the_two_process_mock(
    serve: Callable[..., Server], store: str, tmp_path: Path
) -> None:
    server = serve("--port", "0", "--quiet", "--store", store, "--workers", "2", "--manual-clock")
    status, output, report = run_contract(server.url, tmp=tmp_path)
    assert status == 0, output
    assert 'failures="0"' in report.read_text() and 'errors="0"' in report.read_text()


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc (Linux)")
def test_workers_share_connections_opened_at_once(
    serve: Callable[..., Server], store: str, tmp_path: Path
) -> None:
    """32 keep-alive connections opened together (as wrk or Locust's users do) end up split
    evenly over two workers, not mostly on whichever woke first."""
    psutil = pytest.importorskip("psutil")
    server = _start(serve, store, _config(tmp_path))
    workers = _workers(server)
    port = int(server.url.rsplit(":", 1)[1])
    clients = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(32)]
    try:
        request = f"GET /__mock/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        for client in clients:
            client.sendall(request)
        for client in clients:  # each connection was accepted and answered, and stays open
            assert client.recv(65536).startswith(b"HTTP/1.1 200"), "no answer"
        held = [
            sum(
                1
                for c in psutil.Process(pid).net_connections("tcp")
                if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
            )
            for pid in workers
        ]
    finally:
        for client in clients:
            client.close()
    assert sum(held) == 32 and max(held) - min(held) <= 2, held
