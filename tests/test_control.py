"""The control API under /__mock: health, clock, config, tasks, request journal and reset."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kling_testkit.codes import ErrorCode
from tests.conftest import BASE_CONFIG, IMAGES, T2V

pytestmark = pytest.mark.both_stores  # the shared store suite

START: float = BASE_CONFIG["clock_start"]
PROMPT = "a lighthouse in a storm, waves crashing"
TEN_YEARS = 10 * 365 * 86400


def _data(response: Any) -> Any:
    """The ``data`` of a successful envelope (asserts HTTP 200 and code 0)."""
    assert response.status_code == 200, response.json
    assert response.json["code"] == 0, response.json
    return response.json["data"]


def _refused(response: Any) -> str:
    """The message of a 400/1201 refusal (asserts both)."""
    assert response.status_code == 400, response.json
    assert response.json["code"] == ErrorCode.INVALID_VALUE, response.json
    message: str = response.json["message"]
    return message


def _request_id(response: Any) -> str:
    request_id: str = response.json["request_id"]
    return request_id


def _advance(client: FlaskClient, seconds: float) -> dict[str, Any]:
    data: dict[str, Any] = _data(client.post("/__mock/clock/advance", json={"seconds": seconds}))
    return data


def _status(client: FlaskClient, auth: dict[str, str], task_id: str) -> str:
    status: str = _data(client.get(f"{T2V}/{task_id}", headers=auth))["task_status"]
    return status


def _first_task_id(app: Flask, auth: dict[str, str]) -> str:
    response = app.test_client().post(T2V, json={"prompt": PROMPT}, headers=auth)
    task_id: str = _data(response)["task_id"]
    return task_id


# -- health ------------------------------------------------------------------------------------


def test_health_reports_ok_with_task_count_and_clock(
    client: FlaskClient, submit: Callable[..., dict[str, Any]]
) -> None:
    before = _data(client.get("/__mock/health"))
    assert before["status"] == "ok"
    assert before["tasks"] == 0
    assert before["clock"]["mode"] == "manual"
    assert before["clock"]["now"] == START

    submit()
    submit(IMAGES)
    assert _data(client.get("/__mock/health"))["tasks"] == 2


# -- clock -------------------------------------------------------------------------------------


def test_clock_starts_manual_at_configured_clock_start(client: FlaskClient) -> None:
    clock = _data(client.get("/__mock/clock"))
    assert clock["mode"] == "manual"
    assert clock["now"] == START
    assert clock["now_ms"] == int(START * 1000)
    assert clock["time_scale"] == 0


def test_advance_moves_the_clock_by_exactly_the_given_seconds(client: FlaskClient) -> None:
    answered = _advance(client, 30)
    assert answered["now"] == START + 30
    assert _data(client.get("/__mock/clock"))["now"] == START + 30
    assert _advance(client, 0.5)["now"] == START + 30.5


def test_advance_steps_task_through_queue_and_run_boundaries(
    client: FlaskClient, auth: dict[str, str], submit: Callable[..., dict[str, Any]]
) -> None:
    task_id = submit()["task_id"]
    assert _status(client, auth, task_id) == "submitted"
    _advance(client, 9)
    assert _status(client, auth, task_id) == "submitted"
    _advance(client, 1)  # t = queue_s = 10
    assert _status(client, auth, task_id) == "processing"
    _advance(client, 119)  # t = 129
    assert _status(client, auth, task_id) == "processing"
    _advance(client, 1)  # t = queue_s + run_s = 130
    task = _data(client.get(f"{T2V}/{task_id}", headers=auth))
    assert task["task_status"] == "succeed"
    assert task["updated_at"] == int((START + 130) * 1000)
    assert task["task_result"]["videos"]


@pytest.mark.parametrize(
    "body",
    [
        {"seconds": -1},
        {"seconds": "30"},
        {},
        {"seconds": None},
        {"seconds": True},
        {"seconds": TEN_YEARS + 1},
        [30],
    ],
    ids=["negative", "string", "missing", "null", "bool", "over-ten-years", "not-an-object"],
)
def test_advance_refuses_bad_bodies_and_keeps_time(client: FlaskClient, body: object) -> None:
    _refused(client.post("/__mock/clock/advance", json=body))
    assert _data(client.get("/__mock/clock"))["now"] == START


def test_advance_accepts_exactly_ten_years(client: FlaskClient) -> None:
    assert _advance(client, TEN_YEARS)["now"] == START + TEN_YEARS


# -- config ------------------------------------------------------------------------------------


def test_config_masks_secret_and_api_key(client: FlaskClient) -> None:
    config = _data(client.get("/__mock/config"))
    assert config["seed"] == 1
    assert config["clock"] == "manual"
    [account] = config["accounts"]
    assert account["name"] == "default"
    assert account["access_key"] == "kling-mock-access-key"
    assert account["secret_key"] == "***"
    assert account["api_key"] == "***"


def test_patch_durations_merges_nested_and_applies_to_new_tasks(
    client: FlaskClient, submit: Callable[..., dict[str, Any]]
) -> None:
    old_id = submit()["task_id"]
    patched = _data(
        client.patch("/__mock/config", json={"durations": {"text2video": {"run_s": 30}}})
    )
    assert patched["durations"]["text2video"] == {"queue_s": 10.0, "run_s": 30}
    assert patched["durations"]["image_generation"] == {"queue_s": 2.0, "run_s": 12.0}

    new_id = submit()["task_id"]
    timelines = {t["task"]["task_id"]: t["timeline"] for t in _data(client.get("/__mock/tasks"))}
    assert timelines[new_id] == {
        "submitted_at": START,
        "processing_at": START + 10,
        "ends_at": START + 40,
    }
    assert timelines[old_id]["ends_at"] == START + 130  # existing tasks keep their timeline


def test_patch_clock_real_switches_mode_without_going_back(client: FlaskClient) -> None:
    before = _advance(client, 100)["now"]
    patched = _data(client.patch("/__mock/config", json={"clock": "real", "time_scale": 1000}))
    assert patched["clock"] == "real"
    assert patched["time_scale"] == 1000

    clock = _data(client.get("/__mock/clock"))
    assert clock["mode"] == "real"
    assert clock["time_scale"] == 1000
    assert clock["now"] >= before
    later = _data(client.get("/__mock/clock"))["now"]
    assert later >= clock["now"]


def test_patch_seed_makes_next_task_id_deterministic(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    ids = []
    for _ in range(2):
        app = make_app()
        _data(app.test_client().patch("/__mock/config", json={"seed": 5}))
        ids.append(_first_task_id(app, auth))
    assert ids[0] == ids[1]
    assert ids[0] == _first_task_id(make_app(seed=5), auth)
    assert ids[0] != _first_task_id(make_app(), auth)  # the patch did change the stream


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"bogus": 1}, "bogus"),
        ({"seed": 2, "bogus": 1}, "bogus"),
        (
            {"accounts": [{"name": "x", "access_key": "ak", "secret_key": "s" * 40}]},
            "accounts",
        ),
        ({"journal_size": 10}, "journal_size"),
        ({"seed": "five"}, "seed"),
        ({"time_scale": "fast"}, "time_scale"),
        ({"durations": {"text2video": {"run_s": "long"}}}, "run_s"),
        ({"durations": {"text3video": {"run_s": 1}}}, "text3video"),
    ],
    ids=[
        "unknown",
        "unknown-with-valid",
        "accounts",
        "journal_size",
        "seed-type",
        "time_scale-type",
        "nested-type",
        "unknown-family",
    ],
)
def test_patch_config_refuses_bad_changes_naming_the_key(
    client: FlaskClient, body: dict[str, Any], named: str
) -> None:
    before = _data(client.get("/__mock/config"))
    assert named in _refused(client.patch("/__mock/config", json=body))
    assert _data(client.get("/__mock/config")) == before


# -- tasks -------------------------------------------------------------------------------------


def test_tasks_lists_every_task_with_timeline_and_rendered_task(
    client: FlaskClient, submit: Callable[..., dict[str, Any]]
) -> None:
    video = submit(prompt="a red fox")
    _advance(client, 5)
    image = submit(IMAGES, prompt="a blue bird")
    listed = _data(client.get("/__mock/tasks"))
    assert [t["task"]["task_id"] for t in listed] == [image["task_id"], video["task_id"]]

    first, second = listed
    assert (first["account"], first["family"]) == ("default", "image_generation")
    assert first["params"]["prompt"] == "a blue bird"
    assert first["timeline"] == {
        "submitted_at": START + 5,
        "processing_at": START + 7,
        "ends_at": START + 19,
    }
    assert (second["account"], second["family"]) == ("default", "text2video")
    assert second["params"]["prompt"] == "a red fox"
    assert second["timeline"] == {
        "submitted_at": START,
        "processing_at": START + 10,
        "ends_at": START + 130,
    }
    assert first["task"]["task_status"] == "submitted"
    assert second["task"]["task_status"] == "submitted"


def test_tasks_rendered_status_follows_the_clock(
    client: FlaskClient, submit: Callable[..., dict[str, Any]]
) -> None:
    submit()
    _advance(client, 10)
    [entry] = _data(client.get("/__mock/tasks"))
    assert entry["task"]["task_status"] == "processing"


def test_tasks_family_filter_keeps_only_that_family(
    client: FlaskClient, submit: Callable[..., dict[str, Any]]
) -> None:
    video = submit()
    image = submit(IMAGES)
    images = _data(client.get("/__mock/tasks?family=image_generation"))
    assert [t["task"]["task_id"] for t in images] == [image["task_id"]]
    videos = _data(client.get("/__mock/tasks?family=text2video"))
    assert [t["task"]["task_id"] for t in videos] == [video["task_id"]]
    assert _data(client.get("/__mock/tasks?family=image2video")) == []


# -- requests journal --------------------------------------------------------------------------


def test_journal_records_each_api_request_with_its_outcome(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    created = client.post(T2V, json={"prompt": PROMPT}, headers=auth)
    _advance(client, 30)
    unauthenticated = client.get(f"{T2V}/123")
    missing = client.get(f"{T2V}/does-not-exist", headers=auth)

    entries = _data(client.get("/__mock/requests"))["entries"]
    seen = [{k: e.pop(k) for k in ("query", "headers", "body", "body_bytes")} for e in entries]
    assert seen[0]["headers"]["Authorization"] == "Bearer ***"  # the token is never kept
    assert json.loads(seen[0]["body"]) == {"prompt": PROMPT}
    assert seen[0]["body_bytes"] == len(seen[0]["body"].encode())
    assert [s["body"] for s in seen[1:]] == [None, None]
    assert "Authorization" not in seen[1]["headers"]
    assert entries == [
        {
            "time": int(START * 1000),
            "method": "POST",
            "path": T2V,
            "account": "default",
            "status": 200,
            "code": 0,
            "request_id": _request_id(created),
            "fault": None,
            "latency_ms": None,
        },
        {
            "time": int((START + 30) * 1000),
            "method": "GET",
            "path": f"{T2V}/123",
            "account": None,
            "status": 401,
            "code": ErrorCode.AUTH_EMPTY,
            "request_id": _request_id(unauthenticated),
            "fault": None,
            "latency_ms": None,
        },
        {
            "time": int((START + 30) * 1000),
            "method": "GET",
            "path": f"{T2V}/does-not-exist",
            "account": "default",
            "status": 404,
            "code": ErrorCode.RESOURCE_NOT_FOUND,
            "request_id": _request_id(missing),
            "fault": None,
            "latency_ms": None,
        },
    ]
    assert len({e["request_id"] for e in entries}) == 3


def test_journal_skips_control_calls(client: FlaskClient) -> None:
    client.get("/__mock/health")
    client.get("/__mock/clock")
    client.post("/__mock/clock/advance", json={"seconds": 1})
    client.get("/__mock/tasks")
    client.patch("/__mock/config", json={"bogus": 1})
    journal = _data(client.get("/__mock/requests"))
    assert journal["entries"] == []
    assert journal["dropped"] == 0


def test_journal_is_bounded_and_counts_dropped_entries(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    client = make_app(journal_size=5).test_client()
    for i in range(8):
        client.get(f"{T2V}/missing-{i}", headers=auth)
    journal = _data(client.get("/__mock/requests"))
    assert [e["path"] for e in journal["entries"]] == [f"{T2V}/missing-{i}" for i in range(3, 8)]
    assert journal["dropped"] == 3
    assert journal["capacity"] == 5


def test_journal_limit_returns_the_newest_entries(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    for i in range(4):
        client.get(f"{T2V}/missing-{i}", headers=auth)
    newest = _data(client.get("/__mock/requests?limit=2"))["entries"]
    assert [e["path"] for e in newest] == [f"{T2V}/missing-2", f"{T2V}/missing-3"]
    assert _data(client.get("/__mock/requests?limit=0"))["entries"] == []
    assert len(_data(client.get("/__mock/requests?limit=99"))["entries"]) == 4


@pytest.mark.parametrize("limit", ["abc", "-1", "1.5", ""])
def test_journal_refuses_a_limit_that_is_not_a_whole_number(
    client: FlaskClient, limit: str
) -> None:
    assert "limit" in _refused(client.get(f"/__mock/requests?limit={limit}"))


# -- reset -------------------------------------------------------------------------------------


def test_reset_restores_the_start_up_state(
    make_app: Callable[..., Flask],
    client: FlaskClient,
    auth: dict[str, str],
    submit: Callable[..., dict[str, Any]],
) -> None:
    initial_config = _data(client.get("/__mock/config"))
    submit()
    submit(IMAGES)
    _advance(client, 500)
    _data(
        client.patch(
            "/__mock/config",
            json={"seed": 7, "clock": "real", "durations": {"text2video": {"run_s": 1}}},
        )
    )

    reset = _data(client.post("/__mock/reset"))
    assert reset["status"] == "reset"
    assert _data(client.get("/__mock/tasks")) == []
    journal = _data(client.get("/__mock/requests"))
    assert (journal["entries"], journal["dropped"]) == ([], 0)
    assert _data(client.get("/__mock/config")) == initial_config
    clock = _data(client.get("/__mock/clock"))
    assert (clock["mode"], clock["now"]) == ("manual", START)
    assert _data(client.get("/__mock/health"))["tasks"] == 0

    after = submit()
    assert after["task_id"] == _first_task_id(make_app(), auth)
    assert after["created_at"] == int(START * 1000)


def test_accounts_show_packs_slots_and_no_secrets(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    client.post(T2V, json={"prompt": "a kite", "mode": "pro"}, headers=auth)
    (account,) = _data(client.get("/__mock/accounts"))
    assert account["name"] == "default" and "secret_key" not in account
    assert account["slots_in_use"] == {"audio": 0, "image": 0, "try_on": 0, "video": 1}
    assert {p["kind"]: p["remaining_quantity"] for p in account["packs"]} == {
        "video": 1000.0,
        "image": 1000.0,
        "try_on": 1000.0,
        "audio": 1000.0,
    }
    _advance(client, 3600)
    (account,) = _data(client.get("/__mock/accounts"))
    assert account["slots_in_use"] == {"audio": 0, "image": 0, "try_on": 0, "video": 0}
    assert {p["kind"]: p["remaining_quantity"] for p in account["packs"]}["video"] == 996.5
