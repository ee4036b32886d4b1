"""The client keeps its promises (issue 8): capped waits, one deadline, typed transport errors,
idempotent creates, downloads that trust the server, tokens on the right clock.

All on the mock's manual clock: the client's sleeps advance it, so nothing here waits.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from kling_testkit.client import KlingClient
from kling_testkit.errors import (
    KlingError,
    RateLimitError,
    ResultExpired,
    ServerError,
    TransportError,
    WaitTimeout,
)
from kling_testkit.retry import RetryPolicy
from mock_server import Backend
from tests.conftest import CREDS, clock_driven_client

T2V = "/v1/videos/text2video"


@pytest.fixture
def slept(backend: Backend) -> list[float]:
    return []


@pytest.fixture
def client(live_server: str, backend: Backend, slept: list[float]) -> KlingClient:
    """A client whose sleeps move the mock's manual clock (and are recorded)."""
    return clock_driven_client(live_server, backend, slept, CREDS)


def entries(backend: Backend) -> list[dict[str, object]]:
    found: list[dict[str, object]] = backend.journal.snapshot()["entries"]
    return found


# ------------------------------------------------------------------ Retry-After has a cap


def test_a_retry_after_beyond_the_cap_is_not_waited_for(
    client: KlingClient, backend: Backend, slept: list[float]
) -> None:
    backend.add_rules([{"action": {"type": "error", "code": 1302, "retry_after": 86400}}])
    with pytest.raises(RateLimitError) as caught:
        client.list_tasks("text2video")
    assert caught.value.retry_after == 86400
    assert slept == []  # not a day of sleep
    assert len(entries(backend)) == 1


def test_a_retry_after_within_the_cap_is_honoured(
    client: KlingClient, backend: Backend, slept: list[float]
) -> None:
    backend.add_rules([{"action": {"type": "error", "code": 1302, "retry_after": 7}, "times": 1}])
    assert client.list_tasks("text2video") == []
    assert slept == [7]


# ------------------------------------------------------------------ one deadline


def test_wait_keeps_its_deadline_through_retries(
    client: KlingClient, backend: Backend, slept: list[float]
) -> None:
    task_id = client.text2video("a slow lighthouse")["task_id"]
    rule = {
        "match": {"method": "GET"},
        "action": {"type": "error", "code": 1302, "retry_after": 60},
    }
    backend.add_rules([rule])
    start = backend.now()
    with pytest.raises((WaitTimeout, RateLimitError)):
        client.wait("text2video", task_id, timeout=10, poll_interval=1)
    assert backend.now() - start <= 10  # not 9,000 mock seconds of retries
    assert sum(slept) <= 10


# ------------------------------------------------------------------ transport failures


def test_a_reset_connection_is_a_transport_error_with_its_cause(
    client: KlingClient, backend: Backend
) -> None:
    backend.add_rules([{"action": {"type": "transport", "fault": "reset"}}])
    with pytest.raises(TransportError) as caught:
        client.list_tasks("text2video")
    assert isinstance(caught.value, KlingError)
    assert isinstance(caught.value.__cause__, requests.RequestException)


def test_a_timeout_is_a_transport_error(live_server: str, backend: Backend) -> None:
    backend.add_rules([{"action": {"type": "latency", "seconds": 1}}])
    client = KlingClient(live_server, CREDS, timeout=0.05, retry=RetryPolicy(attempts=1))
    with pytest.raises(TransportError) as caught:
        client.list_tasks("text2video")
    assert isinstance(caught.value.__cause__, requests.Timeout)


