"""The audit in the runners' summaries (``kling_testkit.audit``): a run's findings are what the
mock's audit gained, shown compactly, failing a run only when asked; a target without an audit
gives none."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from kling_testkit import audit
from kling_testkit.load import report
from kling_testkit.load.report import Entry, Results, Thresholds, broken
from tests.conftest import serving

HINT = "poll a task at most once every few seconds"
TOKEN = "control-token-for-tests-0123456789abcdef"  # 40 bytes


def evidence(request_id: str) -> dict[str, Any]:
    return {
        "method": "GET",
        "path": "/v1/videos/text2video/1",
        "time": 12_500,
        "request_id": request_id,
        "detail": f"queried early ({request_id})",
    }


def reading(**counts: tuple[int, list[str]]) -> dict[str, Any]:
    """An audit document of the default account: finding id -> (count, evidence ids)."""
    found = {
        fid: {"count": n, "evidence": [evidence(i) for i in ids], "hint": HINT}
        for fid, (n, ids) in counts.items()
    }
    return audit.document({"default": found})


def test_a_runs_findings_are_what_grew_with_only_the_new_evidence() -> None:
    before = reading(poll_storm=(2, ["r1", "r2"]), token_misuse=(1, ["t1"]))
    after = reading(poll_storm=(7, ["r1", "r2", "r3", "r4", "r5"]), token_misuse=(1, ["t1"]))
    run = audit.changes(before, after)
    assert run["totals"] == {"poll_storm": 5} and run["clean"] is False
    item = run["accounts"]["default"]["poll_storm"]
    assert [e["request_id"] for e in item["evidence"]] == ["r3", "r4", "r5"]
    assert item["hint"] == HINT


def test_a_count_lower_than_before_means_a_reset_so_all_of_it_is_new() -> None:
    run = audit.changes(reading(poll_storm=(9, ["r1"])), reading(poll_storm=(3, ["x1"])))
    assert run["totals"] == {"poll_storm": 3}


def test_finding_ids_are_an_open_set() -> None:
    run = audit.changes(None, reading(callback_receiver_failures=(4, ["c1"])))
    assert run["totals"] == {"callback_receiver_failures": 4}
    shown = audit.summary(run)
    assert shown.startswith("audit: callback_receiver_failures 4")
    assert "callback_receiver_failures: 4 request(s)" in shown


def test_the_summary_shows_two_evidence_lines_and_marks_allowed_findings() -> None:
    run = reading(poll_storm=(5, ["r1", "r2", "r3"]), token_misuse=(1, ["t1"]))
    lines = audit.summary(run, ["token_misuse"]).splitlines()
    assert lines[0] == "audit: poll_storm 5, token_misuse 1 (allowed)"
    assert lines[1:3] == ["  account 'default':", "    poll_storm: 5 request(s)"]
    assert "(request r1)" in lines[3] and "(request r2)" in lines[4]
    assert lines[5:] == ["      ... and 3 more", f"      fix: {HINT}"]  # token_misuse: allowed
    assert audit.summary(reading()) == "audit: clean"


def test_a_finding_whose_evidence_came_before_the_run_says_so() -> None:
    run = audit.changes(
        reading(poll_storm=(5, list("abcde"))), reading(poll_storm=(8, list("abcde")))
    )
    assert "all earlier" in audit.summary(run) and "... and" not in audit.summary(run)


def test_findings_fail_a_load_run_only_with_fail_on_audit_and_not_when_allowed() -> None:
    results = Results.from_entries([Entry("GET", "a", 1, 0, {4.0: 1})], None)
    results.audit = reading(poll_storm=(12, ["r1"]))
    assert broken(results, Thresholds()) == []
    assert broken(results, Thresholds(fail_on_audit=True, audit_allow=("poll_storm",))) == []
    failed = broken(results, Thresholds(fail_on_audit=True))
    assert failed == ["--fail-on-audit: the mock's audit found poll_storm 12 (see audit above)"]
    text = report.render(report.Summary("x"), results, failed)
    assert "\naudit: poll_storm 12\n" in text and "THRESHOLD FAILED --fail-on-audit" in text


def test_no_audit_no_audit_line() -> None:
    results = Results.from_entries([Entry("GET", "a", 1, 0, {4.0: 1})], None)
    assert broken(results, Thresholds(fail_on_audit=True)) == []
    assert "audit" not in report.render(report.Summary("x"), results, [])


def test_the_audit_entries_are_not_counters() -> None:
    entries = [Entry("MOCK", name, 1, 0, {0.0: 1}) for name in ("requests = 3", "audit x = 2")]
    assert report.mock_counters(entries) == {"requests": "3"}


def not_a_mock(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [b'{"code": 1203, "message": "not found"}']


def test_a_target_that_is_not_a_mock_has_no_audit() -> None:
    with serving(not_a_mock) as url:
        assert audit.read(url) is None


def test_the_audit_is_read_with_the_control_token(make_app: Callable[..., Flask]) -> None:
    with serving(make_app(control_token=TOKEN)) as url:
        assert audit.read(url) is None  # refused without it: said nothing, failed nothing
        found = audit.read(url, control_token=TOKEN)
    assert found is not None and found["clean"] is True


@pytest.mark.parametrize("text", ["", " , "])
def test_an_empty_allow_list_is_refused(text: str) -> None:
    import argparse

    from kling_testkit.load.options import finding_ids

    with pytest.raises(argparse.ArgumentTypeError):
        finding_ids(text)
    assert finding_ids("poll_storm, token_misuse") == ("poll_storm", "token_misuse")
