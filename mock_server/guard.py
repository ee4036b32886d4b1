"""The control API's guard: no cross-site use, no DNS rebinding, an optional token.

A browser lets any web page send simple requests (a form POST, ``text/plain``) to any address,
loopback included, and a DNS-rebinding page can even read the answers. So a control request is
refused when it carries an ``Origin`` (or ``Sec-Fetch-Site``) of another site, when it changes
state with a form or ``text/plain`` body, and, on a mock bound to a loopback address, when its
``Host`` is not a loopback name or address. ``curl -X POST .../__mock/reset`` has none of these
and keeps working. With a control token set, every control request must carry it.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

from kling_testkit.codes import ErrorCode
from mock_server.errors import ApiError

TOKEN_HEADER = "X-Mock-Control-Token"
_SIMPLE_BODIES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)
_SAFE_METHODS = frozenset({"GET", "HEAD"})


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``*.localhost``, 127.0.0.0/8 or ::1, with or without a port."""
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else ""
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    name = name.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _refuse(reason: str) -> ApiError:
    return ApiError(ErrorCode.NO_PERMISSION, f"control request refused: {reason}")


def check(
    *,
    method: str,
    host: str,
    own_origin: str,
    origin: str | None,
    fetch_site: str | None,
    mimetype: str,
    token: str | None,
    expected_token: str | None,
    host_check: bool,
) -> None:
    """Raise :class:`ApiError` if a control request must be refused."""
    if expected_token is not None and not (
        token is not None and hmac.compare_digest(token.encode(), expected_token.encode())
    ):
        raise ApiError(
            ErrorCode.AUTH_INVALID,
            f"control request refused: the {TOKEN_HEADER} header is missing or wrong",
        )
    if host_check and not is_loopback_host(host):
        raise _refuse(
            f"Host {host[:100]!r} is not a loopback name or address (a mock bound to loopback "
            "answers only those; this stops DNS rebinding)"
        )
    if origin is not None:
        parts = urlsplit(origin) if origin != "null" else None
        seen = f"{parts.scheme}://{parts.netloc}".lower() if parts and parts.netloc else "null"
        if seen != own_origin.lower():
            raise _refuse(f"Origin {origin[:100]!r} is another site")
    if fetch_site == "cross-site":
        raise _refuse("Sec-Fetch-Site says cross-site")
    if method not in _SAFE_METHODS and mimetype in _SIMPLE_BODIES:
        raise _refuse(
            f"a {mimetype} body cannot carry a control call (send JSON, or no body at all)"
        )
