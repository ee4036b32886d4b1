"""Advanced lip-sync: ``identify-face`` finds the faces of a video and opens a session
(:mod:`mock_server.sessions`, kind ``face``); the create names the session, one face and the
audio to put on it.

Nothing is detected: every video has two faces, ``"0"`` for its whole length and ``"1"`` for
its second half, so a client has a choice to make and a time window to respect. See
DECISIONS.md ("Advanced lip-sync").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mock_server import media, sessions
from mock_server.config import Account
from mock_server.sessions import refused

if TYPE_CHECKING:
    from mock_server.backend import Backend

KIND = "face"
MAX_SECONDS = 60.0
"""The longest video faces are found in (documented: 60 s)."""
MIN_AUDIO_MS = 2000
"""The shortest cropped audio, and the least overlap with the face's time (documented: 2 s)."""


def faces_of(length_ms: int) -> list[dict[str, Any]]:
    """The faces found in a video of ``length_ms``: one for the whole of it, one for its second
    half."""
    return [
        {"face_id": "0", "start_time": 0, "end_time": length_ms},
        {"face_id": "1", "start_time": length_ms // 2, "end_time": length_ms},
    ]


def identify(
    mock: Backend, account: Account, body: Mapping[str, Any], base_url: str
) -> dict[str, Any]:
    """``identify-face``: a session on the video with the faces found in it."""
    video = sessions.source_of(mock, account, body)
    seconds = float(video["seconds"])
    if seconds > MAX_SECONDS:
        raise refused(f"the video is {seconds:g} s long; faces are found in videos of at most 60 s")
    faces = faces_of(round(seconds * 1000))
    doc = sessions.open_session(mock, account, KIND, base_url, {**video, "faces": faces})
    shown = [{**face, "face_image": sessions.file_url(mock, doc, _image(face))} for face in faces]
    return {
        "session_id": doc["session_id"],
        "final_unit_deduction": "0",
        "face_data": [
            {k: f[k] for k in ("face_id", "face_image", "start_time", "end_time")} for f in shown
        ],
    }


def for_create(
    mock: Backend, account: Account, params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """An advanced lip-sync create's parameters (with its video's shape) and its parent video;
    400/1201 for a session not this account's, unknown or expired, a face it has not, or
    audio that does not fit the video and the face."""
    doc = sessions.find(mock, account, str(params["session_id"]), KIND)
    (choice,) = params["face_choose"]
    face = next((f for f in doc["faces"] if f["face_id"] == choice["face_id"]), None)
    if face is None:
        known = ", ".join(f["face_id"] for f in doc["faces"])
        raise refused(
            f"face_choose[0].face_id: the session has no face {str(choice['face_id'])[:64]!r} "
            f"(its faces: {known})"
        )
    start, end = int(choice["sound_start_time"]), int(choice["sound_end_time"])
    insert, length = int(choice["sound_insert_time"]), end - start
    if length < MIN_AUDIO_MS:
        raise refused(
            f"face_choose[0]: the cropped audio (sound_end_time - sound_start_time) must be at "
            f"least {MIN_AUDIO_MS} ms; got {length}"
        )
    video_ms = round(float(doc["seconds"]) * 1000)
    if insert + length > video_ms:
        raise refused(
            f"face_choose[0]: the audio inserted at {insert} ms ends at {insert + length} ms, "
            f"past the video's end ({video_ms} ms)"
        )
    overlap = min(insert + length, face["end_time"]) - max(insert, face["start_time"])
    if overlap < MIN_AUDIO_MS:
        raise refused(
            f"face_choose[0]: the audio must overlap face {face['face_id']}'s time "
            f"({face['start_time']}-{face['end_time']} ms) by at least {MIN_AUDIO_MS} ms; "
            f"it overlaps {max(overlap, 0)} ms"
        )
    found = {**params, "aspect_ratio": doc["aspect_ratio"]}
    return found, sessions.parent_video(mock, doc)


def _image(face: Mapping[str, Any]) -> str:
    return f"face-{face['face_id']}.png"


def files(doc: Mapping[str, Any], name: str) -> tuple[bytes, str] | None:
    """A face's image (a PNG); None for a name the session has not."""
    for number, face in enumerate(doc["faces"]):
        if name == _image(face):
            return media.png_image("1:1", int(doc["session_id"]) * 4 + number), "image/png"
    return None
