"""Pitfall 3: crashing on errors. Inject them with rules and scenarios; the client must cope."""

from __future__ import annotations

import pytest
import requests

from kling_testkit.client import KlingClient
from kling_testkit.control import MockControl
from kling_testkit.errors import ProtocolError, ServerError, TransportError


def test_a_server_error_is_retried(kling_mock: MockControl, kling_client: KlingClient) -> None:
    kling_mock.add_fault(match={"method": "POST"}, action={"type": "error", "code": 5000}, times=2)
    assert kling_client.text2video("a lighthouse")["task_status"] == "submitted"
    assert [r["code"] for r in kling_mock.requests()] == [5000, 5000, 0]


def test_a_persistent_outage_becomes_a_typed_error(
    kling_mock: MockControl, kling_client: KlingClient
) -> None:
    kling_mock.add_fault(action={"type": "error", "code": 5001})
    with pytest.raises(ServerError) as caught:
        kling_client.text2video("a lighthouse")
    assert (caught.value.code, caught.value.http_status) == (5001, 503)
    assert caught.value.request_id


def test_a_broken_body_is_a_protocol_error_not_a_crash(
    kling_mock: MockControl, kling_client: KlingClient
) -> None:
    kling_mock.add_fault(action={"type": "transport", "fault": "malformed_json"}, times=1)
    with pytest.raises(ProtocolError, match="not JSON"):
        kling_client.text2video("a lighthouse")


def test_a_reset_connection_is_retried_without_a_second_task(
    kling_mock: MockControl, kling_client: KlingClient
) -> None:
    kling_mock.add_fault(action={"type": "transport", "fault": "reset"}, times=1)
    created = kling_client.text2video("a lighthouse")
    # The client named the task (external_task_id), so retrying the create was safe.
    assert [t["task"]["task_id"] for t in kling_mock.tasks()] == [created["task_id"]]
    assert [e["fault"] for e in kling_mock.requests()] == ["reset", None]


def test_a_connection_that_keeps_failing_is_a_typed_error(
    kling_mock: MockControl, kling_client: KlingClient
) -> None:
    kling_mock.add_fault(action={"type": "transport", "fault": "reset"})
    with pytest.raises(TransportError) as caught:
        kling_client.text2video("a lighthouse")
    assert isinstance(caught.value.__cause__, requests.ConnectionError)  # the cause is kept
    assert kling_mock.tasks() == []  # the mock dropped each connection before creating
    assert {e["fault"] for e in kling_mock.requests()} == {"reset"}
