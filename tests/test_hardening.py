"""Input a hostile or careless client can send: a 4xx envelope naming the field, never a 500.

Each test here reproduces a defect found by an attack on a running mock (issue 7).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kling_testkit.auth import bearer, sign_token
from kling_testkit.credentials import MOCK_ACCESS_KEY, MOCK_SECRET_KEY
from mock_server import Backend, create_app
from mock_server.config import MockConfig
from mock_server.errors import ConfigError
from tests.conftest import BASE_CONFIG, CREDS, IMAGES, T2V, accepted, create
from tests.test_bad_input import assert_refused

HUGE = "9" * 5000  # more digits than Python converts to int by default (4300)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def raw_token(claims_json: str, secret: str = MOCK_SECRET_KEY) -> str:
    """An HS256 token with this exact payload text (PyJWT cannot write NaN or 1e400)."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(claims_json.encode())
    signature = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


# ------------------------------------------------------------------ huge integers (item 2)


@pytest.mark.parametrize("name", ["pageNum", "pageSize"])
def test_a_huge_page_number_is_refused_naming_it(
    client: FlaskClient, auth: dict[str, str], name: str
) -> None:
    response = client.get(T2V, query_string={name: HUGE}, headers=auth)
    assert_refused(response, f"query parameter {name}")


@pytest.mark.parametrize("name", ["start_time", "end_time"])
def test_a_huge_account_costs_time_is_refused_naming_it(
    client: FlaskClient, auth: dict[str, str], name: str
) -> None:
    query = {"start_time": "0", "end_time": "1", name: HUGE}
    response = client.get("/account/costs", query_string=query, headers=auth)
    assert_refused(response, f"query parameter {name}")


def test_a_huge_journal_limit_is_refused(client: FlaskClient) -> None:
    assert_refused(client.get("/__mock/requests", query_string={"limit": HUGE}), "limit")


def test_a_huge_result_url_expiry_is_refused(client: FlaskClient) -> None:
    response = client.get("/media/1/x.mp4", query_string={"expires": HUGE, "signature": "ab"})
    assert_refused(response, "expires", status=403, code=1103)


def test_a_non_ascii_result_url_signature_is_refused(client: FlaskClient) -> None:
    response = client.get("/media/1/x.mp4", query_string={"expires": "100", "signature": "é" * 64})
    assert_refused(response, "signature", status=403, code=1103)


# ------------------------------------------------------------------ token time claims (items 2, 3)


@pytest.mark.parametrize(
    "claims",
    [
        f'{{"iss": "{MOCK_ACCESS_KEY}", "exp": 1{"0" * 400}}}',
        f'{{"iss": "{MOCK_ACCESS_KEY}", "exp": NaN}}',
        f'{{"iss": "{MOCK_ACCESS_KEY}", "exp": Infinity}}',
        f'{{"iss": "{MOCK_ACCESS_KEY}", "exp": 1e400}}',
        f'{{"iss": "{MOCK_ACCESS_KEY}", "exp": 9999999999, "nbf": NaN}}',
        f'{{"iss": "{MOCK_ACCESS_KEY}", "exp": 9999999999, "nbf": -Infinity}}',
        f'{{"iss": "{MOCK_ACCESS_KEY}", "exp": 9999999999, "iat": Infinity}}',
        f'{{"iss": "{MOCK_ACCESS_KEY}", "exp": 9999999999, "iat": "now"}}',
    ],
    ids=["exp-10e400", "exp-nan", "exp-inf", "exp-1e400", "nbf-nan", "nbf-inf", "iat-inf", "iat-s"],
)
def test_time_claims_must_be_finite_numbers(client: FlaskClient, claims: str) -> None:
    response = client.get(T2V, headers={"Authorization": f"Bearer {raw_token(claims)}"})
    assert_refused(response, "must be a finite number", status=401, code=1002)


def test_a_finite_far_exp_still_works(client: FlaskClient) -> None:
    token = raw_token(f'{{"iss": "{MOCK_ACCESS_KEY}", "exp": 4102444800, "nbf": 0}}')
    assert client.get(T2V, headers={"Authorization": f"Bearer {token}"}).status_code == 200


# ------------------------------------------------------------------ config at the door (item 4)


def patch_raw(client: FlaskClient, text: str) -> Any:
    return client.patch("/__mock/config", data=text, content_type="application/json")


@pytest.mark.parametrize(
    "text",
    [
        '{"token_leeway_s": 1e400}',
        '{"result_ttl_s": 1e400}',
        '{"rate_limit": {"requests": 5, "window_s": 1e400}}',
        '{"durations": {"text2video": {"run_s": 1e400}}}',
        '{"time_scale": -1e400}',
    ],
)
def test_an_infinite_number_in_a_config_patch_is_refused(
    client: FlaskClient, auth: dict[str, str], text: str
) -> None:
    before = client.get("/__mock/config").get_json()["data"]
    assert_refused(patch_raw(client, text), "out of range")
    assert client.get("/__mock/config").get_json()["data"] == before
    assert client.get(T2V, headers=auth).status_code == 200


