"""The app factory: one isolated mock per call, no module-level state."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from kling_testkit.codes import ErrorCode
from mock_server import envelope
from mock_server.backend import Backend
from mock_server.config import MockConfig
from mock_server.errors import ApiError
from mock_server.journal import Entry
from mock_server.views import api, control, media, meta

log = logging.getLogger("mock_server")

_HTTP_ERRORS = {
    404: ErrorCode.RESOURCE_NOT_FOUND,
    405: ErrorCode.INVALID_METHOD,
    413: ErrorCode.INVALID_VALUE,
}


def create_app(config: MockConfig | Mapping[str, Any] | None = None) -> Flask:
    """Build a mock with its own state. ``config`` is a MockConfig or a dict of its fields."""
    if config is None:
        config = MockConfig()
    elif not isinstance(config, MockConfig):
        config = MockConfig.from_dict(config)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    mock = Backend(config)
    app.extensions["kling_mock"] = mock

    app.register_blueprint(api.make_blueprint())
    app.register_blueprint(media.bp)
    app.register_blueprint(control.bp)
    app.register_blueprint(meta.bp)

    @app.before_request
    def start() -> None:
        g.request_id = mock.request_id()

    @app.after_request
    def journal(response: Response) -> Response:
        if not request.path.startswith("/__mock"):
            account = g.get("account")
            mock.journal.record(
                Entry(
                    time=int(mock.now() * 1000),
                    method=request.method,
                    path=request.path,
                    account=account.name if account is not None else None,
                    status=response.status_code,
                    code=g.get("kling_code"),
                    request_id=g.get("request_id"),
                    fault=g.get("transport_fault"),
                )
            )
        return response

    @app.errorhandler(ApiError)
    def api_error(err: ApiError) -> Response:
        return envelope.error(err)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = _HTTP_ERRORS.get(
            status, ErrorCode.INVALID_VALUE if status < 500 else ErrorCode.SERVER_ERROR
        )
        messages = {
            404: f"no such endpoint: {request.method} {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: f"request body is larger than {config.max_body_bytes} bytes",
        }
        return envelope.error(ApiError(code, messages.get(status, exc.description or exc.name)))

    @app.errorhandler(Exception)
    def crash(exc: Exception) -> Response:
        log.exception("unhandled error in the mock")
        mock.record_error(exc)
        return envelope.error(
            ApiError(
                ErrorCode.SERVER_ERROR,
                f"internal error in the mock ({type(exc).__name__}); see the server log",
            )
        )

    return app
