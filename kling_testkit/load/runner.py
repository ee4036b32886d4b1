"""``kling-testkit load``: run a Locust scenario headless, against a mock it starts or a host.

Locust runs in processes of its own (``python -m locust``; it patches the standard library with
gevent on import, so it is never imported here): one process, or with ``--processes K`` a master
and K workers on this machine. The runner reads Locust's final stats and the mock's counters,
prints a summary, and exits non-zero when a threshold is broken.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, cast

from kling_testkit.credentials import Credentials
from kling_testkit.load import cpu, report
from kling_testkit.load.target import (
    COUNTERS,
    StartedMock,
    counter_changes,
    is_mock,
    mock_config,
    read_counters,
)

SCENARIOS = ("lifecycle", "burst", "callbacks", "mixed")
SHAPES = ("ramp", "spike", "step")
MOCK_URL_VAR = "KLING_MOCK_URL"  # load_tests.counters reads it
MAX_UNITS_VAR = "KLING_LOAD_MAX_UNITS"  # load_tests.base reads it
SHUTDOWN_GRACE_S = 60.0  # beyond --duration: start-up, waiting for workers, writing reports


def scenario_file(name: str, folder: str = "") -> Path:
    """A scenario's (or shape's) file in the installed ``load_tests``, without importing it."""
    spec = importlib.util.find_spec("load_tests")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("kling-testkit load: the load_tests package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / folder / f"{name}.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def locust_commands(
    args: argparse.Namespace, locustfiles: str, host: str, folder: Path
) -> tuple[list[str], list[list[str]]]:
    """The Locust command that reports (local runner or master) and the workers' commands."""
    base = [sys.executable, "-m", "locust", "-f", locustfiles]
    main = [*base, "--headless", "-u", str(args.users), "-r", f"{args.spawn_rate:g}"]
    main += ["-t", f"{args.duration:g}s", "--host", host, "--only-summary"]
    main += ["--csv", args.csv, "--html", args.html, "--json-file", str(folder / "stats")]
    main += ["--exit-code-on-error", "0"]
    workers: list[list[str]] = []
    if args.processes:
        port = str(free_port())
        main += ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", port]
        main += ["--expect-workers", str(args.processes), "--expect-workers-max-wait", "30"]
        worker = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", port]
        workers = [worker] * args.processes
    return main + list(args.locust_args), workers


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def _exceptions(csv_prefix: str) -> int:
    """Exceptions raised in the locustfile's code (rows of Locust's exceptions CSV)."""
    path = Path(f"{csv_prefix}_exceptions.csv")
    if not path.exists():
        return 0
    import csv

    with path.open(newline="", encoding="utf-8") as handle:
        return sum(int(row.get("Count") or 0) for row in csv.DictReader(handle))


def run(args: argparse.Namespace) -> int:
    """The ``load`` subcommand; its exit code."""
    locustfile = Path(args.locustfile) if args.locustfile else scenario_file(args.scenario)
    if not locustfile.exists():
        print(f"kling-testkit load: no locustfile {locustfile}", file=sys.stderr)
        return 2
    files = [str(locustfile)] + ([str(scenario_file(args.shape, "shapes"))] if args.shape else [])
    env = dict(os.environ)
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="kling-load-") as tmp:
        sampler = cpu.CpuSampler() if cpu.CpuSampler.available() else None
        setup: list[str] = []
        if args.host is None:
            credentials = Credentials.mock_default()
            config = mock_config(args.scenario, args.seed, credentials)
            config.update(args.mock_config)
            mock = StartedMock(config, args.time_scale)
            stack.callback(mock.stop)
            host = mock_url = mock.url
            if sampler:
                sampler.watch("mock", mock.pid)
            scale = f"clock x{args.time_scale:g}"
            setup.append(f"target: {host} (a mock started for this run, {scale})")
        else:
            host = args.host.rstrip("/")
            mock_url = (args.mock_url or host).rstrip("/")
            if not is_mock(mock_url):
                if args.max_units is None:
                    print(
                        f"kling-testkit load: {mock_url} is not a mock (no /__mock/health): "
                        "load against the real API costs money; give a unit budget with "
                        "--max-units N to run anyway (or --mock-url for the mock your service "
                        "calls)",
                        file=sys.stderr,
                    )
                    return 2
                mock_url = None
            setup.append(f"target: {host}" + (f" (mock {mock_url})" if mock_url else ""))
        if mock_url:
            env[MOCK_URL_VAR] = mock_url
        if args.max_units is not None:
            env[MAX_UNITS_VAR] = f"{args.max_units / max(1, args.processes):f}"
            setup.append(f"unit budget: {args.max_units:g} (enforced by load_tests.KlingUser)")
        processes = f"1 master and {args.processes} workers" if args.processes else "1 process"
        setup.append(
            f"locustfile: {', '.join(files)}; {args.users} users at {args.spawn_rate:g}/s "
            f"for {args.duration:g} s; {processes}"
        )
        before = read_counters(mock_url) if mock_url else None
        main, workers = locust_commands(args, ",".join(files), host, Path(tmp))
        procs = [subprocess.Popen(main, env=env, stdin=subprocess.DEVNULL)]
        procs += [subprocess.Popen(w, env=env, stdin=subprocess.DEVNULL) for w in workers]
        for proc in procs:
            stack.callback(_stop, proc)
        if sampler:
            sampler.watch("locust master" if workers else "locust", procs[0].pid)
            for number, proc in enumerate(procs[1:], 1):
                sampler.watch(f"locust worker {number}", proc.pid)
            sampler.start()
        code = _wait(procs, args.duration + SHUTDOWN_GRACE_S)
        usages = sampler.stop() if sampler else []
        stats = Path(tmp) / "stats.json"
        if code is None or not stats.exists():
            said = "did not stop in time" if code is None else f"exited {code} without stats"
            print(f"kling-testkit load: Locust {said} (see above)", file=sys.stderr)
            return 2
        entries = report.read_entries(stats)
        # The locustfile's own reading, taken when its users stopped, if it made one (a later
        # one would count callbacks the mock retried after the receivers were gone).
        counters = report.mock_counters(entries) or None
        if before is not None and (counters is None or set(COUNTERS) - set(counters)):
            counters = counter_changes(before, read_counters(cast(str, mock_url)))
        results = report.Results.from_entries(entries, counters)
        results.exceptions = _exceptions(args.csv)
        summary = report.Summary(
            args.scenario or str(locustfile), setup, reports=[f"{args.csv}_stats.csv", args.html]
        )
        summary.notes += cpu.describe(usages) if sampler else ["cpu: not measured (no psutil)"]
        if args.scenario == "burst" and args.processes > 1:
            summary.notes.append(
                "note: processes do not share Retry-After gates; requests of one account from "
                "several processes can arrive early and count as violations"
            )
        failed = report.broken(results, _thresholds(args))
        print(report.render(summary, results, failed), flush=True)
        return 1 if failed else 0