@pytest.mark.parametrize(
    "changes",
    [
        {"token_leeway_s": 10**9},
        {"result_ttl_s": 10**12},
        {"rate_limit": {"requests": 5, "window_s": 10**12}},
        {"durations": {"text2video": {"run_s": 10**12}}},
        {"callbacks": {"backoff_s": 10**12}},
        {"duration_multipliers": {"mode_pro": 10**9}},
        {"blocked_terms": ["x"] * 5000},
        {"failure_message": "x" * 100_000},
    ],
    ids=lambda c: next(iter(c)),
)
def test_config_values_are_bounded(client: FlaskClient, changes: dict[str, Any]) -> None:
    response = client.patch("/__mock/config", json=changes)
    assert_refused(response, next(iter(changes)))


def test_a_config_file_value_of_infinity_is_refused(tmp_path: Any) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"result_ttl_s": 1e400}')
    with pytest.raises(ConfigError, match="out of range"):
        MockConfig.from_file(path)


def test_a_python_config_of_infinity_is_refused() -> None:
    with pytest.raises(ConfigError, match="result_ttl_s"):
        MockConfig.from_dict({"result_ttl_s": math.inf})
    with pytest.raises(ConfigError, match="token_leeway_s"):
        MockConfig.from_dict({"token_leeway_s": math.nan})


# ------------------------------------------------------------------ rules at the door (item 4)


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ({"match": {"headers": ["a"]}, "action": {"type": "error", "code": 1201}}, "headers"),
        ({"match": {"headers": {"x": 1}}, "action": {"type": "error", "code": 1201}}, "headers"),
        ({"match": {"method": ["GET"]}, "action": {"type": "error", "code": 1201}}, "method"),
        ({"match": {"path": 7}, "action": {"type": "error", "code": 1201}}, "path"),
        ({"match": {"prompt": {}}, "action": {"type": "error", "code": 1201}}, "prompt"),
        ({"action": {"type": "error", "code": 1201, "status": 99}}, "status"),
        ({"action": {"type": "error", "code": 1201, "status": 1000}}, "status"),
        ({"action": {"type": "error", "code": 0}}, "code"),
        ({"action": {"type": "error", "code": 1201, "retry_after": 10**12}}, "retry_after"),
        ({"action": {"type": "latency", "seconds": 10**9}}, "seconds"),
        ({"action": {"type": "outcome", "outcome": "slow", "factor": 10**12}}, "factor"),
        ({"action": {"type": "error", "code": 1201}, "times": 10**30}, "times"),
        ({"action": {"type": "error", "code": 1201}, "id": "x" * 1000}, "id"),
    ],
)
def test_a_rule_it_cannot_use_is_refused(
    client: FlaskClient, auth: dict[str, str], rule: dict[str, Any], says: str
) -> None:
    assert_refused(client.post("/__mock/faults", json=rule), says)
    assert client.get("/__mock/faults").get_json()["data"] == []
    assert client.get(T2V, headers=auth).status_code == 200


def test_the_number_of_rules_is_bounded(client: FlaskClient) -> None:
    rule = {"match": {"path": "/nowhere"}, "action": {"type": "error", "code": 1201}}
    added = client.post("/__mock/faults", json=[rule] * 1000)
    assert added.status_code == 200
    assert_refused(client.post("/__mock/faults", json=rule), "at most 1000 rules")
    assert len(client.get("/__mock/faults").get_json()["data"]) == 1000


def test_a_rule_status_is_used_as_given(client: FlaskClient, auth: dict[str, str]) -> None:
    rule = {"action": {"type": "error", "code": 5001, "status": 599}, "times": 1}
    assert client.post("/__mock/faults", json=rule).status_code == 200
    assert_refused(client.get(T2V, headers=auth), "unavailable", status=599, code=5001)


# ------------------------------------------------------------------ strict JSON out (item 6)


