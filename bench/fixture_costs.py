"""What the pytest fixtures cost a user's suite, each figure minus an empty test.

Runs pytest in fresh processes on generated files (N copies of one test) and prints, as the
median of ``--runs``: the plugin's import time, the session start and stop of the in-process
mock, and per test: ``kling_mock`` (fresh state), a tiny one-request test, and a whole lifecycle
(submit, advance five minutes, poll, download to ``tmp_path``; measured above an empty test that
takes ``tmp_path`` too, so that pytest's own fixture is not counted as ours).

Each per-test figure is given twice: from the whole process's wall time (what a suite of N such
tests pays, the one-off costs spread over them: the mock's start and stop, the imports it needs,
and process start-up noise, which on a shared machine swings a run by seconds), and from inside
the process (the test loop without the first setup and the last teardown, where the mock starts
and stops), with the CPU time that loop took (every thread: the test's and the server's). The
per-test targets of issue 10 are read from the loop column; session start and stop are their
own figure. Session start and stop are the
first test's setup and the last test's teardown, timed from inside the process.

    .venv/bin/python bench/fixture_costs.py [--runs 3] [--tests 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

BODIES = {
    "empty": "def test_it(n):\n    pass\n",
    # The lifecycle test saves its download under tmp_path, pytest's own fixture (about 1 ms a
    # test here): its baseline is an empty test that takes tmp_path too.
    "empty_tmp_path": "def test_it(n, tmp_path):\n    pass\n",
    "kling_mock": "def test_it(n, kling_mock):\n    pass\n",
    "tiny": "def test_it(n, kling_client):\n    kling_client.list_tasks('text2video')\n",
    "lifecycle": textwrap.dedent(
        """
        def test_it(n, kling_mock, kling_client, tmp_path):
            task = kling_client.text2video("a paper boat")
            kling_mock.clock.advance(300)
            done = kling_client.wait("text2video", task)
            kling_client.download(done["task_result"]["videos"][0], tmp_path / "v.mp4")
        """
    ),
}

# Loaded by every run, the empty one included: times the test loop, the first setup and the
# last teardown from inside the process and writes them to $BENCH_TIMES.
TIMING_CONFTEST = textwrap.dedent(
    """
    import json, os, time
    import pytest

    _times = {}

    def _stamp(name):
        _times[name] = (time.perf_counter(), time.process_time())

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(session):
        _stamp("loop_start")
        try:
            return (yield)
        finally:
            _stamp("loop_end")

    def pytest_runtest_logreport(report):
        if report.when == "setup" and "first_setup" not in _times:
            _stamp("first_setup")  # the first setup (session fixtures included) just ended

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(item, nextitem):
        if nextitem is None:
            _stamp("last_teardown")  # the last teardown (session fixtures included) begins

    def pytest_sessionfinish(session):
        with open(os.environ["BENCH_TIMES"], "w") as out:
            json.dump(_times, out)
    """
)


@dataclass
class Run:
    wall: float  # seconds, the whole pytest process
    loop: float  # seconds, the test loop without the first setup and the last teardown
    setup: float  # seconds, the first test's setup (session fixtures start here)
    teardown: float  # seconds, the last test's teardown (session fixtures stop here)
    cpu: float  # CPU seconds of the whole test loop, every thread (less shaken by other load)


def run_file(folder: Path, body: str, tests: int) -> Run:
    """One pytest process running ``tests`` parametrized copies of ``body``."""
    source = f"import pytest\n\n@pytest.mark.parametrize('n', range({tests}))\n{body}"
    (folder / "test_bench.py").write_text(source)
    (folder / "conftest.py").write_text(TIMING_CONFTEST)
    times = folder / "times.json"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=folder,
        check=True,
        capture_output=True,
        env={**os.environ, "BENCH_TIMES": str(times)},
    )
    wall = time.perf_counter() - started
    found = json.loads(times.read_text())
    start, first, last, end = (
        found[k] for k in ("loop_start", "first_setup", "last_teardown", "loop_end")
    )
    return Run(wall, last[0] - first[0], first[0] - start[0], end[0] - last[0], last[1] - first[1])


def import_ms() -> float:
    """The plugin's own import time, once pytest is imported (as it is when pytest loads it)."""
    code = "import time, pytest; t=time.perf_counter(); import kling_testkit.pytest_plugin; "
    code += "print((time.perf_counter()-t)*1000)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def median(runs: list[Run], field: str) -> float:
    return statistics.median(getattr(r, field) for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        many: dict[str, list[Run]] = {k: [] for k in BODIES}
        single: dict[str, list[Run]] = {"empty": [], "kling_mock": []}
        for _ in range(args.runs):
            for kind, body in BODIES.items():
                many[kind].append(run_file(folder, body, args.tests))
            for kind in single:
                single[kind].append(run_file(folder, BODIES[kind], 1))
        imports = [import_ms() for _ in range(args.runs)]
    print(f"plugin import: {statistics.median(imports):.1f} ms (median of {args.runs})")
    one, empty = single["kling_mock"], single["empty"]
    session = median(one, "wall") - median(empty, "wall")
    start = median(one, "setup") - median(empty, "setup")
    stop = median(one, "teardown") - median(empty, "teardown")
    print(
        f"session start and stop of the in-process mock (one test): {session * 1000:.0f} ms "
        f"(inside pytest: start {start * 1000:.1f} ms, stop {stop * 1000:.1f} ms)"
    )
    tmp_cost = (median(many["empty_tmp_path"], "loop") - median(many["empty"], "loop")) / args.tests
    print(f"pytest's tmp_path alone: {tmp_cost * 1000:.2f} ms a test (inside the test loop)")
    print("per test above an empty test (lifecycle: one with tmp_path): whole process | inside")
    print("the test loop | its CPU time")
    baselines = {"lifecycle": "empty_tmp_path"}
    for kind in ("kling_mock", "tiny", "lifecycle"):
        runs, base = many[kind], many[baselines.get(kind, "empty")]
        wall, loop, cpu = (
            (median(runs, field) - median(base, field)) / args.tests * 1000
            for field in ("wall", "loop", "cpu")
        )
        shown = ", ".join(f"{r.wall:.2f}" for r in runs)
        print(
            f"{kind:>10}: {wall:6.2f} ms | {loop:6.2f} ms | {cpu:6.2f} ms (process runs: {shown} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
