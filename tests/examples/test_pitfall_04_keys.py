"""Pitfall 4: hard-coded keys. Keys come from the environment; a wrong key is a clear 401."""

from __future__ import annotations

import pytest

from kling_testkit.client import KlingClient
from kling_testkit.credentials import MOCK_ACCESS_KEY, MOCK_SECRET_KEY, Credentials
from kling_testkit.errors import AuthError, CredentialsError


def test_no_keys_in_the_environment_is_a_clear_error(kling_base_url: str) -> None:
    with pytest.raises(CredentialsError, match="KLING_ACCESS_KEY"):
        KlingClient(kling_base_url)


def test_keys_from_the_environment_are_used(
    kling_base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLING_ACCESS_KEY", MOCK_ACCESS_KEY)
    monkeypatch.setenv("KLING_SECRET_KEY", MOCK_SECRET_KEY)
    assert KlingClient(kling_base_url).list_tasks("text2video") == []


def test_a_stale_hard_coded_secret_is_refused(kling_base_url: str) -> None:
    hard_coded = Credentials(MOCK_ACCESS_KEY, "an-old-secret-someone-committed-in-2024")
    with pytest.raises(AuthError) as caught:
        KlingClient(kling_base_url, hard_coded).list_tasks("text2video")
    assert (caught.value.code, caught.value.http_status) == (1002, 401)
