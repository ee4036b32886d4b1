"""The load runner's arithmetic: merged percentiles, thresholds, counters, the summary."""

from __future__ import annotations

import argparse

import pytest

from kling_testkit.load.options import duration
from kling_testkit.load.report import (
    Entry,
    Results,
    Summary,
    Thresholds,
    broken,
    mock_counters,
    percentile,
    render,
)
from kling_testkit.load.target import counter_changes

COUNTERS = {
    "requests": "120",
    "tasks_created": "10",
    "rate_limited": "4",
    "retry_after_violations": "3",
    "units_spent": "12.5",
    "callbacks_delivered": "0",
    "callbacks_failed": "0",
}


def entry(method: str, name: str, histogram: dict[float, int], failures: int = 0) -> Entry:
    return Entry(method, name, sum(histogram.values()), failures, histogram)


def test_percentiles_merge_the_histograms_of_several_entries() -> None:
    fast, slow = entry("GET", "a", {10: 90}), entry("POST", "b", {100: 9, 900: 1})
    assert percentile([fast], 0.95) == 10
    assert percentile([fast, slow], 0.5) == 10
    assert percentile([fast, slow], 0.95) == 100  # 99 of 100 at or under 100
    assert percentile([fast, slow], 1.0) == 900
    assert percentile([], 0.5) is None


def test_requests_leave_out_jobs_polls_callbacks_and_counters() -> None:
    entries = [
        entry("GET", "/v1/videos/text2video/[task_id]", {5: 10}, failures=1),
        entry("JOB", "text2video job", {2300: 4}, failures=1),
        entry("POLLS", "text2video polls per job", {8: 4}),
        entry("CALLBACK", "callback succeed", {12: 4}),
        entry("MOCK", "retry_after_violations = 3", {0: 1}),
    ]
    results = Results.from_entries(entries, None)
    assert (results.request_count, results.failure_count, results.job_count) == (10, 1, 4)
    assert results.job_percentile_s(0.95) == 2.3
    assert mock_counters(entries) == {"retry_after_violations": "3"}


def test_each_broken_threshold_is_named() -> None:
    results = Results.from_entries(
        [entry("GET", "a", {40: 9, 400: 1}, failures=1), entry("JOB", "j", {5000: 2})], None
    )
    assert broken(results, Thresholds(max_fail_ratio=0.5, max_p95_ms=500, max_job_p95_s=10)) == []
    failed = broken(results, Thresholds(max_fail_ratio=0.0, max_p95_ms=100, max_job_p95_s=1))
    assert failed == [
        "--max-fail-ratio: 1 of 10 requests failed (0.1000 > 0)",
        "--max-p95: request p95 400 ms > 100 ms",
        "--max-job-p95: job p95 5 s > 1 s",
    ]


def test_a_run_without_requests_or_finished_jobs_fails() -> None:
    empty = Results.from_entries([], None)
    assert broken(empty, Thresholds(max_job_p95_s=30)) == [
        "no request was made",
        "--max-job-p95: no job finished",
    ]


def test_the_summary_shows_the_mock_counters() -> None:
    results = Results.from_entries([entry("GET", "a", {4: 3})], COUNTERS)
    text = render(Summary("burst"), results, [])
    assert "429s: 4, Retry-After violations: 3, tasks created: 10, units spent: 12.5" in text
    assert text.endswith("result: passed")
    assert "THRESHOLD FAILED x" in render(Summary("burst"), results, ["x"])


def test_counter_changes_are_differences() -> None:
    before = {**COUNTERS, "units_spent": "2.5", "requests": 20}
    after = {**COUNTERS, "units_spent": "12.5", "requests": 120}
    found = counter_changes(before, after)
    assert found["units_spent"] == "10.0" and found["requests"] == "100"
    assert found["retry_after_violations"] == "0"


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("2m", 120), ("1m30s", 90), ("45", 45), ("1h", 3600)]
)
def test_durations(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "ten", "5x", "m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        duration(text)
