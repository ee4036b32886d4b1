"""Models the reference marks as withdrawn can be turned off: refused like a model not served."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from mock_server.config import WITHDRAWN_2026_09_15
from tests.conftest import IMAGES, accepted, create, with_config

pytestmark = pytest.mark.both_stores


def refused_as_invalid(response: object, model: str) -> None:
    assert response.status_code == 400  # type: ignore[attr-defined]
    body = response.json  # type: ignore[attr-defined]
    assert body["code"] == 1201 and body["message"] == f"model_name '{model}' is invalid"


def test_every_model_is_served_by_default(client: FlaskClient, auth: dict[str, str]) -> None:
    accepted(create(client, auth, model_name="kling-v1"))


@with_config(withdrawn_models="2026-09-15")
def test_the_2026_09_15_preset_turns_off_the_old_models(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    refused_as_invalid(create(client, auth), "kling-v1")  # the default model, too
    refused_as_invalid(create(client, auth, model_name="kling-v2-1-master"), "kling-v2-1-master")
    accepted(create(client, auth, model_name="kling-v2-6"))
    refused_as_invalid(create(client, auth, IMAGES, model_name="kling-v2"), "kling-v2")
    accepted(create(client, auth, IMAGES, model_name="kling-v2-1"))  # Image 2.1 stays
    refused_as_invalid(create(client, auth, model="kling-v1-6"), "kling-v1-6")  # the alias
    tasks = client.get("/__mock/tasks").json["data"]  # type: ignore[index]
    assert len(tasks) == 2  # the refused ones made nothing


@with_config(withdrawn_models=["kling-v2-6"])
def test_a_list_turns_a_model_off_in_every_family(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    refused_as_invalid(create(client, auth, model_name="kling-v2-6"), "kling-v2-6")
    accepted(create(client, auth))


def test_models_can_be_turned_off_and_on_at_run_time(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    off = {"withdrawn_models": {"text2video": ["kling-v1"]}}
    assert client.patch("/__mock/config", json=off).status_code == 200
    refused_as_invalid(create(client, auth), "kling-v1")
    accepted(create(client, auth, IMAGES))  # another family: still served
    assert client.patch("/__mock/config", json={"withdrawn_models": []}).status_code == 200
    accepted(create(client, auth))


@pytest.mark.parametrize("bad", ["2025-01-01", [""], {"text2video": "kling-v1"}, 7])
def test_a_bad_value_is_refused(client: FlaskClient, bad: object) -> None:
    answer = client.patch("/__mock/config", json={"withdrawn_models": bad})
    assert answer.status_code == 400 and answer.json["code"] == 1201  # type: ignore[index]


def test_the_preset_names_only_models_the_contract_knows() -> None:
    from kling_testkit.spec import families, field

    for family, names in WITHDRAWN_2026_09_15.items():
        if family not in families():
            continue  # a family the mock does not serve yet
        known = field(families()[family].request_schema, "model_name")["enum"]
        assert set(names) <= set(known), family
