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
import json
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
from mock_server.media import mp4_duration_seconds, png_size, shipped_videos
from tests.conftest import CREDS, Receiver, wait_callbacks
from tests.families import (
    FAMILIES,
    KEY,
    advance,
    body_for,
    by_external_id,
    charged,
    create,
    example,
    external_id,
    has_parent_video,
    ident,
    is_2026,
    message,
    pages,
    parent_field,
    parent_video,
    put,
    query,
    results,
    status,
)

LATE = 3600.0  # seconds after which every task of the default timings has ended
FINAL = {"submitted": False, "processing": False, "succeed": True, "failed": True}


def ended(client: FlaskClient, family: str, task_id: str) -> Any:
    advance(client, LATE)
    return query(client, KEY, family, task_id)


def fetch(client: FlaskClient, url: str) -> Any:
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def urls(result: dict[str, Any]) -> list[str]:
    return [v for items in result.values() for item in items for k, v in item.items() if "url" in k]


def shipped_seconds(duration: str) -> float:
    """The length of the MP4 the mock serves for a video of ``duration`` seconds: it ships a few
    lengths (5 s and 10 s) and serves the nearest, so a 7 s video plays 5 s."""
    lengths = {float(seconds) for _, seconds in shipped_videos()}
    return min(lengths, key=lambda seconds: abs(seconds - float(duration)))


@pytest.mark.both_stores
@pytest.mark.parametrize("family", FAMILIES)
def test_task_moves_through_its_timeline_and_ends_with_results_of_its_kinds(
    client: FlaskClient, backend: Backend, family: str
) -> None:
    created = create(client, KEY, family, external_task_id=f"{family}-1")
    task_id = ident(family, created)
    task = backend.find_task(task_id)
    assert task is not None
    steps = [
        (task.processing_at - backend.now() - 0.001, "submitted"),
        (0.001, "processing"),
        (task.ends_at - task.processing_at - 0.001, "processing"),
        (0.001, "succeed"),
    ]
    for seconds, expected in steps:
        advance(client, seconds)
        current = query(client, KEY, family, task_id)
        assert status(family, current) == expected
        assert bool(results(family, current)) == FINAL[expected]  # results only at the end
    (done, *_) = by_external_id(client, KEY, family, f"{family}-1")
    assert ident(family, done) == task_id
    assert sorted(results(family, done)) == sorted(families()[family].results)
    assert (parent_video(family, done) is not None) == has_parent_video(family)
    assert external_id(family, done) == f"{family}-1"


@pytest.mark.parametrize("family", FAMILIES)
def test_every_result_url_serves_real_media_of_the_task(client: FlaskClient, family: str) -> None:
    done = ended(client, family, ident(family, create(client, KEY, family)))
    result = results(family, done)
    for video in result.get("videos", []):
        for url in (video["url"], video["watermark_url"]):
            response = fetch(client, url)
            assert response.mimetype == "video/mp4"
            expected = shipped_seconds(video["duration"])
            assert mp4_duration_seconds(response.data) == pytest.approx(expected, abs=0.5)
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
    client: FlaskClient, family: str
) -> None:
    first = ident(family, create(client, KEY, family, external_task_id="first"))
    second = ident(family, create(client, KEY, family, external_task_id="second"))
    for name, expected in (("first", first), ("second", second)):
        found = by_external_id(client, KEY, family, name)
        assert [ident(family, task) for task in found] == [expected] * len(found)
    assert pages(client, KEY, family, 1) == [[second], [first]]


@pytest.mark.parametrize("family", FAMILIES)
def test_success_deducts_the_contract_price_from_a_pack_of_its_kind(
    client: FlaskClient, backend: Backend, family: str
) -> None:
    kind = pack_kind(family)

    def remaining() -> float:
        (account,) = backend.accounts_view()
        return sum(p["remaining_quantity"] for p in account["packs"] if p["kind"] == kind)

    body = body_for(client, KEY, family)
    before = remaining()
    created = client.post(families()[family].path, json=body, headers=KEY).json["data"]  # type: ignore[index]
    done = ended(client, family, ident(family, created))
    task = backend.find_task(ident(family, created))
    assert task is not None
    parent = parent_video(family, done)
    source = float(parent["duration"]) if task.parent and parent else None
    price = units(family, {**check_request(family, body), **task.params}, source)
    assert price > 0
    assert charged(family, done) == format_units(price)
    assert before - remaining() == pytest.approx(float(price))


@pytest.mark.parametrize("family", FAMILIES)
def test_a_failing_task_reports_its_failure_and_costs_nothing(
    make_app: Callable[..., Flask], family: str
) -> None:
    client = make_app(failure_rate={family: 1.0}).test_client()
    done = ended(client, family, ident(family, create(client, KEY, family)))
    assert status(family, done) == "failed" and message(family, done)
    assert results(family, done) == {} and charged(family, done) == "0"


@pytest.mark.parametrize("family", FAMILIES)
def test_the_concurrency_of_its_pack_kind_refuses_a_second_task(
    make_app: Callable[..., Flask], family: str
) -> None:
    client = make_app(concurrency={pack_kind(family): 1}).test_client()
    body = body_for(client, KEY, family)
    assert client.post(families()[family].path, json=body, headers=KEY).status_code == 200
    refused = client.post(families()[family].path, json=body, headers=KEY)
    assert (refused.status_code, refused.json["code"]) == (429, 1303)  # type: ignore[index]
    assert int(refused.headers["Retry-After"]) > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_callbacks_report_each_status_with_the_results(
    client: FlaskClient, receiver: Receiver, family: str
) -> None:
    task_id = ident(family, create(client, KEY, family, callback_url=f"{receiver.url}/hook"))
    advance(client, LATE)
    assert wait_callbacks(client)["idle"] is True
    bodies = [json.loads(call["body"]) for call in receiver.calls[-3:]]
    for body in bodies:
        validate("TaskV2" if is_2026(family) else "Task", body)
        assert ident(family, body) == task_id
    assert [status(family, b) for b in bodies] == ["submitted", "processing", "succeed"]
    assert sorted(results(family, bodies[-1])) == sorted(families()[family].results)


@pytest.mark.parametrize("family", FAMILIES)
def test_fault_rules_and_expiring_urls_apply_to_every_family(
    make_app: Callable[..., Flask], family: str
) -> None:
    app = make_app(result_ttl_s=100)
    client, backend = app.test_client(), app.extensions["kling_mock"]
    path = families()[family].path
    task_id = ident(family, create(client, KEY, family))
    task = backend.find_task(task_id)
    advance(client, task.ends_at - backend.now())  # just ended: its URLs are fresh
    live = urls(results(family, query(client, KEY, family, task_id)))[0]
    assert fetch(client, live).status_code == 200
    advance(client, 101)
    dead = fetch(client, live)
    assert (dead.status_code, dead.json["code"]) == (403, 1103)  # type: ignore[index]
    rule = {"match": {"method": "POST", "path": path}, "action": {"type": "error", "code": 5000}}
    assert client.post("/__mock/faults", json=rule).status_code == 200
    broken = client.post(path, json=body_for(client, KEY, family), headers=KEY)
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
    done = ended(client, "video_extend", task_id)
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
