"""Callbacks: the task object on each status change, signed, in order, retried on the clock."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from standardwebhooks.webhooks import Webhook

from kling_testkit.control import MockControl
from kling_testkit.webhooks import generate_secret, verify_webhook
from mock_server import Backend
from tests.conftest import T2V, Receiver, wait_callbacks

pytestmark = pytest.mark.both_stores  # the shared store suite

SECRET = generate_secret(b"callback tests")


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(callbacks={"secret": SECRET, "backoff_s": 1.0, "max_attempts": 3})


def attempts(client: FlaskClient, task_id: str | None = None) -> list[dict[str, Any]]:
    query = {"task_id": task_id} if task_id else {}
    return client.get("/__mock/callbacks", query_string=query).json["data"]["attempts"]  # type: ignore[index]


def advance(client: FlaskClient, seconds: float) -> None:
    """Move the manual clock; deliveries happen on the mock's sender thread, not in this call."""
    assert client.post("/__mock/clock/advance", json={"seconds": seconds}).status_code == 200


def deliver(client: FlaskClient, seconds: float) -> None:
    """Advance the clock, then wait until everything that fell due has been handled."""
    advance(client, seconds)
    assert wait_callbacks(client)["idle"] is True


def test_each_status_change_arrives_signed_and_in_order(
    client: FlaskClient, receiver: Receiver, submit: Callable[..., dict[str, Any]]
) -> None:
    task_id = submit(T2V, callback_url=f"{receiver.url}/hook", external_task_id="cb-1")["task_id"]
    deliver(client, 200)
    bodies = []
    for call in receiver.calls:
        stamp = int(call["headers"]["webhook-timestamp"])
        bodies.append(verify_webhook(SECRET, call["headers"], call["body"], now=stamp))
    assert [b["task_status"] for b in bodies] == ["submitted", "processing", "succeed"]
    assert {b["task_id"] for b in bodies} == {task_id}
    assert "code" not in bodies[0]  # the task object itself, no envelope
    assert bodies[2]["task_info"] == {"external_task_id": "cb-1"}
    assert bodies[2]["task_result"]["videos"][0]["url"].startswith("http")
    assert [int(c["headers"]["x-mock-time"]) for c in receiver.calls] == [
        1_790_000_000_000,
        1_790_000_010_000,
        1_790_000_130_000,
    ]


def test_only_what_is_due_on_the_mock_clock_is_sent(
    client: FlaskClient, receiver: Receiver, submit: Callable[..., dict[str, Any]]
) -> None:
    """``submitted`` is due at create; ``processing`` only once the clock reaches it."""
    submit(T2V, callback_url=receiver.url)
    assert wait_callbacks(client) == {"idle": True, "pending": 1}
    assert [json.loads(c["body"])["task_status"] for c in receiver.calls] == ["submitted"]
    deliver(client, 9)
    assert len(receiver.calls) == 1
    deliver(client, 1)
    assert [json.loads(c["body"])["task_status"] for c in receiver.calls][1:] == ["processing"]


def test_failed_deliveries_are_retried_with_backoff(
    client: FlaskClient, receiver: Receiver, submit: Callable[..., dict[str, Any]]
) -> None:
    receiver.statuses = [500, 503]
    task_id = submit(T2V, callback_url=receiver.url)["task_id"]
    deliver(client, 5)
    first = [(a["task_status"], a["attempt"], a["at"], a["outcome"]) for a in attempts(client)]
    start = 1_790_000_000_000
    assert first == [
        ("submitted", 1, start, "failed"),
        ("submitted", 2, start + 1000, "failed"),
        ("submitted", 3, start + 3000, "delivered"),
    ]
    assert [json.loads(c["body"])["task_id"] for c in receiver.calls] == [task_id] * 3
    assert len({c["headers"]["webhook-id"] for c in receiver.calls}) == 1  # same message id


