"""Soak a real ``kling-mock serve`` with mixed requests and watch its memory (RSS).

Sends ``--requests`` requests over loopback (keep-alive, a few client threads): creates, queries
by id, lists, and requests carrying a distinct ``X-Mock-Scenario`` value each (the once-scenario
gates a client can grow). Prints the server's RSS, its task count and its gate bound at the
start and at each checkpoint. With ``--no-creates`` the tasks stay fixed, so any growth between
checkpoints is memory that is not bounded by the tasks stored.

    .venv/bin/python bench/soak.py --requests 200000 [--no-creates]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from limits_off import UNLIMITED_SLOTS, unlimited_account

from kling_testkit.credentials import MOCK_API_KEY

T2V = "/v1/videos/text2video"
ROOT = Path(__file__).resolve().parent.parent
SERVE = [sys.executable, "-m", "mock_server.cli", "serve", "--manual-clock", "--quiet"]
SERVE += ["--port", "0"]


def rss_mib(pid: int) -> float:
    """RSS of ``pid`` and its children: on gunicorn the mock's state is in the worker."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sum(_own_rss_mib(p) for p in [pid, *map(int, children)])


def _own_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def start_server(config: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [*SERVE, "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("listening on "):
            url = line.split()[-1]
            assert url.startswith("http://127.0.0.1:")  # loopback only
            return proc, url
    raise RuntimeError("the server did not start")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--checkpoints", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--no-creates", action="store_true")
    args = parser.parse_args()

    # Units and slots out of the way, so every create is stored (the tasks are what may grow).
    account = unlimited_account()
    config = {"accounts": [account], "concurrency": UNLIMITED_SLOTS}
    folder = tempfile.TemporaryDirectory()
    config_file = Path(folder.name) / "soak.json"
    config_file.write_text(json.dumps(config))
    proc, url = start_server(config_file)
    auth = {"Authorization": f"Bearer {MOCK_API_KEY}"}
    counter = itertools.count()
    lock = threading.Lock()
    errors: list[str] = []
    statuses: dict[int, int] = {}
    with requests.Session() as setup:
        setup.trust_env = False
        fixed = [
            setup.post(
                f"{url}{T2V}", json={"prompt": f"seed {i}"}, headers=auth, timeout=10
            ).json()["data"]["task_id"]
            for i in range(100)
        ]

    def one(session: requests.Session, i: int) -> int:
        kind = i % 10
        if kind == 0 and not args.no_creates:
            body = {"prompt": f"soak {i}", "external_task_id": f"soak-{i}"}
            return session.post(f"{url}{T2V}", json=body, headers=auth, timeout=30).status_code
        if kind in (0, 1):
            return session.get(f"{url}{T2V}/{fixed[i % 100]}", headers=auth, timeout=30).status_code
        if kind == 2:
            query = {"pageSize": 30, "pageNum": 1 + i % 3}
            return session.get(f"{url}{T2V}", params=query, headers=auth, timeout=30).status_code
        headers = {**auth, "X-Mock-Scenario": f"rate-limited-once:soak-{i}"}
        return session.get(f"{url}{T2V}", headers=headers, timeout=30).status_code

    def worker(stop_at: int) -> None:
        with requests.Session() as session:
            session.trust_env = False
            while True:
                with lock:
                    i = next(counter)
                if i >= stop_at:
                    return
                try:
                    status = one(session, i)
                except requests.RequestException as exc:
                    errors.append(repr(exc)[:200])
                    continue
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1

    def report(done: int, started: float) -> None:
        health = requests.get(f"{url}/__mock/health", timeout=10).json()["data"]
        elapsed = time.perf_counter() - started
        print(
            f"{done:>8} requests  RSS {rss_mib(proc.pid):7.1f} MiB  tasks {health['tasks']:>6}  "
            f"{elapsed:6.0f} s  statuses {dict(sorted(statuses.items()))}",
            flush=True,
        )

    try:
        started = time.perf_counter()
        report(0, started)
        step = args.requests // args.checkpoints
        for checkpoint in range(1, args.checkpoints + 1):
            stop_at = step * checkpoint
            threads = [
                threading.Thread(target=worker, args=(stop_at,)) for _ in range(args.threads)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            counter = itertools.count(stop_at)
            report(stop_at, started)
        print(f"transport errors: {len(errors)} {errors[:3]}")
        return 1 if errors or 500 in statuses else 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        folder.cleanup()


if __name__ == "__main__":
    raise SystemExit(main())
