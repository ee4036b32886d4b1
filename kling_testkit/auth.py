"""Sign the HS256 JWT that the legacy Kling API expects as ``Authorization: Bearer <token>``."""

from __future__ import annotations

import time

import jwt

from kling_testkit.credentials import Credentials

DEFAULT_TOKEN_TTL = 1800.0
"""Seconds a token lives, as in the official sample (30 minutes)."""

NOT_BEFORE_SKEW = 5.0
"""Seconds ``nbf`` is set in the past, as in the official sample, to absorb clock skew."""


def sign_token(
    credentials: Credentials, *, now: float | None = None, ttl: float = DEFAULT_TOKEN_TTL
) -> str:
    """Return a token with ``iss`` = access key, ``exp`` = now + ttl, ``nbf`` = now - 5 s."""
    issued = time.time() if now is None else now
    claims = {
        "iss": credentials.access_key,
        "exp": int(issued + ttl),
        "nbf": int(issued - NOT_BEFORE_SKEW),
    }
    return jwt.encode(
        claims, credentials.secret_key, algorithm="HS256", headers={"alg": "HS256", "typ": "JWT"}
    )


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for a token or API key."""
    return {"Authorization": f"Bearer {token}"}
