"""Multi-elements selection sessions: open one on a video, mark objects on its frames, see
their masks, and create an edit task that names the session.

A session (:mod:`mock_server.sessions`, kind ``selection``) holds the objects marked. Each
``add-selection`` marks one object (its points, on one frame); ``delete-selection`` removes
points marked on a frame before; ``clear-selection`` removes every object. See DECISIONS.md
("Multi-elements").
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mock_server import masks, sessions
from mock_server.config import Account
from mock_server.sessions import refused

if TYPE_CHECKING:
    from mock_server.backend import Backend

KIND = "selection"
MAX_FRAMES = 10
"""Frames of one session that may be marked (third-party copy of the docs: 10)."""
MAX_OBJECTS = 20
"""Objects one session may hold (undocumented: this mock's bound)."""
FPS = 30.0
SIZES = {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (720, 720)}
"""The normalized video's (width, height) by its shape: 720p, as a std video is."""
LENGTHS = ((2.0, 5.0, "5"), (7.0, 10.0, "10"))
"""The lengths a session's video may have, and the duration an edit of it takes."""


def _duration_for(seconds: float) -> str:
    for low, high, duration in LENGTHS:
        if low <= seconds <= high:
            return duration
    raise refused(
        f"the video is {seconds:g} s long; multi-elements takes a video of 2 to 5 s or 7 to 10 s"
    )


# -- the endpoints -------------------------------------------------------------------------


def init(mock: Backend, account: Account, body: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    """``init-selection``: a new session on a video of this account's, or on a URL."""
    video = sessions.source_of(mock, account, body)
    seconds = float(video["seconds"])
    _duration_for(seconds)
    width, height = SIZES.get(video["aspect_ratio"], SIZES["16:9"])
    frames = round(seconds * FPS)
    fields = {**video, "width": width, "height": height, "total_frame": frames, "objects": []}
    doc = sessions.open_session(mock, account, KIND, base_url, {**fields, "next_object": 1})
    return {
        "status": 0,
        "session_id": doc["session_id"],
        "fps": FPS,
        "original_duration": round(seconds * 1000),
        "width": width,
        "height": height,
        "total_frame": frames,
        "normalized_video": sessions.video_url(mock, doc),
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
            raise refused(f"frame_index: at most {MAX_FRAMES} frames of a session are marked")
        if len(objects) >= MAX_OBJECTS:
            raise refused(f"a session holds at most {MAX_OBJECTS} objects; clear some first")
        objects.append({"object_id": doc["next_object"], "frame_index": frame, "points": points})
        doc["next_object"] += 1

    doc = sessions.write(mock, account, str(body["session_id"]), KIND, change)
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
                raise refused(
                    f"points: ({point[0]:g}, {point[1]:g}) was not added on frame {frame}"
                )
            holder["points"].remove(point)
        doc["objects"] = [o for o in doc["objects"] if o["points"]]

    doc = sessions.write(mock, account, str(body["session_id"]), KIND, change)
    return _masks(doc, frame)


def clear(mock: Backend, account: Account, body: Mapping[str, Any]) -> dict[str, Any]:
    """``clear-selection``: every object of the session is removed."""

    def change(doc: dict[str, Any]) -> None:
        doc["objects"] = []

    doc = sessions.write(mock, account, str(body["session_id"]), KIND, change)
    return {"status": 0, "session_id": doc["session_id"]}


def preview(mock: Backend, account: Account, body: Mapping[str, Any]) -> dict[str, Any]:
    """``preview-selection``: the session's video, a cover and the tracking output (URLs)."""
    doc = sessions.find(mock, account, str(body["session_id"]), KIND)
    return {
        "status": 0,
        "session_id": doc["session_id"],
        "res": {
            "video": sessions.video_url(mock, doc),
            "video_cover": sessions.file_url(mock, doc, "cover.png"),
            "tracking_output": sessions.file_url(mock, doc, "tracking.json"),
        },
    }


# -- what a create takes from its session ----------------------------------------------------


def for_create(
    mock: Backend, account: Account, params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A multi-elements create's parameters with its session's shape and, when the body sends
    none, the duration its video takes (and no parent video: the result names the session);
    400/1201 for a session not this account's, unknown or expired, or a duration its video
    does not take."""
    doc = sessions.find(mock, account, str(params["session_id"]), KIND)
    wanted = _duration_for(float(doc["seconds"]))
    if "duration" in params and str(params["duration"]) != wanted:
        raise refused(
            f"duration must be {wanted} for the session's video of {float(doc['seconds']):g} s; "
            f"got {params['duration']}"
        )
    return {**params, "duration": wanted, "aspect_ratio": doc["aspect_ratio"]}, None


# -- files of a preview ----------------------------------------------------------------------


def files(doc: Mapping[str, Any], name: str) -> tuple[bytes, str] | None:
    """The bytes and type of a preview file of a session; None for a name it has not."""
    width, height = int(doc["width"]), int(doc["height"])
    frames = sorted({o["frame_index"] for o in doc["objects"]})
    if name == "cover.png":
        first = frames[0] if frames else 0
        points = [p for o in doc["objects"] if o["frame_index"] == first for p in o["points"]]
        return masks.png_mask(points, width, height), "image/png"
    if name == "tracking.json":
        tracking = {"frames": [_masks(doc, f)["res"] for f in frames]}
        return json.dumps(tracking, separators=(",", ":")).encode(), "application/json"
    return None


# -- masks -------------------------------------------------------------------------------


def _check_frame(doc: Mapping[str, Any], frame: int) -> None:
    if frame >= int(doc["total_frame"]):
        raise refused(
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
