"""Result files: real MP4 and PNG bytes behind signed, expiring URLs."""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, Response, g, request

from kling_testkit.codes import ErrorCode
from mock_server import media, render, signing
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
    for index, pair in enumerate(render.media_names(task)):
        if name not in pair:
            continue
        ratio = str(task.params.get("aspect_ratio", "16:9"))
        _served(mock, task)
        if name.endswith(".mp4"):
            body = media.mp4_video(ratio, str(task.params.get("duration", "5")))
            return Response(body, mimetype="video/mp4")
        seed = int(task.task_id) * 16 + index * 2 + (name != pair[0])
        return Response(media.png_image(ratio, seed), mimetype="image/png")
    raise _not_found(name)


def _served(mock: Backend, task: Task) -> None:
    """A result of ``task`` goes out: remembered, so its URL expiring is not judged unfetched."""
    g.audit = replace(
        mock.judge.of(task.account, "GET", request.path, counted=False), fetched=task.task_id
    )
