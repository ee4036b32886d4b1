"""Bad input over HTTP: a clear Kling error envelope, and nothing stored changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import I2V, IMAGES, T2V

pytestmark = pytest.mark.both_stores  # the shared store suite

ORIGINAL = {"prompt": "a lighthouse in a storm", "external_task_id": "original-1"}


def assert_refused(response: TestResponse, says: str, status: int = 400, code: int = 1201) -> None:
    """The response is a Kling error envelope with this status, code and message substring."""
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert type(body["code"]) is int
    assert body["code"] == code
    assert body["message"]
    assert says in body["message"]
    assert isinstance(body["request_id"], str)
    assert body["request_id"]
    assert "data" not in body


def stored_tasks(client: FlaskClient) -> list[dict[str, Any]]:
    response = client.get("/__mock/tasks")
    assert response.status_code == 200
    tasks: list[dict[str, Any]] = response.get_json()["data"]
    return tasks


def seed(client: FlaskClient, auth: dict[str, str]) -> list[dict[str, Any]]:
    """Create the one valid task every test checks stays untouched; return the stored state."""
    assert client.post(T2V, json=ORIGINAL, headers=auth).status_code == 200
    tasks = stored_tasks(client)
    assert len(tasks) == 1
    return tasks


@pytest.fixture
def before(client: FlaskClient, auth: dict[str, str]) -> list[dict[str, Any]]:
    return seed(client, auth)


# ------------------------------------------------------------------ unreadable bodies

DEEP_ARRAYS = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECTS = b'{"a":' * 100_000 + b"1" + b"}" * 100_000


@pytest.mark.parametrize(
    ("raw", "content_type", "says"),
    [
        pytest.param(b'{"prompt": "x",', "application/json", "not valid JSON", id="malformed"),
        pytest.param(b'{"prompt": "x"}', "text/plain", "Content-Type", id="text-plain"),
        pytest.param(b"", "application/json", "body is empty", id="no-body"),
        pytest.param(b"", None, "Content-Type", id="no-body-no-type"),
        pytest.param(b'[{"prompt": "x"}]', "application/json", "JSON object", id="array"),
        pytest.param(b"null", "application/json", "JSON object", id="null"),
        pytest.param(b'{"prompt": "x", "cfg_scale": NaN}', "application/json", "NaN", id="nan"),
        pytest.param(b'{"prompt": "caf\xe9"}', "application/json", "UTF-8", id="bad-utf8"),
        pytest.param(DEEP_ARRAYS, "application/json", "nested too deeply", id="deep-arrays"),
        pytest.param(DEEP_OBJECTS, "application/json", "nested too deeply", id="deep-objects"),
    ],
)
def test_unreadable_body_is_refused_and_changes_nothing(
    client: FlaskClient,
    auth: dict[str, str],
    before: list[dict[str, Any]],
    raw: bytes,
    content_type: str | None,
    says: str,
) -> None:
    response = client.post(T2V, data=raw, content_type=content_type, headers=auth)
    assert_refused(response, says)
    assert stored_tasks(client) == before


def test_body_over_the_byte_cap_is_refused_and_changes_nothing(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    client = make_app(max_body_bytes=2048).test_client()
    before = seed(client, auth)
    raw = json.dumps({"prompt": "p" * 4096}).encode()
    response = client.post(T2V, data=raw, content_type="application/json", headers=auth)
    assert_refused(response, "larger than 2048 bytes")
    assert stored_tasks(client) == before


# ------------------------------------------------------------------ bodies that break the contract


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        pytest.param(T2V, {"prompt": 42}, "prompt must be of type string", id="prompt-number"),
        pytest.param(IMAGES, {"prompt": "x", "n": "2"}, "n must be of type integer", id="n-str"),
        pytest.param(T2V, {"prompt": "p" * 10_000}, "at most 2500 characters", id="long-prompt"),
        pytest.param(T2V, {"prompt": "a\x00b"}, "control characters", id="nul-in-prompt"),
        pytest.param(I2V, {"prompt": "x"}, "image or image_tail is required", id="no-image"),
    ],
)
def test_body_breaking_the_contract_is_refused_and_changes_nothing(
    client: FlaskClient,
    auth: dict[str, str],
    before: list[dict[str, Any]],
    path: str,
    body: dict[str, Any],
    says: str,
) -> None:
    assert_refused(client.post(path, json=body, headers=auth), says)
    assert stored_tasks(client) == before


@pytest.mark.parametrize("url", ["http://[x", "https://[::1/hook", "http://[not-ipv6]/"])
@pytest.mark.parametrize(
    ("path", "name", "body"),
    [
        (T2V, "callback_url", {"prompt": "x"}),
        (I2V, "image", {}),
        (IMAGES, "image", {"prompt": "x"}),
    ],
    ids=["t2v-callback", "i2v-image", "images-image"],
)
def test_url_with_a_broken_ipv6_host_is_refused_naming_the_field(
    client: FlaskClient,
    auth: dict[str, str],
    before: list[dict[str, Any]],
    path: str,
    name: str,
    body: dict[str, Any],
    url: str,
) -> None:
    response = client.post(path, json={**body, name: url}, headers=auth)
    assert_refused(response, name)
    assert stored_tasks(client) == before


def test_unknown_model_is_404_resource_not_found(
    client: FlaskClient, auth: dict[str, str], before: list[dict[str, Any]]
) -> None:
    response = client.post(T2V, json={"prompt": "x", "model_name": "kling-v99"}, headers=auth)
    assert_refused(response, "kling-v99", status=404, code=1203)
    assert stored_tasks(client) == before


def test_duplicate_external_task_id_is_refused_and_original_untouched(
    client: FlaskClient, auth: dict[str, str], before: list[dict[str, Any]]
) -> None:
    body = {"prompt": "a different prompt", "external_task_id": ORIGINAL["external_task_id"]}
    assert_refused(client.post(T2V, json=body, headers=auth), "external_task_id")
    assert stored_tasks(client) == before
    assert before[0]["params"]["prompt"] == ORIGINAL["prompt"]


def test_unicode_prompt_under_the_limit_is_accepted(
    client: FlaskClient, auth: dict[str, str], before: list[dict[str, Any]]
) -> None:
    prompt = "🐱‍👤 קפה café نهر e\u0301\u0308\u20dd 猫"
    response = client.post(T2V, json={"prompt": prompt}, headers=auth)
    assert response.status_code == 200, response.get_json()
    tasks = stored_tasks(client)
    assert len(tasks) == 2
    assert tasks[0]["params"]["prompt"] == prompt
    assert tasks[1] == before[0]


# ------------------------------------------------------------------ list paging


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("pageNum", "-1"),
        ("pageNum", "0"),
        ("pageNum", "1001"),
        ("pageNum", "99999999999999999999"),
        ("pageSize", "0"),
        ("pageSize", "501"),
        ("pageSize", "abc"),
    ],
)
@pytest.mark.parametrize("lookup", [{}, {"external_task_id": "original-1"}], ids=["list", "lookup"])
def test_bad_page_parameter_is_refused_naming_it(
    client: FlaskClient,
    auth: dict[str, str],
    before: list[dict[str, Any]],
    name: str,
    value: str,
    lookup: dict[str, str],
) -> None:
    # Found by Schemathesis: with external_task_id the page parameters went unchecked.
    response = client.get(T2V, query_string={name: value, **lookup}, headers=auth)
    assert_refused(response, f"query parameter {name}")
    assert stored_tasks(client) == before


def test_last_allowed_page_beyond_the_tasks_is_an_empty_list(
    client: FlaskClient, auth: dict[str, str], before: list[dict[str, Any]]
) -> None:
    response = client.get(T2V, query_string={"pageNum": "1000"}, headers=auth)
    assert response.status_code == 200
    assert response.get_json()["data"] == []


# ------------------------------------------------------------------ routes, methods, ids


@pytest.mark.parametrize(
    ("method", "path", "status", "code", "says"),
    [
        pytest.param("GET", "/v1/videos/nowhere", 404, 1203, "no such endpoint", id="route"),
        pytest.param("DELETE", T2V, 404, 1202, "DELETE is not allowed", id="method"),
        pytest.param("GET", f"{T2V}/123456789", 404, 1203, "'123456789' does not exist", id="id"),
    ],
)
def test_unknown_route_method_or_task_is_a_json_error(
    client: FlaskClient,
    auth: dict[str, str],
    before: list[dict[str, Any]],
    method: str,
    path: str,
    status: int,
    code: int,
    says: str,
) -> None:
    response = client.open(path, method=method, headers=auth)
    assert_refused(response, says, status=status, code=code)
    assert stored_tasks(client) == before


# ------------------------------------------------------------------ control API


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"seconds": -5}, "between 0 and"),
        ({"seconds": "5"}, "a number"),
        ({"seconds": True}, "a number"),
    ],
    ids=["negative", "string", "boolean"],
)
def test_bad_clock_advance_is_refused_and_the_clock_stays(
    client: FlaskClient, before: list[dict[str, Any]], body: dict[str, Any], says: str
) -> None:
    clock = client.get("/__mock/clock").get_json()["data"]
    assert_refused(client.post("/__mock/clock/advance", json=body), says)
    assert client.get("/__mock/clock").get_json()["data"] == clock
    assert stored_tasks(client) == before
