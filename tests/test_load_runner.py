"""``kling-testkit load`` itself: distributed mode, a user's own service, the unit budget, the
refusal of a target that is not a mock, load shapes, single-user debugging, CPU warnings."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from examples.sample_service.app import create_app
from kling_testkit.control import MockControl
from kling_testkit.credentials import Credentials
from kling_testkit.load.cpu import CpuSampler, describe
from kling_testkit.load.target import StartedMock, mock_config
from tests.conftest import serving
from tests.load_runs import LOCUSTFILES, ROOT, env, load


@pytest.fixture
def mock() -> Iterator[StartedMock]:
    """A ``kling-mock serve`` on a x60 clock with the limits out of the way (as the runner's)."""
    started = StartedMock(mock_config(None, 7, Credentials.mock_default()), time_scale=60)
    yield started
    started.stop()


def test_a_distributed_run_completes_with_a_master_and_two_workers(tmp_path: Path) -> None:
    run = load(
        tmp_path, "--scenario", "lifecycle", "-u", "4", "-r", "4", "-t", "5s", "--processes", "2"
    )
    assert run.code == 0, run
    assert "1 master and 2 workers" in run.out
    assert "2 workers connected" in run.err  # Locust's master saw both
    assert int(run.row("JOB", "text2video job")["Request Count"]) > 0  # workers' stats reached it
    assert run.number("tasks created") > 0


def test_the_sample_service_runs_with_the_mock_counters_in_its_report(
    tmp_path: Path, mock: StartedMock
) -> None:
    with serving(create_app(mock.url)) as service:
        run = load(
            tmp_path,
            "-f",
            str(ROOT / "examples" / "sample_service" / "locustfile.py"),
            "--host",
            service,
            "--mock-url",
            mock.url,
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "5s",
        )
    assert run.code == 0, run
    assert int(run.row("JOB", "video order job")["Request Count"]) > 0
    created, delivered = run.number("tasks created"), run.number("callbacks delivered")
    assert created > 0 and delivered > 0, run
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"tasks_created = {created}" in html and f"callbacks_delivered = {delivered}" in html
    assert run.row("MOCK", f"requests = {run.number('tasks created')}")  # the service's creates


def test_the_unit_budget_stops_the_creates(tmp_path: Path) -> None:
    run = load(
        tmp_path, "--scenario", "lifecycle", "-u", "4", "-r", "4", "-t", "5s", "--max-units", "3"
    )
    assert run.code == 0, run
    assert run.number("tasks created") == 3  # one unit each: the fourth was never sent
    assert "unit budget spent" in run.err


class StandIn:
    """A loopback server that is not a mock: it records what it is asked."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.seen.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"code": 1203, "message": "not found"}']


def test_the_runs_findings_are_those_read_when_its_users_stopped(
    tmp_path: Path, mock: StartedMock
) -> None:
    run = load(
        tmp_path,
        *("-f", str(LOCUSTFILES / "misbehaves_after_the_reading.py"), "--host", mock.url),
        *("-u", "1", "-r", "1", "-t", "2s", "--fail-on-audit"),
    )
    assert run.code == 0, run
    assert "\naudit: clean" in run.out and not [n for n in run.named("MOCK") if "audit" in n]
    late = MockControl(mock.url).audit()["totals"]
    assert late == {"token_misuse": 1}, late  # sent after the reading: not the run's


class WithoutAudit:
    """A mock from before the audit: ``/__mock/audit`` answers 404 as an unknown path does."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"].endswith("/__mock/audit"):
            return StandIn()(environ, start_response)
        return self.app(environ, start_response)


@pytest.mark.parametrize("kind", ["not a mock", "a mock without an audit"])
def test_a_target_without_an_audit_shows_none_and_never_fails_for_it(
    tmp_path: Path, make_app: Callable[..., Flask], kind: str
) -> None:
    stand_in = StandIn()
    app = stand_in if kind == "not a mock" else WithoutAudit(make_app())
    with serving(app) as url:
        run = load(
            tmp_path,
            *("-f", str(LOCUSTFILES / "ignores_retry_after.py"), "--host", url),
            *("-u", "1", "-r", "1", "-t", "2s", "--max-units", "1", "--max-fail-ratio", "1"),
            "--fail-on-audit",
        )
    assert run.code == 0, run
    assert run.number("requests") > 0  # (not the CSV: Locust may not write it again at the end)
    assert not re.search(r"(?m)^\s*audit|fail-on-audit", run.out), run
    if kind == "not a mock":
        assert [seen for seen in stand_in.seen if "/__mock/" in seen] == ["GET /__mock/health"]
    else:
        assert re.search(r"\n429s: \d+, Retry-After violations: \d+", run.out), run


def test_a_host_that_is_not_a_mock_is_refused_without_a_budget(tmp_path: Path) -> None:
    stand_in = StandIn()
    with serving(stand_in) as url:
        run = load(tmp_path, "--scenario", "lifecycle", "--host", url, "-t", "5s")
    assert run.code == 2, run
    assert "is not a mock" in run.err and "--max-units" in run.err
    assert stand_in.seen == ["GET /__mock/health"]  # asked, and nothing else sent
    assert not (tmp_path / "run_stats.csv").exists()


