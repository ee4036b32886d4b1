"""Whose limit did a load run measure? How busy the mock and the load generators were.

A Python process runs its Python code on one core at a time (a gunicorn ``gthread`` worker, a
Locust process), so a process that wants a whole core is the bottleneck of the run: figures
measured past that point are its limit, not the system under test's. What a process wants is
read, on Linux, as the time its threads spent on a core or queued for one (``schedstat``): on a
busy machine a process may be granted less than a core and still be the bottleneck. Elsewhere
it is its CPU time (psutil). The sampler reads each watched process and its children once a
second and takes, per label, the busiest process of each sample; a label whose median sample
is at least ``SATURATED`` of a core is reported as saturated (the median ignores start-up and
the last, partial second).
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEDSTAT = Path("/proc/self/schedstat").exists()

SATURATED = 0.9
"""Share of one core above which a process is taken to be the bottleneck."""


@dataclass(frozen=True)
class Usage:
    """How busy the busiest process under one label was, in cores (1.0: one whole core)."""

    label: str
    median: float
    peak: float
    samples: int

    @property
    def saturated(self) -> bool:
        return self.samples >= 2 and self.median >= SATURATED


class CpuSampler:
    """Samples the CPU time of labelled process trees on a thread, until :meth:`stop`."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._roots: dict[str, list[int]] = {}
        self._samples: dict[str, list[float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    @staticmethod
    def available() -> bool:
        try:
            import psutil  # noqa: F401
        except ImportError:
            return False
        return True

    def watch(self, label: str, pid: int) -> None:
        """Sample ``pid`` and its children under ``label`` (several pids may share one)."""
        self._roots.setdefault(label, []).append(pid)

    def start(self) -> CpuSampler:
        self._thread.start()
        return self

    def stop(self) -> list[Usage]:
        """Stop sampling; the usage of each label, in the order they were watched."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        found = []
        for label in self._roots:
            values = self._samples.get(label, [])
            if values:
                found.append(Usage(label, statistics.median(values), max(values), len(values)))
        return found

    def _run(self) -> None:
        import psutil

        previous: dict[int, tuple[float, float]] = {}  # pid -> (wall, cpu seconds)
        while True:
            now = time.monotonic()
            for label, roots in self._roots.items():
                busiest: float | None = None
                for process in _trees(psutil, roots):
                    try:
                        used = _busy_seconds(process)
                    except (OSError, ValueError, psutil.Error):
                        continue
                    last = previous.get(process.pid)
                    previous[process.pid] = (now, used)
                    if last is not None and now > last[0]:
                        share = max(0.0, used - last[1]) / (now - last[0])
                        busiest = share if busiest is None else max(busiest, share)
                if busiest is not None:
                    self._samples.setdefault(label, []).append(busiest)
            if self._stop.wait(self.interval):
                return


def _busy_seconds(process: Any) -> float:
    """Seconds the process's threads spent on a core or queued for one (else CPU time)."""
    if SCHEDSTAT:
        total = 0
        for stat in Path(f"/proc/{process.pid}/task").glob("*/schedstat"):
            on_core, queued = stat.read_text().split()[:2]
            total += int(on_core) + int(queued)
        return total / 1e9
    times = process.cpu_times()
    return float(times.user + times.system)


def _trees(psutil: Any, roots: list[int]) -> list[Any]:
    found = []
    for pid in roots:
        try:
            root = psutil.Process(pid)
            found += [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
    return found


def describe(usages: list[Usage]) -> list[str]:
    """A line of CPU figures, and a warning per saturated process."""
    if not usages:
        return []
    shown = ", ".join(f"{u.label} {u.median:.0%} (peak {u.peak:.0%})" for u in usages)
    lines = [f"cpu demand (on a core or queued for one; median of 1 s samples): {shown}"]
    for usage in usages:
        if usage.saturated:
            whose = (
                "the mock was the bottleneck: these figures are the mock's limit"
                if usage.label == "mock"
                else "the load generator was the bottleneck: add --processes"
            )
            lines.append(f"WARNING: {usage.label} saturated a core ({usage.median:.0%}): {whose}")
    return lines
