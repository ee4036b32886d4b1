"""Whose limit did a load run measure? CPU use of the mock, the load generators, the machine.

A Python process runs its Python code on one core at a time (a gunicorn ``gthread`` worker, a
Locust process), so a process that uses nearly a whole core is the bottleneck of the run:
figures measured past that point are its limit, not the system under test's. And when the
machine's cores are all busy, the mock and Locust compete for them: the figures are the
machine's limit. The sampler reads each watched process and its children (psutil) and the
whole machine once a second; a label whose busiest process's median sample is at least
``SATURATED`` of a core, or a machine whose median sample is at least ``SATURATED`` of all its
cores, is reported as saturated (the median ignores start-up and the last, partial second).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

SATURATED = 0.9
"""Share of one core (or of all the machine's) above which it is taken to be the bottleneck."""
MACHINE = "machine"


@dataclass(frozen=True)
class Usage:
    """How busy one label was: its busiest process in cores (1.0: one whole core), or for the
    machine the share of all its cores."""

    label: str
    median: float
    peak: float
    samples: int

    @property
    def saturated(self) -> bool:
        return self.samples >= 2 and self.median >= SATURATED


class CpuSampler:
    """Samples the CPU time of labelled process trees and of the machine, until :meth:`stop`."""

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
        """Stop sampling; the usage of each label in the order watched, then the machine's."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        found = []
        for label in [*self._roots, MACHINE]:
            values = self._samples.get(label, [])
            if values:
                found.append(Usage(label, statistics.median(values), max(values), len(values)))
        return found

    def _run(self) -> None:
        import psutil

        previous: dict[int, tuple[float, float]] = {}  # pid -> (wall, cpu seconds)
        psutil.cpu_percent()  # starts the machine's count
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            self._samples.setdefault(MACHINE, []).append(psutil.cpu_percent() / 100)
            for label, roots in self._roots.items():
                busiest: float | None = None
                for process in _trees(psutil, roots):
                    try:
                        times = process.cpu_times()
                    except psutil.Error:
                        continue
                    used = times.user + times.system
                    last = previous.get(process.pid)
                    previous[process.pid] = (now, used)
                    if last is not None and now > last[0]:
                        share = max(0.0, used - last[1]) / (now - last[0])
                        busiest = share if busiest is None else max(busiest, share)
                if busiest is not None:
                    self._samples.setdefault(label, []).append(busiest)


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
    """A line of CPU figures, and a warning per saturated process or machine."""
    processes = [u for u in usages if u.label != MACHINE]
    if not usages:
        return []
    shown = [f"{u.label} {u.median:.0%} of a core (peak {u.peak:.0%})" for u in processes]
    shown += [
        f"{u.label} {u.median:.0%} of {os.cpu_count()} cores" for u in usages if u not in processes
    ]
    lines = [f"cpu (median of 1 s samples): {', '.join(shown)}"]
    for usage in usages:
        if not usage.saturated:
            continue
        if usage.label == MACHINE:
            whose = "every core was busy, the mock and Locust waited for one: the machine's limit"
        elif usage.label == "mock":
            whose = "the mock was the bottleneck: these figures are the mock's limit"
        else:
            whose = "the load generator was the bottleneck: add --processes"
        lines.append(f"WARNING: {usage.label} saturated ({usage.median:.0%}): {whose}")
    return lines
