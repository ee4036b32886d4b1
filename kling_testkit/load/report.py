"""A load run's figures: Locust's final stats (its JSON file) and the mock's counters, the
thresholds they are held to, and the summary printed at the end.

Locust's stats hold more than HTTP requests: ``JOB`` entries (job completion, ms), ``POLLS``
(polls per job, carried in the response-time field), ``CALLBACK`` (callback delivery) and
``MOCK`` (the mock's counters). Requests are every other entry. Percentiles over several entries
are taken from their merged response-time histograms, as Locust takes them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from kling_testkit.audit import offending

JOB = "JOB"
POLLS = "POLLS"
CALLBACK = "CALLBACK"
MOCK = "MOCK"
NOT_REQUESTS = frozenset({JOB, POLLS, CALLBACK, MOCK})


@dataclass(frozen=True)
class Entry:
    """One entry of Locust's stats."""

    method: str
    name: str
    count: int
    failures: int
    histogram: dict[float, int]  # response time (rounded as Locust rounds) -> how many

    @classmethod
    def from_locust(cls, raw: dict[str, Any]) -> Entry:
        times = {float(k): int(v) for k, v in (raw.get("response_times") or {}).items()}
        return cls(
            str(raw.get("method") or ""),
            str(raw["name"]),
            int(raw["num_requests"]),
            int(raw["num_failures"]),
            times,
        )


def read_entries(path: Path) -> list[Entry]:
    """The entries of a ``locust --json-file`` file."""
    return [Entry.from_locust(raw) for raw in json.loads(path.read_text(encoding="utf-8"))]


def mock_counters(entries: list[Entry]) -> dict[str, str]:
    """The counters ``load_tests.report_mock_counters`` put in the stats (``name = value``)."""
    found = {}
    for entry in entries:
        if entry.method == MOCK and " = " in entry.name and not entry.name.startswith("audit "):
            name, value = entry.name.split(" = ", 1)
            found[name] = value
    return found


def percentile(entries: list[Entry], fraction: float) -> float | None:
    """The value that ``fraction`` of the entries' samples are at or under (Locust's method)."""
    merged: dict[float, int] = {}
    for entry in entries:
        for value, count in entry.histogram.items():
            merged[value] = merged.get(value, 0) + count
    total = sum(merged.values())
    if not total:
        return None
    allowed_above = total - int(total * fraction)
    seen = 0
    for value in sorted(merged, reverse=True):
        seen += merged[value]
        if seen >= allowed_above:
            return value
    return min(merged)


def mean(entries: list[Entry]) -> float | None:
    total = sum(sum(e.histogram.values()) for e in entries)
    if not total:
        return None
    return sum(v * c for e in entries for v, c in e.histogram.items()) / total


@dataclass
class Results:
    """What the summary shows and the thresholds check."""

    requests: list[Entry]
    jobs: list[Entry]
    polls: list[Entry]
    callbacks: list[Entry]
    counters: dict[str, str] | None = None  # what the mock counted during the run
    audit: dict[str, Any] | None = None  # the mock's findings made during the run
    exceptions: int = 0  # errors raised in the locustfile's own code

    @classmethod
    def from_entries(cls, entries: list[Entry], counters: dict[str, str] | None) -> Results:
        def of(kind: str) -> list[Entry]:
            return [e for e in entries if e.method == kind]

        requests = [e for e in entries if e.method not in NOT_REQUESTS]
        return cls(requests, of(JOB), of(POLLS), of(CALLBACK), counters)

    @property
    def request_count(self) -> int:
        return sum(e.count for e in self.requests)

    @property
    def failure_count(self) -> int:
        return sum(e.failures for e in self.requests)

    @property
    def fail_ratio(self) -> float:
        return self.failure_count / self.request_count if self.request_count else 0.0

    @property
    def job_count(self) -> int:
        return sum(e.count for e in self.jobs)

    def job_percentile_s(self, fraction: float) -> float | None:
        found = percentile(self.jobs, fraction)
        return None if found is None else found / 1000


@dataclass(frozen=True)
class Thresholds:
    """Limits a run must stay within (None: not checked). The fail ratio holds for requests,
    jobs and callbacks, each as a share of its own count."""

    max_fail_ratio: float | None = 0.0
    max_p95_ms: float | None = None
    max_job_p95_s: float | None = None
    fail_on_audit: bool = False  # a finding of the mock's audit (not allowed) fails the run
    audit_allow: tuple[str, ...] = ()


