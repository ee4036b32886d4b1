"""What every view needs: the backend of this app and a strict JSON body reader."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request

from mock_server import strict_json
from mock_server.backend import Backend
from mock_server.envelope import invalid
from mock_server.errors import ApiError
from mock_server.namespaces import BACKEND_KEY


def backend() -> Backend:
    """The mock answering this request: a namespace's, else the app's own."""
    found: Backend = request.environ.get(BACKEND_KEY) or current_app.extensions["kling_mock"]
    return found


_UNREAD = object()


def json_body() -> Any:
    """The request body as JSON, parsed once per request (see :func:`_read_json`)."""
    found = g.get("json_body", _UNREAD)
    if found is _UNREAD:
        try:
            found = _read_json()
        except ApiError as exc:
            g.json_body = exc
            raise
        g.json_body = found
    if isinstance(found, ApiError):
        raise found
    return found


def _read_json() -> Any:
    """The request body as JSON, or a 400/1201 that says what is wrong with it.

    Size is capped by the app's MAX_CONTENT_LENGTH (a 413 raised on reading is enveloped too).
    """
    if request.mimetype != "application/json":
        shown = request.content_type or "none"
        raise invalid(f"Content-Type must be application/json; got {shown[:80]}")
    raw = request.get_data(cache=True)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and len(raw) >= limit:
        # A chunked body is cut at the limit by Werkzeug without a word: say what happened.
        raise invalid(f"request body is larger than {limit} bytes")
    if not raw.strip():
        raise invalid("request body is empty; expected a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("request body is not valid UTF-8") from None
    try:
        return strict_json.loads(text)
    except strict_json.OutOfRange as exc:
        raise invalid(f"request body: {exc}") from None
    except ValueError as exc:
        raise invalid(f"request body is not valid JSON: {str(exc)[:120]}") from None
    except RecursionError:
        raise invalid("request body is nested too deeply") from None
