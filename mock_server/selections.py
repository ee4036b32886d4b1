"""Multi-elements selection sessions: open one on a video, mark objects on its frames, see
their masks, and create an edit task that names the session.

A session is a JSON object in the store (``Store.selection``), under an id from the mock's id
sequence; it names its account, its video and its expiry (24 hours on the mock's clock), and
holds the objects marked. Each ``add-selection`` marks one object (its points, on one frame);
``delete-selection`` removes points marked on a frame before; ``clear-selection`` removes every
object. A write is a compare-and-set on the session's version, so two processes marking the
same session at once both land. See DECISIONS.md ("Multi-elements").
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kling_testkit.codes import ErrorCode
from mock_server import masks, render
from mock_server.config import Account
from mock_server.errors import ApiError
from mock_server.ids import task_id_of
from mock_server.sources import video

if TYPE_CHECKING:
    from mock_server.backend import Backend

TTL_S = 24 * 3600.0
"""How long a session lasts on the mock's clock (documented: 24 hours)."""
MAX_FRAMES = 10
"""Frames of one session that may be marked (third-party copy of the docs: 10)."""
MAX_OBJECTS = 20
"""Objects one session may hold (undocumented: this mock's bound)."""
KEEP = 100
"""Sessions kept per account: opening one more drops the account's oldest (this mock's bound)."""
FPS = 30.0
SIZES = {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (720, 720)}
"""The normalized video's (width, height) by its shape: 720p, as a std video is."""
URL_SECONDS = 5.0
"""A video given by URL is never fetched: it is taken as this long, 16:9."""
LENGTHS = ((2.0, 5.0, "5"), (7.0, 10.0, "10"))
"""The lengths a session's video may have, and the duration an edit of it takes."""
WRITE_TRIES = 8


def _refused(message: str) -> ApiError:
    return ApiError(ErrorCode.INVALID_VALUE, message)


def _duration_for(seconds: float) -> str:
    for low, high, duration in LENGTHS:
        if low <= seconds <= high:
            return duration
    raise _refused(
        f"the video is {seconds:g} s long; multi-elements takes a video of 2 to 5 s or 7 to 10 s"
    )


# -- the endpoints -------------------------------------------------------------------------


