"""The X-Mock-Scenario header: one request picks a whole lifecycle without global config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from kling_testkit.auth import bearer, sign_token
from kling_testkit.credentials import Credentials
from mock_server import Backend
from tests.conftest import CREDS, T2V, Receiver, wait_callbacks

pytestmark = pytest.mark.both_stores  # the shared store suite

HEADER = "X-Mock-Scenario"
PROMPT = "a lighthouse in a storm, waves crashing"
README = Path(__file__).resolve().parents[1] / "README.md"
DAY = 86400
SECOND = Credentials("second-access-key", "second-secret-" + "y" * 40)
DOCUMENTED = [
    "rate-limited-once",
    "concurrency-limited-once",
    "server-error-once",
    "policy-violation",
    "no-credits",
    "fail",
    "slow",
    "stuck",
    "expire-fast",
    "callback-lost",
    "connection-reset",
    "malformed-json",
]


# -- helpers ---------------------------------------------------------------------------------


def create(
    client: FlaskClient, auth: dict[str, str], scenario: str | None = None, **body: Any
) -> TestResponse:
    headers = dict(auth) if scenario is None else {**auth, HEADER: scenario}
    return client.post(T2V, json={"prompt": PROMPT, **body}, headers=headers)


def created_id(response: TestResponse) -> str:
    assert response.status_code == 200, response.json
    task_id: str = response.json["data"]["task_id"]  # type: ignore[index]
    return task_id


def status_code(response: TestResponse) -> tuple[int, int]:
    return response.status_code, response.json["code"]  # type: ignore[index]


def advance(client: FlaskClient, seconds: float) -> None:
    assert client.post("/__mock/clock/advance", json={"seconds": seconds}).status_code == 200


def query(client: FlaskClient, auth: dict[str, str], task_id: str) -> dict[str, Any]:
    response = client.get(f"{T2V}/{task_id}", headers=auth)
    assert response.status_code == 200, response.json
    data: dict[str, Any] = response.json["data"]  # type: ignore[index]
    return data


def fetch(client: FlaskClient, url: str) -> TestResponse:
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def scenarios(client: FlaskClient) -> dict[str, str]:
    data: dict[str, str] = client.get("/__mock/scenarios").json["data"]  # type: ignore[index]
    return data


# -- the list --------------------------------------------------------------------------------


def test_the_list_has_every_scenario_with_a_description(client: FlaskClient) -> None:
    listed = scenarios(client)
    assert set(DOCUMENTED) <= set(listed)
    assert all(isinstance(about, str) and about for about in listed.values())


def test_every_listed_scenario_is_documented_in_the_readme(client: FlaskClient) -> None:
    readme = README.read_text(encoding="utf-8")
    assert HEADER in readme
    missing = [name for name in scenarios(client) if f"`{name}`" not in readme]
    assert missing == []


def test_an_unknown_scenario_is_refused_naming_the_known_ones(
    client: FlaskClient, auth: dict[str, str], backend: Backend
) -> None:
    response = create(client, auth, "meteor-strike")
    assert status_code(response) == (400, 1201)
    message = response.json["message"]  # type: ignore[index]
    assert "meteor-strike" in message
    assert all(name in message for name in scenarios(client))
    assert backend.all_tasks() == []


# -- once-scenarios --------------------------------------------------------------------------


def test_rate_limited_once_refuses_until_its_retry_after_has_passed(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    first = create(client, auth, "rate-limited-once")
    assert status_code(first) == (429, 1302)
    assert first.headers["Retry-After"] == "2"
    advance(client, 1)  # a client that ignores Retry-After
    early = create(client, auth, "rate-limited-once")
    assert status_code(early) == (429, 1302)
    assert early.headers["Retry-After"] == "1"
    advance(client, 1)
    assert status_code(create(client, auth, "rate-limited-once")) == (200, 0)
    assert status_code(create(client, auth, "rate-limited-once")) == (200, 0)
    advance(client, 60)
    assert status_code(create(client, auth, "rate-limited-once")) == (200, 0)


def test_rate_limited_once_with_a_suffix_is_a_fresh_gate(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    assert create(client, auth, "rate-limited-once").status_code == 429
    advance(client, 2)
    assert create(client, auth, "rate-limited-once").status_code == 200
    fresh = create(client, auth, "rate-limited-once:b")
    assert status_code(fresh) == (429, 1302)
    assert fresh.headers["Retry-After"] == "2"
    assert create(client, auth, "rate-limited-once").status_code == 200


def test_rate_limited_once_is_kept_per_account(make_app: Callable[..., Flask]) -> None:
    client = make_app(
        accounts=[
            {"name": "first", "access_key": CREDS.access_key, "secret_key": CREDS.secret_key},
            {"name": "second", "access_key": SECOND.access_key, "secret_key": SECOND.secret_key},
        ]
    ).test_client()
    first, second = bearer(sign_token(CREDS)), bearer(sign_token(SECOND))
    assert create(client, first, "rate-limited-once").status_code == 429
    advance(client, 2)
    assert create(client, first, "rate-limited-once").status_code == 200
    other = create(client, second, "rate-limited-once")
    assert status_code(other) == (429, 1302)
    assert other.headers["Retry-After"] == "2"


def test_concurrency_limited_once_refuses_for_five_seconds(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    first = create(client, auth, "concurrency-limited-once")
    assert status_code(first) == (429, 1303)
    assert first.headers["Retry-After"] == "5"
    advance(client, 4)
    early = create(client, auth, "concurrency-limited-once")
    assert status_code(early) == (429, 1303)
    assert early.headers["Retry-After"] == "1"
    advance(client, 1)
    assert status_code(create(client, auth, "concurrency-limited-once")) == (200, 0)


def test_server_error_once_fails_the_first_request_only(
    client: FlaskClient, auth: dict[str, str], backend: Backend
) -> None:
    assert status_code(create(client, auth, "server-error-once")) == (500, 5000)
    assert backend.all_tasks() == []
    assert status_code(create(client, auth, "server-error-once")) == (200, 0)
    assert status_code(create(client, auth, "server-error-once")) == (200, 0)
    assert len(backend.all_tasks()) == 2


# -- errors at submit ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "expected"), [("policy-violation", (400, 1301)), ("no-credits", (429, 1102))]
)
def test_submit_errors_store_no_task(
    client: FlaskClient,
    auth: dict[str, str],
    backend: Backend,
    scenario: str,
    expected: tuple[int, int],
) -> None:
    for _ in range(2):  # not a once-scenario: every request is refused
        response = create(client, auth, scenario)
        assert status_code(response) == expected
        assert response.json["message"]  # type: ignore[index]
    assert backend.all_tasks() == []
    assert client.get(T2V, headers=auth).json["data"] == []  # type: ignore[index]


# -- task lifecycles -------------------------------------------------------------------------


def test_fail_ends_the_task_failed_without_charging(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    task_id = created_id(create(client, auth, "fail"))
    advance(client, 130)
    task = query(client, auth, task_id)
    assert task["task_status"] == "failed"
    assert task["task_status_msg"]
    assert task["final_unit_deduction"] == "0"
    assert task["task_result"] == {}


def test_slow_takes_ten_times_longer(client: FlaskClient, auth: dict[str, str]) -> None:
    task_id = created_id(create(client, auth, "slow"))
    normal_id = created_id(create(client, auth))
    advance(client, 130)
    assert query(client, auth, normal_id)["task_status"] == "succeed"
    assert query(client, auth, task_id)["task_status"] == "processing"
    advance(client, 10 + 1199 - 130)
    assert query(client, auth, task_id)["task_status"] == "processing"
    advance(client, 1)
    assert query(client, auth, task_id)["task_status"] == "succeed"


def test_stuck_stays_processing(client: FlaskClient, auth: dict[str, str]) -> None:
    task_id = created_id(create(client, auth, "stuck"))
    advance(client, 10)
    assert query(client, auth, task_id)["task_status"] == "processing"
    advance(client, 365 * DAY)
    task = query(client, auth, task_id)
    assert task["task_status"] == "processing"
    assert "final_unit_deduction" not in task


def test_expire_fast_result_url_stops_working_a_minute_after_success(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    fast_id = created_id(create(client, auth, "expire-fast"))
    normal_id = created_id(create(client, auth))
    advance(client, 130)
    fast = query(client, auth, fast_id)["task_result"]["videos"][0]["url"]
    normal = query(client, auth, normal_id)["task_result"]["videos"][0]["url"]
    assert fetch(client, fast).status_code == 200
    assert fetch(client, normal).status_code == 200
    advance(client, 61)
    expired = fetch(client, fast)
    assert status_code(expired) == (403, 1103)
    assert "expired" in expired.json["message"]  # type: ignore[index]
    assert fetch(client, normal).status_code == 200


def test_callback_lost_drops_every_callback_of_the_task(
    client: FlaskClient, auth: dict[str, str], receiver: Receiver
) -> None:
    lost_id = created_id(create(client, auth, "callback-lost", callback_url=receiver.url))
    advance(client, 200)
    assert wait_callbacks(client)["idle"] is True
    found = client.get("/__mock/callbacks", query_string={"task_id": lost_id})
    attempts = found.json["data"]["attempts"]  # type: ignore[index]
    assert [a["task_status"] for a in attempts] == ["submitted", "processing", "succeed"]
    assert {a["outcome"] for a in attempts} == {"dropped"}
    assert receiver.calls == []
    kept_id = created_id(create(client, auth, callback_url=receiver.url))  # the hook does work
    assert wait_callbacks(client)["idle"] is True  # its submitted callback is due at once
    assert [c for c in receiver.calls if kept_id.encode() in c["body"]] != []


# -- transport (a real socket) ---------------------------------------------------------------


def test_connection_reset_breaks_the_connection(live_server: str, auth: dict[str, str]) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.post(
            f"{live_server}{T2V}",
            json={"prompt": PROMPT},
            headers={**auth, HEADER: "connection-reset"},
            timeout=5,
        )


def test_malformed_json_answers_200_with_a_body_that_is_not_json(
    live_server: str, auth: dict[str, str]
) -> None:
    response = requests.post(
        f"{live_server}{T2V}",
        json={"prompt": PROMPT},
        headers={**auth, HEADER: "malformed-json"},
        timeout=5,
    )
    assert response.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        response.json()


# -- queries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["fail", "slow", "stuck", "expire-fast", "callback-lost"])
def test_a_scenario_on_a_query_changes_nothing(
    client: FlaskClient, auth: dict[str, str], scenario: str
) -> None:
    task_id = created_id(create(client, auth))
    advance(client, 130)
    plain = query(client, auth, task_id)
    response = client.get(f"{T2V}/{task_id}", headers={**auth, HEADER: scenario})
    assert status_code(response) == (200, 0)
    assert response.json["data"] == plain  # type: ignore[index]
    assert plain["task_status"] == "succeed"
    listing = client.get(T2V, headers={**auth, HEADER: scenario})
    assert [t["task_status"] for t in listing.json["data"]] == ["succeed"]  # type: ignore[index]
