"""Concurrency slots and request-rate windows, on the mock's clock, with true Retry-After waits."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from kling_testkit.auth import bearer, sign_token
from kling_testkit.codes import ErrorCode
from kling_testkit.credentials import Credentials
from mock_server import Backend
from tests.conftest import CREDS, I2V, IMAGES, T2V, accepted, create, with_config

pytestmark = pytest.mark.both_stores  # the shared store suite

IMAGE_URL = "https://example.com/first-frame.png"
T2V_SECONDS = 10 + 120  # default text2video timing: queued + processing
OTHER = Credentials("other-access-key", "other-secret-key-" + "x" * 32)


def account(name: str, creds: Credentials, **extra: Any) -> dict[str, Any]:
    return {"name": name, "access_key": creds.access_key, "secret_key": creds.secret_key, **extra}


def refused(response: Any, code: ErrorCode) -> str:
    """The message of a 429 refusal with ``code`` (asserts both)."""
    assert response.status_code == 429, response.json
    assert response.json["code"] == code, response.json
    message: str = response.json["message"]
    return message


def advance(client: FlaskClient, seconds: float) -> None:
    assert client.post("/__mock/clock/advance", json={"seconds": seconds}).status_code == 200


def task_count(client: FlaskClient) -> int:
    return len(client.get("/__mock/tasks").json["data"])  # type: ignore[index]


def remaining(client: FlaskClient, auth: dict[str, str], pack: str) -> float:
    query = {"start_time": 0, "end_time": 10**13, "resource_pack_name": pack}
    response = client.get("/account/costs", query_string=query, headers=auth)
    assert response.status_code == 200, response.json
    (info,) = response.json["data"]["resource_pack_subscribe_infos"]  # type: ignore[index]
    value: float = info["remaining_quantity"]
    return value


# -- concurrency slots -------------------------------------------------------------------------


@with_config(concurrency={"video": 2, "image": 9})
def test_video_task_over_the_limit_is_refused_with_the_wait_until_a_slot_frees(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    accepted(create(client, auth))
    accepted(create(client, auth))
    response = create(client, auth)
    message = refused(response, ErrorCode.CONCURRENCY_LIMITED)
    assert "limit" in message and "2" in message
    assert response.headers["Retry-After"] == str(T2V_SECONDS)


@with_config(concurrency={"video": 2, "image": 9})
def test_retrying_before_retry_after_is_refused_and_at_retry_after_succeeds(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    accepted(create(client, auth))
    accepted(create(client, auth))
    wait = int(create(client, auth).headers["Retry-After"])
    advance(client, wait - 1)
    early = create(client, auth)
    refused(early, ErrorCode.CONCURRENCY_LIMITED)
    assert early.headers["Retry-After"] == "1"
    advance(client, 1)
    accepted(create(client, auth))


@with_config(concurrency={"video": 2, "image": 9})
def test_image2video_and_text2video_share_the_video_slots(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    accepted(create(client, auth, I2V, image=IMAGE_URL))
    accepted(create(client, auth, T2V))
    refused(create(client, auth, I2V, image=IMAGE_URL), ErrorCode.CONCURRENCY_LIMITED)
    refused(create(client, auth, T2V), ErrorCode.CONCURRENCY_LIMITED)


@with_config(concurrency={"video": 2, "image": 1})
def test_video_and_image_slots_are_counted_separately(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    accepted(create(client, auth))
    accepted(create(client, auth))
    refused(create(client, auth), ErrorCode.CONCURRENCY_LIMITED)
    accepted(create(client, auth, IMAGES))
    refused(create(client, auth, IMAGES), ErrorCode.CONCURRENCY_LIMITED)
    refused(create(client, auth), ErrorCode.CONCURRENCY_LIMITED)


@with_config(concurrency={"video": 2, "image": 9})
def test_image_task_holds_one_slot_per_image(client: FlaskClient, auth: dict[str, str]) -> None:
    accepted(create(client, auth, IMAGES, n=5))
    second = create(client, auth, IMAGES, n=5)
    refused(second, ErrorCode.CONCURRENCY_LIMITED)
    assert second.headers["Retry-After"] == str(2 + 12 * 2)  # 4 extra images: +100 % run
    accepted(create(client, auth, IMAGES, n=4))
    refused(create(client, auth, IMAGES, n=1), ErrorCode.CONCURRENCY_LIMITED)


@with_config(
    concurrency={"video": 2, "image": 9},
    accounts=[
        account("a", CREDS, packs=[{"name": "v", "kind": "video", "total": 10}]),
    ],
)
def test_refused_create_stores_nothing_and_charges_nothing(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    accepted(create(client, auth))
    accepted(create(client, auth))
    before = task_count(client)
    for _ in range(3):
        refused(create(client, auth), ErrorCode.CONCURRENCY_LIMITED)
    assert task_count(client) == before == 2
    advance(client, 10 * T2V_SECONDS)
    assert remaining(client, auth, "v") == 10 - 2


@with_config(concurrency={"video": 2, "image": 9})
def test_stuck_tasks_hold_their_slots_so_the_refusal_has_no_retry_after(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    accepted(create(client, auth, scenario="stuck"))
    accepted(create(client, auth, scenario="stuck"))
    for step in (0, 86400, 30 * 86400):
        advance(client, step)
        response = create(client, auth)
        refused(response, ErrorCode.CONCURRENCY_LIMITED)
        assert "Retry-After" not in response.headers


@with_config(concurrency={"video": 2, "image": 9})
def test_one_stuck_task_still_leaves_a_true_retry_after_for_the_other_slot(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    accepted(create(client, auth, scenario="stuck"))
    accepted(create(client, auth))
    response = create(client, auth)
    refused(response, ErrorCode.CONCURRENCY_LIMITED)
    assert response.headers["Retry-After"] == str(T2V_SECONDS)
    advance(client, T2V_SECONDS)
    accepted(create(client, auth))
    refused(create(client, auth), ErrorCode.CONCURRENCY_LIMITED)


@with_config(concurrency={"video": 1, "image": 9})
def test_retry_after_header_can_be_switched_off_at_run_time(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    patched = client.patch("/__mock/config", json={"retry_after_header": False})
    assert patched.status_code == 200, patched.json
    accepted(create(client, auth))
    response = create(client, auth)
    refused(response, ErrorCode.CONCURRENCY_LIMITED)
    assert "Retry-After" not in response.headers


@with_config(
    clock="real",
    time_scale=10,
    concurrency={"video": 2, "image": 1},
    durations={"image_generation": {"queue_s": 20.0, "run_s": 100.0}},
)
def test_scaled_real_clock_gives_retry_after_in_wall_seconds(
    client: FlaskClient, auth: dict[str, str], backend: Backend
) -> None:
    first = accepted(create(client, auth))
    accepted(create(client, auth))
    ends = backend.find_task(first).ends_at  # type: ignore[union-attr]
    before = backend.now()
    video = create(client, auth)
    after = backend.now()  # the clock ran x10 meanwhile: bounds come from the mock's own clock
    refused(video, ErrorCode.CONCURRENCY_LIMITED)
    # 130 mock s / 10 = 13 wall s, less whatever mock time passed before the answer.
    seconds = int(video.headers["Retry-After"])
    assert math.ceil((ends - after) / 10 - 1e-9) <= seconds <= math.ceil((ends - before) / 10)
    assert seconds >= 1
    picture = backend.find_task(accepted(create(client, auth, IMAGES)))
    assert picture is not None
    before = backend.now()
    image = create(client, auth, IMAGES)
    after = backend.now()
    refused(image, ErrorCode.CONCURRENCY_LIMITED)
    seconds = int(image.headers["Retry-After"])  # 120 mock s / 10 = 12 wall s, less time passed
    assert (
        math.ceil((picture.ends_at - after) / 10 - 1e-9)
        <= seconds
        <= math.ceil((picture.ends_at - before) / 10)
    )


# -- request rate ------------------------------------------------------------------------------


@with_config(rate_limit={"requests": 3, "window_s": 10})
def test_fourth_api_request_in_the_window_is_rate_limited_until_the_oldest_leaves(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    task_id = accepted(create(client, auth))  # t = 0
    advance(client, 2)
    assert client.get(f"{T2V}/{task_id}", headers=auth).status_code == 200  # t = 2
    advance(client, 3)
    assert client.get(T2V, headers=auth).status_code == 200  # t = 5
    response = client.get(T2V, headers=auth)
    message = refused(response, ErrorCode.RATE_LIMITED)
    assert "3" in message
    assert response.headers["Retry-After"] == "5"  # the t = 0 request leaves at t = 10
    advance(client, 5)
    assert client.get(T2V, headers=auth).status_code == 200


@with_config(rate_limit={"requests": 3, "window_s": 10})
def test_a_refused_request_does_not_count_against_the_window(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    for step in (0, 2, 3):  # requests at t = 0, 2, 5
        advance(client, step)
        assert client.get(T2V, headers=auth).status_code == 200
    for _ in range(5):
        refused(client.get(T2V, headers=auth), ErrorCode.RATE_LIMITED)
    advance(client, 5)  # t = 10: the t = 0 request has left
    assert client.get(T2V, headers=auth).status_code == 200
    response = client.get(T2V, headers=auth)  # window now holds t = 2, 5, 10
    refused(response, ErrorCode.RATE_LIMITED)
    assert response.headers["Retry-After"] == "2"


def test_no_rate_limit_by_default(client: FlaskClient, auth: dict[str, str]) -> None:
    assert client.get("/__mock/config").json["data"]["rate_limit"] is None  # type: ignore[index]
    for _ in range(30):
        assert client.get(T2V, headers=auth).status_code == 200


@with_config(
    rate_limit={"requests": 3, "window_s": 10},
    accounts=[account("a", CREDS), account("b", OTHER)],
)
def test_rate_limit_is_counted_per_account(client: FlaskClient, auth: dict[str, str]) -> None:
    for _ in range(3):
        assert client.get(T2V, headers=auth).status_code == 200
    refused(client.get(T2V, headers=auth), ErrorCode.RATE_LIMITED)
    other = bearer(sign_token(OTHER))
    for _ in range(3):
        assert client.get(T2V, headers=other).status_code == 200
    refused(client.get(T2V, headers=other), ErrorCode.RATE_LIMITED)


# -- real threads ------------------------------------------------------------------------------

THREADS = 32


def submit_at_once(base_url: str) -> list[requests.Response]:
    """One create per thread, all released by a barrier at the same moment."""
    start = threading.Barrier(THREADS)

    def worker(index: int) -> requests.Response:
        with requests.Session() as session:
            session.trust_env = False  # loopback only, whatever the proxy settings
            session.headers.update(bearer(sign_token(CREDS)))
            start.wait(timeout=20)
            return session.post(f"{base_url}{T2V}", json={"prompt": f"thread {index}"}, timeout=20)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(worker, range(THREADS)))


def get_data(url: str, **params: Any) -> Any:
    with requests.Session() as session:
        session.trust_env = False
        response = session.get(url, params=params, headers=bearer(sign_token(CREDS)), timeout=20)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def outcomes(responses: list[requests.Response]) -> tuple[list[str], list[tuple[int, int]]]:
    """Task ids of the accepted creates, and (status, code) of the refused ones."""
    ok = [r.json()["data"]["task_id"] for r in responses if r.status_code == 200]
    bad = [(r.status_code, r.json()["code"]) for r in responses if r.status_code != 200]
    return ok, bad


@with_config(concurrency={"video": 5})
def test_simultaneous_creates_from_threads_never_exceed_the_concurrency_limit(
    live_server: str,
) -> None:
    created, refusals = outcomes(submit_at_once(live_server))
    assert len(created) == 5
    assert refusals == [(429, ErrorCode.CONCURRENCY_LIMITED)] * (THREADS - 5)
    listed = get_data(f"{live_server}/__mock/tasks")
    assert sorted(t["task"]["task_id"] for t in listed) == sorted(created)
    assert len(set(created)) == 5


@with_config(
    concurrency={"video": 100},
    accounts=[account("a", CREDS, packs=[{"name": "v", "kind": "video", "total": 10}])],
)
def test_simultaneous_creates_from_threads_never_overspend_a_pack(
    live_server: str, backend: Backend
) -> None:
    created, refusals = outcomes(submit_at_once(live_server))
    assert len(created) == 10 == len(set(created))
    assert refusals == [(429, ErrorCode.RESOURCE_PACK_EXHAUSTED)] * (THREADS - 10)
    backend.advance(1000)
    listed = get_data(f"{live_server}/__mock/tasks")
    assert sorted(t["task"]["task_id"] for t in listed) == sorted(created)
    assert all(t["task"]["task_status"] == "succeed" for t in listed)
    costs = get_data(f"{live_server}/account/costs", start_time=0, end_time=10**13)
    (pack,) = costs["resource_pack_subscribe_infos"]
    assert (pack["resource_pack_name"], pack["remaining_quantity"]) == ("v", 0)
