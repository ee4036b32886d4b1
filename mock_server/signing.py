"""Signed, expiring result URLs: HMAC-SHA256 over the path and the expiry time.

A URL carries ``expires`` (Unix seconds, mock clock) and ``signature`` (hex). Anyone holding it
may download until it expires, like a CDN's signed URL; changing either part breaks it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlencode

MAX_EXPIRES_DIGITS = 12  # Unix seconds until the year 33658
SIGNATURE_HEX = 64  # HMAC-SHA256, hex


def new_key() -> bytes:
    """A fresh random key. Each mock process (and each reset) signs with its own, so a URL
    signed before a restart or reset is never served as the file of a new task that reuses
    the seeded task id."""
    return secrets.token_bytes(32)


def signature(key: bytes, path: str, expires: int) -> str:
    return hmac.new(key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def signed_query(key: bytes, path: str, expires: int) -> str:
    """The query string that makes ``path`` valid until ``expires``."""
    return urlencode({"expires": expires, "signature": signature(key, path, expires)})


EXPIRED = "the URL expired at"  # how check() starts the reason of a URL past its expiry


def check(key: bytes, path: str, expires: str | None, given: str | None, now: float) -> str | None:
    """None when the URL is valid at ``now``; else why it is refused."""
    if not expires or not given:
        return "the URL is not signed (expires and signature are required)"
    if not (expires.isascii() and expires.isdigit() and len(expires) <= MAX_EXPIRES_DIGITS):
        return f"expires must be whole Unix seconds (at most {MAX_EXPIRES_DIGITS} digits)"
    if not (len(given) == SIGNATURE_HEX and given.isascii()):
        return f"the signature must be {SIGNATURE_HEX} hex digits"
    if not hmac.compare_digest(signature(key, path, int(expires)), given):
        return "the signature does not match the URL"
    if now >= int(expires):
        return f"{EXPIRED} {int(expires)} (mock time {int(now)})"
    return None
