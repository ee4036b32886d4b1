"""Result URLs serve real bytes: an MP4 of the task's duration and shape, PNGs of its ratio."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from kling_testkit.spec import Family, families, field, schema
from mock_server import Backend
from mock_server.media import mp4_dimensions, mp4_duration_seconds, png_size, shipped_videos
from tests.conftest import IMAGES, T2V, ChangeContract
from tests.families import example

Submit = Callable[..., dict[str, Any]]


def finished(client: FlaskClient, auth: dict[str, str], path: str, task_id: str) -> Any:
    client.post("/__mock/clock/advance", json={"seconds": 3600})
    return client.get(f"{path}/{task_id}", headers=auth).json["data"]  # type: ignore[index]


def fetch(client: FlaskClient, url: str) -> Any:
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def test_video_url_serves_an_mp4_of_the_requested_shape(
    client: FlaskClient, auth: dict[str, str], submit: Submit
) -> None:
    task_id = submit(T2V, duration="10", aspect_ratio="9:16")["task_id"]
    video = finished(client, auth, T2V, task_id)["task_result"]["videos"][0]
    response = fetch(client, video["url"])
    assert response.status_code == 200 and response.mimetype == "video/mp4"
    assert mp4_duration_seconds(response.data) == 10.0
    width, height = mp4_dimensions(response.data)
    assert height > width
    assert fetch(client, video["watermark_url"]).status_code == 200


def test_image_urls_serve_pngs_of_the_requested_ratio(
    client: FlaskClient, auth: dict[str, str], submit: Submit
) -> None:
    task_id = submit(IMAGES, n=2, aspect_ratio="21:9", model_name="kling-v2-1")["task_id"]
    images = finished(client, auth, IMAGES, task_id)["task_result"]["images"]
    bodies = [fetch(client, image["url"]).data for image in images]
    assert [png_size(body) for body in bodies] == [(256, 110), (256, 110)]
    assert bodies[0] != bodies[1]
    assert fetch(client, images[0]["watermark_url"]).data != bodies[0]


def test_media_is_not_served_before_the_task_succeeds(
    client: FlaskClient, backend: Backend, submit: Submit
) -> None:
    task = backend.find_task(submit(T2V)["task_id"])
    assert task is not None
    early = fetch(client, backend.media_url(task, f"{task.result_ids[0]}.mp4"))
    assert (early.status_code, early.json["code"]) == (404, 1203)


def test_unknown_media_file_is_an_enveloped_404(
    client: FlaskClient, auth: dict[str, str], backend: Backend, submit: Submit
) -> None:
    task_id = submit(IMAGES)["task_id"]
    finished(client, auth, IMAGES, task_id)
    task = backend.find_task(task_id)
    assert task is not None
    response = fetch(client, backend.media_url(task, "7.png"))
    assert response.status_code == 404 and response.mimetype == "application/json"
    assert response.json["code"] == 1203  # type: ignore[index]


def test_public_base_url_sets_the_host_of_result_urls(make_app: Callable[..., Any]) -> None:
    app = make_app(public_base_url="https://cdn.test.example/kling/")
    client = app.test_client()
    key = app.extensions["kling_mock"].config.accounts[0].api_key
    headers = {"Authorization": f"Bearer {key}"}
    created = client.post(T2V, json={"prompt": "fireworks"}, headers=headers).json["data"]
    video = finished(client, headers, T2V, created["task_id"])["task_result"]["videos"][0]
    assert video["url"].startswith("https://cdn.test.example/kling/media/")


# The 2026 families keep aspect_ratio and duration in settings{} (durations 3-15): they are
# served the same shipped MP4s (the nearest), which tests/test_families.py checks for each.
VIDEO_FAMILIES = [
    f
    for f in families().values()
    if {"aspect_ratio", "duration"} <= set(schema(f.request_schema)["properties"])
]


def video_shapes_of(request_schema: str) -> list[tuple[str, str]]:
    """Every (aspect ratio, duration) the document allows a create of this schema."""
    ratios = field(request_schema, "aspect_ratio")["enum"]
    return [(r, d) for r in ratios for d in field(request_schema, "duration")["enum"]]


@pytest.mark.parametrize("family", VIDEO_FAMILIES, ids=lambda f: f.name)
def test_every_video_shape_of_the_contract_downloads_a_valid_mp4(
    client: FlaskClient, auth: dict[str, str], submit: Submit, family: Family
) -> None:
    extra = example(family.name)
    shapes = video_shapes_of(family.request_schema)
    assert len(shapes) >= 6  # the 3 ratios x 2 durations of today's contract, at least
    for ratio, duration in shapes:
        created = submit(family.path, **{**extra, "aspect_ratio": ratio, "duration": duration})
        video = finished(client, auth, family.path, created["task_id"])["task_result"]["videos"]
        response = fetch(client, video[0]["url"])
        assert response.status_code == 200, (ratio, duration, response.json)
        assert response.mimetype == "video/mp4"
        if (ratio, duration) in shipped_videos():  # else the nearest: see the test below
            assert mp4_duration_seconds(response.data) == float(duration)
        width, height = mp4_dimensions(response.data)
        w, h = (int(side) for side in ratio.split(":"))
        assert width * h == height * w, (ratio, width, height)


def add_video_shape(doc: dict[str, Any]) -> None:
    """A ratio and a duration no asset is shipped for, priced like the 10 s videos."""
    schemas = doc["components"]["schemas"]
    schemas["VideoAspectRatio"]["enum"].append("4:3")
    schemas["VideoDuration"]["enum"].append("15")
    for table in (doc["x-kling-pricing"]["video"], {"": doc["x-kling-pricing"]["video_sound"]}):
        for by_model in table.values():
            for prices in by_model.values():
                if isinstance(prices, dict):
                    prices["15"] = prices["10"]


def test_a_shape_added_to_the_contract_downloads_the_nearest_mp4(
    client: FlaskClient, auth: dict[str, str], submit: Submit, change_contract: ChangeContract
) -> None:
    change_contract(add_video_shape)
    created = submit(T2V, aspect_ratio="4:3", duration="15")
    task = finished(client, auth, T2V, created["task_id"])
    assert task["task_status"] == "succeed", task
    response = fetch(client, task["task_result"]["videos"][0]["url"])
    assert response.status_code == 200, response.json
    assert response.mimetype == "video/mp4"
    assert mp4_duration_seconds(response.data) == 10.0  # the nearest shipped duration
    assert mp4_dimensions(response.data) == (160, 90)  # 4:3 is as far from 16:9 as from 1:1
