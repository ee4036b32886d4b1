"""The app factory: one isolated mock per call, no module-level state."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from kling_testkit.codes import ErrorCode
from mock_server import envelope
from mock_server.audit import Audit
from mock_server.backend import Backend
from mock_server.config import MockConfig
from mock_server.errors import ApiError
from mock_server.journal import MAX_BODY, MAX_QUERY, Entry, clip, redact_headers
from mock_server.namespaces import PREFIX, Dispatcher, Namespaces
from mock_server.stores import StoreFactory
from mock_server.strict_json import StrictJSONProvider
from mock_server.views import api, control, dashboard, media, meta
from mock_server.views.common import backend

log = logging.getLogger("mock_server")

_HTTP_ERRORS = {
    404: ErrorCode.RESOURCE_NOT_FOUND,
    405: ErrorCode.INVALID_METHOD,
    413: ErrorCode.INVALID_VALUE,
}


def _raw_body() -> bytes:
    """The request body (already read by the view, or now); empty when there is none or it
    cannot be read."""
    environ = request.environ
    if not environ.get("CONTENT_LENGTH") and "HTTP_TRANSFER_ENCODING" not in environ:
        return b""  # neither a length nor chunks: HTTP/1.1 says no body (RFC 9112 6.3)
    try:
        return request.get_data(cache=True, parse_form_data=False)
    except Exception:  # too large, or the client went away: nothing to keep
        return b""


def _body_of_request(raw: bytes) -> dict[str, Any]:
    """The body as the journal keeps it: text, bounded."""
    if not raw:
        return {}
    text = raw[: MAX_BODY * 4].decode("utf-8", "replace")
    return {"body": clip(text, MAX_BODY), "body_bytes": len(raw)}


def _queried_task() -> str | None:
    """The task id of a task query (``GET <family path>/<ident>``), else None: the head read
    that starts the request fetches that task too (a query writes nothing, so it stays true)."""
    ident = (request.view_args or {}).get("ident")
    endpoint = request.endpoint or ""
    if request.method == "GET" and endpoint.startswith("api.get_") and isinstance(ident, str):
        return ident
    return None


def _with_create(audit: Audit | None, response: Response) -> Audit | None:
    """A create without ``external_task_id`` (its key set when it arrived): whether its answer
    was lost, for the ``retry_without_idempotency`` finding: a 5xx, a broken answer, or a task
    made but answered late by a latency rule (the client may have given up waiting)."""
    key = g.get("create_key")
    if audit is None or key is None:
        return audit
    lost = (
        response.status_code >= 500
        or g.get("transport_fault") is not None
        or (response.status_code == 200 and bool(g.get("injected_latency_ms")))
    )
    return replace(audit, create_key=key, lost=lost)


def create_app(
    config: MockConfig | Mapping[str, Any] | None = None,
    *,
    store: str | StoreFactory | None = None,
) -> Flask:
    """Build a mock with its own state. ``config`` is a MockConfig or a dict of its fields.

    ``store`` is where the state lives: None (this process's memory) or ``redis://HOST:PORT/DB``
    (shared by every process that serves the same mock; a mock already there is kept).
    The app also serves namespaces (``/ns/<name>/...``): each a mock of its own (a backend built
    from the same start-up config), served by this same app.
    """
    if config is None:
        config = MockConfig()
    elif not isinstance(config, MockConfig):
        config = MockConfig.from_dict(config)
    stores = StoreFactory.of(store)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json = StrictJSONProvider(app)
    # ``//v1/...`` would otherwise get Werkzeug's HTML 308 redirect; here it is an unknown path.
    app.url_map.merge_slashes = False
    # No redirects at all: Flask answers them with HTML and no error handler sees them.
    app.url_map.strict_slashes = False
    mock = Backend(config, store=stores.root())
    app.extensions["kling_mock"] = mock
    start_up = mock.initial_config
    spaces = Namespaces(
        lambda name: Backend(start_up, url_prefix=f"{PREFIX}{name}", store=stores.namespace(name)),
        config.max_namespaces,
        stores.registry(),
    )
    app.extensions["kling_namespaces"] = spaces
    app.wsgi_app = Dispatcher(app.wsgi_app, spaces)  # type: ignore[method-assign]

    app.register_blueprint(api.make_blueprint())
    app.register_blueprint(media.bp)
    app.register_blueprint(control.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(meta.bp)

    @app.before_request
    def start() -> None:
        here = backend()
        here.pin(_queried_task())  # one read of the store's head (clock, versions)
        g.request_id = here.request_id()
        if request.method == "OPTIONS":  # Flask would answer 200 with an empty HTML body
            raise ApiError(
                ErrorCode.INVALID_METHOD,
                f"OPTIONS is not supported on {request.path[:200]}: the API grants no CORS",
            )

    @app.after_request
    def journal(response: Response) -> Response:
        if not request.path.startswith("/__mock"):
            raw = _raw_body()
            account = g.get("account")
            here = backend()
            here.journal.record(
                Entry(
                    time=int(here.now() * 1000),
                    method=request.method,
                    path=request.path,
                    account=account.name if account is not None else None,
                    status=response.status_code,
                    code=g.get("kling_code"),
                    request_id=g.get("request_id"),
                    fault=g.get("transport_fault"),
                    latency_ms=g.get("injected_latency_ms"),
                    query=clip(request.query_string.decode("latin-1"), MAX_QUERY),
                    headers=redact_headers(request.headers.items()),
                    **_body_of_request(raw),
                ),
                _with_create(g.get("audit"), response),
            )
        return response

    @app.teardown_request
    def finish(exc: BaseException | None) -> None:
        here = backend()
        flight = g.get("in_flight")
        if flight is not None:
            here.in_flight.leave(*flight)
        here.unpin()

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
            404: f"no such endpoint: {request.method} {request.path[:200]}",
            405: f"{request.method} is not allowed on {request.path[:200]}",
            413: f"request body is larger than {config.max_body_bytes} bytes",
        }
        return envelope.error(ApiError(code, messages.get(status, exc.description or exc.name)))

    @app.errorhandler(Exception)
    def crash(exc: Exception) -> Response:
        log.exception("unhandled error in the mock")
        backend().record_error(exc)
        return envelope.error(
            ApiError(
                ErrorCode.SERVER_ERROR,
                f"internal error in the mock ({type(exc).__name__}); see the server log",
            )
        )

    return app