def test_a_step_shape_drives_the_user_count_and_ends_the_run(tmp_path: Path) -> None:
    files = f"{ROOT / 'load_tests' / 'lifecycle.py'},{LOCUSTFILES / 'quick_step.py'}"
    started = time.monotonic()
    run = load(tmp_path, "-f", files, "-t", "60s")
    assert run.code == 0, run
    assert time.monotonic() - started < 40  # the shape ended it, not --duration
    with (tmp_path / "run_stats_history.csv").open(newline="", encoding="utf-8") as handle:
        users = [int(r["User Count"]) for r in csv.DictReader(handle) if r["Name"] == "Aggregated"]
    assert {2, 4, 6} <= set(users), users
    assert users.index(2) < users.index(4) < users.index(6)


def test_the_readme_locustfile_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(
        r"```python\n(from locust import task\n.*?class Storyboard.*?)```", readme, re.S
    )
    assert block is not None
    (tmp_path / "storyboard.py").write_text(block.group(1), encoding="utf-8")
    run = load(tmp_path, "-f", str(tmp_path / "storyboard.py"), "-u", "2", "-r", "2", "-t", "4s")
    assert run.code == 0, run
    assert int(run.row("JOB", "scene job")["Request Count"]) > 0
    assert run.row("MOCK", f"tasks_created = {run.number('tasks created')}")


def test_the_shape_flag_hands_the_user_count_to_the_shape(tmp_path: Path) -> None:
    run = load(tmp_path, "--scenario", "lifecycle", "--shape", "step", "-u", "2", "-t", "3s")
    assert run.code == 0, run
    assert "shapes/step.py" in run.out
    with (tmp_path / "run_stats_history.csv").open(newline="", encoding="utf-8") as handle:
        users = {int(r["User Count"]) for r in csv.DictReader(handle) if r["Name"] == "Aggregated"}
    assert max(users) == 10, users  # StepShape.step_users, not -u 2


SHAPE_TICKS = """
import json
from load_tests.shapes.ramp import RampShape
from load_tests.shapes.spike import SpikeShape
from load_tests.shapes.step import StepShape

def ticks(shape, times):
    found = []
    for t in times:
        shape.get_run_time = lambda t=t: t
        found.append(shape.tick())
    return found

print(json.dumps({
    "ramp": ticks(RampShape(), [0, 30, 60, 179, 181, 239.9, 241]),
    "spike": ticks(SpikeShape(), [0, 59, 61, 89, 91, 149, 151]),
    "step": ticks(StepShape(), [0, 29, 31, 149, 151]),
}))
"""


def test_the_shapes_tick_as_their_knobs_say() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SHAPE_TICKS],
        capture_output=True,
        text=True,
        env=env(),
        timeout=60,
        check=True,
    )
    found = json.loads(done.stdout)
    assert [t and t[0] for t in found["ramp"]] == [1, 25, 50, 50, 50, 1, None]
    assert [t and t[0] for t in found["spike"]] == [5, 5, 50, 50, 5, 5, None]
    assert [t and t[0] for t in found["step"]] == [10, 10, 20, 50, None]


def test_a_scenario_runs_as_a_single_user_for_debugging(mock: StartedMock) -> None:
    debug = subprocess.Popen(
        [sys.executable, str(ROOT / "load_tests" / "lifecycle.py")],
        env={**env(), "KLING_LOAD_HOST": mock.url},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    control = MockControl(mock.url)
    try:
        deadline = time.monotonic() + 30
        while control.counters()["totals"]["tasks_created"] < 2 and time.monotonic() < deadline:
            assert debug.poll() is None, debug.stderr.read() if debug.stderr else ""
            time.sleep(0.2)  # waiting for a process, not for a job
        assert control.counters()["totals"]["tasks_created"] >= 2  # one job done, the next sent
    finally:
        debug.terminate()
        debug.wait(timeout=10)
        if debug.stderr:
            debug.stderr.close()


def test_a_process_that_uses_a_whole_core_is_reported_saturated() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    sampler = CpuSampler(interval=0.5)
    sampler.watch("busy", busy.pid)
    sampler.watch("idle", idle.pid)
    try:
        sampler.start()
        time.sleep(2.6)  # five samples of real CPU use
        usage = {u.label: u for u in sampler.stop()}
    finally:
        for proc in (busy, idle):
            proc.kill()
            proc.wait(timeout=10)
    # Under xdist on two busy cores the spinning process may get well under half a core.
    assert usage["busy"].median > usage["idle"].median and usage["idle"].median < 0.1, usage
    # A core of its own when one is free; on a machine busy with other work, the machine (the
    # busy loop may then get a third of a core: that machine is what limits a run there).
    assert usage["busy"].saturated or usage["machine"].saturated, usage
    warnings = [line for line in describe(list(usage.values())) if line.startswith("WARNING")]
    assert warnings and not [w for w in warnings if "idle" in w], warnings
    assert "busy" in warnings[0] or "machine" in warnings[0], warnings


def test_the_runner_never_imports_locust() -> None:
    probe = (
        "import sys, kling_testkit.cli, kling_testkit.load.runner, kling_testkit.load.options\n"
        "kling_testkit.cli._parser()\n"
        "print(sorted(m for m in ('locust', 'gevent', 'load_tests') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env(),
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"
