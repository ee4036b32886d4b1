"""Fault rules: the control API, error, latency, outcome and transport actions, and matching."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from kling_testkit.auth import bearer, sign_token
from kling_testkit.credentials import Credentials
from mock_server import Backend, ConfigError
from tests.conftest import CREDS, IMAGES, T2V

pytestmark = pytest.mark.both_stores  # the shared store suite

Submit = Callable[..., dict[str, Any]]
ERROR_5000: dict[str, Any] = {"type": "error", "code": 5000}
DAY = 86400
PROMPT = "a lighthouse in a storm, waves crashing"
SECOND = Credentials("second-access-key", "second-secret-" + "x" * 40)


# -- helpers ---------------------------------------------------------------------------------


def add_rules(client: FlaskClient, rules: Any) -> TestResponse:
    return client.post("/__mock/faults", json=rules)


def listed(client: FlaskClient) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = client.get("/__mock/faults").json["data"]  # type: ignore[index]
    return data


def advance(client: FlaskClient, seconds: float) -> None:
    assert client.post("/__mock/clock/advance", json={"seconds": seconds}).status_code == 200


def create(client: FlaskClient, auth: dict[str, str], path: str = T2V, **kw: Any) -> TestResponse:
    body = {"prompt": PROMPT, **kw}
    return client.post(path, json=body, headers=auth)


def status_code(response: TestResponse) -> tuple[int, int]:
    return response.status_code, response.json["code"]  # type: ignore[index]


def query(client: FlaskClient, auth: dict[str, str], task_id: str) -> dict[str, Any]:
    response = client.get(f"{T2V}/{task_id}", headers=auth)
    assert response.status_code == 200, response.json
    data: dict[str, Any] = response.json["data"]  # type: ignore[index]
    return data


def listing(client: FlaskClient, auth: dict[str, str]) -> TestResponse:
    return client.get(T2V, headers=auth)


def two_accounts(make_app: Callable[..., Flask], **overrides: Any) -> Flask:
    return make_app(
        accounts=[
            {"name": "first", "access_key": CREDS.access_key, "secret_key": CREDS.secret_key},
            {"name": "second", "access_key": SECOND.access_key, "secret_key": SECOND.secret_key},
        ],
        **overrides,
    )


def fullwidth(text: str) -> str:
    """ASCII letters as their fullwidth forms (NFKC folds them back)."""
    return "".join(chr(ord(ch) + 0xFEE0) for ch in text)


def fetch(client: FlaskClient, url: str) -> TestResponse:
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


# -- control API -----------------------------------------------------------------------------


def test_posting_one_rule_adds_it_with_an_automatic_id(client: FlaskClient) -> None:
    response = add_rules(client, {"action": ERROR_5000})
    assert response.status_code == 200
    [added] = response.json["data"]  # type: ignore[index]
    assert added["id"] == "rule-1"
    assert [r["id"] for r in listed(client)] == ["rule-1"]


def test_posting_an_array_adds_every_rule_in_order(client: FlaskClient) -> None:
    add_rules(client, {"action": ERROR_5000})
    response = add_rules(
        client, [{"action": ERROR_5000}, {"action": {"type": "error", "code": 1302}}]
    )
    assert response.status_code == 200
    assert [r["id"] for r in response.json["data"]] == ["rule-2", "rule-3"]  # type: ignore[index]
    add_rules(client, {"id": "flaky-create", "action": ERROR_5000})
    rules = listed(client)
    assert [r["id"] for r in rules] == ["rule-1", "rule-2", "rule-3", "flaky-create"]
    assert rules[2]["action"] == {"type": "error", "code": 1302}
    assert all(r["fired"] == 0 for r in rules)


def test_listing_counts_fired_and_remaining_uses(client: FlaskClient, auth: dict[str, str]) -> None:
    add_rules(client, [{"action": ERROR_5000, "times": 2, "match": {"method": "GET"}}])
    add_rules(client, {"id": "unlimited", "action": ERROR_5000, "match": {"method": "DELETE"}})
    assert [(r["fired"], r["remaining"]) for r in listed(client)] == [(0, 2), (0, None)]
    listing(client, auth)
    assert [(r["fired"], r["remaining"]) for r in listed(client)] == [(1, 1), (0, None)]
    listing(client, auth)
    listing(client, auth)
    assert [(r["fired"], r["remaining"]) for r in listed(client)] == [(2, 0), (0, None)]


def test_deleting_one_rule_leaves_the_others(client: FlaskClient, auth: dict[str, str]) -> None:
    add_rules(client, [{"id": "a", "action": ERROR_5000}, {"id": "b", "action": ERROR_5000}])
    response = client.delete("/__mock/faults/a")
    assert response.status_code == 200
    assert response.json["data"] == {"removed": "a"}  # type: ignore[index]
    assert [r["id"] for r in listed(client)] == ["b"]


def test_deleting_an_unknown_rule_is_not_found(client: FlaskClient) -> None:
    add_rules(client, {"id": "a", "action": ERROR_5000})
    assert status_code(client.delete("/__mock/faults/nope")) == (404, 1203)
    assert [r["id"] for r in listed(client)] == ["a"]


def test_deleting_all_rules_lets_requests_through(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    add_rules(client, [{"action": ERROR_5000}, {"action": ERROR_5000}])
    assert listing(client, auth).status_code == 500
    response = client.delete("/__mock/faults")
    assert response.status_code == 200
    assert listed(client) == []
    assert status_code(listing(client, auth)) == (200, 0)


@pytest.mark.parametrize(
    ("rule", "complaint"),
    [
        ({"action": {"type": "explode"}}, "action.type"),
        ({"match": {"colour": "red"}, "action": ERROR_5000}, "match"),
        ({"action": {"type": "error", "code": 999}}, "999"),
        ({"action": ERROR_5000, "times": 0}, "times"),
        ({"action": ERROR_5000, "probability": 0}, "probability"),
        ({"action": ERROR_5000, "probability": 1.5}, "probability"),
        ("flaky", "object"),
        (42, "object"),
        ({"match": {"method": "POST"}}, "action"),
    ],
    ids=[
        "unknown-action",
        "unknown-match-key",
        "bad-code",
        "times-0",
        "probability-0",
        "probability-1.5",
        "string",
        "number",
        "no-action",
    ],
)
def test_an_invalid_rule_is_refused_saying_why(
    client: FlaskClient, rule: Any, complaint: str
) -> None:
    response = add_rules(client, rule)
    assert status_code(response) == (400, 1201)
    assert complaint in response.json["message"]  # type: ignore[index]
    assert listed(client) == []


def test_an_array_with_one_bad_rule_adds_nothing(client: FlaskClient) -> None:
    good = {"id": "good", "action": ERROR_5000}
    response = add_rules(client, [good, {"action": {"type": "error", "code": 999}}])
    assert status_code(response) == (400, 1201)
    assert "999" in response.json["message"]  # type: ignore[index]
    assert listed(client) == []


def test_a_duplicate_id_is_refused(client: FlaskClient) -> None:
    add_rules(client, {"id": "dup", "action": ERROR_5000})
    again = add_rules(client, {"id": "dup", "action": ERROR_5000})
    assert status_code(again) == (400, 1201)
    assert "dup" in again.json["message"] or "unique" in again.json["message"]  # type: ignore[index]
    inside = add_rules(
        client, [{"id": "x", "action": ERROR_5000}, {"id": "x", "action": ERROR_5000}]
    )
    assert status_code(inside) == (400, 1201)
    assert [r["id"] for r in listed(client)] == ["dup"]


def test_an_automatic_id_never_refuses_a_valid_rule(client: FlaskClient) -> None:
    assert add_rules(client, {"id": "rule-2", "action": ERROR_5000}).status_code == 200
    response = add_rules(client, {"action": ERROR_5000})
    assert response.status_code == 200, response.json
    ids = [r["id"] for r in listed(client)]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_an_array_is_added_whole_or_not_at_all_when_ids_collide(client: FlaskClient) -> None:
    response = add_rules(client, [{"id": "rule-2", "action": ERROR_5000}, {"action": ERROR_5000}])
    ids = [r["id"] for r in listed(client)]
    if response.status_code == 200:
        assert len(ids) == 2 and len(set(ids)) == 2
    else:
        assert status_code(response) == (400, 1201)
        assert ids == []  # a refused array leaves no rule behind


def test_reset_removes_rules(client: FlaskClient, auth: dict[str, str]) -> None:
    add_rules(client, {"action": ERROR_5000})
    assert client.post("/__mock/reset").status_code == 200
    assert listed(client) == []
    assert status_code(listing(client, auth)) == (200, 0)


def test_rules_from_config_are_active_at_start_and_after_reset(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    boot = {"id": "boot", "match": {"method": "GET"}, "action": ERROR_5000, "times": 1}
    client = make_app(rules=[boot]).test_client()
    assert [(r["id"], r["remaining"]) for r in listed(client)] == [("boot", 1)]
    assert status_code(listing(client, auth)) == (500, 5000)
    assert status_code(listing(client, auth)) == (200, 0)
    client.delete("/__mock/faults")
    client.post("/__mock/reset")
    assert [(r["id"], r["fired"], r["remaining"]) for r in listed(client)] == [("boot", 0, 1)]
    assert status_code(listing(client, auth)) == (500, 5000)


def test_a_bad_rule_in_config_stops_start_up(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigError, match=r"rules\[1\].*999"):
        make_app(rules=[{"action": ERROR_5000}, {"action": {"type": "error", "code": 999}}])


def test_two_config_rules_with_one_id_stop_start_up(make_app: Callable[..., Flask]) -> None:
    """Found by the config fuzzer: a duplicate id passed the check and failed at the first
    reset with a bare ValueError (a 500), not at start-up with a message."""
    rule = {"id": "0", "action": ERROR_5000}
    with pytest.raises(ConfigError, match=r"rules\[1\].*'0' exists"):
        make_app(rules=[rule, rule])


# -- error action ----------------------------------------------------------------------------


def test_error_action_answers_its_code_in_the_envelope(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    add_rules(client, {"action": ERROR_5000})
    response = create(client, auth)
    assert status_code(response) == (500, 5000)
    assert response.json["message"]  # type: ignore[index]
    assert "data" not in response.json  # type: ignore[operator]
    assert "Retry-After" not in response.headers


def test_error_action_status_overrides_the_http_status(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    add_rules(client, {"action": {"type": "error", "code": 5000, "status": 502}})
    assert status_code(create(client, auth)) == (502, 5000)


def test_error_action_message_is_answered(client: FlaskClient, auth: dict[str, str]) -> None:
    add_rules(client, {"action": {"type": "error", "code": 5001, "message": "upstream napping"}})
    response = create(client, auth)
    assert status_code(response) == (503, 5001)
    assert response.json["message"] == "upstream napping"  # type: ignore[index]


def test_error_action_retry_after_adds_the_header(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    add_rules(client, {"action": {"type": "error", "code": 1302, "retry_after": 7}})
    response = create(client, auth)
    assert status_code(response) == (429, 1302)
    assert response.headers["Retry-After"] == "7"


@pytest.mark.parametrize(
    ("code", "http"), [(1302, 429), (1103, 403), (1102, 429), (1301, 400), (5002, 504)]
)
def test_error_action_uses_the_documented_status_of_any_code(
    client: FlaskClient, auth: dict[str, str], code: int, http: int
) -> None:
    add_rules(client, {"action": {"type": "error", "code": code}})
    assert status_code(create(client, auth)) == (http, code)


def test_an_error_rule_stores_no_task(
    client: FlaskClient, auth: dict[str, str], backend: Backend
) -> None:
    add_rules(client, {"action": ERROR_5000, "times": 1})
    create(client, auth)
    assert backend.all_tasks() == []


# -- matching --------------------------------------------------------------------------------


def test_method_match_picks_only_that_method(client: FlaskClient, auth: dict[str, str]) -> None:
    add_rules(client, {"match": {"method": "post"}, "action": ERROR_5000})
    assert status_code(listing(client, auth)) == (200, 0)
    assert status_code(create(client, auth)) == (500, 5000)


def test_path_glob_matches_only_its_paths(client: FlaskClient, auth: dict[str, str]) -> None:
    add_rules(client, {"match": {"path": "/v1/videos/*"}, "action": ERROR_5000})
    assert status_code(create(client, auth)) == (500, 5000)
    assert status_code(create(client, auth, "/v1/videos/image2video")) == (500, 5000)
    assert status_code(create(client, auth, IMAGES)) == (200, 0)


def test_account_match_leaves_other_accounts_alone(make_app: Callable[..., Flask]) -> None:
    client = two_accounts(make_app).test_client()
    add_rules(client, {"match": {"account": "second"}, "action": ERROR_5000})
    first, second = bearer(sign_token(CREDS)), bearer(sign_token(SECOND))
    assert status_code(listing(client, first)) == (200, 0)
    assert status_code(listing(client, second)) == (500, 5000)


def test_header_match_ignores_name_case_but_needs_the_exact_value(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    add_rules(client, {"match": {"headers": {"X-Chaos": "on"}}, "action": ERROR_5000})
    assert status_code(listing(client, {**auth, "x-chaos": "on"})) == (500, 5000)
    assert status_code(listing(client, {**auth, "X-CHAOS": "on"})) == (500, 5000)
    assert status_code(listing(client, {**auth, "X-Chaos": "off"})) == (200, 0)
    assert status_code(listing(client, {**auth, "X-Chaos": "ON"})) == (200, 0)
    assert status_code(listing(client, auth)) == (200, 0)


def test_prompt_match_is_a_substring_after_nfkc_and_case_folding(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    add_rules(client, {"match": {"prompt": "dragon"}, "action": ERROR_5000})
    assert fullwidth("DRAGON") == "\uff24\uff32\uff21\uff27\uff2f\uff2e"
    assert status_code(create(client, auth, prompt=f"a {fullwidth('DRAGON')} over the hills")) == (
        500,
        5000,
    )
    assert status_code(create(client, auth, prompt="Snapdragons in a vase")) == (500, 5000)
    assert status_code(create(client, auth, prompt="a drag on the cigarette")) == (200, 0)
    assert status_code(create(client, auth)) == (200, 0)


def test_a_rule_that_does_not_match_leaves_requests_alone(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    add_rules(client, {"match": {"method": "POST", "path": "/v1/images/*"}, "action": ERROR_5000})
    task_id = create(client, auth).json["data"]["task_id"]  # type: ignore[index]
    assert query(client, auth, task_id)["task_status"] == "submitted"
    assert listed(client)[0]["fired"] == 0


def test_the_first_matching_rule_wins(client: FlaskClient, auth: dict[str, str]) -> None:
    add_rules(
        client,
        [
            {"id": "first", "match": {"method": "POST"}, "action": ERROR_5000},
            {"id": "second", "match": {"path": T2V}, "action": {"type": "error", "code": 1302}},
        ],
    )
    assert status_code(create(client, auth)) == (500, 5000)
    assert status_code(create(client, auth)) == (500, 5000)
    assert [(r["id"], r["fired"]) for r in listed(client)] == [("first", 2), ("second", 0)]


def test_a_spent_rule_hands_over_to_the_next_match(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    add_rules(
        client,
        [
            {"id": "once", "action": ERROR_5000, "times": 1},
            {"id": "then", "action": {"type": "error", "code": 1302}, "times": 1},
        ],
    )
    codes = [status_code(listing(client, auth))[1] for _ in range(3)]
    assert codes == [5000, 1302, 0]


def test_times_fires_on_exactly_that_many_matching_requests(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    add_rules(client, {"match": {"method": "POST"}, "action": ERROR_5000, "times": 3})
    assert status_code(listing(client, auth)) == (200, 0)  # does not match: not counted
    codes = [create(client, auth).status_code for _ in range(5)]
    assert codes == [500, 500, 500, 200, 200]
    [rule] = listed(client)
    assert (rule["fired"], rule["remaining"]) == (3, 0)


def _draws(client: FlaskClient, auth: dict[str, str], count: int) -> list[bool]:
    fired = []
    for _ in range(count):
        response = listing(client, auth)
        assert response.status_code in (200, 500)
        if response.status_code == 200:  # lost the draw: an ordinary answer
            assert response.json["code"] == 0  # type: ignore[index]
            assert isinstance(response.json["data"], list)  # type: ignore[index]
        fired.append(response.status_code == 500)
    return fired


def test_probability_fires_on_the_same_subset_for_the_same_seed(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    patterns = []
    for _ in range(2):
        client = make_app(seed=42).test_client()
        add_rules(client, {"action": ERROR_5000, "probability": 0.5})
        patterns.append(_draws(client, auth, 20))
        assert listed(client)[0]["fired"] == sum(patterns[-1])
    assert patterns[0] == patterns[1]
    assert 0 < sum(patterns[0]) < 20


def test_probability_fires_on_about_that_fraction(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    add_rules(client, {"action": ERROR_5000, "probability": 0.5})
    fired = _draws(client, auth, 200)
    assert 0.35 <= sum(fired) / 200 <= 0.65
    assert listed(client)[0]["fired"] == sum(fired)


def test_a_rule_that_loses_its_draw_lets_the_next_rule_match(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    add_rules(
        client,
        [
            {"id": "maybe", "action": ERROR_5000, "probability": 0.5},
            {"id": "always", "action": {"type": "error", "code": 1302}},
        ],
    )
    codes = {status_code(listing(client, auth))[1] for _ in range(40)}
    assert codes == {5000, 1302}


# -- latency action --------------------------------------------------------------------------


def test_latency_delays_the_answer_then_it_succeeds(
    client: FlaskClient, auth: dict[str, str], backend: Backend
) -> None:
    add_rules(client, {"match": {"method": "POST"}, "action": {"type": "latency", "seconds": 0.15}})
    started = time.perf_counter()
    response = create(client, auth)
    # A lower bound only: a busy machine makes a request slower, never faster.
    assert time.perf_counter() - started >= 0.15
    assert status_code(response) == (200, 0)
    assert len(backend.all_tasks()) == 1
    assert listing(client, auth).status_code == 200
    # Which requests were delayed, and by how much, is read from the journal, not a stopwatch.
    entries = client.get("/__mock/requests").json["data"]["entries"]  # type: ignore[index]
    assert [(e["method"], e["latency_ms"]) for e in entries] == [("POST", 150), ("GET", None)]


def test_lognormal_latency_is_positive_and_repeats_for_the_same_seed(
    make_app: Callable[..., Flask],
) -> None:
    sequences = []
    for _ in range(2):
        app = make_app(seed=5)
        add_rules(app.test_client(), {"action": {"type": "latency", "median": 0.05, "sigma": 0.3}})
        mock: Backend = app.extensions["kling_mock"]
        [rule] = mock.rules_snapshot()
        sequences.append([mock.latency_of(rule) for _ in range(10)])
    assert sequences[0] == sequences[1]
    assert all(0 < s < 1 for s in sequences[0])
    assert len(set(sequences[0])) == 10  # a spread, not a constant


def test_lognormal_latency_delays_by_the_seeded_draw(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    rule = {"action": {"type": "latency", "median": 0.05, "sigma": 0.3}}
    twin = make_app(seed=9)
    add_rules(twin.test_client(), rule)
    mock: Backend = twin.extensions["kling_mock"]
    expected = mock.latency_of(mock.rules_snapshot()[0])
    client = make_app(seed=9).test_client()
    add_rules(client, rule)
    started = time.perf_counter()
    response = listing(client, auth)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert expected <= elapsed < expected + 5


# -- outcome actions -------------------------------------------------------------------------


def test_fail_outcome_ends_the_task_failed_with_a_message(
    client: FlaskClient, auth: dict[str, str], submit: Submit
) -> None:
    add_rules(client, {"action": {"type": "outcome", "outcome": "fail"}})
    task_id = submit()["task_id"]
    advance(client, 130)
    task = query(client, auth, task_id)
    assert task["task_status"] == "failed"
    assert task["task_status_msg"]
    assert task["task_result"] == {}


def test_fail_outcome_uses_the_given_message(
    client: FlaskClient, auth: dict[str, str], submit: Submit
) -> None:
    add_rules(client, {"action": {"type": "outcome", "outcome": "fail", "message": "GPU on fire"}})
    task_id = submit()["task_id"]
    advance(client, 3600)
    task = query(client, auth, task_id)
    assert (task["task_status"], task["task_status_msg"]) == ("failed", "GPU on fire")


def test_slow_outcome_stretches_processing_by_its_factor(
    client: FlaskClient, auth: dict[str, str], submit: Submit
) -> None:
    add_rules(client, {"action": {"type": "outcome", "outcome": "slow", "factor": 3}})
    task_id = submit()["task_id"]
    advance(client, 131)
    assert query(client, auth, task_id)["task_status"] == "processing"
    advance(client, 10 + 359 - 131)
    assert query(client, auth, task_id)["task_status"] == "processing"
    advance(client, 1)
    assert query(client, auth, task_id)["task_status"] == "succeed"


def test_stuck_outcome_keeps_the_task_processing(
    client: FlaskClient, auth: dict[str, str], submit: Submit
) -> None:
    add_rules(client, {"action": {"type": "outcome", "outcome": "stuck"}})
    task_id = submit()["task_id"]
    advance(client, 10 * DAY)
    task = query(client, auth, task_id)
    assert task["task_status"] == "processing"
    assert task["task_result"] == {}


def test_outcome_rules_only_fire_on_creates(
    client: FlaskClient, auth: dict[str, str], submit: Submit
) -> None:
    task_id = submit()["task_id"]
    add_rules(client, {"action": {"type": "outcome", "outcome": "fail"}})
    advance(client, 130)
    assert query(client, auth, task_id)["task_status"] == "succeed"
    assert listing(client, auth).status_code == 200
    assert listed(client)[0]["fired"] == 0
    submit()
    assert listed(client)[0]["fired"] == 1


# -- transport actions (a real socket) -------------------------------------------------------


def _transport_rule(fault: str) -> dict[str, Any]:
    return {"match": {"method": "GET"}, "action": {"type": "transport", "fault": fault}, "times": 1}


def _journal(client: FlaskClient) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = client.get("/__mock/requests").json["data"]["entries"]  # type: ignore[index]
    return entries


@pytest.mark.parametrize("fault", ["reset", "empty"])
def test_reset_and_empty_break_the_connection(
    live_server: str, client: FlaskClient, auth: dict[str, str], fault: str
) -> None:
    add_rules(client, _transport_rule(fault))
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{live_server}{T2V}", headers=auth, timeout=5)


def test_malformed_json_answers_200_with_a_body_that_is_not_json(
    live_server: str, client: FlaskClient, auth: dict[str, str]
) -> None:
    add_rules(client, _transport_rule("malformed_json"))
    response = requests.get(f"{live_server}{T2V}", headers=auth, timeout=5)
    assert response.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_truncated_breaks_off_the_body(
    live_server: str, client: FlaskClient, auth: dict[str, str]
) -> None:
    add_rules(client, _transport_rule("truncated"))
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        requests.get(f"{live_server}{T2V}", headers=auth, timeout=5)


@pytest.mark.parametrize("fault", ["reset", "empty", "malformed_json", "truncated"])
def test_after_a_one_time_transport_fault_the_next_request_works_and_the_journal_names_it(
    live_server: str, client: FlaskClient, auth: dict[str, str], fault: str
) -> None:
    add_rules(client, _transport_rule(fault))
    with contextlib.suppress(requests.RequestException):
        requests.get(f"{live_server}{T2V}", headers=auth, timeout=5)
    response = requests.get(f"{live_server}{T2V}", headers=auth, timeout=5)
    assert response.status_code == 200
    assert response.json()["code"] == 0
    entries = [e for e in _journal(client) if e["path"] == T2V]
    assert [e["fault"] for e in entries] == [fault, None]


# -- media downloads -------------------------------------------------------------------------


def _result_url(client: FlaskClient, auth: dict[str, str], submit: Submit) -> str:
    task_id = submit()["task_id"]
    advance(client, 130)
    task = query(client, auth, task_id)
    assert task["task_status"] == "succeed"
    url: str = task["task_result"]["videos"][0]["url"]
    return url


def test_a_latency_rule_slows_result_downloads(
    client: FlaskClient, auth: dict[str, str], submit: Submit
) -> None:
    add_rules(
        client, {"match": {"path": "/media/*"}, "action": {"type": "latency", "seconds": 0.1}}
    )
    url = _result_url(client, auth, submit)
    started = time.perf_counter()
    response = fetch(client, url)
    assert time.perf_counter() - started >= 0.1  # a lower bound only: load only adds time
    assert response.status_code == 200 and response.mimetype == "video/mp4"
    assert listed(client)[0]["fired"] == 1
    entries = client.get("/__mock/requests").json["data"]["entries"]  # type: ignore[index]
    delayed = [(e["path"].split("/")[1], e["latency_ms"]) for e in entries if e["latency_ms"]]
    assert delayed == [("media", 100)]  # API calls do not match the rule


def test_an_error_rule_breaks_result_downloads(
    client: FlaskClient, auth: dict[str, str], submit: Submit
) -> None:
    add_rules(client, {"match": {"path": "/media/*"}, "action": ERROR_5000, "times": 1})
    url = _result_url(client, auth, submit)
    assert status_code(fetch(client, url)) == (500, 5000)
    retry = fetch(client, url)
    assert retry.status_code == 200 and retry.mimetype == "video/mp4"


# -- gateway errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_answers_an_html_page_not_the_envelope(
    client: FlaskClient, auth: dict[str, str], status: int
) -> None:
    add_rules(client, {"action": {"type": "gateway", "status": status}, "times": 1})
    answer = client.get(T2V, headers=auth)
    assert answer.status_code == status
    assert answer.mimetype == "text/html"
    text = answer.get_data(as_text=True)
    assert text.startswith("<html>") and f"<h1>{status} " in text
    assert client.get(T2V, headers=auth).status_code == 200  # a one-time rule: then the API
    assert [e["fault"] for e in _journal(client) if e["path"] == T2V] == [f"gateway_{status}", None]
    assert [e["status"] for e in _journal(client) if e["path"] == T2V] == [status, 200]


def test_a_gateway_503_is_empty(client: FlaskClient, auth: dict[str, str]) -> None:
    add_rules(client, {"action": {"type": "gateway", "status": 503}})
    answer = client.get(T2V, headers=auth)
    assert answer.status_code == 503
    assert answer.get_data() == b"" and answer.headers["Content-Length"] == "0"


def test_a_gateway_before_creates_nothing_and_after_creates_the_task(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    add_rules(client, {"action": {"type": "gateway", "status": 502}, "times": 1})
    assert create(client, auth).status_code == 502
    assert client.get("/__mock/tasks").json["data"] == []  # type: ignore[index]
    after = {"action": {"type": "gateway", "status": 504, "when": "after"}, "times": 1}
    add_rules(client, after)
    assert create(client, auth).status_code == 504  # the answer is the gateway's ...
    tasks = client.get("/__mock/tasks").json["data"]  # type: ignore[index]
    assert len(tasks) == 1  # ... but the API behind it made the task


@pytest.mark.parametrize("bad", [{"status": 500}, {}, {"status": 502, "when": "later"}])
def test_a_gateway_rule_needs_a_gateway_status(client: FlaskClient, bad: dict[str, Any]) -> None:
    answer = add_rules(client, {"action": {"type": "gateway", **bad}})
    assert answer.status_code == 400 and answer.json["code"] == 1201  # type: ignore[index]
    assert listed(client) == []
