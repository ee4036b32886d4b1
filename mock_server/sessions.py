"""Sessions a synchronous call opens on a video, for a task created later to name: a
multi-elements selection (:mod:`mock_server.selections`) or an identified face
(:mod:`mock_server.faces`).

A session is a JSON object in the store (``Store.session``) under an id from the mock's id
sequence; it has its ``kind``, its account, its video (a video of the account's, or a URL never
fetched) and its expiry (24 hours on the mock's clock, as documented for both kinds). A write
is a compare-and-set on its version, so two processes changing one session both land. A
session of another kind, another account's, an unknown or an expired one is 400/1201.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kling_testkit.codes import ErrorCode
from mock_server import render
from mock_server.config import Account
from mock_server.errors import ApiError
from mock_server.ids import task_id_of
from mock_server.sources import video

if TYPE_CHECKING:
    from mock_server.backend import Backend

TTL_S = 24 * 3600.0
"""How long a session lasts on the mock's clock (documented: 24 hours)."""
KEEP = 100
"""Sessions kept per account: opening one more drops the account's oldest (this mock's bound)."""
URL_SECONDS = 5.0
"""A video given by URL is never fetched: it is taken as this long, 16:9."""
MAX_AGE_S = 30 * 24 * 3600.0
"""How old a video named by ``video_id`` may be (documented: 30 days)."""
WRITE_TRIES = 8


def refused(message: str) -> ApiError:
    return ApiError(ErrorCode.INVALID_VALUE, message)


def source_of(mock: Backend, account: Account, body: Mapping[str, Any]) -> dict[str, Any]:
    """The video a call names: ``video_id`` (a video of the account's that succeeded at most
    30 days ago) or ``video_url`` (never fetched); its ``source``, ``seconds`` (a number),
    ``duration`` (as the API writes it) and ``aspect_ratio``, as a session keeps them."""
    if "video_id" not in body:
        source = {"url": str(body["video_url"])}
        return {"source": source, "seconds": URL_SECONDS, "duration": "5", "aspect_ratio": "16:9"}
    video_id = str(body["video_id"])
    found = video(mock, account, video_id, None)
    if found is None or mock.now() - found.ends_at > MAX_AGE_S:
        raise refused(f"From video not found by id: {video_id}")
    return {
        "source": {"task_id": found.task_id, "video_id": video_id},
        "seconds": float(render.seconds(found)),
        "duration": render.seconds(found),
        "aspect_ratio": render.aspect_ratio(found),
    }


def open_session(
    mock: Backend, account: Account, kind: str, base_url: str, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """Store a new session of ``kind`` with ``fields`` (its video's among them); the session."""
    now = mock.now()
    session_id = task_id_of(mock.config.seed, mock.reserve_id())  # an id as a task's
    doc = {
        **fields,
        "version": 1,
        "kind": kind,
        "session_id": session_id,
        "account": account.name,
        "expires_at": now + TTL_S,
        "base_url": base_url,
    }
    mock.store.put_session(account.name, session_id, doc, 0, KEEP)
    return doc


def find(mock: Backend, account: Account, session_id: str, kind: str) -> dict[str, Any]:
    """The account's live session ``session_id`` of ``kind``; 400/1201 when there is none."""
    doc = mock.store.session(session_id)
    if doc is None or doc["account"] != account.name or doc["kind"] != kind:
        raise refused(f"session_id not found: {session_id[:64]}")
    if mock.now() >= float(doc["expires_at"]):
        raise refused(f"session_id has expired (a session lasts 24 hours): {session_id[:64]}")
    return doc


def live(mock: Backend, session_id: str) -> dict[str, Any] | None:
    """Any account's session ``session_id`` while it lasts (for its files, which need no auth)."""
    doc = mock.store.session(session_id)
    return None if doc is None or mock.now() >= float(doc["expires_at"]) else doc


def write(
    mock: Backend,
    account: Account,
    session_id: str,
    kind: str,
    change: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """Apply ``change`` to the session and store it, again from a fresh read when another
    request wrote the session in between."""
    for _ in range(WRITE_TRIES):
        doc = find(mock, account, session_id, kind)
        version = int(doc["version"])
        change(doc)
        doc["version"] = version + 1
        if mock.store.put_session(account.name, session_id, doc, version, KEEP):
            return doc
    raise ApiError(ErrorCode.UNAVAILABLE, "the session is being changed by other requests")


def video_url(mock: Backend, doc: Mapping[str, Any]) -> str:
    """The session's video: the source video's own (signed, expiring) URL, or the URL given."""
    source = doc["source"]
    if "url" in source:
        return str(source["url"])
    task = mock.store.get(str(source["task_id"]))
    if task is None:
        raise refused(f"session_id {doc['session_id']}: its video is gone")
    return mock.media_url(task, f"{source['video_id']}.mp4")


def parent_video(mock: Backend, doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """The session's video as ``task_info.parent_video`` shows it (a Kling video only)."""
    source = doc["source"]
    if "url" in source:
        return None
    return {
        "id": source["video_id"],
        "url": video_url(mock, doc),
        "duration": doc["duration"],
        "task_id": source["task_id"],
    }


def media_path(session_id: str, name: str) -> str:
    return f"/media/sessions/{session_id}/{name}"


def file_url(mock: Backend, doc: Mapping[str, Any], name: str) -> str:
    """A signed URL of one of the session's files, which lasts as long as the session."""
    path = media_path(str(doc["session_id"]), name)
    return mock.signed_url(str(doc["base_url"]), path, int(float(doc["expires_at"])))
