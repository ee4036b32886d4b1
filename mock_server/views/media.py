"""Result files: real MP4, PNG, MP3 and WAV bytes behind signed, expiring URLs."""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, Response, g, request

from kling_testkit.codes import ErrorCode
from mock_server import faces, media, render, selections, sessions, signing
from mock_server.audit import RESULT_READ_TOO_EARLY, RESULT_URL_EXPIRED
from mock_server.backend import Backend
from mock_server.errors import ApiError
from mock_server.tasks import SUCCEED, Task
from mock_server.views import faults
from mock_server.views.common import backend

bp = Blueprint("media", __name__)


@bp.before_request
def fault_rules() -> Response | None:
    """Downloads are subject to fault rules too (slow or broken downloads)."""
    return faults.apply(None)


bp.after_request(faults.lose_answer)


def _not_found(name: str) -> ApiError:
    return ApiError(ErrorCode.RESOURCE_NOT_FOUND, f"media file {name!r} does not exist")


@bp.get("/media/<task_id>/<name>")
def file(task_id: str, name: str) -> Response:
    """Serve one result file while its URL's signature holds and it has not expired.

    No auth: a signed result URL works for whoever holds it, like a CDN's.
    """
    mock = backend()
    now = mock.now()
    refused = signing.check(
        mock.url_key,
        render.media_path(task_id, name),
        request.args.get("expires"),
        request.args.get("signature"),
        now,
    )
    task = mock.find_task(task_id)
    if task is not None:  # judged for the task's account (downloads carry no auth)
        status = task.status_at(now)
        found: tuple[tuple[str, str], ...] = ()
        if status != SUCCEED:
            detail = f"the task is {status}; results exist only once it has succeeded"
            found = ((RESULT_READ_TOO_EARLY, detail),)
        elif refused is not None and refused.startswith(signing.EXPIRED):
            found = ((RESULT_URL_EXPIRED, refused),)
        if found:
            path = request.path
            g.audit = mock.judge.of(task.account, "GET", path, findings=found, counted=False)
    if refused is not None:
        raise ApiError(ErrorCode.NO_PERMISSION, f"result URL refused: {refused}")
    if task is None or task.status_at(now) != SUCCEED:
        raise _not_found(name)
    for entry in render.media_files(task):
        if entry.name == name:
            _served(mock, task)
            return _body(task, entry)
    raise _not_found(name)


@bp.get("/media/sessions/<session_id>/<name>")
def session_file(session_id: str, name: str) -> Response:
    """A file of a session (a multi-elements preview's cover or tracking output, a face's
    image) while its URL holds: as long as the session. No auth, like every result URL."""
    mock = backend()
    refused = signing.check(
        mock.url_key,
        sessions.media_path(session_id, name),
        request.args.get("expires"),
        request.args.get("signature"),
        mock.now(),
    )
    if refused is not None:
        raise ApiError(ErrorCode.NO_PERMISSION, f"result URL refused: {refused}")
    doc = sessions.live(mock, session_id)
    found = None
    if doc is not None:
        found = (selections if doc["kind"] == selections.KIND else faces).files(doc, name)
    if found is None:
        raise _not_found(name)
    body, mimetype = found
    return Response(body, mimetype=mimetype)


_MIMETYPES = {"mp4": "video/mp4", "png": "image/png", "mp3": "audio/mpeg", "wav": "audio/wav"}


def _body(task: Task, found: render.MediaFile) -> Response:
    """The bytes of one result file: a video, an image or an audio of the task's shape."""
    length = render.seconds(task)
    if found.kind == "mp4":
        body = media.mp4_video(render.aspect_ratio(task), length)
    elif found.kind == "mp3":
        body = media.mp3_audio(length)
    elif found.kind == "wav":
        body = media.wav_audio(length)
    else:
        seed = int(task.task_id) * 16 + int(found.result) * 2 + found.second
        body = media.png_image(render.aspect_ratio(task), seed)
    return Response(body, mimetype=_MIMETYPES[found.kind])


def _served(mock: Backend, task: Task) -> None:
    """A result of ``task`` goes out: remembered, so its URL expiring is not judged unfetched."""
    g.audit = replace(
        mock.judge.of(task.account, "GET", request.path, counted=False), fetched=task.task_id
    )
