"""The task lifecycle on the manual clock: submitted -> processing -> succeed, from the timeline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kling_testkit.spec import validate
from tests.conftest import IMAGES, T2V

pytestmark = pytest.mark.both_stores  # the shared store suite

Submit = Callable[..., dict[str, Any]]


def advance(client: FlaskClient, seconds: float) -> None:
    assert client.post("/__mock/clock/advance", json={"seconds": seconds}).status_code == 200


def query(client: FlaskClient, auth: dict[str, str], path: str, task_id: str) -> dict[str, Any]:
    response = client.get(f"{path}/{task_id}", headers=auth)
    assert response.status_code == 200
    data: dict[str, Any] = response.json["data"]  # type: ignore[index]
    return data


def test_video_task_moves_through_each_status_at_its_time(
    client: FlaskClient, auth: dict[str, str], submit: Submit
) -> None:
    created = submit(T2V)
    assert created["task_status"] == "submitted"
    assert created["created_at"] == created["updated_at"] == 1_790_000_000_000
    task_id = created["task_id"]
    steps = [
        (9.999, "submitted", 0),
        (0.001, "processing", 10_000),
        (119.999, "processing", 10_000),
        (0.001, "succeed", 130_000),
    ]
    for seconds, status, updated_offset in steps:
        advance(client, seconds)
        task = query(client, auth, T2V, task_id)
        assert task["task_status"] == status
        assert task["updated_at"] == created["created_at"] + updated_offset


def test_terminal_status_stays(client: FlaskClient, auth: dict[str, str], submit: Submit) -> None:
    task_id = submit(T2V)["task_id"]
    advance(client, 131)
    first = query(client, auth, T2V, task_id)
    advance(client, 10 * 86400)
    assert query(client, auth, T2V, task_id) == {**first}


def test_result_is_absent_until_success(
    client: FlaskClient, auth: dict[str, str], submit: Submit
) -> None:
    task_id = submit(T2V)["task_id"]
    advance(client, 60)
    task = query(client, auth, T2V, task_id)
    assert task["task_result"] == {}
    assert task["task_status_msg"] == ""


def test_finished_video_task_matches_the_contract(
    client: FlaskClient, auth: dict[str, str], submit: Submit
) -> None:
    task_id = submit(T2V, duration="10", external_task_id="shop-42")["task_id"]
    advance(client, 10 + 120 * 1.8)
    task = query(client, auth, T2V, task_id)
    validate("Task", task)
    assert task["task_info"] == {"external_task_id": "shop-42"}
    assert task["watermark_info"] == {"enabled": False}
    (video,) = task["task_result"]["videos"]
    assert video["duration"] == "10"
    assert video["id"].isdigit() and video["id"] != task_id
    assert video["url"].startswith("http://") and video["watermark_url"] != video["url"]


def test_image_task_returns_n_indexed_images(
    client: FlaskClient, auth: dict[str, str], submit: Submit
) -> None:
    task_id = submit(IMAGES, n=3, aspect_ratio="1:1")["task_id"]
    advance(client, 2 + 12 * 1.5)
    task = query(client, auth, IMAGES, task_id)
    validate("Task", task)
    assert [image["index"] for image in task["task_result"]["images"]] == [0, 1, 2]


@pytest.mark.parametrize(
    ("body", "run_s"),
    [
        ({}, 120),
        ({"mode": "pro"}, 180),
        ({"duration": "10"}, 216),
        ({"mode": "pro", "duration": "10"}, 324),
    ],
)
def test_options_stretch_processing_time(
    client: FlaskClient, auth: dict[str, str], submit: Submit, body: dict[str, Any], run_s: float
) -> None:
    task_id = submit(T2V, **body)["task_id"]
    advance(client, 10 + run_s - 0.01)
    assert query(client, auth, T2V, task_id)["task_status"] == "processing"
    advance(client, 0.01)
    assert query(client, auth, T2V, task_id)["task_status"] == "succeed"


def test_spread_varies_durations_but_a_seed_repeats_them(make_app: Callable[..., Flask]) -> None:
    def timelines(seed: int) -> list[tuple[str, float]]:
        app = make_app(seed=seed, duration_spread=0.3)
        mock = app.extensions["kling_mock"]
        client = app.test_client()
        headers = {"Authorization": f"Bearer {mock.config.accounts[0].api_key}"}
        for _ in range(5):
            client.post(T2V, json={"prompt": "waves"}, headers=headers)
        return [(t.task_id, t.ends_at) for t in mock.all_tasks()]

    first = timelines(11)
    assert first == timelines(11)
    assert first != timelines(12)
    assert len({ends for _, ends in first}) == 5
    assert all(0.5 * 130 <= ends - 1_790_000_000 <= 2 * 130 for _, ends in first)