def broken(results: Results, limits: Thresholds) -> list[str]:
    """Each threshold the run broke, said in one line (empty when all held)."""
    found: list[str] = []
    if not results.request_count:
        found.append("no request was made")
    if results.exceptions:
        found.append(f"the locustfile raised {results.exceptions} exception(s) (see above)")
    if limits.max_fail_ratio is not None:
        kinds = (("requests", results.requests), ("jobs", results.jobs))
        for kind, entries in (*kinds, ("callbacks", results.callbacks)):
            count, failures = sum(e.count for e in entries), sum(e.failures for e in entries)
            if count and failures / count > limits.max_fail_ratio:
                found.append(
                    f"--max-fail-ratio: {failures} of {count} {kind} failed "
                    f"({failures / count:.4f} > {limits.max_fail_ratio:g})"
                )
    p95 = percentile(results.requests, 0.95)
    if limits.max_p95_ms is not None and p95 is not None and p95 > limits.max_p95_ms:
        found.append(f"--max-p95: request p95 {p95:g} ms > {limits.max_p95_ms:g} ms")
    if limits.max_job_p95_s is not None:
        job_p95 = results.job_percentile_s(0.95)
        if job_p95 is None:
            found.append("--max-job-p95: no job finished")
        elif job_p95 > limits.max_job_p95_s:
            found.append(f"--max-job-p95: job p95 {job_p95:g} s > {limits.max_job_p95_s:g} s")
    broke = offending(results.audit or {}, limits.audit_allow)
    if limits.fail_on_audit and broke:
        counts: dict[str, int] = {}
        for items in broke.values():
            for fid, item in items.items():
                counts[fid] = counts.get(fid, 0) + item["count"]
        shown = ", ".join(f"{fid} {count}" for fid, count in sorted(counts.items()))
        found.append(f"--fail-on-audit: the users broke rules the mock checks: {shown}")
    return found


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g} ms"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value / 1000:.2f} s"


@dataclass
class Summary:
    """The lines around the figures: what ran, where, and the reports written."""

    title: str
    setup: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # warnings (cpu, distributed burst ...)
    reports: list[str] = field(default_factory=list)


def render(
    summary: Summary, results: Results, failed: list[str], limits_allow: Sequence[str] = ()
) -> str:
    """The summary printed at the end of ``kling-testkit load`` (``limits_allow``: finding ids
    not shown)."""
    lines = ["", f"== kling load: {summary.title} ==", *summary.setup]
    p50, p95 = percentile(results.requests, 0.5), percentile(results.requests, 0.95)
    lines.append(
        f"requests: {results.request_count}, failures: {results.failure_count} "
        f"({results.fail_ratio:.2%}), p50 {_ms(p50)}, p95 {_ms(p95)}"
    )
    failed_jobs = sum(e.failures for e in results.jobs)
    polls, polls_p95 = mean(results.polls), percentile(results.polls, 0.95)
    lines.append(
        f"jobs: {results.job_count} ({failed_jobs} failed), job p50 "
        f"{_s(percentile(results.jobs, 0.5))}, job p95 {_s(percentile(results.jobs, 0.95))}, "
        "polls per job: " + ("-" if polls is None else f"{polls:.1f} (p95 {polls_p95:g})")
    )
    if len(results.jobs) > 1:
        for entry in results.jobs:
            lines.append(
                f"  {entry.name}: {entry.count} ({entry.failures} failed), p50 "
                f"{_s(percentile([entry], 0.5))}, p95 {_s(percentile([entry], 0.95))}"
            )
    for entry in results.callbacks:
        lines.append(
            f"{entry.name}: {entry.count} ({entry.failures} failed), p50 "
            f"{_ms(percentile([entry], 0.5))}, p95 {_ms(percentile([entry], 0.95))}"
        )
    counters = results.counters
    if counters is None:
        lines.append("mock counters: none (the target is not a mock)")
    else:
        units = Decimal(counters["units_spent"])
        lines.append(
            f"429s: {counters['rate_limited']}, Retry-After violations: "
            f"{counters['retry_after_violations']}, tasks created: {counters['tasks_created']}, "
            f"units spent: {units.normalize():f}, callbacks delivered: "
            f"{counters['callbacks_delivered']}, failed: {counters['callbacks_failed']}"
        )
    if results.audit is not None:
        lines += _audit_lines(results.audit, limits_allow)
    lines += summary.notes
    lines += [f"report: {path}" for path in summary.reports]
    if failed:
        lines += [f"THRESHOLD FAILED {line}" for line in failed]
        lines.append("result: FAILED")
    else:
        lines.append("result: passed")
    return "\n".join(lines)


def _audit_lines(audit: dict[str, Any], allow: Sequence[str]) -> list[str]:
    """The run's findings: per account and finding, how often, the first offending request
    and the fix (the whole report: GET /__mock/audit)."""
    broke = offending(audit, allow)
    if not broke:
        return ["audit: clean (the users broke no rule the mock checks)"]
    lines = ["audit: the users broke rules the mock checks (all of it: GET /__mock/audit)"]
    for account, found in broke.items():
        for fid, item in found.items():
            lines.append(f"  {account}: {fid} x{item['count']}; fix: {item['hint']}")
            for e in item["evidence"][:1]:
                lines.append(f"    e.g. {e['method']} {e['path']}: {e['detail']}")
    return lines
