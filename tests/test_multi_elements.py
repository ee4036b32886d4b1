"""Multi-elements video editing: selection sessions (init, add, delete, clear, preview) and the
create that names one. The behaviour every family shares (timeline, media, limits, faults,
callbacks) runs over this family in ``test_families.py``; this module pins the sessions.
"""

from __future__ import annotations

import base64
import json
import threading
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from kling_testkit.budget import Budget
from kling_testkit.spec import validate
from mock_server import Backend, masks
from mock_server.media import mp4_duration_seconds, png_size
from tests.conftest import CREDS, KEY_OF, TWO_ACCOUNTS, clock_driven_client, with_config
from tests.families import KEY, advance, fetch, query, source_video

BASE = "/v1/videos/multi-elements"
IMAGE = "https://example.com/hat.png"
DAY = 24 * 3600


def call(client: FlaskClient, step: str, body: Any, auth: dict[str, str] = KEY) -> Any:
    return client.post(f"{BASE}/{step}", json=body, headers=auth)


def answered(response: Any, schema: str) -> dict[str, Any]:
    assert response.status_code == 200, response.json
    data: dict[str, Any] = response.json["data"]
    validate(schema, data)
    return data


def refused(response: Any, *words: str) -> str:
    assert response.status_code == 400, response.json
    assert response.json["code"] == 1201, response.json
    message: str = response.json["message"]
    for word in words:
        assert word in message, message
    return message


def opened(client: FlaskClient, **body: Any) -> dict[str, Any]:
    """A session on a new 5 s text-to-video video of the default account (``body`` on it)."""
    video_id = source_video(client, KEY, **body)
    return answered(call(client, "init-selection", {"video_id": video_id}), "SelectionSession")


def pixels(png: bytes) -> tuple[tuple[int, int], bytes]:
    """A greyscale PNG's size and its pixels (filter bytes dropped; masks.png_mask writes 0)."""
    width, height = png_size(png)
    chunks, at = b"", 8
    while at < len(png):
        length = int.from_bytes(png[at : at + 4], "big")
        if png[at + 4 : at + 8] == b"IDAT":
            chunks += png[at + 8 : at + 8 + length]
        at += 12 + length
    raw = zlib.decompress(chunks)
    rows = [raw[r * (width + 1) + 1 : (r + 1) * (width + 1)] for r in range(height)]
    return (width, height), b"".join(rows)


def covered(mask: dict[str, Any], x: float, y: float) -> bool:
    """Whether the RLE mask covers the pixel at fractions (x, y) of the frame."""
    height, width = mask["size"]
    column, row = min(int(x * width), width - 1), min(int(y * height), height - 1)
    index, value, at = column * height + row, 0, 0
    for run in masks.rle_decode(mask["counts"]):
        if index < at + run:
            return value == 1
        at += run
        value ^= 1
    raise AssertionError("the runs end before the pixel")


