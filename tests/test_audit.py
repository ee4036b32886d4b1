"""``GET /__mock/audit``: each way a client broke the rules, with evidence and a fix hint."""

from __future__ import annotations

import concurrent.futures
import socket
import threading
import time
from typing import Any

import jwt
import pytest
import requests
from flask.testing import FlaskClient

from kling_testkit.auth import bearer
from mock_server.audit import HINTS, MAX_EVIDENCE
from tests.conftest import CREDS, T2V, Receiver, accepted, create, wait_callbacks, with_config

pytestmark = pytest.mark.both_stores

NO_GRACE = {"retry_after_grace_s": 0}
ENDS = 130  # default text2video: 10 s queued + 120 s processing


def audit(client: FlaskClient, prefix: str = "") -> dict[str, Any]:
    response = client.get(f"{prefix}/__mock/audit")
    assert response.status_code == 200, response.json
    data: dict[str, Any] = response.json["data"]  # type: ignore[index]
    return data


def findings(client: FlaskClient, account: str = "default") -> dict[str, Any]:
    found: dict[str, Any] = audit(client)["accounts"][account]
    return found


def advance(client: FlaskClient, seconds: float) -> None:
    assert client.post("/__mock/clock/advance", json={"seconds": seconds}).status_code == 200


def token(**claims: Any) -> dict[str, str]:
    return bearer(jwt.encode({"iss": CREDS.access_key, **claims}, CREDS.secret_key))


def test_a_fresh_mock_is_clean(client: FlaskClient) -> None:
    assert audit(client) == {"clean": True, "accounts": {"default": {}}, "totals": {}}


# -- retry_after_ignored ---------------------------------------------------------------------


@with_config(concurrency={"video": 1}, audit=NO_GRACE)
def test_retry_after_ignored(client: FlaskClient, auth: dict[str, str]) -> None:
    accepted(create(client, auth))
    assert create(client, auth).status_code == 429
    again = create(client, auth)  # at once, ignoring the header
    assert again.status_code == 429
    found = findings(client)
    assert list(found) == ["retry_after_ignored"]
    item = found["retry_after_ignored"]
    assert item["count"] == 1 and item["hint"] == HINTS["retry_after_ignored"]
    (evidence,) = item["evidence"]
    assert evidence["method"] == "POST" and evidence["path"] == T2V
    assert evidence["request_id"] == again.json["request_id"]  # type: ignore[index]
    assert evidence["detail"].startswith("sent ") and f"scope POST {T2V}" in evidence["detail"]
    counters = client.get("/__mock/counters").json["data"]  # type: ignore[index]
    assert counters["accounts"]["default"]["retry_after_violations"] == 1  # one mechanism
    assert audit(client)["totals"] == {"retry_after_ignored": 1}
    assert audit(client)["clean"] is False


@with_config(concurrency={"video": 1}, audit=NO_GRACE)
def test_waiting_as_told_is_clean(client: FlaskClient, auth: dict[str, str]) -> None:
    task_id = accepted(create(client, auth))
    refused = create(client, auth)
    assert client.get(f"{T2V}/{task_id}", headers=auth).status_code == 200  # other path: fine
    advance(client, ENDS)
    assert int(refused.headers["Retry-After"]) <= ENDS
    accepted(create(client, auth))
    assert audit(client)["clean"] is True


