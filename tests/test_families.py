"""Every family of the contract, end to end: the behaviour suites run over ``families()``.

Each test takes a valid body of its family from the contract (``tests/families.py``), so a
family added to ``openapi.json`` is covered here without a line of test code. What runs for
every family: create, the timeline, queries by id and external id, lists, result shapes and
real media bytes, prices and packs, failures, the concurrency of its pack kind, callbacks,
fault rules and expiring URLs. The heavier checks of each mechanism (retries, Redis twins,
threads) stay in their own modules on one family: the mechanism is the same for all.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from mutagen.mp3 import MP3  # type: ignore[import-untyped]

from kling_testkit.pricing import format_units, pack_kind, units
from kling_testkit.spec import check_request, families, validate
from mock_server import Backend
from mock_server.media import mp4_duration_seconds, png_size
from tests.conftest import CREDS, Receiver, wait_callbacks
from tests.families import FAMILIES, advance, body_for, create, example, parent_field, put, query

LATE = 3600.0  # seconds after which every task of the default timings has ended


def ended(client: FlaskClient, auth: dict[str, str], family: str, task_id: str) -> Any:
    advance(client, LATE)
    return query(client, auth, family, task_id)


def fetch(client: FlaskClient, url: str) -> Any:
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def urls(result: dict[str, Any]) -> list[str]:
    return [v for items in result.values() for item in items for k, v in item.items() if "url" in k]


@pytest.mark.both_stores
@pytest.mark.parametrize("family", FAMILIES)
def test_task_moves_through_its_timeline_and_ends_with_results_of_its_kinds(
    client: FlaskClient, auth: dict[str, str], backend: Backend, family: str
) -> None:
    created = create(client, auth, family, external_task_id=f"{family}-1")
    validate("TaskCreated", created)
    task = backend.find_task(created["task_id"])
    assert task is not None
    steps = [
        (task.processing_at - backend.now() - 0.001, "submitted"),
        (0.001, "processing"),
        (task.ends_at - task.processing_at - 0.001, "processing"),
        (0.001, "succeed"),
    ]
    for seconds, status in steps:
        advance(client, seconds)
        assert query(client, auth, family, created["task_id"])["task_status"] == status
    done = query(client, auth, family, f"{family}-1")
    validate("Task", done)
    assert sorted(done["task_result"]) == sorted(families()[family].results)
    assert ("parent_video" in done["task_info"]) == (parent_field(family) is not None)
    assert done["task_info"]["external_task_id"] == f"{family}-1"


@pytest.mark.parametrize("family", FAMILIES)
def test_every_result_url_serves_real_media_of_the_task(
    client: FlaskClient, auth: dict[str, str], family: str
) -> None:
    done = ended(client, auth, family, create(client, auth, family)["task_id"])
    result = done["task_result"]
    for video in result.get("videos", []):
        for url in (video["url"], video["watermark_url"]):
            response = fetch(client, url)
            assert response.mimetype == "video/mp4"
            assert mp4_duration_seconds(response.data) > 0
    for image in result.get("images", []):
        assert png_size(fetch(client, image["url"]).data)[0] > 0
    for audio in result.get("audios", []):
        expected = float(audio["duration_mp3"])
        mp3 = fetch(client, audio["url_mp3"])
        assert mp3.mimetype == "audio/mpeg"
        assert MP3(io.BytesIO(mp3.data)).info.length == pytest.approx(expected, abs=0.04)
        with wave.open(io.BytesIO(fetch(client, audio["url_wav"]).data)) as wav:
            assert wav.getnframes() / wav.getframerate() == pytest.approx(expected, abs=0.01)
    assert urls(result)


@pytest.mark.parametrize("family", FAMILIES)
def test_tasks_are_found_by_external_id_both_ways_and_listed_newest_first(
    client: FlaskClient, auth: dict[str, str], family: str
) -> None:
    path = families()[family].path
    first = create(client, auth, family, external_task_id="first")["task_id"]
    second = create(client, auth, family, external_task_id="second")["task_id"]
    assert query(client, auth, family, "first")["task_id"] == first
    by_query = client.get(path, query_string={"external_task_id": "second"}, headers=auth)
    assert by_query.json["data"]["task_id"] == second  # type: ignore[index]
    pages = [
        client.get(path, query_string={"pageNum": n, "pageSize": 1}, headers=auth).json["data"]  # type: ignore[index]
        for n in (1, 2, 3)
    ]
    assert [[t["task_id"] for t in page] for page in pages] == [[second], [first], []]


@pytest.mark.parametrize("family", FAMILIES)
def test_success_deducts_the_contract_price_from_a_pack_of_its_kind(
    client: FlaskClient, auth: dict[str, str], backend: Backend, family: str
) -> None:
    kind = pack_kind(family)

    def remaining() -> float:
        (account,) = backend.accounts_view()
        return sum(p["remaining_quantity"] for p in account["packs"] if p["kind"] == kind)

    body = body_for(client, auth, family)
    before = remaining()
    created = client.post(families()[family].path, json=body, headers=auth).json["data"]  # type: ignore[index]
    done = ended(client, auth, family, created["task_id"])
    task = backend.find_task(created["task_id"])
    assert task is not None
    source = float(done["task_info"]["parent_video"]["duration"]) if task.parent else None
    price = units(family, {**check_request(family, body), **task.params}, source)
    assert price > 0
    assert done["final_unit_deduction"] == format_units(price)
    assert before - remaining() == pytest.approx(float(price))


@pytest.mark.parametrize("family", FAMILIES)
def test_a_failing_task_reports_its_failure_and_costs_nothing(
    make_app: Callable[..., Flask], auth: dict[str, str], family: str
) -> None:
    client = make_app(failure_rate={family: 1.0}).test_client()
    done = ended(client, auth, family, create(client, auth, family)["task_id"])
    assert done["task_status"] == "failed" and done["task_status_msg"]
    assert done["task_result"] == {} and done["final_unit_deduction"] == "0"


@pytest.mark.parametrize("family", FAMILIES)
def test_the_concurrency_of_its_pack_kind_refuses_a_second_task(
    make_app: Callable[..., Flask], auth: dict[str, str], family: str
) -> None:
    client = make_app(concurrency={pack_kind(family): 1}).test_client()
    body = body_for(client, auth, family)
    assert client.post(families()[family].path, json=body, headers=auth).status_code == 200
    refused = client.post(families()[family].path, json=body, headers=auth)
    assert (refused.status_code, refused.json["code"]) == (429, 1303)  # type: ignore[index]
    assert int(refused.headers["Retry-After"]) > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_callbacks_report_each_status_with_the_results(
    client: FlaskClient, auth: dict[str, str], receiver: Receiver, family: str
) -> None:
    create(client, auth, family, callback_url=f"{receiver.url}/hook")
    advance(client, LATE)
    assert wait_callbacks(client)["idle"] is True
    import json

    bodies = [json.loads(call["body"]) for call in receiver.calls[-3:]]
    assert [b["task_status"] for b in bodies] == ["submitted", "processing", "succeed"]
    assert sorted(bodies[-1]["task_result"]) == sorted(families()[family].results)


@pytest.mark.parametrize("family", FAMILIES)
def test_fault_rules_and_expiring_urls_apply_to_every_family(
    make_app: Callable[..., Flask], auth: dict[str, str], family: str
) -> None:
    client = make_app(result_ttl_s=100).test_client()
    path = families()[family].path
    done = ended(client, auth, family, create(client, auth, family)["task_id"])
    advance(client, 101)
    dead = fetch(client, urls(done["task_result"])[0])
    assert (dead.status_code, dead.json["code"]) == (403, 1103)  # type: ignore[index]
    rule = {"match": {"method": "POST", "path": path}, "action": {"type": "error", "code": 5000}}
    assert client.post("/__mock/faults", json=rule).status_code == 200
    broken = client.post(path, json=body_for(client, auth, family), headers=auth)
    assert (broken.status_code, broken.json["code"]) == (500, 5000)  # type: ignore[index]


# -- references to earlier videos ------------------------------------------------------------

WITH_PARENT = [f for f in FAMILIES if parent_field(f) is not None]


def not_found(response: Any, ident: str) -> None:
    assert (response.status_code, response.json["code"]) == (400, 1201), response.json
    assert response.json["message"] == f"From video not found by id: {ident}"


@pytest.mark.parametrize("family", WITH_PARENT)
def test_a_task_id_or_an_unknown_id_is_not_a_video(
    client: FlaskClient, auth: dict[str, str], family: str
) -> None:
    path, where = families()[family].path, str(parent_field(family))
    body = body_for(client, auth, family)
    source = client.get(families()["text2video"].path, headers=auth).json["data"][0]  # type: ignore[index]
    for wrong in (source["task_id"], "123456789012345678", "not-a-video"):
        put(body, where, wrong)
        not_found(client.post(path, json=body, headers=auth), wrong)


@pytest.mark.parametrize("family", WITH_PARENT)
def test_a_video_older_than_thirty_days_or_of_another_account_is_not_found(
    make_app: Callable[..., Flask], auth: dict[str, str], family: str
) -> None:
    other = {"name": "other", "access_key": "other-access-key", "secret_key": "s" * 40}
    mine = {"name": "mine", "access_key": CREDS.access_key, "secret_key": CREDS.secret_key}
    client = make_app(accounts=[mine, other]).test_client()
    path, where = families()[family].path, str(parent_field(family))
    body = body_for(client, auth, family)
    video = body["video_id"] if "video_id" in body else body["input"]["video_id"]
    from kling_testkit.auth import bearer, sign_token
    from kling_testkit.credentials import Credentials

    theirs = bearer(sign_token(Credentials("other-access-key", "s" * 40)))
    not_found(client.post(path, json=body, headers=theirs), video)
    assert (
        client.post(path, json={**body, "external_task_id": "in-time"}, headers=auth).status_code
        == 200
    )
    advance(client, 30 * 86400)
    not_found(client.post(path, json=body, headers=auth), video)
    put(body, where, video)


def test_the_extended_video_is_its_source_plus_five_seconds_with_its_model_and_mode(
    client: FlaskClient, auth: dict[str, str], backend: Backend
) -> None:
    from tests.families import source_video

    video = source_video(client, auth, duration="10", mode="pro", aspect_ratio="9:16")
    task_id = create(client, auth, "video_extend", video_id=video)["task_id"]
    done = ended(client, auth, "video_extend", task_id)
    assert done["task_info"]["parent_video"]["id"] == video
    assert done["task_info"]["parent_video"]["duration"] == "10"
    assert done["task_result"]["videos"][0]["duration"] == "15"
    assert done["final_unit_deduction"] == "3.5"  # the extend price of kling-v1 pro, as the source
    task = backend.find_task(task_id)
    assert task is not None and task.params["aspect_ratio"] == "9:16"


def test_multi_image2video_names_an_images_list_as_unknown(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    body = {**example("multi_image2video"), "images": ["https://example.com/a.png"]}
    del body["image_list"]
    response = client.post(families()["multi_image2video"].path, json=body, headers=auth)
    assert (response.status_code, response.json["code"]) == (400, 1201)  # type: ignore[index]
    assert "image_list" in response.json["message"]  # type: ignore[index]


def test_the_client_creates_queries_lists_and_downloads_a_new_family(
    client: FlaskClient, live_server: str, tmp_path: Any
) -> None:
    from kling_testkit.client import KlingClient

    kling = KlingClient(live_server, CREDS)
    for family in ("text_to_audio", "virtual_try_on"):
        created = kling.create_task(family, example(family))
        advance(client, LATE)
        done = kling.get_task(family, created["task_id"])
        assert kling.list_tasks(family)[0]["task_id"] == created["task_id"]
        (items,) = done["task_result"].values()
        assert kling.download(items[0], tmp_path / family) > 0