def test_retries_are_bounded(
    client: FlaskClient, receiver: Receiver, submit: Callable[..., dict[str, Any]]
) -> None:
    receiver.statuses = [500] * 3
    submit(T2V, callback_url=receiver.url)
    deliver(client, 5)
    outcomes = [a["outcome"] for a in attempts(client) if a["task_status"] == "submitted"]
    assert outcomes == ["failed", "failed", "gave_up"]
    deliver(client, 200)  # later changes are still sent after one was given up
    later = [(a["task_status"], a["outcome"]) for a in attempts(client)][3:]
    assert later == [("processing", "delivered"), ("succeed", "delivered")]


def test_unsigned_without_a_secret(make_app: Callable[..., Flask], receiver: Receiver) -> None:
    client = make_app().test_client()
    key = client.application.extensions["kling_mock"].config.accounts[0].api_key
    client.post(
        T2V,
        json={"prompt": "x", "callback_url": receiver.url},
        headers={"Authorization": f"Bearer {key}"},
    )
    deliver(client, 0)
    assert "webhook-signature" not in receiver.calls[0]["headers"]
    assert attempts(client)[0]["signed"] is False


def test_only_allowed_hosts_are_contacted(
    make_app: Callable[..., Flask], receiver: Receiver
) -> None:
    """Allow 127.0.0.1 only, then ask for 127.0.0.2: blocked, recorded, nothing sent."""
    client = make_app(callbacks={"allowed_hosts": ["127.0.0.1"]}).test_client()
    key = client.application.extensions["kling_mock"].config.accounts[0].api_key
    port = receiver.url.rsplit(":", 1)[1]
    client.post(
        T2V,
        json={"prompt": "x", "callback_url": f"http://127.0.0.2:{port}/hook"},
        headers={"Authorization": f"Bearer {key}"},
    )
    deliver(client, 200)
    assert receiver.calls == []
    assert [a["outcome"] for a in attempts(client)] == ["blocked"] * 3
    assert "allowed_hosts" in attempts(client)[0]["error"]


@pytest.mark.parametrize(("fault", "expected"), [("drop", 0), ("duplicate", 6)])
def test_callback_faults_drop_or_duplicate(
    client: FlaskClient,
    receiver: Receiver,
    submit: Callable[..., dict[str, Any]],
    fault: str,
    expected: int,
) -> None:
    client.post("/__mock/faults", json={"action": {"type": "callback", "fault": fault}})
    submit(T2V, callback_url=receiver.url)
    deliver(client, 200)
    assert len(receiver.calls) == expected


def test_delay_fault_holds_each_callback_back(
    client: FlaskClient, receiver: Receiver, submit: Callable[..., dict[str, Any]]
) -> None:
    client.post(
        "/__mock/faults", json={"action": {"type": "callback", "fault": "delay", "seconds": 30}}
    )
    submit(T2V, callback_url=receiver.url)
    deliver(client, 29)
    assert receiver.calls == []
    deliver(client, 1)
    assert len(receiver.calls) == 1
    assert attempts(client)[0]["at"] == 1_790_000_030_000


