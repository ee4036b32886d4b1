"""Each create_app() call is its own mock: no shared state, seeded determinism, thread safety."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from kling_testkit.auth import bearer, sign_token
from mock_server import ConfigError, create_app
from tests.conftest import BASE_CONFIG, CREDS, IMAGES, T2V

START: float = BASE_CONFIG["clock_start"]
PROMPT = "a lighthouse in a storm, waves crashing"


def _data(response: Any) -> Any:
    assert response.status_code == 200, response.json
    assert response.json["code"] == 0, response.json
    return response.json["data"]


def _create(client: FlaskClient, auth: dict[str, str], path: str = T2V, **body: Any) -> str:
    response = client.post(path, json={"prompt": PROMPT, **body}, headers=auth)
    task_id: str = _data(response)["task_id"]
    return task_id


def _task_ids(client: FlaskClient) -> list[str]:
    return [t["task"]["task_id"] for t in _data(client.get("/__mock/tasks"))]


# -- the factory -------------------------------------------------------------------------------


def test_create_app_without_config_serves_health() -> None:
    app = create_app()
    assert isinstance(app, Flask)
    health = _data(app.test_client().get("/__mock/health"))
    assert health["status"] == "ok"
    assert health["tasks"] == 0
    assert health["clock"]["mode"] == "real"


def test_create_app_with_a_dict_applies_it() -> None:
    app = create_app({"seed": 4, "clock": "manual", "clock_start": START})
    client = app.test_client()
    config = _data(client.get("/__mock/config"))
    assert (config["seed"], config["clock"]) == (4, "manual")
    clock = _data(client.get("/__mock/clock"))
    assert (clock["mode"], clock["now"]) == ("manual", START)


def test_create_app_refuses_an_unknown_key() -> None:
    with pytest.raises(ConfigError, match="bogus"):
        create_app({"bogus": 1})


# -- two apps in one process -------------------------------------------------------------------


@pytest.fixture
def pair(make_app: Callable[..., Flask]) -> tuple[FlaskClient, FlaskClient]:
    """Two mocks built with the same config."""
    return make_app().test_client(), make_app().test_client()


def test_tasks_of_one_app_are_invisible_in_another(
    pair: tuple[FlaskClient, FlaskClient], auth: dict[str, str]
) -> None:
    a, b = pair
    task_id = _create(a, auth)
    assert b.get(f"{T2V}/{task_id}", headers=auth).status_code == 404
    assert _data(b.get(T2V, headers=auth)) == []
    assert _task_ids(b) == []
    assert _data(b.get("/__mock/health"))["tasks"] == 0
    assert _task_ids(a) == [task_id]


def test_advancing_one_clock_leaves_the_other(pair: tuple[FlaskClient, FlaskClient]) -> None:
    a, b = pair
    _data(a.post("/__mock/clock/advance", json={"seconds": 3600}))
    assert _data(a.get("/__mock/clock"))["now"] == START + 3600
    assert _data(b.get("/__mock/clock"))["now"] == START


def test_patching_one_config_leaves_the_other(pair: tuple[FlaskClient, FlaskClient]) -> None:
    a, b = pair
    before = _data(b.get("/__mock/config"))
    _data(
        a.patch(
            "/__mock/config",
            json={"seed": 99, "clock": "real", "durations": {"text2video": {"run_s": 1}}},
        )
    )
    assert _data(b.get("/__mock/config")) == before
    assert _data(b.get("/__mock/clock"))["mode"] == "manual"
    assert _data(a.get("/__mock/config"))["durations"]["text2video"]["run_s"] == 1


def test_journal_of_one_app_does_not_hold_the_others_requests(
    pair: tuple[FlaskClient, FlaskClient], auth: dict[str, str]
) -> None:
    a, b = pair
    a.get(f"{T2V}/only-in-a", headers=auth)
    b.get(f"{T2V}/only-in-b", headers=auth)
    paths_a = [e["path"] for e in _data(a.get("/__mock/requests"))["entries"]]
    paths_b = [e["path"] for e in _data(b.get("/__mock/requests"))["entries"]]
    assert paths_a == [f"{T2V}/only-in-a"]
    assert paths_b == [f"{T2V}/only-in-b"]


def test_resetting_one_app_leaves_the_others_tasks(
    pair: tuple[FlaskClient, FlaskClient], auth: dict[str, str]
) -> None:
    a, b = pair
    _create(a, auth)
    kept = _create(b, auth)
    _data(b.post("/__mock/clock/advance", json={"seconds": 10}))
    _data(a.post("/__mock/reset"))
    assert _task_ids(a) == []
    assert _task_ids(b) == [kept]
    assert _data(b.get(f"{T2V}/{kept}", headers=auth))["task_status"] == "processing"
    assert len(_data(b.get("/__mock/requests"))["entries"]) == 2


# -- seeded determinism ------------------------------------------------------------------------


def _script(client: FlaskClient, auth: dict[str, str]) -> list[dict[str, Any]]:
    """A fixed request sequence; returns the tasks' ids and timelines."""
    _create(client, auth)
    _data(client.post("/__mock/clock/advance", json={"seconds": 7}))
    _create(client, auth, IMAGES, n=3)
    _create(client, auth, mode="pro", duration="10")
    client.get(f"{T2V}/not-a-task", headers=auth)  # polling must not shift the ids
    _create(client, auth)
    return [
        {"task_id": t["task"]["task_id"], "timeline": t["timeline"]}
        for t in _data(client.get("/__mock/tasks"))
    ]


