"""Check an Authorization header as the real API does: JWT (AK/SK) or a plain API key.

Order of checks, each an HTTP 401: missing -> 1001; not ``Bearer <token>``, unknown key or
access key, bad signature, wrong algorithm, no ``exp`` -> 1002; ``nbf`` ahead -> 1003;
``exp`` passed -> 1004.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import jwt

from kling_testkit.codes import ErrorCode
from mock_server.config import Account
from mock_server.errors import ApiError


def _invalid(reason: str) -> ApiError:
    return ApiError(ErrorCode.AUTH_INVALID, f"Authorization is invalid: {reason}")


def _claims(token: str, accounts: Iterable[Account]) -> tuple[Account, dict[str, Any]]:
    """The account whose secret signed the token, and its claims (time claims unchecked)."""
    try:
        parts = jwt.decode_complete(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise _invalid("malformed token") from None
    header, unverified = parts["header"], parts["payload"]
    if header.get("alg") != "HS256":
        raise _invalid(f"token must be signed with HS256, not {header.get('alg')!r}")
    issuer = unverified.get("iss")
    account = next((a for a in accounts if a.access_key == issuer), None)
    if account is None:
        raise _invalid("unknown access key in iss")
    try:  # the signature only: the claims were read above, and times are checked below
        _JWS.decode(token, account.secret_key, algorithms=["HS256"])
    except jwt.InvalidSignatureError:
        raise _invalid("signature does not match the secret key") from None
    except jwt.InvalidTokenError as exc:
        raise _invalid(str(exc)) from None
    return account, unverified


_JWS = jwt.PyJWS()


class TokenCache:
    """Tokens whose signature was verified, the newest ``size`` kept (one per client, mostly).

    A client reuses its token for many requests; checking the signature again each time is
    the costliest part of a query. Time claims are still checked on every request. A hit
    counts only for the very ``accounts`` object it was verified against: a config that
    changed the accounts verifies again, a reset to the same config does not.
    """

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._found: OrderedDict[str, tuple[object, Account, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def verified(self, token: str, accounts: Iterable[Account]) -> tuple[Account, dict[str, Any]]:
        with self._lock:
            hit = self._found.get(token)
            if hit is not None and hit[0] is accounts:
                self._found.move_to_end(token)
                return hit[1], hit[2]
        found = _claims(token, accounts)
        with self._lock:
            self._found[token] = (accounts, *found)
            while len(self._found) > self._size:
                self._found.popitem(last=False)
        return found


def _number(claims: dict[str, Any], name: str) -> float | None:
    """A time claim as seconds; absent is None; NaN, infinities, 10^400 or text are 1002."""
    value = claims.get(name)
    if value is None:
        return None
    seconds = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond any float
            seconds = None
    if seconds is None or not math.isfinite(seconds):
        shown = "an integer beyond any float" if isinstance(value, int) else repr(value)[:40]
        raise _invalid(f"{name} must be a finite number of seconds; got {shown}")
    return seconds


def authenticate(
    header: str | None,
    accounts: Iterable[Account],
    now: float,
    leeway: float = 0.0,
    cache: TokenCache | None = None,
    notes: dict[str, Any] | None = None,
) -> Account:
    """Return the account the header proves, or raise :class:`ApiError` with the auth code.

    ``notes`` gets the ``account`` and the ``claims`` of a token whose signature holds, before
    its times are checked (so the audit can name who sent an expired token)."""
    if header is None or not header.strip():
        raise ApiError(ErrorCode.AUTH_EMPTY, "Authorization is empty")
    scheme, _, token = header.partition(" ")
    if scheme != "Bearer" or not token or " " in token:
        raise _invalid("expected 'Bearer <token>' with a single space")
    # A tuple as given (the config's): the token cache knows it again by identity.
    accounts = accounts if isinstance(accounts, tuple) else tuple(accounts)
    if token.count(".") != 2:
        account = next((a for a in accounts if a.api_key is not None and a.api_key == token), None)
        if account is None:
            raise _invalid("api key not found")
        return account
    account, claims = cache.verified(token, accounts) if cache else _claims(token, accounts)
    if notes is not None:
        notes.update(account=account, claims=claims)
    expires, not_before = _number(claims, "exp"), _number(claims, "nbf")
    _number(claims, "iat")  # not checked against the clock, but it must be a time
    if expires is None:
        raise _invalid("token has no exp claim")
    if not_before is not None and not_before > now + leeway:
        raise ApiError(
            ErrorCode.AUTH_NOT_YET_VALID,
            f"Authorization is not yet valid: nbf is {not_before - now:.0f}s ahead",
        )
    if expires <= now - leeway:
        raise ApiError(
            ErrorCode.AUTH_EXPIRED, f"Authorization has expired: exp was {now - expires:.0f}s ago"
        )
    return account
