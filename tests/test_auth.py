"""Auth as documented: JWT (HS256, iss = access key, exp/nbf) or a plain API key."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from kling_testkit.auth import bearer, sign_token
from kling_testkit.credentials import MOCK_API_KEY, Credentials
from tests.conftest import CREDS, T2V

OTHER_SECRET = "another-secret-that-is-long-enough-0123456789"


def code_of(client: FlaskClient, headers: dict[str, str] | None) -> tuple[int, int, str]:
    response = client.get(T2V, headers=headers or {})
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    assert "data" not in body or response.status_code == 200
    return response.status_code, body["code"], body["message"]


def token(claims: dict[str, Any], secret: str = CREDS.secret_key, alg: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=alg)


def test_valid_token_is_accepted(client: FlaskClient) -> None:
    assert code_of(client, bearer(sign_token(CREDS)))[:2] == (200, 0)


def test_missing_header_is_1001(client: FlaskClient) -> None:
    assert code_of(client, None) == (401, 1001, "Authorization is empty")


def test_blank_header_is_1001(client: FlaskClient) -> None:
    assert code_of(client, {"Authorization": "  "})[:2] == (401, 1001)


@pytest.mark.parametrize(
    "header",
    [
        "Basic abc",
        "bearer {t}",
        "Bearer  {t}",
        "Bearer",
        "{t}",
        "Bearer not.a.jwt",
        "Bearer unknown-api-key",
    ],
)
def test_malformed_or_unknown_credentials_are_1002(client: FlaskClient, header: str) -> None:
    value = header.format(t=sign_token(CREDS))
    assert code_of(client, {"Authorization": value})[:2] == (401, 1002)


def test_wrong_signature_is_1002(client: FlaskClient) -> None:
    claims = {"iss": CREDS.access_key, "exp": time.time() + 600}
    status, code, message = code_of(client, bearer(token(claims, OTHER_SECRET)))
    assert (status, code) == (401, 1002)
    assert "signature" in message


def test_unknown_access_key_is_1002(client: FlaskClient) -> None:
    bad = Credentials("nobody", CREDS.secret_key)
    assert code_of(client, bearer(sign_token(bad)))[:2] == (401, 1002)


def test_token_without_exp_is_1002(client: FlaskClient) -> None:
    status, code, message = code_of(client, bearer(token({"iss": CREDS.access_key})))
    assert (status, code) == (401, 1002)
    assert "exp" in message


def test_other_algorithms_are_refused(client: FlaskClient) -> None:
    claims = {"iss": CREDS.access_key, "exp": time.time() + 600}
    hs512 = jwt.encode(claims, CREDS.secret_key + "x" * 40, algorithm="HS512")
    assert code_of(client, bearer(hs512))[:2] == (401, 1002)


def test_token_not_yet_valid_is_1003(client: FlaskClient) -> None:
    now = time.time()
    claims = {"iss": CREDS.access_key, "exp": now + 1800, "nbf": now + 300}
    assert code_of(client, bearer(token(claims)))[:2] == (401, 1003)


def test_expired_token_is_1004(client: FlaskClient) -> None:
    expired = sign_token(CREDS, now=time.time() - 3600, ttl=1800)
    assert code_of(client, bearer(expired))[:2] == (401, 1004)


def test_leeway_accepts_a_token_just_expired(make_app: Callable[..., Flask]) -> None:
    client = make_app(token_leeway_s=120).test_client()
    expired = sign_token(CREDS, now=time.time() - 1860, ttl=1800)
    assert code_of(client, bearer(expired))[:2] == (200, 0)


def test_plain_api_key_is_accepted(client: FlaskClient) -> None:
    assert code_of(client, bearer(MOCK_API_KEY))[:2] == (200, 0)


def test_wall_clock_checks_tokens_by_default(client: FlaskClient) -> None:
    """Advancing mock time a day does not expire a token signed with wall time."""
    client.post("/__mock/clock/advance", json={"seconds": 86400})
    assert code_of(client, bearer(sign_token(CREDS)))[:2] == (200, 0)


def test_mock_clock_can_check_tokens(make_app: Callable[..., Flask]) -> None:
    client = make_app(auth_clock="mock").test_client()
    start = client.get("/__mock/clock").json["data"]["now"]  # type: ignore[index]
    signed = bearer(sign_token(CREDS, now=start, ttl=1800))
    assert code_of(client, signed)[:2] == (200, 0)
    client.post("/__mock/clock/advance", json={"seconds": 1801})
    assert code_of(client, signed)[:2] == (401, 1004)


def test_each_account_sees_only_its_tasks(make_app: Callable[..., Flask]) -> None:
    second = Credentials("second-access", OTHER_SECRET)
    client = make_app(
        accounts=[
            {"name": "first", "access_key": CREDS.access_key, "secret_key": CREDS.secret_key},
            {"name": "second", "access_key": second.access_key, "secret_key": second.secret_key},
        ]
    ).test_client()
    first_auth, second_auth = bearer(sign_token(CREDS)), bearer(sign_token(second))
    created = client.post(T2V, json={"prompt": "a quiet harbour"}, headers=first_auth)
    task_id = created.json["data"]["task_id"]  # type: ignore[index]
    assert client.get(f"{T2V}/{task_id}", headers=first_auth).status_code == 200
    hidden = client.get(f"{T2V}/{task_id}", headers=second_auth)
    assert (hidden.status_code, hidden.json["code"]) == (404, 1203)  # type: ignore[index]
    assert client.get(T2V, headers=second_auth).json["data"] == []  # type: ignore[index]
