"""Namespaces: ``/ns/<name>/...`` is a whole mock of its own, for clients that only know a URL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from kling_testkit.client import KlingClient
from kling_testkit.control import MockControl
from tests.conftest import CREDS, PROMPT, T2V
from tests.test_bad_input import assert_refused

pytestmark = pytest.mark.both_stores  # the shared store suite


def ns(name: str, path: str) -> str:
    return f"/ns/{name}{path}"


def make(client: FlaskClient, auth: dict[str, str], space: str, **body: Any) -> str:
    response = client.post(ns(space, T2V), json={"prompt": PROMPT, **body}, headers=auth)
    assert response.status_code == 200, response.json
    task_id: str = response.json["data"]["task_id"]  # type: ignore[index]
    return task_id


def listed(client: FlaskClient, auth: dict[str, str], prefix: str) -> list[str]:
    data = client.get(f"{prefix}{T2V}", headers=auth).json["data"]  # type: ignore[index]
    return [t["task_id"] for t in data]


def test_each_namespace_has_its_own_tasks(client: FlaskClient, auth: dict[str, str]) -> None:
    make(client, auth, "a", external_task_id="same")
    make(client, auth, "b", external_task_id="same")  # no clash: another mock
    assert len(listed(client, auth, "/ns/a")) == 1
    assert len(listed(client, auth, "/ns/b")) == 1
    assert listed(client, auth, "") == []  # the root mock saw nothing


def test_each_namespace_has_its_own_clock_rules_and_reset(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    task_a = make(client, auth, "a")
    task_b = make(client, auth, "b")
    client.post(ns("a", "/__mock/clock/advance"), json={"seconds": 1000})
    status = {
        name: client.get(ns(name, f"{T2V}/{task}"), headers=auth).json["data"]["task_status"]  # type: ignore[index]
        for name, task in (("a", task_a), ("b", task_b))
    }
    assert status == {"a": "succeed", "b": "submitted"}
    rule = {"action": {"type": "error", "code": 5000}}
    assert client.post(ns("b", "/__mock/faults"), json=rule).status_code == 200
    assert client.get(ns("a", T2V), headers=auth).status_code == 200
    assert client.get(ns("b", T2V), headers=auth).status_code == 500
    client.post(ns("b", "/__mock/reset"))
    assert listed(client, auth, "/ns/b") == [] and listed(client, auth, "/ns/a") == [task_a]


def test_a_namespace_journal_and_config_are_its_own(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    make(client, auth, "a")
    client.patch(ns("b", "/__mock/config"), json={"failure_message": "only in b"})
    journal = client.get(ns("a", "/__mock/requests")).json["data"]["entries"]  # type: ignore[index]
    assert [e["path"] for e in journal] == [T2V]
    assert client.get(ns("b", "/__mock/requests")).json["data"]["entries"] == []  # type: ignore[index]
    config_a = client.get(ns("a", "/__mock/config")).json["data"]  # type: ignore[index]
    assert config_a["failure_message"] != "only in b"


def test_result_urls_stay_in_their_namespace(client: FlaskClient, auth: dict[str, str]) -> None:
    task = make(client, auth, "a")
    client.post(ns("a", "/__mock/clock/advance"), json={"seconds": 1000})
    found = client.get(ns("a", f"{T2V}/{task}"), headers=auth).json["data"]  # type: ignore[index]
    url = urlsplit(found["task_result"]["videos"][0]["url"])
    assert url.path.startswith("/ns/a/media/")
    assert client.get(f"{url.path}?{url.query}").mimetype == "video/mp4"
    elsewhere = f"{url.path.removeprefix('/ns/a')}?{url.query}"
    assert_refused(client.get(elsewhere), "signature", 403, 1103)  # not the root's file


def test_public_base_url_keeps_the_namespace(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    client = make_app(public_base_url="https://cdn.example/mock").test_client()
    task = make(client, auth, "a")
    client.post(ns("a", "/__mock/clock/advance"), json={"seconds": 1000})
    found = client.get(ns("a", f"{T2V}/{task}"), headers=auth).json["data"]  # type: ignore[index]
    assert found["task_result"]["videos"][0]["url"].startswith(
        "https://cdn.example/mock/ns/a/media/"
    )


def test_namespaces_are_bounded_least_recently_used_first(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    client = make_app(max_namespaces=3).test_client()
    for name in ("a", "b", "c"):
        make(client, auth, name)
    listed(client, auth, "/ns/a")  # a is used again: b is now the oldest
    make(client, auth, "d")
    names = client.get("/__mock/namespaces").json["data"]  # type: ignore[index]
    assert names == {"names": ["c", "a", "d"], "limit": 3}
    assert listed(client, auth, "/ns/b") == []  # b was dropped; using it makes a fresh one


def test_a_namespace_can_be_dropped(client: FlaskClient, auth: dict[str, str]) -> None:
    make(client, auth, "gone")
    assert client.delete("/__mock/namespaces/gone").json["data"] == {"dropped": "gone"}  # type: ignore[index]
    assert "gone" not in client.get("/__mock/namespaces").json["data"]["names"]  # type: ignore[index]
    assert_refused(client.delete("/__mock/namespaces/gone"), "no namespace", 404, 1203)
    make(client, auth, "x")
    make(client, auth, "y")
    assert client.delete("/__mock/namespaces").json["data"] == {"dropped": 2}  # type: ignore[index]


def test_namespaces_are_managed_on_the_root_only(client: FlaskClient) -> None:
    assert_refused(client.get(ns("a", "/__mock/namespaces")), "root mock", 404, 1203)


@pytest.mark.parametrize("name", ["", "-lead", "a" * 65, "sp ace", "dot/slash"])
def test_a_bad_namespace_name_is_an_unknown_path(client: FlaskClient, name: str) -> None:
    response = client.get(f"/ns/{name}/__mock/health")
    assert_refused(response, "no such endpoint", 404, 1203)


def test_a_namespace_control_api_is_guarded(client: FlaskClient) -> None:
    response = client.post(ns("a", "/__mock/reset"), headers={"Origin": "https://evil.example"})
    assert_refused(response, "another site", 403, 1103)


def test_a_client_with_a_namespace_base_url_works_untouched(
    live_server: str, tmp_path: Any
) -> None:
    base = f"{live_server}/ns/team-1"
    control = MockControl(base)
    client = KlingClient(base, CREDS, clock=control.clock.now, sleep=control.clock.advance)
    task_id = client.text2video("a lighthouse")["task_id"]
    video = client.wait("text2video", task_id, poll_interval=60)["task_result"]["videos"][0]
    assert client.download(video, tmp_path / "v.mp4") > 1000
    assert [t["task"]["task_id"] for t in control.tasks()] == [task_id]
    assert MockControl(live_server).tasks() == []
    assert requests.get(f"{live_server}/__mock/namespaces", timeout=5).json()["data"]["names"] == [
        "team-1"
    ]