def test_a_truncated_download_is_a_transport_error(
    client: KlingClient, backend: Backend, tmp_path: Path
) -> None:
    task_id = client.text2video("a bicycle")["task_id"]
    video = client.wait("text2video", task_id, poll_interval=60)["task_result"]["videos"][0]
    backend.add_rules(
        [{"match": {"path": "/media/*"}, "action": {"type": "transport", "fault": "truncated"}}]
    )
    with pytest.raises(TransportError):
        client.download(video, tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []


def test_gets_are_retried_after_a_reset(client: KlingClient, backend: Backend) -> None:
    backend.add_rules([{"action": {"type": "transport", "fault": "reset"}, "times": 1}])
    assert client.list_tasks("text2video") == []
    assert [e["fault"] for e in entries(backend)] == ["reset", None]


# ------------------------------------------------------------------ idempotent creates


def test_a_create_whose_answer_is_lost_is_not_created_twice(
    client: KlingClient, backend: Backend
) -> None:
    rule = {
        "match": {"method": "POST"},
        "action": {"type": "transport", "fault": "reset", "when": "after"},
        "times": 1,
    }
    backend.add_rules([rule])
    created = client.text2video("a lighthouse")
    tasks = backend.all_tasks()
    assert len(tasks) == 1  # the first try created it; the retry found it
    assert created["task_id"] == tasks[0].task_id
    assert tasks[0].external_task_id  # the client named it, so a retry could find it
    assert [e["method"] for e in entries(backend)][:2] == ["POST", "POST"]


def test_the_callers_external_task_id_is_kept(client: KlingClient, backend: Backend) -> None:
    client.text2video("a lighthouse", external_task_id="mine-1")
    assert backend.all_tasks()[0].external_task_id == "mine-1"


def test_without_retries_no_external_task_id_is_added(live_server: str, backend: Backend) -> None:
    client = KlingClient(live_server, CREDS, retry=RetryPolicy(attempts=1))
    client.text2video("a lighthouse")
    assert backend.all_tasks()[0].external_task_id is None


def test_a_create_is_retried_on_5xx_with_the_same_key(
    client: KlingClient, backend: Backend
) -> None:
    backend.add_rules(
        [{"match": {"method": "POST"}, "action": {"type": "error", "code": 5000}, "times": 2}]
    )
    client.text2video("a lighthouse")
    assert len(backend.all_tasks()) == 1
    assert [e["status"] for e in entries(backend)] == [500, 500, 200]


# ------------------------------------------------------------------ downloads


@pytest.mark.parametrize("status", [403, 404, 410])
def test_a_gone_result_is_result_expired(
    client: KlingClient, backend: Backend, tmp_path: Path, status: int
) -> None:
    task_id = client.text2video("a bicycle")["task_id"]
    video = client.wait("text2video", task_id, poll_interval=60)["task_result"]["videos"][0]
    code = {403: 1103, 404: 1203, 410: 1203}[status]
    backend.add_rules(
        [
            {
                "match": {"path": "/media/*"},
                "action": {"type": "error", "code": code, "status": status},
            }
        ]
    )
    with pytest.raises(ResultExpired):
        client.download(video, tmp_path / "v.mp4")


def test_download_does_not_compare_mock_time_with_the_wall_clock(
    live_server: str, backend: Backend, tmp_path: Path
) -> None:
    wall_client = KlingClient(live_server, CREDS)  # its clock is wall time
    task_id = wall_client.text2video("a bicycle")["task_id"]
    backend.advance(200)
    video = wall_client.get_task("text2video", task_id)["task_result"]["videos"][0]
    expires = int(parse_qs(urlsplit(video["url"]).query)["expires"][0])
    assert expires < time.time()  # mock time runs behind the wall here; the server still serves
    assert wall_client.download(video, tmp_path / "v.mp4") > 1000


# ------------------------------------------------------------------ gateways


def test_a_gateway_page_on_a_get_is_a_server_error_and_retried(
    client: KlingClient, backend: Backend
) -> None:
    backend.add_rules([{"action": {"type": "gateway", "status": 502}, "times": 2}])
    assert client.list_tasks("text2video") == []
    assert [e["status"] for e in entries(backend)] == [502, 502, 200]


def test_a_lasting_gateway_failure_says_what_came_back(live_server: str, backend: Backend) -> None:
    once = KlingClient(live_server, CREDS, retry=RetryPolicy(attempts=1))
    backend.add_rules([{"action": {"type": "gateway", "status": 504}}])
    with pytest.raises(ServerError) as caught:
        once.list_tasks("text2video")
    assert caught.value.http_status == 504
    assert "without a Kling envelope" in str(caught.value) and "504 Gateway" in str(caught.value)


def test_a_create_lost_behind_a_gateway_is_not_created_twice(
    client: KlingClient, backend: Backend
) -> None:
    lost = {"type": "gateway", "status": 502, "when": "after"}
    backend.add_rules([{"match": {"method": "POST"}, "action": lost, "times": 1}])
    created = client.text2video("a lighthouse")
    tasks = backend.all_tasks()
    assert len(tasks) == 1 and created["task_id"] == tasks[0].task_id
    assert [e["status"] for e in entries(backend)][:1] == [502]