@with_config(concurrency={"video": 1}, audit={"retry_after_grace_s": 0.5})
def test_requests_within_the_grace_of_the_first_429_are_not_counted(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    accepted(create(client, auth))
    slow = {"match": {"method": "POST"}, "action": {"type": "latency", "seconds": 0.6}, "times": 1}
    assert client.post("/__mock/faults", json=slow).status_code == 200
    assert create(client, auth).status_code == 429  # answered 0.6 s after it arrived
    # Sent at once after that answer: it may have been in flight (the grace runs from when the
    # 429 went out, not from when its request arrived 0.6 s before).
    assert create(client, auth).status_code == 429
    time.sleep(0.3)
    assert create(client, auth).status_code == 429  # still within 0.5 s of the first 429
    assert audit(client)["clean"] is True
    time.sleep(0.3)  # 0.6 s after the first 429, 0.3 s after the last one
    assert create(client, auth).status_code == 429  # the grace runs from the first: counted
    assert findings(client)["retry_after_ignored"]["count"] == 1


@with_config(concurrency={"video": 1}, audit=NO_GRACE)
def test_evidence_is_capped(client: FlaskClient, auth: dict[str, str]) -> None:
    accepted(create(client, auth))
    assert create(client, auth).status_code == 429
    ids = [create(client, auth).json["request_id"] for _ in range(MAX_EVIDENCE + 2)]
    item = findings(client)["retry_after_ignored"]
    assert item["count"] == MAX_EVIDENCE + 2
    assert [e["request_id"] for e in item["evidence"]] == ids[:MAX_EVIDENCE]  # the first ones


# -- poll_storm ------------------------------------------------------------------------------


def test_poll_storm(client: FlaskClient, auth: dict[str, str]) -> None:
    task_id = accepted(create(client, auth))
    assert client.get(f"{T2V}/{task_id}", headers=auth).status_code == 200
    advance(client, 0.5)
    storm = client.get(f"{T2V}/{task_id}", headers=auth)
    (evidence,) = findings(client)["poll_storm"]["evidence"]
    assert evidence["path"] == f"{T2V}/{task_id}" and evidence["method"] == "GET"
    assert evidence["request_id"] == storm.json["request_id"]  # type: ignore[index]
    assert evidence["detail"] == (
        "queried 0.500 s after the previous query of this task (at most one per 1 s)"
    )


@with_config(audit={"poll_interval_s": 0, "max_polls": 3})
def test_too_many_polls_of_one_task(client: FlaskClient, auth: dict[str, str]) -> None:
    task_id = accepted(create(client, auth))
    for _ in range(4):
        assert client.get(f"{T2V}/{task_id}", headers=auth).status_code == 200
    item = findings(client)["poll_storm"]
    assert item["count"] == 1
    assert item["evidence"][0]["detail"] == "query 4 of this task (at most 3)"


def test_polling_once_a_second_per_task_is_clean(client: FlaskClient, auth: dict[str, str]) -> None:
    first, second = accepted(create(client, auth)), accepted(create(client, auth))
    for _ in range(5):
        for task_id in (first, second):  # two tasks at the same moment: one poll each
            assert client.get(f"{T2V}/{task_id}", headers=auth).status_code == 200
        advance(client, 1)
    assert audit(client)["clean"] is True


# -- result_read_too_early, result_url_expired ---------------------------------------------


@with_config(result_ttl_s=600)
def test_result_read_too_early_and_after_expiry(client: FlaskClient, auth: dict[str, str]) -> None:
    task_id = accepted(create(client, auth))
    guessed = client.get(f"/media/{task_id}/0.mp4")  # a URL built before the task succeeded
    assert guessed.status_code == 403
    (early,) = findings(client)["result_read_too_early"]["evidence"]
    assert early["path"] == f"/media/{task_id}/0.mp4"
    assert early["detail"] == "the task is submitted; results exist only once it has succeeded"
    advance(client, ENDS)
    task = client.get(f"{T2V}/{task_id}", headers=auth).json["data"]  # type: ignore[index]
    url = task["task_result"]["videos"][0]["url"]
    assert client.get(url).status_code == 200  # in time: no finding
    assert set(findings(client)) == {"result_read_too_early"}
    advance(client, 600)
    assert client.get(url).status_code == 403
    (late,) = findings(client)["result_url_expired"]["evidence"]
    assert late["detail"].startswith("the URL expired at ")
    counters = client.get("/__mock/counters").json["data"]  # type: ignore[index]
    assert counters["accounts"]["default"]["requests"] == 2  # downloads are no API requests


# -- token_misuse ----------------------------------------------------------------------------


def test_an_expired_token_is_misuse(client: FlaskClient) -> None:
    now = int(time.time())
    refused = client.get(T2V, headers=token(exp=now - 10, nbf=now - 100))
    assert refused.status_code == 401
    (evidence,) = findings(client)["token_misuse"]["evidence"]
    assert evidence["request_id"] == refused.json["request_id"]  # type: ignore[index]
    assert evidence["detail"].startswith("token used 1") and "after its exp" in evidence["detail"]


def test_a_day_long_token_is_misuse(client: FlaskClient) -> None:
    now = int(time.time())
    assert client.get(T2V, headers=token(iat=now, exp=now + 86400)).status_code == 200
    (evidence,) = findings(client)["token_misuse"]["evidence"]
    assert evidence["detail"] == (
        "token lifetime 86400 s (exp - iat); the documented one is 1800 s, the audit allows 3600 s"
    )


def test_a_half_hour_token_is_clean(client: FlaskClient, auth: dict[str, str]) -> None:
    now = int(time.time())
    assert client.get(T2V, headers=token(iat=now, exp=now + 1800)).status_code == 200
    assert client.get(T2V, headers=auth).status_code == 200
    assert audit(client)["clean"] is True


# -- scope -----------------------------------------------------------------------------------


def test_each_namespace_and_reset_has_its_own_audit(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    task_id = accepted(client.post("/ns/a" + T2V, json={"prompt": "a cat"}, headers=auth))
    for _ in range(2):
        assert client.get(f"/ns/a{T2V}/{task_id}", headers=auth).status_code == 200
    assert audit(client, "/ns/a")["totals"] == {"poll_storm": 1}
    assert audit(client)["clean"] is True
    assert client.post("/ns/a/__mock/reset").status_code == 200
    assert audit(client, "/ns/a")["clean"] is True


# -- overspend -------------------------------------------------------------------------------


@with_config(audit={"budget_units": 2})
def test_overspend(client: FlaskClient, auth: dict[str, str]) -> None:
    for _ in range(2):
        accepted(create(client, auth))
    assert audit(client)["clean"] is True  # 2 units held: within the budget
    third = create(client, auth)
    accepted(third)
    (evidence,) = findings(client)["overspend"]["evidence"]
    assert evidence["method"] == "POST" and evidence["path"] == T2V
    assert evidence["request_id"] == third.json["request_id"]  # type: ignore[index]
    assert evidence["detail"] == "3 units spent or held after this task (1); the budget is 2"


def test_without_a_budget_nothing_overspends(client: FlaskClient, auth: dict[str, str]) -> None:
    for _ in range(3):
        accepted(create(client, auth))
    assert audit(client)["clean"] is True


# -- retry_without_idempotency ----------------------------------------------------------------

FLAKY = {"action": {"type": "error", "code": 5000}, "times": 1, "match": {"method": "POST"}}


def test_retry_without_idempotency(client: FlaskClient, auth: dict[str, str]) -> None:
    assert client.post("/__mock/faults", json=FLAKY).status_code == 200
    assert create(client, auth).status_code == 500  # the answer is lost
    advance(client, 2)
    retry = create(client, auth)  # the same body again, no external_task_id
    accepted(retry)
    (evidence,) = findings(client)["retry_without_idempotency"]["evidence"]
    assert evidence["request_id"] == retry.json["request_id"]  # type: ignore[index]
    assert evidence["detail"] == (
        "the same create as one whose answer was lost 2.000 s before, sent again without "
        "external_task_id"
    )
    advance(client, 61)
    accepted(create(client, auth))  # long after: a new task on purpose
    assert findings(client)["retry_without_idempotency"]["count"] == 1


def test_a_retry_with_an_external_id_is_clean(client: FlaskClient, auth: dict[str, str]) -> None:
    assert client.post("/__mock/faults", json=FLAKY).status_code == 200
    assert create(client, auth, external_task_id="order-1").status_code == 500
    accepted(create(client, auth, external_task_id="order-1"))
    accepted(create(client, auth, prompt="another video"))  # another body: not a retry
    assert audit(client)["clean"] is True


# -- poll_storm: polling with no deadline ------------------------------------------------------


@with_config(audit={"poll_deadline_s": 600})
def test_a_stuck_task_polled_past_the_deadline(client: FlaskClient, auth: dict[str, str]) -> None:
    task_id = accepted(create(client, auth, scenario="stuck"))
    for _ in range(10):  # a sane interval, but no deadline: the task never ends
        assert client.get(f"{T2V}/{task_id}", headers=auth).status_code == 200
        advance(client, 60)
    assert audit(client)["clean"] is True  # 540 s old at the last query: within the deadline
    late = client.get(f"{T2V}/{task_id}", headers=auth)  # 600 s old
    assert audit(client)["clean"] is True  # at the deadline is not past it
    advance(client, 60)
    late = client.get(f"{T2V}/{task_id}", headers=auth)  # 660 s old
    item = findings(client)["poll_storm"]
    assert item["count"] == 1
    (evidence,) = item["evidence"]
    assert evidence["request_id"] == late.json["request_id"]  # type: ignore[index]
    assert evidence["detail"] == (
        "queried 660 s after it was created and still not ended (give up after 600 s: a stuck "
        "task is otherwise polled forever)"
    )


@with_config(audit={"poll_deadline_s": 60})
def test_an_ended_task_queried_late_is_no_storm(client: FlaskClient, auth: dict[str, str]) -> None:
    task_id = accepted(create(client, auth))
    advance(client, 3 * ENDS)  # long past the deadline, but it has ended
    assert client.get(f"{T2V}/{task_id}", headers=auth).status_code == 200
    assert audit(client)["clean"] is True


# -- token_misuse: a new token for every request ---------------------------------------------


def test_a_new_token_for_every_request_is_misuse(client: FlaskClient) -> None:
    now = int(time.time())
    ids = []
    for i in range(5):  # each token differs (its iat), each is used once
        answer = client.get(T2V, headers=token(iat=now - i, exp=now + 1800))
        assert answer.status_code == 200
        ids.append(answer.json["request_id"])  # type: ignore[index]
    item = findings(client)["token_misuse"]
    assert item["count"] == 5
    assert [e["request_id"] for e in item["evidence"]] == ids
    assert item["evidence"][0]["detail"] == (
        "the first request with a new token (5 tokens signed for 5 requests; one per half hour "
        "would do)"
    )


def test_a_few_tokens_each_reused_are_clean(client: FlaskClient) -> None:
    now = int(time.time())
    for i in range(5):  # five clients (say, five workers), each reusing its token
        headers = token(iat=now - i, exp=now + 1800)
        for _ in range(3):
            assert client.get(T2V, headers=headers).status_code == 200
    assert audit(client)["clean"] is True  # 5 tokens for 15 requests
    assert client.post("/__mock/reset").status_code == 200
    for i in range(4):  # four one-shot clients: below the five-token floor
        assert client.get(T2V, headers=token(iat=now - i, exp=now + 1800)).status_code == 200
    assert audit(client)["clean"] is True


def test_a_long_token_counts_once_however_often_it_is_used(client: FlaskClient) -> None:
    now = int(time.time())
    day = token(iat=now, exp=now + 86400)
    for _ in range(3):
        assert client.get(T2V, headers=day).status_code == 200
    assert findings(client)["token_misuse"]["count"] == 1


# -- result_url_never_fetched ----------------------------------------------------------------


@with_config(result_ttl_s=600)
def test_a_result_never_fetched_before_its_url_expired(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    start = client.get("/__mock/clock").json["data"]["now_ms"]  # type: ignore[index]
    forgotten = accepted(create(client, auth))
    fetched = accepted(create(client, auth, prompt="another video"))
    advance(client, ENDS)
    task = client.get(f"{T2V}/{fetched}", headers=auth).json["data"]  # type: ignore[index]
    assert client.get(task["task_result"]["videos"][0]["url"]).status_code == 200
    assert audit(client)["clean"] is True  # the forgotten one's URL still works
    advance(client, 600)
    item = findings(client)["result_url_never_fetched"]
    assert item["count"] == 1
    (evidence,) = item["evidence"]
    assert evidence["path"].startswith(f"/media/{forgotten}/")
    assert evidence["time"] == start + (ENDS + 600) * 1000  # when the URL expired
    assert evidence["detail"] == f"the result of task {forgotten} expired unfetched"
    assert audit(client)["totals"] == {"result_url_never_fetched": 1}


# -- callback_receiver_failures ---------------------------------------------------------------


def test_a_receiver_answering_500_fails(
    client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    task_id = accepted(create(client, auth, callback_url=f"{receiver.url}/hook?key=s3cret"))
    for _ in range(3):
        advance(client, 3600)
        wait_callbacks(client)
    item = findings(client)["callback_receiver_failures"]
    assert item["count"] == 2
    first, second = item["evidence"]
    assert first["method"] == "POST" and first["path"] == f"{receiver.url}/hook"  # no query
    assert first["detail"] == f"callback attempt 1 of task {task_id}: answered HTTP 500"
    assert second["detail"] == f"callback attempt 2 of task {task_id}: answered HTTP 503"
    assert first["request_id"].startswith(f"{task_id}-")  # the webhook-id


@with_config(callbacks={"max_attempts": 1})
def test_an_unreachable_receiver_fails(client: FlaskClient, auth: dict[str, str]) -> None:
    with socket.socket() as closed:  # a loopback port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    accepted(create(client, auth, callback_url=f"http://127.0.0.1:{port}/hook"))
    advance(client, 3600)
    wait_callbacks(client)
    item = findings(client)["callback_receiver_failures"]
    assert item["count"] == 3  # each status change's one attempt
    assert item["evidence"][0]["detail"].split(": ", 1)[1].startswith("no answer: ")


@with_config(audit={"callback_slow_s": 0.1})
def test_a_slow_receiver_fails(
    client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    receiver.hold = threading.Event()
    threading.Timer(0.3, receiver.hold.set).start()  # the receiver takes 0.3 s to answer
    accepted(create(client, auth, callback_url=f"{receiver.url}/hook"))
    advance(client, 3600)
    wait_callbacks(client)
    item = findings(client)["callback_receiver_failures"]
    assert item["count"] >= 1  # the first answer; later ones may come once the event is set
    assert item["evidence"][0]["detail"].split(": ", 1)[1].startswith("answered after 0.")


def test_a_receiver_answering_at_once_is_clean(
    client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    accepted(create(client, auth, callback_url=f"{receiver.url}/hook"))
    advance(client, 3600)
    wait_callbacks(client)
    assert len(receiver.calls) == 3
    assert audit(client)["clean"] is True


# -- bounds ----------------------------------------------------------------------------------


def test_remembered_waits_are_bounded(
    client: FlaskClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("mock_server.memory_store", "mock_server.redis_store"):
        monkeypatch.setattr(f"{module}.MAX_WAITS", 2)
    paths = [f"{T2V}/{n}" for n in range(3)]
    busy = {
        "match": {"method": "GET"},
        "action": {"type": "error", "code": 1303, "retry_after": 30},
        "times": 3,
    }
    assert client.post("/__mock/faults", json=busy).status_code == 200
    for path in paths:  # three waits, one per path; the first is forgotten
        assert client.get(path, headers=auth).status_code == 429
    time.sleep(0.1)  # past the 50 ms grace (wall time), within every wait (mock time)
    for path in paths:
        client.get(path, headers=auth)
    item = findings(client)["retry_after_ignored"]
    assert item["count"] == 2
    assert [e["path"] for e in item["evidence"]] == paths[1:]


def test_a_retry_after_a_client_timeout_is_judged(
    live_server: str, client: FlaskClient, auth: dict[str, str]
) -> None:
    slow = {"match": {"method": "POST"}, "action": {"type": "latency", "seconds": 0.5}, "times": 1}
    assert client.post("/__mock/faults", json=slow).status_code == 200
    body = {"prompt": "a lighthouse at dusk"}
    with pytest.raises(requests.Timeout):  # the client gives up; the mock still makes the task
        requests.post(live_server + T2V, json=body, headers=auth, timeout=0.1)
    retry = requests.post(live_server + T2V, json=body, headers=auth, timeout=10)
    assert retry.status_code == 200
    (evidence,) = findings(client)["retry_without_idempotency"]["evidence"]
    assert evidence["request_id"] == retry.json()["request_id"]


def test_two_clients_sending_one_body_at_once_is_no_retry(
    live_server: str, client: FlaskClient
) -> None:
    slow = {"match": {"method": "POST"}, "action": {"type": "latency", "seconds": 0.3}, "times": 1}
    assert client.post("/__mock/faults", json=slow).status_code == 200
    now = int(time.time())
    first, second = token(iat=now, exp=now + 1800), token(iat=now - 1, exp=now + 1800)
    body = {"prompt": "a lighthouse at dusk"}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        held = pool.submit(requests.post, live_server + T2V, json=body, headers=first, timeout=10)
        time.sleep(0.1)  # the first is held by the latency rule (wall time, not a job's)
        other = requests.post(live_server + T2V, json=body, headers=second, timeout=10)
        assert other.status_code == 200 and held.result().status_code == 200
    assert "retry_without_idempotency" not in findings(client)
