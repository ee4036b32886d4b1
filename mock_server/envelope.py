"""The Kling envelope ``{code, message, request_id, data}`` as Flask responses."""

from __future__ import annotations

from typing import Any

from flask import Response, g, jsonify

from kling_testkit.codes import SUCCESS_MESSAGE, ErrorCode
from mock_server.errors import ApiError


def ok(data: Any, request_id: str | None = "") -> Response:
    """A success envelope around ``data``, with the request's id (or ``request_id``; None: no
    ``request_id`` key, as some older answers had)."""
    g.kling_code = 0
    body: dict[str, Any] = {"code": 0, "message": SUCCESS_MESSAGE}
    if request_id is not None:
        body["request_id"] = request_id or g.request_id
    body["data"] = data
    return jsonify(body)


def error(err: ApiError) -> Response:
    """An error envelope with the code's documented HTTP status and no ``data``."""
    g.kling_code = int(err.code)
    response = jsonify(
        {"code": int(err.code), "message": err.message, "request_id": g.get("request_id", "")}
    )
    response.status_code = err.http_status
    response.headers.update(err.headers)
    return response


def invalid(message: str) -> ApiError:
    """A 400/1201 error naming what was wrong."""
    return ApiError(ErrorCode.INVALID_VALUE, message)
