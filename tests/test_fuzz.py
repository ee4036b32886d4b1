"""Whatever arrives, the answer is a Kling envelope with a 2xx/4xx status: never a 500 or HTML."""

from __future__ import annotations

from typing import Any

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kling_testkit.auth import bearer, sign_token
from tests.conftest import CREDS, I2V, IMAGES, T2V

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
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
bodies = (
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), json_values, max_size=8)
    | json_values
)
FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_envelope(response: Any) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert isinstance(body["code"], int) and body["message"] and body["request_id"]
    assert (body["code"] == 0) == (response.status_code == 200)


@FUZZ
@given(path=st.sampled_from([T2V, I2V, IMAGES]), body=bodies)
def test_any_create_body_gets_an_envelope(app: Flask, path: str, body: Any) -> None:
    response = app.test_client().post(path, json=body, headers=bearer(sign_token(CREDS)))
    assert_envelope(response)


@FUZZ
@given(
    query=st.dictionaries(
        st.sampled_from(["pageNum", "pageSize", "external_task_id", "x"]),
        st.text(max_size=12),
        max_size=3,
    )
)
def test_any_list_query_gets_an_envelope(app: Flask, query: dict[str, str]) -> None:
    response = app.test_client().get(T2V, query_string=query, headers=bearer(sign_token(CREDS)))
    assert_envelope(response)


@FUZZ
@given(body=bodies)
def test_any_fault_rule_or_config_patch_gets_an_envelope(app: Flask, body: Any) -> None:
    client = app.test_client()
    assert_envelope(client.post("/__mock/faults", json=body))
    assert_envelope(client.patch("/__mock/config", json=body))
    assert_envelope(client.post("/__mock/clock/advance", json=body))