def init(mock: Backend, account: Account, body: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    """``init-selection``: a new session on a video of this account's, or on a URL."""
    source: dict[str, Any]
    if "video_id" in body:
        found = video(mock, account, str(body["video_id"]), None)
        now = mock.now()
        if found is None or now - found.ends_at > 30 * 24 * 3600:
            raise _refused(f"From video not found by id: {body['video_id']}")
        seconds, shape = float(render.seconds(found)), render.aspect_ratio(found)
        source = {"task_id": found.task_id, "video_id": str(body["video_id"])}
    else:
        seconds, shape = URL_SECONDS, "16:9"
        source = {"url": str(body["video_url"])}
    _duration_for(seconds)
    width, height = SIZES.get(shape, SIZES["16:9"])
    now = mock.now()
    session_id = task_id_of(mock.config.seed, mock.reserve_id())  # as a task's id
    doc = {
        "version": 1,
        "session_id": session_id,
        "account": account.name,
        "expires_at": now + TTL_S,
        "source": source,
        "seconds": seconds,
        "aspect_ratio": shape,
        "width": width,
        "height": height,
        "total_frame": round(seconds * FPS),
        "base_url": base_url,
        "objects": [],
        "next_object": 1,
    }
    mock.store.put_selection(account.name, session_id, doc, 0, KEEP)
    return {
        "status": 0,
        "session_id": session_id,
        "fps": FPS,
        "original_duration": round(seconds * 1000),
        "width": width,
        "height": height,
        "total_frame": doc["total_frame"],
        "normalized_video": _video_url(mock, doc),
    }


def add(mock: Backend, account: Account, body: Mapping[str, Any]) -> dict[str, Any]:
    """``add-selection``: the points mark one new object on the frame."""
    frame = int(body["frame_index"])
    points = [[float(p["x"]), float(p["y"])] for p in body["points"]]

    def change(doc: dict[str, Any]) -> None:
        _check_frame(doc, frame)
        objects = doc["objects"]
        marked = {o["frame_index"] for o in objects}
        if frame not in marked and len(marked) >= MAX_FRAMES:
            raise _refused(f"frame_index: at most {MAX_FRAMES} frames of a session are marked")
        if len(objects) >= MAX_OBJECTS:
            raise _refused(f"a session holds at most {MAX_OBJECTS} objects; clear some first")
        objects.append({"object_id": doc["next_object"], "frame_index": frame, "points": points})
        doc["next_object"] += 1

    doc = _write(mock, account, str(body["session_id"]), change)
    return _masks(doc, frame)


def delete(mock: Backend, account: Account, body: Mapping[str, Any]) -> dict[str, Any]:
    """``delete-selection``: the points, each marked on the frame before, are removed; an
    object left without points is gone."""
    frame = int(body["frame_index"])
    points = [[float(p["x"]), float(p["y"])] for p in body["points"]]

    def change(doc: dict[str, Any]) -> None:
        _check_frame(doc, frame)
        on_frame = [o for o in doc["objects"] if o["frame_index"] == frame]
        for point in points:
            holder = next((o for o in on_frame if point in o["points"]), None)
            if holder is None:
                raise _refused(
                    f"points: ({point[0]:g}, {point[1]:g}) was not added on frame {frame}"
                )
            holder["points"].remove(point)
        doc["objects"] = [o for o in doc["objects"] if o["points"]]

    doc = _write(mock, account, str(body["session_id"]), change)
    return _masks(doc, frame)


def clear(mock: Backend, account: Account, body: Mapping[str, Any]) -> dict[str, Any]:
    """``clear-selection``: every object of the session is removed."""

    def change(doc: dict[str, Any]) -> None:
        doc["objects"] = []

    doc = _write(mock, account, str(body["session_id"]), change)
    return {"status": 0, "session_id": doc["session_id"]}


def preview(mock: Backend, account: Account, body: Mapping[str, Any]) -> dict[str, Any]:
    """``preview-selection``: the session's video, a cover and the tracking output (URLs)."""
    doc = session(mock, account, str(body["session_id"]))
    expires = math.floor(float(doc["expires_at"]))
    links = {
        name: mock.signed_url(doc["base_url"], media_path(doc["session_id"], name), expires)
        for name in MEDIA
    }
    return {
        "status": 0,
        "session_id": doc["session_id"],
        "res": {
            "video": _video_url(mock, doc),
            "video_cover": links["cover.png"],
            "tracking_output": links["tracking.json"],
        },
    }


# -- what a create takes from its session ----------------------------------------------------


def for_create(mock: Backend, account: Account, params: Mapping[str, Any]) -> dict[str, Any]:
    """A multi-elements create's parameters with its session's shape and, when the body sends
    none, the duration its video takes; 400/1201 for a session not this account's, unknown
    or expired, or a duration its video does not take."""
    doc = session(mock, account, str(params["session_id"]))
    wanted = _duration_for(float(doc["seconds"]))
    if "duration" in params and str(params["duration"]) != wanted:
        raise _refused(
            f"duration must be {wanted} for the session's video of {float(doc['seconds']):g} s; "
            f"got {params['duration']}"
        )
    return {**params, "duration": wanted, "aspect_ratio": doc["aspect_ratio"]}


# -- files of a preview ----------------------------------------------------------------------

MEDIA = ("cover.png", "tracking.json")


def media_path(session_id: str, name: str) -> str:
    return f"/media/selections/{session_id}/{name}"


def media(mock: Backend, session_id: str, name: str) -> tuple[bytes, str] | None:
    """The bytes and type of a preview file of a live session; None when there is none."""
    doc = mock.store.selection(session_id)
    if doc is None or mock.now() >= float(doc["expires_at"]) or name not in MEDIA:
        return None
    width, height = int(doc["width"]), int(doc["height"])
    if name == "cover.png":
        frames = sorted({o["frame_index"] for o in doc["objects"]})
        first = frames[0] if frames else 0
        points = [p for o in doc["objects"] if o["frame_index"] == first for p in o["points"]]
        return masks.png_mask(points, width, height), "image/png"
    frames = sorted({o["frame_index"] for o in doc["objects"]})
    tracking = {"frames": [_masks(doc, f)["res"] for f in frames]}
    return json.dumps(tracking, separators=(",", ":")).encode(), "application/json"


# -- the store -------------------------------------------------------------------------------


def session(mock: Backend, account: Account, session_id: str) -> dict[str, Any]:
    """The account's live session ``session_id``; 400/1201 when there is none."""
    doc = mock.store.selection(session_id)
    if doc is None or doc["account"] != account.name:
        raise _refused(f"session_id not found: {session_id[:64]}")
    if mock.now() >= float(doc["expires_at"]):
        raise _refused(f"session_id has expired (a session lasts 24 hours): {session_id[:64]}")
    return doc


def _write(mock: Backend, account: Account, session_id: str, change: Any) -> dict[str, Any]:
    """Apply ``change`` to the session and store it, again from a fresh read when another
    request wrote the session in between."""
    for _ in range(WRITE_TRIES):
        doc = session(mock, account, session_id)
        version = int(doc["version"])
        change(doc)
        doc["version"] = version + 1
        if mock.store.put_selection(account.name, session_id, doc, version, KEEP):
            return doc
    raise ApiError(ErrorCode.UNAVAILABLE, "the session is being changed by other requests")


def _check_frame(doc: Mapping[str, Any], frame: int) -> None:
    if frame >= int(doc["total_frame"]):
        raise _refused(
            f"frame_index must be below the video's total_frame {doc['total_frame']}; got {frame}"
        )


def _masks(doc: Mapping[str, Any], frame: int) -> dict[str, Any]:
    width, height = int(doc["width"]), int(doc["height"])
    listed = []
    for found in doc["objects"]:
        if found["frame_index"] != frame:
            continue
        points = found["points"]
        runs = masks.column_runs(points, width, height)
        png = masks.png_mask(points, width, height)
        listed.append(
            {
                "object_id": found["object_id"],
                "rle_mask": {"size": [height, width], "counts": masks.rle_counts(runs)},
                "png_mask": {"size": [height, width], "base64": base64.b64encode(png).decode()},
            }
        )
    return {
        "status": 0,
        "session_id": doc["session_id"],
        "res": {"frame_index": frame, "rle_mask_list": listed},
    }


def _video_url(mock: Backend, doc: Mapping[str, Any]) -> str:
    """The session's video: the source video's own (signed, expiring) URL, or the URL given."""
    source = doc["source"]
    if "url" in source:
        return str(source["url"])
    task = mock.store.get(str(source["task_id"]))
    if task is None:
        raise _refused(f"session_id {doc['session_id']}: its video is gone")
    return mock.media_url(task, f"{source['video_id']}.mp4")
