"""Advanced lip-sync: ``identify-face`` opens a session with the faces of a video, and the
create names the session, one face and its audio. The behaviour every family shares runs over
this family in ``test_families.py``; this module pins the faces and the audio rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from kling_testkit.spec import validate
from mock_server import Backend
from mock_server.media import mp4_duration_seconds, png_size
from tests.conftest import CREDS, KEY_OF, TWO_ACCOUNTS, clock_driven_client, with_config
from tests.families import KEY, advance, fetch, query, source_video

IDENTIFY = "/v1/videos/identify-face"
SYNC = "/v1/videos/advanced-lip-sync"
AUDIO = "https://example.com/line.mp3"
DAY = 24 * 3600


def identified(client: FlaskClient, auth: dict[str, str] = KEY, **video: Any) -> dict[str, Any]:
    body = video or {"video_id": source_video(client, auth)}
    response = client.post(IDENTIFY, json=body, headers=auth)
    assert response.status_code == 200, response.json
    data: dict[str, Any] = response.json["data"]
    validate("FaceSession", data)
    return data


def choice(face_id: str = "0", start: int = 0, end: int = 3000, at: int = 0) -> dict[str, Any]:
    return {
        "face_id": face_id,
        "sound_file": AUDIO,
        "sound_start_time": start,
        "sound_end_time": end,
        "sound_insert_time": at,
    }


def sync(client: FlaskClient, session_id: str, *chosen: dict[str, Any], headers: Any = KEY) -> Any:
    body = {"session_id": session_id, "face_choose": list(chosen or (choice(),))}
    return client.post(SYNC, json=body, headers=headers)


def refused(response: Any, *words: str) -> None:
    assert response.status_code == 400, response.json
    assert response.json["code"] == 1201, response.json
    for word in words:
        assert word in response.json["message"], response.json["message"]


@pytest.mark.both_stores
def test_the_faces_of_a_video_and_a_lip_sync_of_one(client: FlaskClient) -> None:
    found = identified(client)
    assert found["final_unit_deduction"] == "0"
    faces = {f["face_id"]: (f["start_time"], f["end_time"]) for f in found["face_data"]}
    assert faces == {"0": (0, 5000), "1": (2500, 5000)}
    image = fetch(client, found["face_data"][1]["face_image"])
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert png_size(image.data) == (256, 256)

    created = sync(client, found["session_id"], choice("1", 500, 3000, 2500))
    assert created.status_code == 200, created.json
    advance(client, 3600)
    task = query(client, KEY, "advanced_lip_sync", created.json["data"]["task_id"])
    assert task["task_status"] == "succeed", task
    parent = task["task_info"]["parent_video"]
    assert parent["duration"] == "5" and fetch(client, parent["url"]).status_code == 200
    (video,) = task["task_result"]["videos"]
    assert video["duration"] == "5" and task["final_unit_deduction"] == "0.5"
    assert mp4_duration_seconds(fetch(client, video["url"]).data) == 5.0


def test_the_audio_must_fit_the_video_and_the_face(client: FlaskClient) -> None:
    sid = identified(client)["session_id"]
    refused(sync(client, sid, choice(end=1999)), "at least 2000 ms; got 1999")
    refused(sync(client, sid, choice(at=3000)), "ends at 6000 ms, past the video's end (5000 ms)")
    # Face 1 is on screen from 2500 ms: audio at 0-3000 ms overlaps it 500 ms.
    refused(sync(client, sid, choice("1")), "overlap face 1's time (2500-5000 ms)", "overlaps 500")
    refused(sync(client, sid, choice("7")), "no face '7' (its faces: 0, 1)")
    assert sync(client, sid, choice("1", at=2000)).status_code == 200  # 2000-5000: 2500 ms
    assert sync(client, sid, choice("0", 0, 5000, 0)).status_code == 200  # the whole video


def test_what_the_body_must_say(client: FlaskClient) -> None:
    sid = identified(client)["session_id"]
    both = {**choice(), "audio_id": "a1"}
    refused(sync(client, sid, both), "sound_file cannot be used together with audio_id")
    no_audio = {k: v for k, v in choice().items() if k != "sound_file"}
    refused(sync(client, sid, no_audio), "audio_id or sound_file is required")
    refused(sync(client, sid, choice(), choice()), "face_choose")
    no_insert = {k: v for k, v in choice().items() if k != "sound_insert_time"}
    refused(sync(client, sid, no_insert), "sound_insert_time")
    refused(sync(client, sid, {**choice(), "sound_volume": 2.5}), "sound_volume")
    refused(client.post(IDENTIFY, json={}, headers=KEY), "video_id or video_url is required")


def test_a_session_is_of_one_kind_and_lasts_24_hours(client: FlaskClient) -> None:
    video_id = source_video(client, KEY)
    selection = client.post(
        "/v1/videos/multi-elements/init-selection", json={"video_id": video_id}, headers=KEY
    ).json["data"]["session_id"]
    refused(sync(client, selection), f"session_id not found: {selection}")
    sid = identified(client, video_id=video_id)["session_id"]
    edit = {"session_id": sid, "edit_mode": "removal", "prompt": "remove the car"}
    refused(client.post("/v1/videos/multi-elements", json=edit, headers=KEY), "not found")
    advance(client, DAY)
    refused(sync(client, sid), "session_id has expired")


def test_a_video_by_url_has_no_parent_and_is_taken_as_five_seconds(client: FlaskClient) -> None:
    found = identified(client, video_url="https://example.com/talk.mp4")
    assert [f["end_time"] for f in found["face_data"]] == [5000, 5000]
    created = sync(client, found["session_id"])
    assert created.status_code == 200, created.json
    assert "parent_video" not in created.json["data"]["task_info"]


def test_a_video_over_a_minute_has_no_faces_found(client: FlaskClient) -> None:
    video_id = source_video(client, KEY)
    for _ in range(12):  # 5 s and 12 extensions of 5 s: 65 s
        extended = client.post(
            "/v1/videos/video-extend", json={"video_id": video_id}, headers=KEY
        ).json["data"]["task_id"]
        advance(client, 3600)
        task = client.get(f"/v1/videos/video-extend/{extended}", headers=KEY).json["data"]
        video_id = task["task_result"]["videos"][0]["id"]
    assert task["task_result"]["videos"][0]["duration"] == "65"
    refused(client.post(IDENTIFY, json={"video_id": video_id}, headers=KEY), "at most 60 s")


@with_config(accounts=TWO_ACCOUNTS)
def test_a_session_is_its_accounts_alone(client: FlaskClient) -> None:
    sid = identified(client, KEY_OF["a"])["session_id"]
    refused(sync(client, sid, headers=KEY_OF["b"]), "not found")
    assert sync(client, sid, headers=KEY_OF["a"]).status_code == 200


def test_our_client_lip_syncs_a_face(
    live_server: str, backend: Backend, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    client = clock_driven_client(live_server, backend, [], CREDS)
    request.addfinalizer(client.session.close)  # its sockets closed now, not by the collector
    source = client.wait("text2video", client.text2video("a woman reading a poem aloud"))
    found = client.identify_face({"video_id": source["task_result"]["videos"][0]["id"]})
    validate("FaceSession", found)
    body = {"session_id": found["session_id"], "face_choose": [choice()]}
    done = client.wait("advanced_lip_sync", client.create_task("advanced_lip_sync", body))
    assert done["task_info"]["parent_video"]["id"] == source["task_result"]["videos"][0]["id"]
    assert client.download(done["task_result"]["videos"][0], tmp_path / "sync.mp4") > 1000