@pytest.mark.both_stores
def test_a_session_marks_objects_and_an_edit_of_it_succeeds(
    client: FlaskClient, backend: Backend
) -> None:
    session = opened(client)
    assert session["status"] == 0
    assert (session["width"], session["height"], session["fps"]) == (1280, 720, 30.0)
    assert (session["original_duration"], session["total_frame"]) == (5000, 150)
    video = fetch(client, session["normalized_video"])
    assert video.status_code == 200 and video.mimetype == "video/mp4"
    assert mp4_duration_seconds(video.data) == 5.0
    sid = session["session_id"]

    hat = {"session_id": sid, "frame_index": 0, "points": [{"x": 0.25, "y": 0.5}]}
    first = answered(call(client, "add-selection", hat), "SelectionMasks")
    assert first["res"]["frame_index"] == 0
    [mark] = first["res"]["rle_mask_list"]
    assert mark["rle_mask"]["size"] == [720, 1280]
    assert covered(mark["rle_mask"], 0.25, 0.5) and not covered(mark["rle_mask"], 0.75, 0.5)
    size, grey = pixels(base64.b64decode(mark["png_mask"]["base64"]))
    assert size == (1280, 720)
    assert grey[360 * 1280 + 320] == 255 and grey[360 * 1280 + 960] == 0

    # A second object on the same frame: both come back; one on another frame stays apart.
    dog = {"session_id": sid, "frame_index": 0, "points": [{"x": 0.75, "y": 0.5}]}
    both = answered(call(client, "add-selection", dog), "SelectionMasks")["res"]["rle_mask_list"]
    assert [m["object_id"] for m in both] == [mark["object_id"], mark["object_id"] + 1]
    later = {**hat, "frame_index": 149}
    assert (
        len(
            answered(call(client, "add-selection", later), "SelectionMasks")["res"]["rle_mask_list"]
        )
        == 1
    )

    left = answered(call(client, "delete-selection", hat), "SelectionMasks")["res"]["rle_mask_list"]
    assert [m["object_id"] for m in left] == [mark["object_id"] + 1]
    assert covered(left[0]["rle_mask"], 0.75, 0.5) and not covered(left[0]["rle_mask"], 0.25, 0.5)

    preview = answered(call(client, "preview-selection", {"session_id": sid}), "SelectionPreview")
    cover = fetch(client, preview["res"]["video_cover"])
    assert cover.status_code == 200 and cover.mimetype == "image/png"
    assert pixels(cover.data)[1][360 * 1280 + 960] == 255  # the dog, on the first marked frame
    tracking = fetch(client, preview["res"]["tracking_output"])
    assert [f["frame_index"] for f in tracking.json["frames"]] == [0, 149]
    assert fetch(client, preview["res"]["video"]).status_code == 200

    body = {
        "session_id": sid,
        "edit_mode": "swap",
        "image_list": [{"image": IMAGE}],
        "prompt": "swap the dog in <<<video_1>>> for the hat in <<<image_1>>>",
    }
    created = client.post(BASE, json=body, headers=KEY)
    assert created.status_code == 200, created.json
    advance(client, 3600)
    task = query(client, KEY, "multi_elements", created.json["data"]["task_id"])
    assert task["task_status"] == "succeed", task
    [result] = task["task_result"]["videos"]
    assert result["session_id"] == sid and result["duration"] == "5"
    assert task["final_unit_deduction"] == "2"  # kling-v1-6 std 5 s
    edited = fetch(client, result["url"])
    assert edited.status_code == 200 and mp4_duration_seconds(edited.data) == 5.0
    assert [t["task_id"] for t in client.get(BASE, headers=KEY).json["data"]] == [task["task_id"]]

    # Cleared: the dog's points are gone too, while the edit made from the session stands.
    assert answered(call(client, "clear-selection", {"session_id": sid}), "SelectionCleared")
    refused(call(client, "delete-selection", dog), "was not added on frame 0")


def test_a_ten_second_video_edits_to_ten_seconds_unless_told_otherwise(client: FlaskClient) -> None:
    session = opened(client, duration="10")
    assert (session["original_duration"], session["total_frame"]) == (10000, 300)
    body = {"session_id": session["session_id"], "edit_mode": "removal", "prompt": "remove the car"}
    refused(client.post(BASE, json={**body, "duration": "5"}, headers=KEY), "duration must be 10")
    created = client.post(BASE, json=body, headers=KEY)
    assert created.status_code == 200, created.json
    advance(client, 3600)
    task = client.get(f"{BASE}/{created.json['data']['task_id']}", headers=KEY).json["data"]
    assert task["task_result"]["videos"][0]["duration"] == "10"
    assert task["final_unit_deduction"] == "4"


def test_a_session_lasts_24_hours_on_the_mock_clock(client: FlaskClient) -> None:
    sid = opened(client)["session_id"]
    mark = {"session_id": sid, "frame_index": 0, "points": [{"x": 0.5, "y": 0.5}]}
    advance(client, DAY - 100)
    assert call(client, "add-selection", mark).status_code == 200
    preview = answered(call(client, "preview-selection", {"session_id": sid}), "SelectionPreview")
    advance(client, 100)
    refused(call(client, "add-selection", mark), "has expired")
    body = {"session_id": sid, "edit_mode": "removal", "prompt": "remove it"}
    refused(client.post(BASE, json=body, headers=KEY), "has expired")
    assert fetch(client, preview["res"]["video_cover"]).status_code == 403  # its URLs with it


