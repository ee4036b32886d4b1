"""The request journal as users of pytest-httpserver's ``log`` and respx's ``calls`` expect it."""

from __future__ import annotations

import pytest

from kling_testkit.client import KlingClient
from kling_testkit.control import MockControl
from kling_testkit.retry import RetryPolicy
from mock_server import Backend
from tests.conftest import CREDS, T2V


@pytest.fixture
def control(live_server: str) -> MockControl:
    return MockControl(live_server)


@pytest.fixture
def client(live_server: str, backend: Backend) -> KlingClient:
    return KlingClient(
        live_server, CREDS, clock=backend.now, sleep=backend.advance, retry=RetryPolicy(attempts=1)
    )


def test_entries_carry_query_headers_and_body(client: KlingClient, control: MockControl) -> None:
    client.text2video("a lighthouse", external_task_id="j-1")
    client.list_tasks("text2video", page=2, size=5)
    create, listing = control.requests()
    assert create["body"] == '{"prompt": "a lighthouse", "external_task_id": "j-1"}'
    assert create["headers"]["Authorization"] == "Bearer ***"
    assert listing["query"] == "pageNum=2&pageSize=5"
    token = client.token()
    assert all(token not in str(entry) for entry in control.requests())


def test_a_large_body_is_kept_bounded(live_server: str, control: MockControl) -> None:
    import requests

    body = '{"prompt": "' + "x" * 100_000 + '"}'
    requests.post(
        f"{live_server}{T2V}", data=body, headers={"Content-Type": "application/json"}, timeout=10
    )
    entry = control.requests()[0]
    assert entry["body_bytes"] == len(body)
    assert len(entry["body"]) < 4200 and entry["body"].endswith("more]")


def test_filters(client: KlingClient, control: MockControl) -> None:
    client.text2video("a")
    client.list_tasks("text2video")
    client.get_task("text2video", client.text2video("b")["task_id"])
    assert [e["method"] for e in control.requests(method="post")] == ["POST", "POST"]
    assert len(control.requests(path="/v1/videos/text2video/*")) == 1
    assert len(control.requests(method="GET", status=200)) == 2
    assert control.requests(code=1201) == []


def test_assert_requested_passes_and_returns_the_entries(
    client: KlingClient, control: MockControl
) -> None:
    client.text2video("a")
    client.text2video("b")
    found = control.assert_requested("POST", T2V, count=2, status=200)
    assert [e["body"] for e in found] == ['{"prompt": "a"}', '{"prompt": "b"}']
    control.assert_requested("post", "/v1/videos/*")


def test_assert_requested_fails_with_a_readable_difference(
    client: KlingClient, control: MockControl
) -> None:
    client.text2video("a")
    client.list_tasks("text2video", size=3)
    with pytest.raises(AssertionError) as caught:
        control.assert_requested("POST", T2V, count=2)
    message = str(caught.value)
    assert "expected POST /v1/videos/text2video 2 time(s), saw it 1 time(s)" in message
    assert "GET /v1/videos/text2video?pageNum=1&pageSize=3 -> 200 (code 0)" in message
    with pytest.raises(AssertionError, match="at least once, saw it 0"):
        control.assert_requested("GET", "/v1/images/generations")
