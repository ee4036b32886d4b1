"""The client against a live mock: waits on the mock's clock, typed errors, token renewal."""

from __future__ import annotations

import itertools
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from kling_testkit.client import KlingClient
from kling_testkit.credentials import Credentials
from kling_testkit.errors import (
    AuthError,
    CredentialsError,
    InvalidRequestError,
    KlingError,
    ProtocolError,
    ResultExpired,
    TransportError,
    WaitTimeout,
)
from mock_server import Backend
from tests.conftest import CREDS

pytest_plugins = ["pytester"]


@pytest.fixture
def mock_client(live_server: str, backend: Backend) -> KlingClient:
    """A client whose sleeps move the mock's manual clock instead of waiting."""
    return KlingClient(live_server, CREDS, timeout=5, clock=backend.now, sleep=backend.advance)


def test_wait_polls_with_backoff_until_success(mock_client: KlingClient, backend: Backend) -> None:
    sleeps: list[float] = []
    task_id = mock_client.text2video("a glass of water on a sunny table")["task_id"]
    task = mock_client.wait(
        "text2video",
        task_id,
        poll_interval=2,
        max_interval=30,
        on_poll=lambda t: sleeps.append(backend.now()),
    )
    assert task["task_status"] == "succeed"
    gaps = [b - a for a, b in itertools.pairwise(sleeps)]
    assert gaps[:5] == [2, 4, 8, 16, 30]
    assert all(gap <= 30 for gap in gaps)


def test_wait_gives_up_at_the_deadline(mock_client: KlingClient, backend: Backend) -> None:
    task_id = mock_client.text2video("a slow sunrise over hills")["task_id"]
    start = backend.now()
    with pytest.raises(WaitTimeout, match=r"still (processing|submitted)"):
        mock_client.wait("text2video", task_id, timeout=60, poll_interval=5, max_interval=5)
    assert backend.now() - start == pytest.approx(60)


def test_download_saves_the_video(mock_client: KlingClient, tmp_path: Path) -> None:
    task_id = mock_client.text2video("a bicycle leaning on a wall")["task_id"]
    video = mock_client.wait("text2video", task_id, poll_interval=60)["task_result"]["videos"][0]
    target = tmp_path / "out" / "video.mp4"
    size = mock_client.download(video["url"], target)
    assert size == target.stat().st_size > 1000
    assert target.read_bytes()[4:8] == b"ftyp"


def test_a_download_cut_short_leaves_no_file(
    mock_client: KlingClient, backend: Backend, tmp_path: Path
) -> None:
    task_id = mock_client.text2video("a bicycle leaning on a wall")["task_id"]
    video = mock_client.wait("text2video", task_id, poll_interval=60)["task_result"]["videos"][0]
    # The server sends part of the file, then drops the connection: the client has started
    # writing, so only its cleanup keeps the half-written file from staying behind.
    backend.add_rules(
        [{"match": {"path": "/media/*"}, "action": {"type": "transport", "fault": "truncated"}}]
    )
    target = tmp_path / "video.mp4"
    with pytest.raises(TransportError) as caught:
        mock_client.download(video["url"], target)
    assert isinstance(caught.value.__cause__, requests.RequestException)
    assert list(tmp_path.iterdir()) == []
    assert backend.rules_snapshot()[0].fired == 1


def test_a_refused_download_leaves_no_file(
    mock_client: KlingClient, live_server: str, tmp_path: Path
) -> None:
    with pytest.raises(ResultExpired, match="refused"):
        mock_client.download(f"{live_server}/media/1/missing.mp4", tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == []


def test_api_errors_carry_code_status_and_request_id(mock_client: KlingClient) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        mock_client.create_task("text2video", {"prompt": "x", "duration": "7"})
    error = caught.value
    assert (error.code, error.http_status) == (1201, 400)
    assert error.request_id and "duration" in error.message


def test_wrong_secret_is_an_auth_error(live_server: str) -> None:
    client = KlingClient(live_server, Credentials(CREDS.access_key, "x" * 40))
    with pytest.raises(AuthError) as caught:
        client.list_tasks("text2video")
    assert caught.value.code == 1002


def test_non_envelope_answer_is_a_protocol_error(mock_client: KlingClient) -> None:
    task_id = mock_client.text2video("rain on a window")["task_id"]
    url = mock_client.wait("text2video", task_id, poll_interval=60)["task_result"]["videos"][0]
    with pytest.raises(ProtocolError, match="not JSON"):
        parts = urlsplit(url["url"])
        mock_client.request("GET", f"{parts.path}?{parts.query}")


def test_token_is_reused_then_renewed_before_expiry() -> None:
    now = [1_000_000.0]
    client = KlingClient("http://127.0.0.1:9", CREDS, token_ttl=1800, token_clock=lambda: now[0])
    first = client.token()
    now[0] += 1700
    assert client.token() == first
    now[0] += 41  # within a minute of exp
    assert client.token() != first


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CredentialsError, match="KLING_ACCESS_KEY"):
        KlingClient("http://127.0.0.1:9")
    monkeypatch.setenv("KLING_ACCESS_KEY", "env-access")
    monkeypatch.setenv("KLING_SECRET_KEY", "env-secret-" + "s" * 32)
    assert KlingClient("http://127.0.0.1:9").credentials.access_key == "env-access"


