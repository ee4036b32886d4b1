"""Response profiles: the 2025 shapes, per mock, per namespace and per request."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from kling_testkit.client import KlingClient
from mock_server import Backend
from mock_server.profiles import current_task_id, old_task_id, old_video_id
from tests.conftest import CREDS, T2V, Receiver, accepted, create, wait_callbacks, with_config

pytestmark = pytest.mark.both_stores

OLD = {"X-Mock-Profile": "2025"}
OLD_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def advance(client: FlaskClient, seconds: float) -> None:
    assert client.post("/__mock/clock/advance", json={"seconds": seconds}).status_code == 200


def test_the_old_ids_are_a_spelling_of_the_current_ones() -> None:
    for task_id in ("100000000000000000", "867283741759111202", "999999999999999999"):
        old = old_task_id(task_id)
        assert OLD_ID.match(old) and current_task_id(old) == task_id
    assert current_task_id("867283741759111202") is None  # a current id is no old one
    assert current_task_id("CjI17WevH1IAAAAAAHmgsw") is None  # not one of ours
    assert UUID.match(old_video_id("867283741759111203"))


def test_the_current_profile_is_the_default(client: FlaskClient, auth: dict[str, str]) -> None:
    answer = create(client, auth)
    assert "task_info" in answer.json["data"]  # type: ignore[index]
    assert answer.json["request_id"] != answer.json["data"]["task_id"]  # type: ignore[index]
    assert "request_id" in client.get(T2V, headers=auth).json  # type: ignore[operator]


def test_a_request_can_ask_for_the_2025_shapes(client: FlaskClient, auth: dict[str, str]) -> None:
    headers = {**auth, **OLD}
    answer = client.post(T2V, json={"prompt": "a cat in the rain"}, headers=headers)
    body: dict[str, Any] = answer.json  # type: ignore[assignment]
    data = body["data"]
    assert "task_info" not in data and OLD_ID.match(data["task_id"])
    assert body["request_id"] == data["task_id"]  # as 2025 create answers had
    advance(client, 3600)
    task = client.get(f"{T2V}/{data['task_id']}", headers=headers).json["data"]  # type: ignore[index]
    assert task["task_id"] == data["task_id"] and task["task_status"] == "succeed"
    (video,) = task["task_result"]["videos"]
    assert UUID.match(video["id"]) and "watermark_url" not in video and "watermark_info" not in task
    assert client.get(video["url"]).status_code == 200  # the URL still works
    listed = client.get(T2V, headers=headers).json  # type: ignore[union-attr]
    assert "request_id" not in listed and listed["data"][0]["task_id"] == data["task_id"]
    current = client.get(T2V, headers=auth).json["data"][0]  # type: ignore[index]
    assert current_task_id(data["task_id"]) == current["task_id"]  # one task, two spellings


@with_config(response_profile="2025")
def test_a_mock_can_answer_in_the_2025_shapes(
    client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    task_id = accepted(create(client, auth, callback_url=f"{receiver.url}/hook"))
    assert OLD_ID.match(task_id)
    advance(client, 3600)
    wait_callbacks(client)
    assert receiver.calls and all(b"watermark_info" not in c["body"] for c in receiver.calls)
    assert all(task_id.encode() in c["body"] for c in receiver.calls)  # callbacks too
    current = {"X-Mock-Profile": "current"}  # and a request can ask for today's
    assert "task_info" in create(client, {**auth, **current}).json["data"]  # type: ignore[index]


def test_a_namespace_can_answer_in_the_2025_shapes(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    patch = client.patch("/ns/old/__mock/config", json={"response_profile": "2025"})
    assert patch.status_code == 200
    old = client.post("/ns/old" + T2V, json={"prompt": "a dog"}, headers=auth).json["data"]  # type: ignore[index]
    assert "task_info" not in old
    assert "task_info" in create(client, auth).json["data"]  # type: ignore[index]


def test_an_unknown_profile_is_refused_and_makes_nothing(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    answer = client.post(T2V, json={"prompt": "a cat"}, headers={**auth, "X-Mock-Profile": "1999"})
    assert answer.status_code == 400 and answer.json["code"] == 1201  # type: ignore[index]
    assert "X-Mock-Profile" in answer.json["message"]  # type: ignore[index]
    assert client.get("/__mock/tasks").json["data"] == []  # type: ignore[index]


@with_config(response_profile="2025")
def test_our_client_works_with_the_2025_shapes(
    live_server: str, backend: Backend, tmp_path: Path
) -> None:
    client = KlingClient(live_server, CREDS, timeout=5, clock=backend.now, sleep=backend.advance)
    task = client.wait("text2video", client.text2video("a lantern in the fog"))
    assert OLD_ID.match(task["task_id"])
    assert client.download(task["task_result"]["videos"][0], tmp_path / "v.mp4") > 0
