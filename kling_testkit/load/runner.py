"""``kling-testkit load``: run a Locust scenario headless, against a mock it starts or a host.

Locust runs in processes of its own (``python -m locust``; it patches the standard library with
gevent on import, so it is never imported here): one process, or with ``--processes K`` a master
and K workers on this machine. The runner reads Locust's final stats and the mock's counters,
prints a summary, and exits non-zero when a threshold is broken.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kling_testkit.audit import changes as audit_changes
from kling_testkit.credentials import Credentials
from kling_testkit.load import cpu, report
from kling_testkit.load.target import (
    COUNTERS,
    StartedMock,
    counter_changes,
    is_mock,
    mock_config,
    read_audit,
    read_counters,
)

MOCK_URL_VAR = "KLING_MOCK_URL"  # load_tests.counters reads it
AUDIT_FILE_VAR = "KLING_LOAD_AUDIT_FILE"  # load_tests.counters writes the run's findings there
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


class Refused(Exception):
    """The run cannot start as asked; the message says why and what to do."""


@dataclass
class Target:
    """Where the users send their requests, and the mock whose counters the run reads."""

    host: str
    mock_url: str | None
    line: str


def _locustfiles(args: argparse.Namespace) -> list[Path]:
    named = args.locustfile.split(",") if args.locustfile else [scenario_file(args.scenario)]
    files = [Path(f) for f in named] + ([scenario_file(args.shape, "shapes")] if args.shape else [])
    for path in files:
        if not path.is_file():
            raise Refused(f"no locustfile {path}")
    if importlib.util.find_spec("locust") is None:
        raise Refused("Locust is not installed: pip install 'kling-testkit[load]'")
    return files


def _target(args: argparse.Namespace, stack: ExitStack, sampler: cpu.CpuSampler | None) -> Target:
    """Start the run's mock (no --host), or check that the host or --mock-url is a mock."""
    if args.host is None:
        config = mock_config(args.scenario, args.seed, Credentials.mock_default())
        mock = StartedMock({**config, **args.mock_config}, args.time_scale)
        stack.callback(mock.stop)
        if sampler:
            sampler.watch("mock", mock.pid)
        scale = f"clock x{args.time_scale:g}"
        return Target(
            mock.url, mock.url, f"target: {mock.url} (a mock started for this run, {scale})"
        )
    host = args.host.rstrip("/")
    mock_url = (args.mock_url or host).rstrip("/")
    if is_mock(mock_url):
        return Target(
            host, mock_url, f"target: {host}" + (f" (mock {mock_url})" if args.mock_url else "")
        )
    if args.max_units is None:
        raise Refused(
            f"{mock_url} is not a mock (no /__mock/health): load against the real API costs "
            "money; give a unit budget with --max-units N to run anyway (or --mock-url URL, the "
            "mock your service calls)"
        )
    return Target(host, None, f"target: {host} (not a mock)")


def run(args: argparse.Namespace) -> int:
    """The ``load`` subcommand; its exit code."""
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="kling-load-") as tmp:
        sampler = cpu.CpuSampler() if cpu.CpuSampler.available() else None
        try:
            files = _locustfiles(args)
            target = _target(args, stack, sampler)
        except Refused as refusal:
            print(f"kling-testkit load: {refusal}", file=sys.stderr)
            return 2
        env = dict(os.environ)
        setup = [target.line]
        if target.mock_url:
            env[MOCK_URL_VAR] = target.mock_url
        if args.max_units is not None:
            env[MAX_UNITS_VAR] = f"{args.max_units / max(1, args.processes):f}"
            setup.append(f"unit budget: {args.max_units:g} (kept by load_tests' KlingUser)")
        processes = f"1 master and {args.processes} workers" if args.processes else "1 process"
        shown = ", ".join(map(str, files))
        setup.append(f"locustfile: {shown}")
        setup.append(
            f"{args.users} users at {args.spawn_rate:g}/s for {args.duration:g} s; {processes}"
        )
        before = read_counters(target.mock_url) if target.mock_url else None
        judged = read_audit(target.mock_url) if target.mock_url else None
        env[AUDIT_FILE_VAR] = str(Path(tmp) / "audit.json")
        main, workers = locust_commands(args, ",".join(map(str, files)), target.host, Path(tmp))
        procs = [
            subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
            for command in [main, *workers]
        ]
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
        # The locustfile's own reading, taken when its users stopped, when it made one: a later
        # one would count the callbacks the mock retried after the receivers had gone.
        counters = report.mock_counters(entries) or None
        if target.mock_url and before is not None and set(COUNTERS) - set(counters or {}):
            counters = counter_changes(before, read_counters(target.mock_url))
        results = report.Results.from_entries(entries, counters)
        results.exceptions = _exceptions(args.csv)
        if target.mock_url and judged is not None:
            results.audit = _run_audit(target.mock_url, judged, Path(tmp) / "audit.json")
        summary = report.Summary(args.scenario or args.locustfile, setup)
        summary.reports += [f"{args.csv}_stats.csv", args.html]
        summary.notes += cpu.describe(usages) if sampler else ["cpu: not measured (no psutil)"]
        if args.scenario == "burst" and args.processes > 1:
            summary.notes.append(
                "note: processes do not share Retry-After gates; requests of one account from "
                "several processes can arrive early and count as violations"
            )
        failed = report.broken(results, _thresholds(args))
        print(report.render(summary, results, failed, args.audit_allow), flush=True)
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


def _run_audit(mock_url: str, judged: dict[str, Any], written: Path) -> dict[str, Any] | None:
    """The findings of the run: the locustfile's, read when its users stopped, when it wrote
    them (``report_mock_counters``; a later reading counts the callbacks the mock retried to
    receivers that had gone), else what the mock's audit gained since ``judged``."""
    if written.exists():
        found: dict[str, Any] = json.loads(written.read_text(encoding="utf-8"))
        return found
    after = read_audit(mock_url)
    return None if after is None else audit_changes(judged, after)


def _thresholds(args: argparse.Namespace) -> report.Thresholds:
    return report.Thresholds(
        args.max_fail_ratio,
        args.max_p95,
        args.max_job_p95,
        args.fail_on_audit,
        tuple(args.audit_allow),
    )