def test_a_target_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KlingError, match="KLING_BASE_URL"):
        KlingClient(credentials=CREDS)
    monkeypatch.setenv("KLING_BASE_URL", "http://127.0.0.1:9/")
    assert KlingClient(credentials=CREDS).base_url == "http://127.0.0.1:9"


def test_retry_after_is_honoured_before_backoff() -> None:
    from kling_testkit.errors import RateLimitError
    from kling_testkit.retry import RetryPolicy

    policy = RetryPolicy(attempts=3, backoff=2, max_backoff=10)
    limited = RateLimitError(1303, "busy", 429, "r", retry_after=7)
    assert policy.delay(limited, 1) == 7
    unlimited = RateLimitError(1303, "busy", 429, "r")
    waits = [policy.delay(unlimited, n) for n in (1, 2, 3, 4, 5) for _ in range(50)]
    assert all(0 <= w <= 10 for w in waits)
    assert max(policy.delay(unlimited, 1) for _ in range(200)) <= 2
    assert len(set(waits)) > 100  # jittered, not a fixed schedule


def test_retries_are_bounded_and_only_for_retryable_codes(
    mock_client: KlingClient, backend: Backend
) -> None:
    from kling_testkit.retry import RetryPolicy

    backend.add_rules([{"action": {"type": "error", "code": 5000}}])
    mock_client.retry = RetryPolicy(attempts=3)
    with pytest.raises(KlingError):
        mock_client.text2video("x")
    assert [e["code"] for e in backend.journal.snapshot()["entries"]] == [5000, 5000, 5000]
    backend.clear_rules()
    backend.add_rules([{"action": {"type": "error", "code": 1201}}])
    with pytest.raises(InvalidRequestError):
        mock_client.text2video("x")
    assert len(backend.journal.snapshot()["entries"]) == 4  # a 400 is not retried


def test_an_expired_token_is_signed_again_once(mock_client: KlingClient, backend: Backend) -> None:
    backend.add_rules([{"action": {"type": "error", "code": 1004}, "times": 1}])
    assert mock_client.list_tasks("text2video") == []
    assert [e["code"] for e in backend.journal.snapshot()["entries"]] == [1004, 0]


def test_budget_refuses_overspending_and_refunds_failures() -> None:
    from decimal import Decimal

    from kling_testkit.budget import Budget, BudgetExceeded

    budget = Budget(limit=4)
    assert budget.reserve("text2video", {"prompt": "a", "model_name": "kling-v1-6"}) == 2
    with pytest.raises(BudgetExceeded, match=r"costs 3\.5 units; 2 of 4"):
        budget.reserve("text2video", {"prompt": "a", "mode": "pro"})
    budget.refund(Decimal(2))
    assert budget.remaining == 4
    assert budget.price("text2video", {"prompt": "a", "mode": "nonsense"}) == 0


def test_the_secret_never_shows_in_any_printout() -> None:
    from hypothesis.vendor.pretty import pretty

    secret = "a-secret-that-must-never-be-printed-0123456789"
    creds = Credentials("ak", secret)
    for text in (repr(creds), str(creds), f"{creds}", pretty(creds), pretty([creds, {"c": creds}])):
        assert secret not in text and "ak" in text


def test_a_hypothesis_failure_report_hides_the_secret(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from hypothesis import given, strategies as st
        from kling_testkit.credentials import Credentials

        SECRET = "a-secret-that-must-never-be-printed-0123456789"

        @given(creds=st.just(Credentials("ak", SECRET)), n=st.integers())
        def test_fails(creds, n):
            assert n < 0
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    output = result.stdout.str() + result.stderr.str()
    assert "Failing test case" in output and "secret_key='***'" in output
    assert "a-secret-that-must-never-be-printed" not in output
