"""Failures: a seeded failure rate per family, and the content policy on blocked terms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import IMAGES, T2V

pytestmark = pytest.mark.both_stores  # the shared store suite


def finish(client: FlaskClient, auth: dict[str, str], path: str, task_id: str) -> dict[str, Any]:
    client.post("/__mock/clock/advance", json={"seconds": 3600})
    task: dict[str, Any] = client.get(f"{path}/{task_id}", headers=auth).json["data"]  # type: ignore[index]
    return task


def outcomes(make_app: Callable[..., Flask], auth: dict[str, str], seed: int) -> list[str]:
    client = make_app(seed=seed, failure_rate={"text2video": 0.3}).test_client()
    ids = [
        client.post(T2V, json={"prompt": f"shot {i}"}, headers=auth).json["data"]["task_id"]  # type: ignore[index]
        for i in range(60)
    ]
    client.post("/__mock/clock/advance", json={"seconds": 3600})
    return [client.get(f"{T2V}/{i}", headers=auth).json["data"]["task_status"] for i in ids]  # type: ignore[index]


def test_failure_rate_is_seeded_and_roughly_right(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    first = outcomes(make_app, auth, seed=3)
    assert first == outcomes(make_app, auth, seed=3)
    assert first != outcomes(make_app, auth, seed=4)
    assert 8 <= first.count("failed") <= 30
    assert set(first) == {"succeed", "failed"}


def test_failed_task_has_a_message_and_no_result(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    client = make_app(failure_rate={"text2video": 1.0}, failure_message="GPU on fire").test_client()
    task_id = client.post(T2V, json={"prompt": "x"}, headers=auth).json["data"]["task_id"]  # type: ignore[index]
    client.post("/__mock/clock/advance", json={"seconds": 129})
    assert client.get(f"{T2V}/{task_id}", headers=auth).json["data"]["task_status"] == "processing"  # type: ignore[index]
    task = finish(client, auth, T2V, task_id)
    assert (task["task_status"], task["task_status_msg"]) == ("failed", "GPU on fire")
    assert task["task_result"] == {} and task["final_unit_deduction"] == "0"


def test_failure_rate_is_per_family(make_app: Callable[..., Flask], auth: dict[str, str]) -> None:
    client = make_app(failure_rate={"text2video": 1.0}).test_client()
    task_id = client.post(IMAGES, json={"prompt": "x"}, headers=auth).json["data"]["task_id"]  # type: ignore[index]
    assert finish(client, auth, IMAGES, task_id)["task_status"] == "succeed"


@pytest.mark.parametrize(
    "prompt",
    [
        "A VIOLENT storm",
        "a \uff56\uff49\uff4f\uff4c\uff45\uff4e\uff54 storm",
        "a vio\u200blent storm",
        "a  Violent\tstorm",
    ],
)
def test_blocked_terms_are_refused_whatever_the_case_or_form(
    make_app: Callable[..., Flask], auth: dict[str, str], prompt: str
) -> None:
    client = make_app(blocked_terms=["violent"]).test_client()
    refused = client.post(T2V, json={"prompt": prompt}, headers=auth)
    assert (refused.status_code, refused.json["code"]) == (400, 1301)  # type: ignore[index]
    assert client.get("/__mock/tasks").json["data"] == []  # type: ignore[index]


def test_policy_can_fail_the_task_instead(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    client = make_app(blocked_terms=["violent"], policy_action="fail").test_client()
    created = client.post(T2V, json={"prompt": "a violent storm"}, headers=auth)
    assert created.status_code == 200
    task = finish(client, auth, T2V, created.json["data"]["task_id"])  # type: ignore[index]
    assert task["task_status"] == "failed"
    assert task["task_status_msg"] == "Failure to pass the risk control system"


def test_policy_ignores_clean_prompts_and_negative_prompts(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    client = make_app(blocked_terms=["violent"]).test_client()
    body = {"prompt": "a calm lake", "negative_prompt": "violent, blurry"}
    assert client.post(T2V, json=body, headers=auth).status_code == 200


def test_policy_can_change_at_run_time(client: FlaskClient, auth: dict[str, str]) -> None:
    assert client.post(T2V, json={"prompt": "a dragon"}, headers=auth).status_code == 200
    client.patch("/__mock/config", json={"blocked_terms": ["dragon"]})
    assert client.post(T2V, json={"prompt": "a DRAGON"}, headers=auth).status_code == 400