def test_what_a_session_refuses(client: FlaskClient, backend: Backend) -> None:
    sid = opened(client)["session_id"]

    def mark(frame: int, *points: tuple[float, float]) -> Any:
        listed = [{"x": x, "y": y} for x, y in points or ((0.5, 0.5),)]
        return call(
            client, "add-selection", {"session_id": sid, "frame_index": frame, "points": listed}
        )

    refused(mark(150), "below the video's total_frame 150")
    for frame in range(10):
        assert mark(frame).status_code == 200
    refused(mark(10), "at most 10 frames")
    for _ in range(10):
        assert mark(9).status_code == 200
    refused(mark(9), "at most 20 objects")
    refused(
        call(
            client,
            "delete-selection",
            {"session_id": sid, "frame_index": 1, "points": [{"x": 0.5, "y": 0.6}]},
        ),
        "(0.5, 0.6) was not added on frame 1",
    )
    refused(call(client, "clear-selection", {"session_id": "123"}), "session_id not found: 123")
    refused(mark(0, (1.5, 0.5)), "points[0].x")
    refused(call(client, "add-selection", {"session_id": sid, "points": []}), "frame_index")
    refused(call(client, "init-selection", {}), "video_id or video_url is required")
    refused(call(client, "init-selection", {"video_id": "1", "video_url": IMAGE}), "video_url")
    task_id = client.get("/v1/videos/text2video", headers=KEY).json["data"][0]["task_id"]
    refused(
        call(client, "init-selection", {"video_id": task_id}),
        f"From video not found by id: {task_id}",
    )


def test_an_edit_takes_the_images_its_mode_needs(client: FlaskClient) -> None:
    sid = opened(client)["session_id"]
    base = {"session_id": sid, "prompt": "edit <<<video_1>>>"}
    one, two = [{"image": IMAGE}], [{"image": IMAGE}, {"image": IMAGE}]
    refused(client.post(BASE, json={**base, "edit_mode": "addition"}, headers=KEY), "image_list")
    refused(
        client.post(BASE, json={**base, "edit_mode": "swap", "image_list": two}, headers=KEY),
        "swap takes 1 image",
    )
    refused(
        client.post(BASE, json={**base, "edit_mode": "removal", "image_list": one}, headers=KEY),
        "removal takes no image",
    )
    refused(
        client.post(BASE, json={**base, "edit_mode": "paint", "image_list": one}, headers=KEY),
        "edit_mode",
    )
    refused(
        client.post(BASE, json={**base, "session_id": "123", "edit_mode": "removal"}, headers=KEY),
        "not found",
    )
    for mode, images in (("addition", two), ("swap", one), ("removal", None)):
        body = {**base, "edit_mode": mode, **({"image_list": images} if images else {})}
        assert client.post(BASE, json=body, headers=KEY).status_code == 200


def test_a_video_by_url_is_taken_as_five_seconds_and_never_fetched(client: FlaskClient) -> None:
    url = "https://example.com/clip.mp4"
    session = answered(call(client, "init-selection", {"video_url": url}), "SelectionSession")
    assert session["normalized_video"] == url
    assert (session["original_duration"], session["width"], session["height"]) == (5000, 1280, 720)


@with_config(accounts=TWO_ACCOUNTS)
def test_a_session_is_its_accounts_alone(client: FlaskClient) -> None:
    a, b = KEY_OF["a"], KEY_OF["b"]
    video_id = source_video(client, a)
    refused(call(client, "init-selection", {"video_id": video_id}, b), "From video not found")
    sid = answered(call(client, "init-selection", {"video_id": video_id}, a), "SelectionSession")[
        "session_id"
    ]
    refused(call(client, "preview-selection", {"session_id": sid}, b), "not found")
    body = {"session_id": sid, "edit_mode": "removal", "prompt": "remove it"}
    refused(client.post(BASE, json=body, headers=b), "not found")
    assert client.post(BASE, json=body, headers=a).status_code == 200


@pytest.mark.both_stores
def test_an_account_keeps_its_newest_hundred_sessions(client: FlaskClient) -> None:
    video_id = source_video(client, KEY)
    ids = [
        answered(call(client, "init-selection", {"video_id": video_id}), "SelectionSession")[
            "session_id"
        ]
        for _ in range(101)
    ]
    refused(call(client, "clear-selection", {"session_id": ids[0]}), "not found")
    assert call(client, "clear-selection", {"session_id": ids[1]}).status_code == 200
    assert call(client, "clear-selection", {"session_id": ids[-1]}).status_code == 200


@pytest.mark.both_stores
def test_a_reset_forgets_the_sessions(client: FlaskClient) -> None:
    sid = opened(client)["session_id"]
    assert client.post("/__mock/reset").status_code == 200
    refused(call(client, "clear-selection", {"session_id": sid}), "not found")


