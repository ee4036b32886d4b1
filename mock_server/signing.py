"""Signed, expiring result URLs: HMAC-SHA256 over the path and the expiry time.

A URL carries ``expires`` (Unix seconds, mock clock) and ``signature`` (hex). Anyone holding it
may download until it expires, like a CDN's signed URL; changing either part breaks it.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode


def signing_key(seed: int) -> bytes:
    """The key of a mock with this seed (derived, so a seeded run gives the same URLs)."""
    return hashlib.sha256(f"kling-mock-url-signing:{seed}".encode()).digest()


def signature(key: bytes, path: str, expires: int) -> str:
    return hmac.new(key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def signed_query(key: bytes, path: str, expires: int) -> str:
    """The query string that makes ``path`` valid until ``expires``."""
    return urlencode({"expires": expires, "signature": signature(key, path, expires)})


def check(key: bytes, path: str, expires: str | None, given: str | None, now: float) -> str | None:
    """None when the URL is valid at ``now``; else why it is refused."""
    if not expires or not given:
        return "the URL is not signed (expires and signature are required)"
    if not (expires.isascii() and expires.isdigit()):
        return "expires must be whole Unix seconds"
    if not hmac.compare_digest(signature(key, path, int(expires)), given):
        return "the signature does not match the URL"
    if now >= int(expires):
        return f"the URL expired at {int(expires)} (mock time {int(now)})"
    return None
