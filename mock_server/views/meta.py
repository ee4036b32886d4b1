"""What the mock is and what it serves, without auth: ``GET /`` and ``GET /openapi.json``."""

from __future__ import annotations

import copy
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from kling_testkit.spec import openapi
from mock_server.envelope import ok
from mock_server.views.common import backend

bp = Blueprint("meta", __name__)

CONTROL_PREFIX = "/__mock"


def base_url() -> str:
    """The mock's own base URL: ``public_base_url`` when configured, else the request's host."""
    configured = backend().config.public_base_url
    return (configured or request.url_root).rstrip("/")


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The API contract, with ``servers`` pointing at this mock and no control paths."""
    doc: dict[str, Any] = copy.deepcopy(openapi())
    doc["paths"] = {
        path: item for path, item in doc["paths"].items() if not path.startswith(CONTROL_PREFIX)
    }
    doc["servers"] = [{"url": base_url(), "description": "this kling-testkit mock"}]
    return jsonify(doc)


def _control_calls() -> list[str]:
    """Every control call the app routes, as ``METHOD /path`` (read off the URL map)."""
    calls = set()
    for rule in current_app.url_map.iter_rules():
        if rule.rule.startswith(CONTROL_PREFIX):
            calls |= {
                f"{m} {rule.rule}" for m in rule.methods or () if m not in ("HEAD", "OPTIONS")
            }
    return sorted(calls, key=lambda call: (call.split(" ", 1)[1], call))


@bp.get("/")
def index() -> Response:
    """A short map of the mock: what it is and where its contract and control API live."""
    base = base_url()
    info = openapi()["info"]
    return ok(
        {
            "name": "kling-testkit mock",
            "description": (
                "A stateful mock of the Kling AI API (legacy /v1 design) for tests: tasks move "
                "on the mock's clock, faults and scenarios are injected through the control API."
            ),
            "api": {"title": info["title"], "version": info["version"]},
            "links": {
                "openapi": f"{base}/openapi.json",
                "health": f"{base}{CONTROL_PREFIX}/health",
                "control": f"{base}{CONTROL_PREFIX}",
                "readme": "README.md of the kling-testkit package: 'Control API' section",
            },
            "control": _control_calls(),
        }
    )
