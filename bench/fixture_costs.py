"""What the pytest fixtures cost a user's suite, each figure minus an empty test.

Runs pytest in fresh processes on generated files (N copies of one test) and prints, as the
median of ``--runs``: the plugin's import time, the session start and stop of the in-process
mock, and per test: ``kling_mock`` (fresh state), a tiny one-request test, and a whole lifecycle
(submit, advance five minutes, poll, download).

    .venv/bin/python bench/fixture_costs.py [--runs 3] [--tests 200]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BODIES = {
    "empty": "def test_it(n):\n    pass\n",
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


def run_file(folder: Path, body: str, tests: int) -> float:
    """Wall seconds of one pytest process running ``tests`` parametrized copies of ``body``."""
    source = f"import pytest\n\n@pytest.mark.parametrize('n', range({tests}))\n{body}"
    (folder / "test_bench.py").write_text(source)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def import_ms() -> float:
    """The plugin's own import time, once pytest is imported (as it is when pytest loads it)."""
    code = "import time, pytest; t=time.perf_counter(); import kling_testkit.pytest_plugin; "
    code += "print((time.perf_counter()-t)*1000)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        seconds: dict[str, list[float]] = {k: [] for k in BODIES}
        single: dict[str, list[float]] = {"empty": [], "kling_mock": []}
        for _ in range(args.runs):
            for kind, body in BODIES.items():
                seconds[kind].append(run_file(folder, body, args.tests))
            for kind in single:
                single[kind].append(run_file(folder, BODIES[kind], 1))
        imports = [import_ms() for _ in range(args.runs)]
    empty = statistics.median(seconds["empty"])
    print(f"plugin import: {statistics.median(imports):.1f} ms (median of {args.runs})")
    session = statistics.median(single["kling_mock"]) - statistics.median(single["empty"])
    print(f"session start and stop of the in-process mock (one test): {session * 1000:.0f} ms")
    for kind in ("kling_mock", "tiny", "lifecycle"):
        per_test = (statistics.median(seconds[kind]) - empty) / args.tests * 1000
        runs = ", ".join(f"{s:.2f}" for s in seconds[kind])
        print(f"{kind:>10}: {per_test:6.2f} ms per test above an empty test (runs: {runs} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
