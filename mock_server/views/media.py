"""Result files: real MP4 and PNG bytes behind the URLs in ``task_result``."""

from __future__ import annotations

from flask import Blueprint, Response

from kling_testkit.codes import ErrorCode
from mock_server import media, render
from mock_server.errors import ApiError
from mock_server.tasks import SUCCEED
from mock_server.views.common import backend

bp = Blueprint("media", __name__)


def _not_found(name: str) -> ApiError:
    return ApiError(ErrorCode.RESOURCE_NOT_FOUND, f"media file {name!r} does not exist")


@bp.get("/media/<task_id>/<name>")
def file(task_id: str, name: str) -> Response:
    """Serve one result file of a finished task (no auth: result URLs work like a CDN's)."""
    mock = backend()
    task = mock.find_task(task_id)
    if task is None or task.status_at(mock.now()) != SUCCEED:
        raise _not_found(name)
    names = render.media_names(task)
    for index, pair in enumerate(names):
        if name not in pair:
            continue
        ratio = str(task.params.get("aspect_ratio", "16:9"))
        if name.endswith(".mp4"):
            body = media.mp4_video(ratio, str(task.params.get("duration", "5")))
            return Response(body, mimetype="video/mp4")
        seed = int(task.task_id) * 16 + index * 2 + (name != pair[0])
        return Response(media.png_image(ratio, seed), mimetype="image/png")
    raise _not_found(name)
