"""Callbacks: the task object on each status change, signed, in order, retried on the clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kling_testkit.webhooks import generate_secret, verify_webhook
from tests.conftest import T2V, Receiver

SECRET = generate_secret(b"callback tests")


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(callbacks={"secret": SECRET, "backoff_s": 1.0, "max_attempts": 3})


def attempts(client: FlaskClient, task_id: str | None = None) -> list[dict[str, Any]]:
    query = {"task_id": task_id} if task_id else {}
    return client.get("/__mock/callbacks", query_string=query).json["data"]["attempts"]  # type: ignore[index]


def advance(client: FlaskClient, seconds: float) -> None:
    client.post("/__mock/clock/advance", json={"seconds": seconds})


def test_each_status_change_arrives_signed_and_in_order(
    client: FlaskClient, receiver: Receiver, submit: Callable[..., dict[str, Any]]
) -> None:
    task_id = submit(T2V, callback_url=f"{receiver.url}/hook", external_task_id="cb-1")["task_id"]
    advance(client, 200)
    bodies = []
    for call in receiver.calls:
        stamp = int(call["headers"]["webhook-timestamp"])
        bodies.append(verify_webhook(SECRET, call["headers"], call["body"], now=stamp))
    assert [b["task_status"] for b in bodies] == ["submitted", "processing", "succeed"]
    assert {b["task_id"] for b in bodies} == {task_id}
    assert "code" not in bodies[0]  # the task object itself, no envelope
    assert bodies[2]["task_info"] == {"external_task_id": "cb-1"}
    assert bodies[2]["task_result"]["videos"][0]["url"].startswith("http")
    assert [int(c["headers"]["webhook-timestamp"]) for c in receiver.calls] == [
        1_790_000_000,
        1_790_000_010,
        1_790_000_130,
    ]


def test_nothing_is_sent_until_the_clock_moves(
    client: FlaskClient, receiver: Receiver, submit: Callable[..., dict[str, Any]]
) -> None:
    submit(T2V, callback_url=receiver.url)
    assert receiver.calls == []
    advance(client, 0)
    assert len(receiver.calls) == 1


def test_failed_deliveries_are_retried_with_backoff(
    client: FlaskClient, receiver: Receiver, submit: Callable[..., dict[str, Any]]
) -> None:
    receiver.statuses = [500, 503]
    task_id = submit(T2V, callback_url=receiver.url)["task_id"]
    advance(client, 5)
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
    advance(client, 5)
    outcomes = [a["outcome"] for a in attempts(client) if a["task_status"] == "submitted"]
    assert outcomes == ["failed", "failed", "gave_up"]
    advance(client, 200)  # later changes are still sent after one was given up
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
    advance(client, 0)
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
    advance(client, 200)
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
    advance(client, 200)
    assert len(receiver.calls) == expected


def test_delay_fault_holds_each_callback_back(
    client: FlaskClient, receiver: Receiver, submit: Callable[..., dict[str, Any]]
) -> None:
    client.post(
        "/__mock/faults", json={"action": {"type": "callback", "fault": "delay", "seconds": 30}}
    )
    submit(T2V, callback_url=receiver.url)
    advance(client, 29)
    assert receiver.calls == []
    advance(client, 1)
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
    advance(client, 200)
    last = json.loads(receiver.calls[-1]["body"])
    assert last["task_status"] == "failed" and last["task_status_msg"]
    assert last["final_unit_deduction"] == "0"


def test_reset_forgets_queued_callbacks(
    client: FlaskClient, receiver: Receiver, submit: Callable[..., dict[str, Any]]
) -> None:
    submit(T2V, callback_url=receiver.url)
    client.post("/__mock/reset")
    advance(client, 200)
    assert receiver.calls == [] and attempts(client) == []


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
