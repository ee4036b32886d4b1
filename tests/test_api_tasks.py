"""Create, query and list tasks of each family; the envelope on every answer."""

from __future__ import annotations

import base64
import struct
import uuid
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from kling_testkit.spec import validate
from tests.conftest import I2V, IMAGES, T2V

pytestmark = pytest.mark.both_stores  # the shared store suite

Submit = Callable[..., dict[str, Any]]


def png_b64(width: int, height: int) -> str:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload)
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return base64.b64encode(png).decode()


def envelope(response: Any, status: int = 200) -> Any:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.json
    uuid.UUID(body["request_id"])
    if status == 200:
        validate("Envelope", body)
        return body["data"]
    validate("ErrorEnvelope", body)
    return body


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (T2V, {"prompt": "a paper boat on a river"}),
        (I2V, {"image": "https://example.com/start.png", "prompt": "the boat drifts"}),
        (I2V, {"image_tail": png_b64(320, 320)}),
        (IMAGES, {"prompt": "a paper boat, watercolour", "n": 2, "aspect_ratio": "3:4"}),
    ],
)
def test_each_family_creates_a_submitted_task(
    client: FlaskClient, auth: dict[str, str], path: str, body: dict[str, Any]
) -> None:
    data = envelope(client.post(path, json=body, headers=auth))
    validate("TaskCreated", data)
    assert data["task_info"] == {}
    fetched = envelope(client.get(f"{path}/{data['task_id']}", headers=auth))
    validate("Task", fetched)
    assert fetched["task_status"] == "submitted"


def test_task_is_found_by_external_id_in_path_and_query(
    client: FlaskClient, auth: dict[str, str], submit: Submit
) -> None:
    task_id = submit(T2V, external_task_id="order/7 é")["task_id"]
    by_path = envelope(client.get(f"{T2V}/order/7 é", headers=auth))
    by_query = envelope(
        client.get(T2V, query_string={"external_task_id": "order/7 é"}, headers=auth)
    )
    assert by_path["task_id"] == by_query["task_id"] == task_id
    assert isinstance(by_query, dict)


def test_unknown_task_is_404_1203(client: FlaskClient, auth: dict[str, str]) -> None:
    body = envelope(client.get(f"{T2V}/123456789012345678", headers=auth), 404)
    assert body["code"] == 1203
    missing = envelope(
        client.get(T2V, query_string={"external_task_id": "nope"}, headers=auth), 404
    )
    assert missing["code"] == 1203


def test_task_is_not_found_under_another_family(
    client: FlaskClient, auth: dict[str, str], submit: Submit
) -> None:
    task_id = submit(T2V)["task_id"]
    assert envelope(client.get(f"{IMAGES}/{task_id}", headers=auth), 404)["code"] == 1203


def test_list_is_newest_first_and_paged(
    client: FlaskClient, auth: dict[str, str], submit: Submit
) -> None:
    ids = [submit(T2V, prompt=f"shot {i}")["task_id"] for i in range(7)]
    submit(IMAGES)  # another family never shows up in this list
    newest_first = list(reversed(ids))
    everything = envelope(client.get(T2V, headers=auth))
    assert [t["task_id"] for t in everything] == newest_first
    pages = [
        envelope(client.get(T2V, query_string={"pageNum": n, "pageSize": 3}, headers=auth))
        for n in (1, 2, 3, 4)
    ]
    assert [[t["task_id"] for t in page] for page in pages] == [
        newest_first[0:3],
        newest_first[3:6],
        newest_first[6:7],
        [],
    ]


def test_default_page_size_is_30(client: FlaskClient, auth: dict[str, str], submit: Submit) -> None:
    for i in range(31):
        submit(IMAGES, prompt=f"tile {i}")
    assert len(envelope(client.get(IMAGES, headers=auth))) == 30


def test_legacy_model_field_is_accepted(client: FlaskClient, auth: dict[str, str]) -> None:
    data = envelope(
        client.post(T2V, json={"prompt": "a kite", "model": "kling-v1-6"}, headers=auth)
    )
    tasks = envelope(client.get("/__mock/tasks"))
    assert tasks[0]["task"]["task_id"] == data["task_id"]
    assert tasks[0]["params"]["model_name"] == "kling-v1-6"


def test_unknown_model_is_404_1203_naming_the_models(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    body = envelope(
        client.post(T2V, json={"prompt": "x", "model_name": "kling-v9"}, headers=auth), 404
    )
    assert body["code"] == 1203
    assert "kling-v9" in body["message"] and "kling-v2-6" in body["message"]


def test_validation_error_names_the_field(client: FlaskClient, auth: dict[str, str]) -> None:
    body = envelope(
        client.post(T2V, json={"prompt": "x", "aspect_ratio": "4:3"}, headers=auth), 400
    )
    assert body["code"] == 1201
    assert "aspect_ratio" in body["message"] and "'16:9'" in body["message"]


def test_auth_is_checked_before_the_body(client: FlaskClient) -> None:
    body = envelope(client.post(T2V, data="not json"), 401)
    assert body["code"] == 1001
