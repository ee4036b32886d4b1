"""Result URLs are signed and expire on the mock's clock after the configured TTL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import IMAGES, T2V

pytestmark = pytest.mark.both_stores  # the shared store suite

TTL = 600
ENDS = 130  # default text2video: 10 s queued + 120 s processing


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(result_ttl_s=TTL)


def video_url(client: FlaskClient, auth: dict[str, str], submit: Callable[..., Any]) -> str:
    task_id = submit(T2V)["task_id"]
    client.post("/__mock/clock/advance", json={"seconds": ENDS})
    task = client.get(f"{T2V}/{task_id}", headers=auth).json["data"]  # type: ignore[index]
    url: str = task["task_result"]["videos"][0]["url"]
    return url


def get(client: FlaskClient, url: str) -> Any:
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def test_url_carries_its_expiry(client: FlaskClient, auth: dict[str, str], submit: Any) -> None:
    query = parse_qs(urlsplit(video_url(client, auth, submit)).query)
    assert int(query["expires"][0]) == 1_790_000_000 + ENDS + TTL
    assert len(query["signature"][0]) == 64


def test_url_works_until_its_ttl_and_is_refused_one_second_after(
    client: FlaskClient, auth: dict[str, str], submit: Any
) -> None:
    url = video_url(client, auth, submit)
    client.post("/__mock/clock/advance", json={"seconds": TTL - 1})
    assert get(client, url).status_code == 200
    client.post("/__mock/clock/advance", json={"seconds": 2})
    refused = get(client, url)
    assert refused.status_code == 403 and refused.mimetype == "application/json"
    assert refused.json["code"] == 1103 and "expired" in refused.json["message"]


def test_fresh_query_after_expiry_gives_the_same_dead_url(
    client: FlaskClient, auth: dict[str, str], submit: Any
) -> None:
    """Like the real service: the result is gone once the retention ends; clients must copy it."""
    url = video_url(client, auth, submit)
    client.post("/__mock/clock/advance", json={"seconds": TTL + 1})
    task_id = urlsplit(url).path.split("/")[2]
    again = client.get(f"{T2V}/{task_id}", headers=auth).json["data"]  # type: ignore[index]
    assert again["task_result"]["videos"][0]["url"] == url
    assert get(client, url).status_code == 403


@pytest.mark.parametrize("part", ["signature", "expires", "path"])
def test_tampered_url_is_refused(
    client: FlaskClient, auth: dict[str, str], submit: Any, part: str
) -> None:
    parts = urlsplit(video_url(client, auth, submit))
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    path = parts.path
    if part == "signature":
        query["signature"] = ("0" if query["signature"][0] != "0" else "1") + query["signature"][1:]
    elif part == "expires":
        query["expires"] = str(int(query["expires"]) + 86400)
    else:
        path = path.replace(".mp4", "-wm.mp4")
    refused = client.get(f"{path}?{urlencode(query)}")
    assert refused.status_code == 403
    assert "signature" in refused.json["message"]  # type: ignore[index]


def test_unsigned_url_is_refused(client: FlaskClient, auth: dict[str, str], submit: Any) -> None:
    url = video_url(client, auth, submit)
    refused = client.get(urlsplit(url).path)
    assert refused.status_code == 403 and "not signed" in refused.json["message"]  # type: ignore[index]


def test_ttl_can_be_seconds(make_app: Callable[..., Flask], auth: dict[str, str]) -> None:
    client = make_app(result_ttl_s=5).test_client()
    task_id = client.post(IMAGES, json={"prompt": "a kite"}, headers=auth).json["data"]["task_id"]  # type: ignore[index]
    client.post("/__mock/clock/advance", json={"seconds": 14})
    url = client.get(f"{IMAGES}/{task_id}", headers=auth).json["data"]["task_result"]["images"][0][
        "url"
    ]  # type: ignore[index]
    assert get(client, url).status_code == 200
    client.post("/__mock/clock/advance", json={"seconds": 6})
    assert get(client, url).status_code == 403


def test_default_ttl_is_thirty_days(make_app: Callable[..., Flask], auth: dict[str, str]) -> None:
    client = make_app().test_client()
    task_id = client.post(T2V, json={"prompt": "x"}, headers=auth).json["data"]["task_id"]  # type: ignore[index]
    client.post("/__mock/clock/advance", json={"seconds": ENDS})
    url = client.get(f"{T2V}/{task_id}", headers=auth).json["data"]["task_result"]["videos"][0][
        "url"
    ]  # type: ignore[index]
    client.post("/__mock/clock/advance", json={"seconds": 30 * 86400 - 1})
    assert get(client, url).status_code == 200
    client.post("/__mock/clock/advance", json={"seconds": 2})
    assert get(client, url).status_code == 403
