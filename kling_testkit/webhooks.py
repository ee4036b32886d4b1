"""Sign and verify Kling task callbacks with the Standard Webhooks scheme.

Headers: ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
(``v1,<base64>``, several space-separated entries during key rotation). The HMAC itself is
computed by the ``standardwebhooks`` library; this module adds strict input checks, an injectable
clock and errors that always derive from :class:`KlingError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from standardwebhooks.webhooks import Webhook

from kling_testkit.errors import KlingError

SECRET_PREFIX = "whsec_"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
_TIMESTAMP_RE = re.compile(r"-?[0-9]{1,18}")


class WebhookVerificationError(KlingError):
    """Raised by verify_webhook when a callback's signature or timestamp is wrong."""


def _secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; ValueError if it is malformed or empty."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"webhook secret must start with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"webhook secret is not {SECRET_PREFIX!r} + valid base64") from exc
    if not key:
        raise ValueError("webhook secret decodes to an empty key")
    return key


def _signature(key: bytes, msg_id: str, timestamp: int, body: str) -> str:
    """``v1,<base64>`` over ``{msg_id}.{timestamp}.{body}``, computed by standardwebhooks."""
    when = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return Webhook(key).sign(msg_id, when, body)


def _text(body: bytes | str) -> str:
    """The body as text; UnicodeError if it is not valid UTF-8."""
    if isinstance(body, bytes):
        return body.decode("utf-8")
    body.encode("utf-8")  # lone surrogates cannot be signed
    return body


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> dict[str, str]:
    """The three Standard Webhooks headers for a callback with this id, timestamp and raw body."""
    key = _secret_key(secret)
    if not msg_id:
        raise ValueError("webhook id must not be empty")
    try:
        text = _text(body)
    except UnicodeError as exc:
        raise ValueError("webhook body must be valid UTF-8") from exc
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: _signature(key, msg_id, timestamp, text),
    }


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    now: float | None = None,
    tolerance_s: float = 300.0,
) -> Any:
    """Check a callback and return its JSON-decoded body.

    Header names are case-insensitive. Accepts if any ``v1`` entry of the signature header
    matches; other versions and malformed entries are skipped. Raises WebhookVerificationError
    for any bad callback, and ValueError only for a malformed ``secret`` (a configuration error).
    """
    key = _secret_key(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id, stamp, signatures = (
        _header(lowered, name) for name in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
    )
    if not _TIMESTAMP_RE.fullmatch(stamp):
        raise WebhookVerificationError(f"{TIMESTAMP_HEADER} is not an integer: {stamp[:40]!r}")
    timestamp = int(stamp)
    age = (time.time() if now is None else now) - timestamp
    if abs(age) > tolerance_s:
        which = "old" if age > 0 else "new"
        raise WebhookVerificationError(f"webhook timestamp too {which} ({abs(age):.0f} s off)")

    try:
        text = _text(body)
        expected = base64.b64decode(_signature(key, msg_id, timestamp, text)[len("v1,") :])
    except UnicodeError as exc:
        raise WebhookVerificationError("webhook id or body is not valid UTF-8") from exc
    except (OverflowError, OSError, ValueError) as exc:
        raise WebhookVerificationError(f"cannot sign timestamp {timestamp}") from exc

    if not any(hmac.compare_digest(expected, given) for given in _v1_signatures(signatures)):
        raise WebhookVerificationError("no matching signature")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise WebhookVerificationError("webhook body is not JSON") from exc


def _header(lowered: Mapping[str, str], name: str) -> str:
    """The value of a required header (names already lower-cased)."""
    value = lowered.get(name)
    if not value:
        raise WebhookVerificationError(f"missing or empty {name} header")
    return value


def _v1_signatures(header: str) -> list[bytes]:
    """Decoded signatures of the well-formed ``v1,<base64>`` entries of a signature header."""
    found = []
    for entry in header.split():
        version, comma, encoded = entry.partition(",")
        if version != "v1" or not comma or not encoded:
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except ValueError:  # binascii.Error, or a non-ASCII string
            continue
    return found


def generate_secret(seed: bytes | None = None) -> str:
    """A ``whsec_`` secret of 32 random bytes, or of sha256(seed) when a seed is given."""
    key = os.urandom(32) if seed is None else hashlib.sha256(seed).digest()
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")
