"""Work a request does once, not per call: signature checks, body parsing, validators, counts."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from kling_testkit.auth import bearer, sign_token
from kling_testkit.spec import validation
from mock_server import auth, strict_json
from mock_server.config import Account
from mock_server.errors import ApiError
from tests.conftest import CREDS, T2V, accepted, create
from tests.test_bad_input import assert_refused


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens whose signature the mock checks from now on, in order."""
    calls: list[str] = []
    real = auth._claims

    def counting(token: str, accounts: Any) -> Any:
        calls.append(token)
        return real(token, accounts)

    monkeypatch.setattr(auth, "_claims", counting)
    return calls


def test_a_token_signature_is_checked_once_per_token(
    client: FlaskClient, checks: list[str]
) -> None:
    calls = checks
    first = bearer(sign_token(CREDS, now=1_790_000_000.0))
    for _ in range(5):
        assert client.get(T2V, headers=first).status_code in (200, 401)
    second = bearer(sign_token(CREDS, now=1_790_000_001.0))
    client.get(T2V, headers=second)
    assert len(calls) == 2
    # A reset restores the same accounts (they never change at run time): no second check,
    # which a suite resetting before every test would otherwise pay on its first request.
    client.post("/__mock/reset")
    client.get(T2V, headers=first)
    assert len(calls) == 2


def test_the_token_cache_is_per_accounts_tuple(checks: list[str]) -> None:
    """A reset to the same config keeps the cache; other accounts verify again; a forged
    token never passes because a good one was cached."""
    accounts = (Account("a", CREDS.access_key, CREDS.secret_key),)
    cache, token = auth.TokenCache(), sign_token(CREDS)
    for _ in range(3):
        assert auth.authenticate(f"Bearer {token}", accounts, time.time(), 0.0, cache).name == "a"
    assert checks == [token]
    other = (Account("b", CREDS.access_key, CREDS.secret_key),)  # equal keys, another tuple
    assert auth.authenticate(f"Bearer {token}", other, time.time(), 0.0, cache).name == "b"
    assert checks == [token, token]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(ApiError):
        auth.authenticate(f"Bearer {forged}", accounts, time.time(), 0.0, cache)


def test_time_claims_are_still_checked_on_every_request(client: FlaskClient) -> None:
    token = bearer(sign_token(CREDS, now=1_000_000_000.0))  # long expired in wall time
    for _ in range(2):
        assert_refused(client.get(T2V, headers=token), "expired", 401, 1004)


def test_a_bad_signature_is_never_remembered(client: FlaskClient) -> None:
    token = sign_token(CREDS)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for _ in range(2):
        answer = client.get(T2V, headers={"Authorization": f"Bearer {forged}"})
        assert_refused(answer, "signature", 401, 1002)


def test_a_create_body_is_parsed_once(
    client: FlaskClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    real = strict_json.loads

    def counting(text: Any) -> Any:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(strict_json, "loads", counting)
    client.post(
        "/__mock/faults",
        json={"match": {"prompt": "nothing"}, "action": {"type": "error", "code": 1201}},
    )
    calls.clear()
    accepted(create(client, auth))  # the prompt rule reads the body, then the create does
    assert len(calls) == 1


def test_query_validators_are_built_once(client: FlaskClient, auth: dict[str, str]) -> None:
    validation._query_validator.cache_clear()
    for page in range(1, 6):
        client.get(T2V, query_string={"pageNum": page, "pageSize": 5}, headers=auth)
    info = validation._query_validator.cache_info()
    assert info.misses == 2 and info.hits == 8  # pageNum and pageSize, then reused


def test_the_task_list_of_the_control_api_pages(client: FlaskClient, auth: dict[str, str]) -> None:
    ids = [accepted(create(client, auth)) for _ in range(7)]

    def page(**query: Any) -> list[str]:
        data = client.get("/__mock/tasks", query_string=query).json["data"]  # type: ignore[index]
        return [t["task"]["task_id"] for t in data]

    assert page() == ids[::-1]
    assert page(limit=3) == ids[::-1][:3]
    assert page(limit=3, offset=3) == ids[::-1][3:6]
    assert page(offset=10) == []
    assert page(account="default", limit=2, offset=1) == ids[::-1][1:3]
    assert client.get("/__mock/health").json["data"]["tasks"] == 7  # type: ignore[index]


@pytest.mark.parametrize("query", [{"limit": "10001"}, {"limit": "-1"}, {"offset": "x"}])
def test_task_paging_is_bounded(client: FlaskClient, query: dict[str, str]) -> None:
    assert_refused(client.get("/__mock/tasks", query_string=query), next(iter(query)))
