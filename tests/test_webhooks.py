"""Standard Webhooks signatures on task callbacks: the documented vector, clock skew, rotation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kling_testkit.errors import KlingError
from kling_testkit.webhooks import (
    WebhookVerificationError,
    generate_secret,
    sign_webhook,
    verify_webhook,
)

# The documented test vector.
SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="
MSG_ID = "9876543210"
TS = 1781080794
BODY = (
    '{"id":"1234567890","status":"succeeded","message":"",'
    '"create_time":1781080778802,"update_time":1781080794151}'
)
SIGNATURE = "v1,UsKlJP00XoQyOn410NM9xv34sP+Gl0jnOO9Lcpr7NJ4="
HEADERS = {"webhook-id": MSG_ID, "webhook-timestamp": str(TS), "webhook-signature": SIGNATURE}


def rejected(headers: dict[str, str], body: bytes | str = BODY, now: float = TS) -> str:
    with pytest.raises(WebhookVerificationError) as info:
        verify_webhook(SECRET, headers, body, now=now)
    return str(info.value)


def test_documented_vector_signs_to_documented_signature() -> None:
    assert sign_webhook(SECRET, MSG_ID, TS, BODY) == HEADERS
    assert sign_webhook(SECRET, MSG_ID, TS, BODY.encode()) == HEADERS


def test_documented_vector_verifies_and_returns_decoded_body() -> None:
    payload = verify_webhook(SECRET, HEADERS, BODY.encode(), now=TS)
    assert payload["id"] == "1234567890"
    assert payload["status"] == "succeeded"


def test_verification_error_is_a_kling_error() -> None:
    assert issubclass(WebhookVerificationError, KlingError)


def test_tampered_body_fails() -> None:
    assert "no matching signature" in rejected(HEADERS, BODY.replace("succeeded", "failed"))


def test_tampered_id_fails() -> None:
    assert "no matching signature" in rejected({**HEADERS, "webhook-id": "9876543211"})


def test_tampered_timestamp_fails() -> None:
    assert "no matching signature" in rejected({**HEADERS, "webhook-timestamp": str(TS + 1)})


def test_timestamp_just_inside_tolerance_passes_both_ways() -> None:
    verify_webhook(SECRET, HEADERS, BODY, now=TS + 299)
    verify_webhook(SECRET, HEADERS, BODY, now=TS - 299)


def test_timestamp_301_s_old_fails_as_too_old() -> None:
    assert "too old" in rejected(HEADERS, now=TS + 301)


def test_timestamp_301_s_in_future_fails_as_too_new() -> None:
    assert "too new" in rejected(HEADERS, now=TS - 301)


def test_tolerance_is_configurable() -> None:
    verify_webhook(SECRET, HEADERS, BODY, now=TS + 3600, tolerance_s=3600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_webhook(SECRET, HEADERS, BODY, now=TS + 11, tolerance_s=10)


@pytest.mark.parametrize("stamp", ["abc", "1781080794.0", "1_781_080_794", " 1781080794", "9" * 30])
def test_non_integer_timestamp_fails(stamp: str) -> None:
    rejected({**HEADERS, "webhook-timestamp": stamp})


def test_rotation_header_with_wrong_first_and_right_second_entry_passes() -> None:
    wrong = sign_webhook(generate_secret(b"old key"), MSG_ID, TS, BODY)["webhook-signature"]
    headers = {**HEADERS, "webhook-signature": f"{wrong} {SIGNATURE}"}
    assert verify_webhook(SECRET, headers, BODY, now=TS)["status"] == "succeeded"


def test_rotation_header_skips_other_versions_and_malformed_entries() -> None:
    headers = {**HEADERS, "webhook-signature": f"v2,abc v1 v1,!!! , {SIGNATURE}"}
    verify_webhook(SECRET, headers, BODY, now=TS)


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_fails_naming_it(name: str) -> None:
    headers = {key: value for key, value in HEADERS.items() if key != name}
    assert name in rejected(headers)
    assert name in rejected({**HEADERS, name: ""})


@pytest.mark.parametrize(
    "signature", ["v1", "v1,", "v1,!!!", "v2,abc", "", " ", "v1,é", ",,,", "v1,AAAA"]
)
def test_garbage_signature_fails_with_verification_error(signature: str) -> None:
    rejected({**HEADERS, "webhook-signature": signature})


@pytest.mark.parametrize("body", ["not json", "", "[" * 100_000])
def test_signed_body_that_is_not_json_fails_cleanly(body: str) -> None:
    headers = sign_webhook(SECRET, MSG_ID, TS, body)
    assert "not JSON" in rejected(headers, body)


def test_non_utf8_body_fails_cleanly() -> None:
    assert "UTF-8" in rejected(HEADERS, b"\xff\xfe" + BODY.encode())


def test_non_utf8_body_cannot_be_signed() -> None:
    with pytest.raises(ValueError, match="UTF-8"):
        sign_webhook(SECRET, MSG_ID, TS, b"\xff")


@pytest.mark.parametrize(
    "secret",
    ["dGVzdHNlY3JldA==", "whsec_", "whsec_!!!!", "whsec_abc", "whsec_ dGVz", "WHSEC_dGVzdA=="],
)
def test_bad_secret_raises_value_error(secret: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        sign_webhook(secret, MSG_ID, TS, BODY)
    with pytest.raises(ValueError, match="webhook secret"):
        verify_webhook(secret, HEADERS, BODY, now=TS)


def test_generated_secret_round_trips() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert secret != generate_secret()
    headers = sign_webhook(secret, "evt_1", 1_790_000_000, b'{"ok": true}')
    assert verify_webhook(secret, headers, b'{"ok": true}', now=1_790_000_000) == {"ok": True}
    with pytest.raises(WebhookVerificationError):
        verify_webhook(generate_secret(), headers, b'{"ok": true}', now=1_790_000_000)


def test_generated_secret_is_deterministic_with_seed() -> None:
    assert generate_secret(b"seed") == generate_secret(b"seed")
    assert generate_secret(b"seed") != generate_secret(b"other seed")


@pytest.mark.parametrize("transform", [str.upper, str.title, str.lower])
def test_header_names_are_case_insensitive(transform: Callable[[str], str]) -> None:
    headers = {transform(key): value for key, value in HEADERS.items()}
    verify_webhook(SECRET, headers, BODY, now=TS)