def test_masks_are_cocos_compressed_rle() -> None:
    # Golden strings from pycocotools 2.0.11 (mask.encode of the same masks, Fortran order).
    grid = [[1, 0, 0, 0, 0, 0], [0, 0, 1, 1, 1, 0], [0, 0, 1, 1, 1, 0], [0, 0, 0, 0, 0, 1]]
    flat = [grid[r][c] for c in range(6) for r in range(4)]
    runs, value, length = [], 0, 0
    for bit in flat:
        if bit == value:
            length += 1
        else:
            runs.append(length)
            value, length = bit, 1
    runs.append(length)
    assert masks.rle_counts(runs) == "0181J0002O"
    discs = masks.column_runs([(0.25, 0.5), (0.75, 0.2)], 64, 48)
    assert masks.rle_counts(discs) == "fb04[12N2O000001N2NcS1O^lN3M10000001O1Mja0"
    assert sum(discs[1::2]) == 98 and sum(discs) == 64 * 48
    assert masks.rle_decode(masks.rle_counts(discs)) == discs


def test_the_tracking_output_lists_every_marked_frame(client: FlaskClient) -> None:
    sid = opened(client)["session_id"]
    for frame in (30, 3):
        mark = {"session_id": sid, "frame_index": frame, "points": [{"x": 0.1, "y": 0.1}]}
        assert call(client, "add-selection", mark).status_code == 200
    preview = answered(call(client, "preview-selection", {"session_id": sid}), "SelectionPreview")
    frames = json.loads(fetch(client, preview["res"]["tracking_output"]).data)["frames"]
    assert [f["frame_index"] for f in frames] == [3, 30]
    assert all(covered(f["rle_mask_list"][0]["rle_mask"], 0.1, 0.1) for f in frames)
    url = preview["res"]["tracking_output"].replace("tracking.json", "cover.png")
    assert fetch(client, url).status_code == 403  # the signature is the file's own


def test_our_client_edits_a_video_through_a_session(
    live_server: str, backend: Backend, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    slept: list[float] = []
    client = clock_driven_client(live_server, backend, slept, CREDS)
    request.addfinalizer(client.session.close)  # its sockets closed now, not by the collector
    source = client.wait("text2video", client.text2video("a red car on a bridge"))
    video_id = source["task_result"]["videos"][0]["id"]
    session = client.selection("init", {"video_id": video_id})
    validate("SelectionSession", session)
    point = {"x": 0.5, "y": 0.5}
    marked = client.selection(
        "add", {"session_id": session["session_id"], "frame_index": 0, "points": [point]}
    )
    assert covered(marked["res"]["rle_mask_list"][0]["rle_mask"], 0.5, 0.5)
    body = {"session_id": session["session_id"], "edit_mode": "removal", "prompt": "remove the car"}
    done = client.wait("multi_elements", client.create_task("multi_elements", body))
    (video,) = done["task_result"]["videos"]
    assert video["session_id"] == session["session_id"]
    assert client.download(video["url"], tmp_path / "edited.mp4") > 1000
    with pytest.raises(ValueError, match="step must be one of init, add"):
        client.selection("mark", {})


@pytest.mark.both_stores
def test_marks_sent_at_once_all_land(app: Any, client: FlaskClient) -> None:
    """Five clients mark one session at once (on Redis, through two apps: two processes); no
    mark is lost to another's write."""
    sid = opened(client)["session_id"]
    failures: list[Any] = []

    def mark(frame: int) -> None:
        own = app.test_client()
        for _ in range(4):
            body = {"session_id": sid, "frame_index": frame, "points": [{"x": 0.5, "y": 0.5}]}
            answer = call(own, "add-selection", body)
            if answer.status_code != 200:
                failures.append(answer.json)

    threads = [threading.Thread(target=mark, args=(frame,)) for frame in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    preview = answered(call(client, "preview-selection", {"session_id": sid}), "SelectionPreview")
    frames = json.loads(fetch(client, preview["res"]["tracking_output"]).data)["frames"]
    ids = [m["object_id"] for f in frames for m in f["rle_mask_list"]]
    assert sorted(ids) == list(range(1, 21))


def test_a_budget_holds_the_dearest_edit_when_the_session_decides_the_length() -> None:
    edit = {"session_id": "1", "edit_mode": "removal", "prompt": "remove the car"}
    assert Budget.price("multi_elements", edit) == Decimal(4)  # 10 s, as a 7-10 s video takes
    assert Budget.price("multi_elements", {**edit, "duration": "5"}) == Decimal(2)
    assert Budget.price("multi_elements", {**edit, "mode": "pro", "duration": "10"}) == Decimal(7)
