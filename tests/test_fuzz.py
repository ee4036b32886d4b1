"""Whatever arrives, the answer is a Kling envelope, and whatever is accepted works afterwards.

Configs and rules are generated from the mock's own schemas, valid and with one mutation, on a
fresh mock per example; each accepted one is then put through a short workload (create, query,
list, advance, download, costs) that must raise nothing inside the mock.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kling_testkit.auth import bearer, sign_token
from mock_server import Backend, create_app
from mock_server.config_schema import full_schema
from mock_server.errors import ConfigError
from mock_server.rules import ACTION_SCHEMAS, RULE_SCHEMA
from tests.conftest import BASE_CONFIG, CREDS, I2V, IMAGES, T2V
from tests.schema_strategies import from_schema, json_values, mutated

FIELDS = [
    "prompt",
    "model_name",
    "model",
    "mode",
    "duration",
    "aspect_ratio",
    "n",
    "image",
    "image_tail",
    "camera_control",
    "callback_url",
    "external_task_id",
    "cfg_scale",
    "watermark_info",
    "negative_prompt",
    "sound",
    "voice_list",
    "dynamic_masks",
]
bodies = (
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), json_values, max_size=8)
    | json_values
)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Rules as the mock takes them: the action checked against its type's schema. Transport faults
# and real latency need a socket or real waiting, and a gateway's answer is on purpose no
# envelope; they have tests of their own.
_UNTESTABLE = ("transport", "latency", "gateway")
_TESTABLE = [s for kind, s in ACTION_SCHEMAS.items() if kind not in _UNTESTABLE]
# Matches drawn from values the workload sends, so generated rules fire rather than sit idle.
_MATCH = RULE_SCHEMA["properties"]["match"]
_FIRING = {
    **_MATCH,
    "properties": {
        **_MATCH["properties"],
        "method": {"enum": ["GET", "POST", "PATCH", "post"]},
        "path": {"enum": ["*", "/v1/*", "/media/*", T2V, IMAGES, "/account/costs"]},
        "account": {"enum": ["default", "other"]},
        "prompt": {"enum": ["fox", "FOX", "cat"]},
    },
}
RULE = {
    **RULE_SCHEMA,
    "properties": {**RULE_SCHEMA["properties"], "match": _FIRING, "action": {"oneOf": _TESTABLE}},
}
CONFIG = {
    **full_schema(),
    "properties": {
        **full_schema()["properties"],
        "rules": {"type": "array", "items": RULE, "maxItems": 2},
        # The 2025 shapes leave request_id out of lists on purpose (tests/test_profiles.py).
        "response_profile": {"const": "current"},
    },
}
valid_rules = from_schema(RULE)
valid_configs = from_schema(CONFIG)


def assert_envelope(response: Any) -> None:
    assert response.status_code == 200 or 400 <= response.status_code <= 599, response.status
    assert response.mimetype == "application/json", response.get_data(as_text=True)[:300]
    text = response.get_data(as_text=True)
    body = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(AssertionError(c)))
    assert isinstance(body["code"], int) and body["message"] and body["request_id"]
    assert (body["code"] == 0) == (response.status_code == 200)
    assert "internal error in the mock" not in body["message"], body


def fresh(config: dict[str, Any] | None = None) -> Flask:
    app = create_app({**BASE_CONFIG, **(config or {})})
    app.testing = True
    return app


def workload(client: FlaskClient) -> None:
    """Use the mock the way a client would; every answer must be an envelope, no crash."""
    auth = bearer(sign_token(CREDS))
    answers = [
        client.post(T2V, json={"prompt": "a fox", "external_task_id": "w1"}, headers=auth),
        client.post(IMAGES, json={"prompt": "a fox", "n": 2}, headers=auth),
        client.get(T2V, headers=auth),
        client.get(f"{T2V}/w1", headers=auth),
        client.post("/__mock/clock/advance", json={"seconds": 100_000}),
        client.get(T2V, headers=auth),
        client.get(IMAGES, query_string={"pageSize": 5}, headers=auth),
        client.get("/account/costs", query_string={"start_time": 0, "end_time": 1}, headers=auth),
        client.get("/__mock/tasks"),
        client.get("/__mock/accounts"),
        client.get("/__mock/config"),
        client.get("/__mock/requests"),
        client.get("/__mock/callbacks"),
    ]
    for answer in answers:
        assert_envelope(answer)
    listed = answers[5].get_json().get("data") or []
    for task in listed:
        for video in task.get("task_result", {}).get("videos", []):
            url = urlsplit(video["url"])
            download = client.get(f"{url.path}?{url.query}")
            assert download.mimetype in ("video/mp4", "application/json")
            if download.mimetype == "application/json":
                assert_envelope(download)
    backend: Backend = client.application.extensions["kling_mock"]
    assert backend.errors == [], backend.errors


@FUZZ
@given(path=st.sampled_from([T2V, I2V, IMAGES]), body=bodies)
def test_any_create_body_gets_an_envelope(path: str, body: Any) -> None:
    client = fresh().test_client()
    response = client.post(path, json=body, headers=bearer(sign_token(CREDS)))
    assert_envelope(response)


@FUZZ
@given(
    query=st.dictionaries(
        st.sampled_from(["pageNum", "pageSize", "external_task_id", "x"]),
        st.text(max_size=12) | st.integers().map(str) | st.just("9" * 5000),
        max_size=3,
    )
)
def test_any_list_query_gets_an_envelope(query: dict[str, str]) -> None:
    client = fresh().test_client()
    assert_envelope(client.get(T2V, query_string=query, headers=bearer(sign_token(CREDS))))


@FUZZ
@given(rules=st.lists(valid_rules | mutated(valid_rules), min_size=1, max_size=3))
def test_an_accepted_rule_works(rules: list[Any]) -> None:
    client = fresh().test_client()
    response = client.post("/__mock/faults", json=rules)
    assert_envelope(response)
    workload(client)


@FUZZ
@given(changes=valid_configs | mutated(valid_configs))
def test_an_accepted_config_patch_works(changes: Any) -> None:
    client = fresh().test_client()
    response = client.patch("/__mock/config", json=changes)
    assert_envelope(response)
    workload(client)


@FUZZ
@given(config=valid_configs | mutated(valid_configs))
def test_an_accepted_start_up_config_works(config: Any) -> None:
    try:
        app = create_app({**BASE_CONFIG, **config} if isinstance(config, dict) else config)
    except ConfigError:
        return  # refused at the door, with a message: that is the other good outcome
    workload(app.test_client())


@FUZZ
@given(body=bodies)
def test_any_control_body_gets_an_envelope(body: Any) -> None:
    client = fresh().test_client()
    assert_envelope(client.post("/__mock/faults", json=body))
    assert_envelope(client.patch("/__mock/config", json=body))
    assert_envelope(client.post("/__mock/clock/advance", json=body))
    workload(client)
