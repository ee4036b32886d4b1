"""The runners' side of the audit (``kling_testkit.audit``): reading it from any target (none
from one that has none, never an error), and what a run made between two readings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from kling_testkit.audit import changes
from kling_testkit.load.target import CONTROL_TOKEN_VAR, read_audit
from tests.conftest import serving

TOKEN = "control-token-for-tests-0123456789abcdef"  # 40 bytes


def not_a_mock(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/html")])
    return [b"<h1>Not Found</h1>"]


def test_a_target_that_is_not_a_mock_has_no_audit() -> None:
    with serving(not_a_mock) as url:
        assert read_audit(url) is None
    assert read_audit(url) is None  # nothing listens there any more


def test_the_audit_is_read_with_the_control_token(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving(make_app(control_token=TOKEN)) as url:
        assert read_audit(url) is None  # refused: no audit to show, and no error
        monkeypatch.setenv(CONTROL_TOKEN_VAR, TOKEN)
        found = read_audit(url)
    assert found is not None and found["clean"] is True


def reading(**counts: tuple[int, list[str]]) -> dict[str, Any]:
    """An audit document of the default account: finding id -> (count, evidence request ids)."""
    found = {
        fid: {
            "count": count,
            "evidence": [
                {"method": "GET", "path": "/p", "time": 1000, "request_id": i, "detail": "d"}
                for i in ids
            ],
            "hint": f"fix {fid}",
        }
        for fid, (count, ids) in counts.items()
    }
    return {"accounts": {"default": found}}


def test_a_run_made_what_grew_with_the_evidence_the_first_reading_lacked() -> None:
    before = reading(poll_storm=(2, ["a", "b"]), result_url_never_fetched=(4, ["c"]))
    after = reading(
        poll_storm=(5, ["a", "b", "d"]),
        result_url_never_fetched=(3, ["c"]),  # read off the state: it may shrink
        a_finding_of_a_newer_mock=(1, ["e"]),
    )
    run = changes(before, after)
    assert run["totals"] == {"poll_storm": 3, "a_finding_of_a_newer_mock": 1}
    grown = run["accounts"]["default"]["poll_storm"]
    assert [e["request_id"] for e in grown["evidence"]] == ["d"] and grown[
        "hint"
    ] == "fix poll_storm"