def _wait(procs: list[subprocess.Popen[bytes]], timeout: float) -> int | None:
    """Wait for the reporting process, then its workers; its exit code (None: timed out)."""
    deadline = time.monotonic() + timeout
    try:
        code = procs[0].wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    for worker in procs[1:]:
        try:
            worker.wait(timeout=max(1.0, min(15.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            _stop(worker)
    return code


def _thresholds(args: argparse.Namespace) -> report.Thresholds:
    return report.Thresholds(args.max_fail_ratio, args.max_p95, args.max_job_p95)


def duration(text: str) -> float:
    """``30s``, ``2m``, ``1h``, ``1m30s`` or plain seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    total, number = 0.0, ""
    for char in text.strip():
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number:
            total, number = total + float(number) * units[char], ""
        else:
            raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30s, 2m, 1m30s)")
    total += float(number) if number else 0.0
    if total <= 0:
        raise argparse.ArgumentTypeError(f"a duration must be positive; got {text!r}")
    return total


def _json_file(text: str) -> dict[str, Any]:
    import json

    try:
        found = json.loads(Path(text).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {error}") from error
    if not isinstance(found, dict):
        raise argparse.ArgumentTypeError(f"{text} must hold a JSON object")
    return found


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive number; got {text}")
        return value

    return parse


def _at_least_zero(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0; got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``load`` subcommand's options."""
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--scenario", choices=SCENARIOS, help="a scenario of load_tests")
    what.add_argument("-f", "--locustfile", help="your own locustfile")
    parser.add_argument("-u", "--users", type=_positive(int), default=10, help="peak users")
    parser.add_argument(
        "-r", "--spawn-rate", type=_positive(float), default=5.0, help="users started a second"
    )
    parser.add_argument(
        "-t", "--duration", type=duration, default=30.0, help="run time: 30s, 2m ... (30s)"
    )
    parser.add_argument("--host", help="target (default: a mock started for the run)")
    parser.add_argument(
        "--mock-url", help="the mock your service calls, when --host is your service"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        metavar="K",
        help="Locust's distributed mode: a master and K workers on this machine",
    )
    parser.add_argument("--csv", default="kling-load", metavar="PREFIX", help="CSV reports")
    parser.add_argument("--html", default="kling-load.html", metavar="FILE", help="HTML report")
    parser.add_argument(
        "--max-fail-ratio",
        type=_at_least_zero,
        default=0.0,
        metavar="R",
        help="failed requests / requests allowed (default 0: any failure fails the run)",
    )
    parser.add_argument("--max-p95", type=_at_least_zero, metavar="MS", help="request p95")
    parser.add_argument(
        "--max-job-p95", type=_at_least_zero, metavar="SECONDS", help="job completion p95"
    )
    parser.add_argument(
        "--max-units",
        type=_at_least_zero,
        metavar="N",
        help="unit budget; needed for a host that is not a mock",
    )
    parser.add_argument(
        "--time-scale", type=_positive(float), default=60.0, help="clock of the runner's mock"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the runner's mock")
    parser.add_argument("--shape", choices=SHAPES, help="a load shape of load_tests/shapes")
    parser.add_argument(
        "--mock-config",
        type=_json_file,
        default={},
        metavar="FILE",
        help="JSON fields laid over the runner's mock config",
    )
    parser.add_argument("locust_args", nargs="*", help="after --: more Locust options")
