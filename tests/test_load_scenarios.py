"""Each scenario of ``load_tests``, run headless by ``kling-testkit load`` against its own mock.

Real processes over real sockets: the runner starts ``kling-mock serve`` on a x60 clock and
Locust in a process of its own; every run is a few users for a few seconds and stops by itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.load_runs import LOCUSTFILES, Run, load

TASK_ID = re.compile(r"\d{12,}")  # a raw task id in a stats name: URLs not grouped


def test_lifecycle_reports_requests_and_job_entries(tmp_path: Path) -> None:
    run = load(
        tmp_path,
        "--scenario",
        "lifecycle",
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        "5s",
        "--max-p95",
        "5000",
        "--max-job-p95",
        "60",
        "--fail-on-audit",
    )
    assert run.code == 0, run.out
    assert "audit: clean (the users broke no rule the mock checks)" in run.out  # well behaved
    assert run.row("POST", "/v1/videos/text2video")["Failure Count"] == "0"
    polls = run.row("GET", "/v1/videos/text2video/[task_id]")
    assert int(polls["Request Count"]) > 0 and polls["Failure Count"] == "0"
    assert int(run.row("GET", "download video")["Request Count"]) > 0
    job = run.row("JOB", "text2video job")
    assert int(job["Request Count"]) > 0 and job["Failure Count"] == "0"
    assert 1000 < float(job["50%"]) < 20_000  # a 130 s job at x60: about two wall seconds
    assert int(run.row("POLLS", "text2video polls per job")["50%"]) >= 2
    assert run.row("", "Aggregated")["Failure Count"] == "0"
    assert not [r["Name"] for r in run.rows() if TASK_ID.search(r["Name"])]
    assert int(run.row("MOCK", f"tasks_created = {run.number('tasks created')}")["Request Count"])
    assert run.number("requests") > 0 and run.number("failures") == 0
    assert re.search(r"job p50 \d+\.\d\d s, job p95 \d+\.\d\d s, polls per job: \d", run.out)
    assert "text2video job" in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert run.out.rstrip().endswith("result: passed")


def test_burst_meets_the_limits_and_never_comes_back_early(tmp_path: Path) -> None:
    run = load(tmp_path, "--scenario", "burst", "-u", "12", "-r", "12", "-t", "8s")
    assert run.code == 0, run
    assert run.number("429s") > 0, run
    assert run.number("Retry-After violations") == 0, run
    refused = [r for r in run.rows() if r["Name"].endswith("(429)")]
    assert refused and all(r["Failure Count"] == "0" for r in refused)
    assert int(run.row("JOB", "text2video job")["Request Count"]) > 0


def test_a_locustfile_that_ignores_retry_after_shows_violations(tmp_path: Path) -> None:
    config = tmp_path / "one-slot.json"
    config.write_text(json.dumps({"concurrency": {"video": 1, "image": 1}}), encoding="utf-8")

    def impatient(seconds: str, *more: str) -> Run:
        script = str(LOCUSTFILES / "ignores_retry_after.py")
        common = ["-u", "3", "-r", "3", "--mock-config", str(config), "--max-fail-ratio", "1"]
        return load(tmp_path, "-f", script, "-t", seconds, *common, *more)

    run = impatient("4s")
    assert run.code == 0, run  # the findings are shown, not failed, without --fail-on-audit
    assert run.number("429s") > 0, run
    violations = run.number("Retry-After violations")
    assert violations > 0, run
    # One mechanism: the audit's finding is the same count.
    assert re.search(rf"  default: retry_after_ignored x{violations}; fix: after a 429", run.out)
    failing = impatient("3s", "--fail-on-audit")
    assert failing.code == 1, failing
    assert re.search(
        r"THRESHOLD FAILED --fail-on-audit: the users broke rules the mock checks: "
        r".*retry_after_ignored \d+",
        failing.out,
    ), failing


def test_an_impossible_threshold_fails_the_run_and_says_which(tmp_path: Path) -> None:
    run = load(
        tmp_path,
        "--scenario",
        "lifecycle",
        "-u",
        "3",
        "-r",
        "3",
        "-t",
        "4s",
        "--max-job-p95",
        "0.001",
    )
    assert run.code == 1, run
    assert re.search(r"THRESHOLD FAILED --max-job-p95: job p95 [\d.]+ s > 0.001 s", run.out), run
    assert "--max-p95" not in run.out and run.out.rstrip().endswith("result: FAILED")


def test_callbacks_arrive_once_each_with_their_latency(tmp_path: Path) -> None:
    run = load(tmp_path, "--scenario", "callbacks", "-u", "4", "-r", "4", "-t", "5s")
    assert run.code == 0, run
    callbacks = run.named("CALLBACK")
    assert {"callback submitted", "callback processing", "callback succeed"} <= set(callbacks)
    assert "callback lost" not in callbacks and "callback duplicate" not in callbacks
    assert float(callbacks["callback succeed"]["95%"]) < 1000  # ms from status change to here
    assert int(run.row("JOB", "text2video callback job")["Request Count"]) > 0
    assert run.number("callbacks delivered") > 0 and run.number("failed") == 0


def test_lost_and_duplicated_callbacks_are_caught(tmp_path: Path) -> None:
    creates = {"method": "POST", "path": "/v1/videos/*"}
    rules = [
        {"match": creates, "action": {"type": "callback", "fault": "duplicate"}, "times": 2},
        {"match": creates, "action": {"type": "callback", "fault": "drop"}, "times": 2},
    ]
    config = tmp_path / "faulty-callbacks.json"
    config.write_text(json.dumps({"rules": rules}), encoding="utf-8")
    run = load(
        tmp_path,
        "--scenario",
        "callbacks",
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        "8s",
        "--mock-config",
        str(config),
    )
    assert run.code == 1, run
    callbacks = run.named("CALLBACK")
    duplicated = callbacks["callback duplicate"]
    assert int(duplicated["Failure Count"]) >= 2  # each status of a duplicated task, twice
    assert 1 <= int(callbacks["callback lost"]["Failure Count"]) <= 2
    assert re.search(r"THRESHOLD FAILED --max-fail-ratio: \d+ of \d+ callbacks failed", run.out)


def test_mixed_sends_several_families_and_modes(tmp_path: Path) -> None:
    run = load(tmp_path, "--scenario", "mixed", "-u", "8", "-r", "8", "-t", "8s")
    assert run.code == 0, run
    creates = {r["Name"] for r in run.rows() if r["Type"] == "POST"}
    assert len(creates) >= 2, creates
    jobs = run.named("JOB")
    videos = [float(row["50%"]) for name, row in jobs.items() if name != "images job"]
    assert "images job" in jobs and videos, sorted(jobs)
    assert float(jobs["images job"]["50%"]) < min(videos)  # 14 s images, minutes of video


def test_a_locustfile_that_raises_fails_the_run(tmp_path: Path) -> None:
    run = load(tmp_path, "-f", str(LOCUSTFILES / "raises.py"), "-u", "2", "-r", "2", "-t", "3s")
    assert run.code == 1, run
    assert re.search(r"THRESHOLD FAILED the locustfile raised \d+ exception", run.out), run


def test_a_locustfile_that_polls_in_a_tight_loop_shows_the_storm_in_the_csv(
    tmp_path: Path,
) -> None:
    # At most one query of a task per mock hour (a minute of wall time on the x60 clock): a
    # storm even on a machine too busy to poll in a truly tight loop.
    config = tmp_path / "strict.json"
    config.write_text(json.dumps({"audit": {"poll_interval_s": 3600}}), encoding="utf-8")
    script = str(LOCUSTFILES / "polls_in_a_tight_loop.py")
    run = load(tmp_path, "-f", script, "-u", "2", "-t", "4s", "--mock-config", str(config))
    assert run.code == 0, run.out  # shown, not failed
    found = re.search(r"  default: poll_storm x(\d+); fix: poll a task at most once", run.out)
    assert found, run.out
    assert run.row("MOCK", f"audit poll_storm = {found.group(1)}")  # and in the CSV