def test_same_seed_and_requests_give_same_ids_and_timelines(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    first = _script(make_app(seed=11, duration_spread=0.5).test_client(), auth)
    second = _script(make_app(seed=11, duration_spread=0.5).test_client(), auth)
    assert first == second
    assert len({t["task_id"] for t in first}) == 4
    ends = [t["timeline"]["ends_at"] for t in first]
    assert len(set(ends)) == 4  # the spread really drew timings from the seed


def test_different_seeds_give_different_ids(
    make_app: Callable[..., Flask], auth: dict[str, str]
) -> None:
    one = _script(make_app(seed=11).test_client(), auth)
    other = _script(make_app(seed=12).test_client(), auth)
    assert {t["task_id"] for t in one}.isdisjoint(t["task_id"] for t in other)


# -- concurrency -------------------------------------------------------------------------------

THREADS = 16
PER_THREAD = 5


def test_concurrent_creates_from_threads_are_all_kept(live_server: str) -> None:
    start = threading.Barrier(THREADS)

    def worker(index: int) -> list[str]:
        ids = []
        with requests.Session() as session:
            session.trust_env = False  # loopback only, whatever the proxy settings
            session.headers.update(bearer(sign_token(CREDS)))
            start.wait(timeout=20)
            for n in range(PER_THREAD):
                response = session.post(
                    f"{live_server}{T2V}", json={"prompt": f"thread {index} task {n}"}, timeout=20
                )
                assert response.status_code == 200, response.text
                ids.append(response.json()["data"]["task_id"])
        return ids

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(worker, range(THREADS)))
    created = [task_id for ids in results for task_id in ids]
    assert len(created) == THREADS * PER_THREAD
    assert len(set(created)) == THREADS * PER_THREAD

    with requests.Session() as session:
        session.trust_env = False
        listed = session.get(f"{live_server}/__mock/tasks", timeout=20).json()["data"]
        journal = session.get(f"{live_server}/__mock/requests", timeout=20).json()["data"]
    assert sorted(t["task"]["task_id"] for t in listed) == sorted(created)
    creates = [e for e in journal["entries"] if (e["method"], e["path"]) == ("POST", T2V)]
    assert len(creates) == THREADS * PER_THREAD
    assert all((e["status"], e["code"], e["account"]) == (200, 0, "default") for e in creates)
    assert len({e["request_id"] for e in creates}) == THREADS * PER_THREAD
