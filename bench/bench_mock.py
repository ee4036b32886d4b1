"""Benchmark the mock's hot paths in-process (Flask test client, no sockets).

Prints, for each scenario, the median of several runs (requests per second) and ratios that
should stay flat as the store grows: a query or a page must not slow down with the task count.

    .venv/bin/python bench/bench_mock.py [--runs 5]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable

from limits_off import UNLIMITED_SLOTS, unlimited_account

from kling_testkit.auth import bearer, sign_token
from kling_testkit.credentials import MOCK_ACCESS_KEY, MOCK_SECRET_KEY, Credentials
from mock_server import create_app

T2V = "/v1/videos/text2video"


def rate(action: Callable[[], object], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        action()
    return count / (time.perf_counter() - start)


def one_run(store_size: int, count: int) -> dict[str, float]:
    # Limits out of the way: this measures the request path, not the 429s.
    account = unlimited_account("bench")
    app = create_app(
        {
            "clock": "manual",
            "seed": 1,
            "accounts": [account],
            "concurrency": UNLIMITED_SLOTS,
        }
    )
    client = app.test_client()
    headers = bearer(sign_token(Credentials(MOCK_ACCESS_KEY, MOCK_SECRET_KEY)))
    body = {"prompt": "a lighthouse in a storm, waves crashing, cinematic light"}
    for _ in range(store_size):
        client.post(T2V, json=body, headers=headers)
    task_id = client.post(T2V, json=body, headers=headers).json["data"]["task_id"]
    return {
        "create": rate(lambda: client.post(T2V, json=body, headers=headers), count),
        "query": rate(lambda: client.get(f"{T2V}/{task_id}", headers=headers), count),
        "list30": rate(lambda: client.get(T2V, headers=headers), count // 4),
    }


def memory_per_task(count: int) -> float:
    """Bytes of Python heap each stored task adds (tracemalloc, after a warm-up)."""
    app = create_app(
        {"clock": "manual", "accounts": [unlimited_account()], "concurrency": UNLIMITED_SLOTS}
    )
    client = app.test_client()
    headers = bearer(sign_token(Credentials(MOCK_ACCESS_KEY, MOCK_SECRET_KEY)))
    body = {"prompt": "a lighthouse in a storm, waves crashing, cinematic light"}
    for _ in range(2000):  # fill the journal and the caches first: they are bounded, not per task
        client.post(T2V, json=body, headers=headers)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(count):
        client.post(T2V, json=body, headers=headers)
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return grown / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--count", type=int, default=400)
    args = parser.parse_args()
    results: dict[int, dict[str, float]] = {}
    for size in (0, 10_000):
        runs = [one_run(size, args.count) for _ in range(args.runs)]
        results[size] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"store of {size:>6} tasks: "
            + ", ".join(f"{k} {v:7.0f} req/s" for k, v in results[size].items())
        )
    for key in results[0]:
        print(f"ratio {key} (10k tasks / empty): {results[10_000][key] / results[0][key]:.2f}")
    sizes = [memory_per_task(args.count * 5) for _ in range(3)]
    print(
        f"memory per stored task: {statistics.median(sizes):.0f} bytes of Python heap "
        f"(median of 3; min {min(sizes):.0f}, max {max(sizes):.0f})"
    )


if __name__ == "__main__":
    main()
