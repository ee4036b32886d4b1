"""GET / and GET /openapi.json: what the mock is, and its contract, served without auth."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from kling_testkit.spec import openapi
from tests.conftest import ChangeContract


def test_openapi_json_is_the_contract_with_this_mock_as_its_server(client: FlaskClient) -> None:
    response = client.get("/openapi.json")  # no Authorization header
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    served = response.get_json()
    assert served["servers"] == [
        {"url": "http://localhost", "description": served["servers"][0]["description"]}
    ]
    expected = copy.deepcopy(openapi())
    expected["servers"] = served["servers"]
    assert served == expected
    assert openapi()["servers"] == [{"url": "https://api-singapore.klingai.com"}]  # a copy


def test_openapi_json_names_the_host_the_client_used(client: FlaskClient) -> None:
    served = client.get("/openapi.json", base_url="http://127.0.0.1:8123").get_json()
    assert served["servers"][0]["url"] == "http://127.0.0.1:8123"


def test_openapi_json_honours_public_base_url(make_app: Callable[..., Flask]) -> None:
    client = make_app(public_base_url="https://mock.test.example/kling/").test_client()
    served = client.get("/openapi.json").get_json()
    assert served["servers"][0]["url"] == "https://mock.test.example/kling"


def test_openapi_json_leaves_out_the_control_paths(
    client: FlaskClient, change_contract: ChangeContract
) -> None:
    def add_control_path(doc: dict[str, Any]) -> None:
        doc["paths"]["/__mock/health"] = {"get": {"responses": {"200": {"description": "up"}}}}

    change_contract(add_control_path)
    served = client.get("/openapi.json").get_json()
    assert "/__mock/health" in openapi()["paths"]
    assert not [path for path in served["paths"] if path.startswith("/__mock")]
    assert set(served["paths"]) == set(openapi()["paths"]) - {"/__mock/health"}


def test_index_is_an_envelope_that_links_the_contract_and_the_control_api(
    client: FlaskClient,
) -> None:
    response = client.get("/")  # no Authorization header
    assert response.status_code == 200
    body = response.get_json()
    assert (body["code"], body["message"]) == (0, "SUCCEED")
    assert body["request_id"]
    data = body["data"]
    assert "Kling" in data["description"]
    links = data["links"]
    assert links["openapi"] == "http://localhost/openapi.json"
    assert links["health"] == "http://localhost/__mock/health"
    assert links["control"] == "http://localhost/__mock"
    assert "README" in links["readme"]
    assert {"GET /__mock/health", "POST /__mock/reset", "POST /__mock/clock/advance"} <= set(
        data["control"]
    )
    for name in ("openapi", "health"):
        assert client.get(links[name].removeprefix("http://localhost")).status_code == 200
