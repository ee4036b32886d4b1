"""The dashboard, ``GET /__mock/ui``: a page that shows the mock live, from the control API.

The page is a static shell (HTML, one script, one style sheet, all served from here: no CDN,
no web fonts, nothing fetched from elsewhere). Its script reads the JSON control calls about
once a second and draws what they say with ``textContent``, so nothing a client sent (prompts,
paths, bodies) is ever read as HTML. The shell holds no state, so it passes the control guard
without the token; every call the script makes is a control call like any other and carries
the token (``X-Mock-Control-Token``) the page was given in its URL fragment (``#token=...``,
which a browser never sends to a server) or typed into its form. Under ``/ns/<name>`` it
shows that namespace.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from string import Template

from flask import Blueprint, Response, request

from kling_testkit.codes import ErrorCode
from mock_server.errors import ApiError
from mock_server.namespaces import BACKEND_KEY
from mock_server.views.control import guard_request

bp = Blueprint("dashboard", __name__, url_prefix="/__mock/ui")

ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
# Only this mock's own script, style sheet and control calls; no inline script, frames, forms
# or plugins: even a mistake in escaping could not run a script a client slipped in.
POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",  # data: only for the empty icon (no /favicon.ico request)
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


@cache
def _file(name: str) -> str:
    return resources.files("mock_server").joinpath(f"ui/{name}").read_text(encoding="utf-8")


def _served(body: str, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers.update(
        {
            "Content-Security-Policy": POLICY,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        }
    )
    return response


@bp.before_request
def guard_page() -> None:
    """The control guard, less the token (the page's data calls carry it)."""
    guard_request(with_token=False)


@bp.get("")
def page() -> Response:
    """Show the dashboard of this mock, or of this namespace."""
    root = request.script_root  # "/ns/<name>" inside a namespace (see namespaces.Dispatcher)
    namespace = root.rsplit("/", 1)[-1] if BACKEND_KEY in request.environ else ""
    outer = root.removesuffix(f"/ns/{namespace}") if namespace else root
    page = Template(_file("dashboard.html")).substitute(
        base=html.escape(f"{root}/__mock"),
        home=html.escape(f"{outer}/__mock"),
        namespace=html.escape(namespace),
        scope=html.escape(f"namespace {namespace}" if namespace else "root mock"),
    )
    return _served(page, "text/html")


@bp.get("/<name>")
def asset(name: str) -> Response:
    """Serve the dashboard's script or style sheet."""
    if name not in ASSETS:
        raise ApiError(ErrorCode.RESOURCE_NOT_FOUND, f"no dashboard file {name[:80]!r}")
    return _served(_file(name), ASSETS[name])
