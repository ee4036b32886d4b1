"""``GET /__mock/counters``: what each account did, Retry-After violations included."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import T2V, Receiver, accepted, create, wait_callbacks, with_config

pytestmark = pytest.mark.both_stores


def counters(client: FlaskClient, account: str = "default") -> dict[str, Any]:
    data: dict[str, Any] = client.get("/__mock/counters").json["data"]  # type: ignore[index]
    found: dict[str, Any] = data["accounts"][account]
    return found


def advance(client: FlaskClient, seconds: float) -> None:
    assert client.post("/__mock/clock/advance", json={"seconds": seconds}).status_code == 200


NO_GRACE = {"retry_after_grace_s": 0}  # the test client's retries come within the 50 ms grace


@with_config(concurrency={"video": 1}, audit=NO_GRACE)
def test_a_create_before_the_retry_after_is_a_violation(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    task_id = accepted(create(client, auth))
    refused = create(client, auth)
    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert counters(client)["retry_after_violations"] == 0
    assert create(client, auth).status_code == 429  # at once, ignoring the header
    assert client.get(f"{T2V}/{task_id}", headers=auth).status_code == 200  # polling: fine
    assert counters(client)["retry_after_violations"] == 1
    advance(client, wait)
    accepted(create(client, auth))  # waited as told
    found = counters(client)
    assert found["retry_after_violations"] == 1
    assert found["rate_limited"] == 2 and found["tasks_created"] == 2 and found["requests"] == 5


@with_config(rate_limit={"requests": 2, "window_s": 10}, audit=NO_GRACE)
def test_after_a_rate_refusal_any_request_is_early(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    for _ in range(2):
        assert client.get(T2V, headers=auth).status_code == 200
    refused = client.get(T2V, headers=auth)
    assert refused.json["code"] == 1302  # type: ignore[index]
    assert create(client, auth).status_code == 429  # another path, still too early
    assert counters(client)["retry_after_violations"] == 1
    advance(client, int(refused.headers["Retry-After"]))
    assert client.get(T2V, headers=auth).status_code == 200
    assert counters(client)["retry_after_violations"] == 1


def test_a_well_behaved_client_has_no_violation(client: FlaskClient, auth: dict[str, str]) -> None:
    scenario = {**auth, "X-Mock-Scenario": "rate-limited-once"}
    refused = client.get(T2V, headers=scenario)
    assert refused.status_code == 429
    advance(client, int(refused.headers["Retry-After"]))
    assert client.get(T2V, headers=scenario).status_code == 200
    found = counters(client)
    assert found["retry_after_violations"] == 0 and found["rate_limited"] == 1


def test_units_spent_and_callbacks_are_counted(
    client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    receiver.statuses = [500] * 5  # the first task's first status change fails every attempt
    accepted(create(client, auth, callback_url=f"{receiver.url}/hook"))
    accepted(create(client, auth))
    advance(client, 3600)
    wait_callbacks(client)
    advance(client, 3600)
    wait_callbacks(client)
    found = counters(client)
    assert found["units_spent"] == "2"  # two std 5 s kling-v1 videos at 1 unit each
    assert found["callbacks_failed"] == 5
    assert found["callbacks_delivered"] == 2  # processing and succeed (submitted gave up)
    totals = client.get("/__mock/counters").json["data"]["totals"]  # type: ignore[index]
    assert totals == found


def test_units_are_spent_when_a_task_succeeds_not_while_it_runs_nor_when_it_fails(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    accepted(create(client, auth))
    accepted(create(client, auth, scenario="fail"))
    assert counters(client)["units_spent"] == "0"  # both running: their units are held
    advance(client, 3600)
    assert counters(client)["units_spent"] == "1"  # the success; the failed one gave them back


def test_a_reset_zeroes_the_counters(client: FlaskClient, auth: dict[str, str]) -> None:
    accepted(create(client, auth))
    assert counters(client)["tasks_created"] == 1
    assert client.post("/__mock/reset").status_code == 200
    assert counters(client) == {
        "requests": 0,
        "tasks_created": 0,
        "rate_limited": 0,
        "retry_after_violations": 0,
        "units_spent": "0",
        "callbacks_delivered": 0,
        "callbacks_failed": 0,
    }