def test_failed_task_sends_its_failure(
    client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    client.post(
        T2V,
        json={"prompt": "x", "callback_url": receiver.url},
        headers={**auth, "X-Mock-Scenario": "fail"},
    )
    deliver(client, 200)
    last = json.loads(receiver.calls[-1]["body"])
    assert last["task_status"] == "failed" and last["task_status_msg"]
    assert last["final_unit_deduction"] == "0"


def test_reset_forgets_queued_callbacks(
    client: FlaskClient, receiver: Receiver, submit: Callable[..., dict[str, Any]]
) -> None:
    submit(T2V, callback_url=receiver.url)
    # submitted goes out at once; processing and succeed stay queued
    assert wait_callbacks(client)["idle"] is True
    client.post("/__mock/reset")
    deliver(client, 200)
    assert [json.loads(c["body"])["task_status"] for c in receiver.calls] == ["submitted"]
    assert attempts(client) == []


def test_real_clock_delivers_in_the_background(
    make_app: Callable[..., Flask], receiver: Receiver
) -> None:
    """At x1000 a 130 s job ends in 0.13 s of wall time; the sender thread delivers it all."""
    client = make_app(clock="real", time_scale=1000).test_client()
    key = client.application.extensions["kling_mock"].config.accounts[0].api_key
    client.post(
        T2V,
        json={"prompt": "x", "callback_url": receiver.url},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert receiver.wait_for(3, timeout=10)
    assert [json.loads(c["body"])["task_status"] for c in receiver.calls] == [
        "submitted",
        "processing",
        "succeed",
    ]


def test_a_malformed_secret_is_refused_up_front(client: FlaskClient) -> None:
    refused = client.patch("/__mock/config", json={"callbacks": {"secret": "whsec_abc"}})
    assert (refused.status_code, refused.json["code"]) == (400, 1201)  # type: ignore[index]
    assert "callbacks.secret" in refused.json["message"]  # type: ignore[index]


# -- signatures a receiver accepts -------------------------------------------------------------


def test_signed_callbacks_verify_on_the_wall_clock_a_week_into_mock_time(
    client: FlaskClient, receiver: Receiver, submit: Callable[..., dict[str, Any]]
) -> None:
    """``webhook-timestamp`` is the wall time of sending; mock time travels in X-Mock-Time."""
    submit(T2V, callback_url=receiver.url)
    deliver(client, 7 * 86400)
    assert len(receiver.calls) == 3
    for call in receiver.calls:
        assert Webhook(SECRET).verify(call["body"], call["headers"])["task_id"]
        assert verify_webhook(SECRET, call["headers"], call["body"])["task_id"]
    start = 1_790_000_000_000
    changes = [start, start + 10_000, start + 130_000]
    assert [int(c["headers"]["x-mock-time"]) for c in receiver.calls] == changes
    assert [a["at"] for a in attempts(client)] == changes  # the record keeps mock time


def test_each_retry_is_signed_at_its_own_send_time(
    client: FlaskClient, receiver: Receiver, submit: Callable[..., dict[str, Any]]
) -> None:
    receiver.statuses = [500]
    submit(T2V, callback_url=receiver.url)
    deliver(client, 1)
    first, retry = receiver.calls
    assert first["headers"]["webhook-id"] == retry["headers"]["webhook-id"]
    assert first["headers"]["x-mock-time"] == retry["headers"]["x-mock-time"]
    for call in (first, retry):
        verify_webhook(SECRET, call["headers"], call["body"])
    assert int(first["headers"]["webhook-timestamp"]) <= int(retry["headers"]["webhook-timestamp"])


# -- the sender thread -------------------------------------------------------------------------


def test_advance_returns_while_a_receiver_hangs(
    make_app: Callable[..., Flask], receiver: Receiver, auth: dict[str, str]
) -> None:
    """Advancing only moves the clock: it completes while the receiver still holds the call."""
    client = make_app(callbacks={"max_attempts": 1, "timeout_s": 60}).test_client()
    receiver.hold = threading.Event()
    try:
        client.post(T2V, json={"prompt": "x", "callback_url": receiver.url}, headers=auth)
        advance(client, 200)  # all three changes are due now, behind the held one
        assert receiver.wait_for(1)
        assert receiver.finished == 0  # the receiver is still blocked...
        assert attempts(client) == []  # ...and the attempt it holds has not ended
        assert wait_callbacks(client, 0.1) == {"idle": False, "pending": 1}
    finally:
        receiver.hold.set()
    assert wait_callbacks(client)["idle"] is True
    assert [a["outcome"] for a in attempts(client)] == ["delivered"] * 3


def test_reset_stops_delivery_for_good(
    make_app: Callable[..., Flask], receiver: Receiver, auth: dict[str, str]
) -> None:
    """A reset while a delivery is in flight: that one may end, nothing after it is sent."""
    app = make_app(callbacks={"max_attempts": 1, "timeout_s": 60})
    client, backend = app.test_client(), app.extensions["kling_mock"]
    receiver.hold = threading.Event()
    try:
        body = {"prompt": "x", "callback_url": f"{receiver.url}/old"}
        assert client.post(T2V, json=body, headers=auth).status_code == 200
        advance(client, 200)  # processing and succeed fall due behind the held submitted
        assert receiver.wait_for(1)
        old = backend.callbacks
        client.post("/__mock/reset")
    finally:
        receiver.hold.set()
    assert receiver.wait_finished(1)
    assert old.wait_idle(10)  # the old sender has finished with the call it held
    assert old.records() == [] and old.pending() == 0
    body = {"prompt": "x", "callback_url": f"{receiver.url}/new"}
    assert client.post(T2V, json=body, headers=auth).status_code == 200
    deliver(client, 200)
    assert backend.callbacks.wait_idle(10)
    assert [c["path"] for c in receiver.calls] == ["/old", "/new", "/new", "/new"]
    assert [a["outcome"] for a in attempts(client)] == ["delivered"] * 3


@pytest.mark.parametrize("clock", ["manual", "real"])
def test_no_callback_is_left_behind_when_many_threads_schedule(
    make_app: Callable[..., Flask], receiver: Receiver, auth: dict[str, str], clock: str
) -> None:
    """Creates from several threads while the sender keeps going idle: every callback arrives."""
    app = make_app(clock=clock, time_scale=1000)
    backend: Backend = app.extensions["kling_mock"]
    threads, per_thread = 4, 10
    created: list[str] = []

    def create_some() -> None:
        client = app.test_client()
        for _ in range(per_thread):
            body = {"prompt": "x", "callback_url": receiver.url}
            response = client.post(T2V, json=body, headers=auth)
            created.append(response.json["data"]["task_id"])  # type: ignore[index]
            backend.callbacks.wait_idle(0.01)  # let the sender run dry between schedules

    workers = [threading.Thread(target=create_some) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert len(created) == threads * per_thread
    if clock == "manual":
        deliver(app.test_client(), 200)
    assert receiver.wait_for(3 * len(created), timeout=30)
    by_task: dict[str, list[str]] = {}
    for call in receiver.calls:
        body = json.loads(call["body"])
        by_task.setdefault(body["task_id"], []).append(body["task_status"])
    assert by_task == {t: ["submitted", "processing", "succeed"] for t in created}


def test_a_tasks_callbacks_keep_status_order_through_retries(
    client: FlaskClient, receiver: Receiver, submit: Callable[..., dict[str, Any]]
) -> None:
    """All three changes fall due at once; retries of ``submitted`` still come first."""
    receiver.statuses = [500, 503]
    submit(T2V, callback_url=receiver.url)
    advance(client, 0)
    advance(client, 200)
    assert wait_callbacks(client) == {"idle": True, "pending": 0}
    statuses = [json.loads(c["body"])["task_status"] for c in receiver.calls]
    assert statuses == ["submitted"] * 3 + ["processing", "succeed"]
    assert [(a["task_status"], a["attempt"]) for a in attempts(client)] == [
        ("submitted", 1),
        ("submitted", 2),
        ("submitted", 3),
        ("processing", 1),
        ("succeed", 1),
    ]


def test_mock_control_waits_for_callbacks(
    live_server: str, receiver: Receiver, auth: dict[str, str]
) -> None:
    control = MockControl(live_server)
    control.configure(callbacks={"timeout_s": 60})
    receiver.hold = threading.Event()
    try:
        body = {"prompt": "x", "callback_url": receiver.url}
        assert requests.post(f"{live_server}{T2V}", json=body, headers=auth, timeout=10).ok
        assert receiver.wait_for(1)
        assert control.wait_for_callbacks(0.1) is False  # the receiver still holds it
    finally:
        receiver.hold.set()
    assert control.wait_for_callbacks() is True
    assert [a["outcome"] for a in control.callbacks()] == ["delivered"]


@pytest.mark.parametrize(
    "body", [{"timeout": 0}, {"timeout": 61}, {"timeout": "5"}, {"timeout": True}, [5], 5]
)
def test_wait_refuses_a_bad_timeout(client: FlaskClient, body: Any) -> None:
    refused = client.post("/__mock/callbacks/wait", json=body)
    assert (refused.status_code, refused.json["code"]) == (400, 1201)  # type: ignore[index]
    assert "timeout" in refused.json["message"]  # type: ignore[index]


def test_wait_without_a_body_uses_the_default(client: FlaskClient) -> None:
    answered = client.post("/__mock/callbacks/wait")
    assert answered.json["data"] == {"idle": True, "pending": 0}  # type: ignore[index]