def test_a_stuck_task_has_no_end_and_every_answer_is_strict_json(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    accepted(create(client, auth, scenario="stuck"))
    response = client.get("/__mock/tasks")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in {text[:200]}"))
    assert response.get_json()["data"][0]["timeline"]["ends_at"] is None


# ------------------------------------------------------------------ growth is bounded (item 9)


def test_once_scenario_gates_are_bounded(client: FlaskClient, auth: dict[str, str]) -> None:
    backend: Backend = client.application.extensions["kling_mock"]
    for i in range(backend.MAX_GATES + 50):
        headers = {**auth, "X-Mock-Scenario": f"server-error-once:{i}"}
        assert client.get(T2V, headers=headers).status_code == 500
    assert backend.gate_count() == backend.MAX_GATES


def test_an_unknown_scenario_message_is_bounded(client: FlaskClient, auth: dict[str, str]) -> None:
    response = client.get(T2V, headers={**auth, "X-Mock-Scenario": "z" * 5000})
    assert_refused(response, "unknown X-Mock-Scenario")
    assert len(response.get_json()["message"]) < 1000


# ------------------------------------------------------------------ config sharing (item 10)


def test_an_account_concurrency_merges_with_the_global_one(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    account = {
        "name": "default",
        "access_key": CREDS.access_key,
        "secret_key": CREDS.secret_key,
        "concurrency": {"video": 3},
    }
    client = make_app(accounts=[account], concurrency={"video": 50, "image": 2}).test_client()
    accepted(create(client, auth, IMAGES, n=2))
    response = create(client, auth, IMAGES, n=1)
    assert_refused(response, "2 image slots", status=429, code=1303)
    for _ in range(3):
        accepted(create(client, auth))
    assert_refused(create(client, auth), "3 video slots", status=429, code=1303)


def test_runtime_edits_never_reach_the_start_up_config() -> None:
    start = {**BASE_CONFIG, "callbacks": {"allowed_hosts": ["127.0.0.1"]}, "rate_limit": None}
    app = create_app(start)
    backend: Backend = app.extensions["kling_mock"]
    backend.patch_config({"rate_limit": {"requests": 1, "window_s": 60}})
    backend.config.callbacks["allowed_hosts"].append("10.0.0.1")  # a careless in-place edit
    assert backend.config.rate_limit is not None
    backend.config.rate_limit["requests"] = 99
    backend.reset()
    assert backend.config.callbacks["allowed_hosts"] == ["127.0.0.1"]
    assert backend.config.rate_limit is None
    assert start["callbacks"] == {"allowed_hosts": ["127.0.0.1"]}


def test_the_callers_config_dict_is_not_shared(auth: dict[str, str]) -> None:
    limit = {"requests": 1, "window_s": 60.0}
    client = create_app({**BASE_CONFIG, "rate_limit": limit}).test_client()
    limit["requests"] = 1000  # the caller changes its own dict afterwards
    assert client.get(T2V, headers=auth).status_code == 200
    assert client.get(T2V, headers=auth).status_code == 429


# ------------------------------------------------------------------ restart (item 11)


def _result_url(client: FlaskClient, auth: dict[str, str]) -> str:
    accepted(create(client, auth))
    client.post("/__mock/clock/advance", json={"seconds": 1000})
    task = client.get(T2V, headers=auth).get_json()["data"][0]
    url: str = task["task_result"]["videos"][0]["url"]
    return url.removeprefix("http://localhost")


def test_a_url_signed_before_a_restart_is_not_served_by_the_new_process(
    auth: dict[str, str],
) -> None:
    first = create_app(BASE_CONFIG).test_client()
    url = _result_url(first, auth)
    assert first.get(url).status_code == 200
    second = create_app(BASE_CONFIG).test_client()  # same seed: the same task ids
    assert _result_url(second, auth) != url
    assert_refused(second.get(url), "signature", status=403, code=1103)


def test_a_url_signed_before_a_reset_is_not_served_after_it(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    url = _result_url(client, auth)
    client.post("/__mock/reset")
    _result_url(client, auth)
    assert_refused(client.get(url), "signature", status=403, code=1103)


# ------------------------------------------------------------------ discoverable (item 13)


def test_json_body_numbers_out_of_range_are_named(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    response = client.post(
        T2V,
        data='{"prompt": "x", "cfg_scale": 1e400}',
        content_type="application/json",
        headers=auth,
    )
    assert_refused(response, "out of range")


def test_a_token_signed_by_the_testkit_still_works(client: FlaskClient) -> None:
    assert client.get(T2V, headers=bearer(sign_token(CREDS))).status_code == 200


def test_an_exp_of_5000_digits_is_refused(client: FlaskClient) -> None:
    token = raw_token(f'{{"iss": "{MOCK_ACCESS_KEY}", "exp": {HUGE}}}')
    response = client.get(T2V, headers={"Authorization": f"Bearer {token}"})
    assert_refused(response, "", status=401, code=1002)


# ------------------------------------------------------------------ found by the fuzz


@pytest.mark.parametrize("path", ["", "/v1/videos/text2video/", "/__mock/health/"])
def test_no_path_gets_an_html_redirect(
    client: FlaskClient, auth: dict[str, str], path: str
) -> None:
    response = client.get(path, headers=auth)
    assert response.status_code < 300 or response.status_code >= 400, response.status
    assert response.mimetype == "application/json"


@pytest.mark.parametrize(
    "url", ["http://#", "http://x?y=1", "https://", "http://a b/", "http://[0]", "http://x:99999"]
)
def test_a_public_base_url_must_be_a_base(url: str) -> None:
    with pytest.raises(ConfigError, match="public_base_url"):
        MockConfig.from_dict({"public_base_url": url})
