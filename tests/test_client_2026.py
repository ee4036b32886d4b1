"""The client on the 2026 design against a live mock over a real socket: create, wait through
``GET /tasks``, download; API keys; idempotent creates; not-found; the ``POST /tasks`` pages.

The mock's clock is manual: the client's sleeps advance it, so no test waits for a job.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import pytest

from kling_testkit.budget import Budget, BudgetExceeded
from kling_testkit.client import KlingClient
from kling_testkit.credentials import MOCK_API_KEY, Credentials
from kling_testkit.errors import (
    ApiError,
    AuthError,
    CredentialsError,
    InvalidRequestError,
    KlingError,
    TaskFailed,
)
from kling_testkit.retry import RetryPolicy
from kling_testkit.spec import validate
from mock_server import Backend
from mock_server.media import mp4_duration_seconds
from tests.conftest import CREDS, clock_driven_client

T2V = "text-to-video/kling-3.0"
I2V = "image-to-video/kling-2.6"
CHEAP = "text-to-video/kling-2.5-turbo"  # 0.3 u/s at 720p: 1.5 units for 5 s
IMAGE = "https://example.com/first-frame.png"
KEY_ONLY = Credentials(api_key=MOCK_API_KEY)


def prompt(text: str = "a paper boat on a rainy street") -> dict[str, Any]:
    return {"contents": [{"type": "prompt", "text": text}]}


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def client(live_server: str, backend: Backend, slept: list[float]) -> KlingClient:
    """An API-key-only client whose sleeps move the mock's manual clock (and are recorded)."""
    return clock_driven_client(live_server, backend, slept, KEY_ONLY)


def entries(backend: Backend) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = backend.journal.snapshot()["entries"]
    return found


# ------------------------------------------------------------------ the done-when


@pytest.mark.parametrize(
    ("family", "body", "seconds"),
    [
        (T2V, {**prompt(), "settings": {"duration": 10}}, 10),
        (I2V, {"contents": [{"type": "first_frame", "url": IMAGE}]}, 5),
    ],
    ids=["text-to-video", "image-to-video"],
)
def test_create_wait_and_download_through_get_tasks(
    client: KlingClient,
    backend: Backend,
    slept: list[float],
    tmp_path: Path,
    family: str,
    body: dict[str, Any],
    seconds: int,
) -> None:
    created = client.create_task(family, body)
    validate("TaskCreatedV2", created)
    assert created["status"] == "submitted"
    seen: list[str] = []
    done = client.wait(
        family,
        created,
        poll_interval=2,
        max_interval=30,
        on_poll=lambda t: seen.append(t["status"]),
    )
    validate("TaskV2", done)
    assert done["id"] == created["id"] and done["status"] == "succeeded"
    assert seen[0] == "submitted" and seen[-1] == "succeeded" and "processing" in seen
    assert slept[:4] == [2, 4, 8, 16] and max(slept) <= 30  # backoff on the mock's clock
    # Every poll went through GET /tasks?task_ids=<id>, with the API key.
    polls = [e for e in entries(backend) if e["method"] == "GET"]
    assert len(polls) == len(seen)
    assert {e["path"] for e in polls} == {"/tasks"}
    assert all(parse_qs(e["query"]) == {"task_ids": [created["id"]]} for e in polls)
    (video,) = done["outputs"]
    assert video["type"] == "video" and video["duration"] == str(seconds)
    target = tmp_path / "out" / "result.mp4"
    size = client.download(video, target)
    data = target.read_bytes()
    assert size == len(data) > 1000 and data[4:8] == b"ftyp"
    assert mp4_duration_seconds(data) == pytest.approx(seconds, abs=0.5)
    assert [p.name for p in target.parent.iterdir()] == ["result.mp4"]  # no temporary left


def test_an_api_key_only_client_also_works_on_v1(client: KlingClient) -> None:
    task = client.text2video("a red kite over a beach")
    assert client.wait("text2video", task, poll_interval=60)["task_status"] == "succeed"


def test_a_failed_task_raises_task_failed_with_its_reason_and_refunds(
    live_server: str, backend: Backend
) -> None:
    budget = Budget(limit=10)
    client = KlingClient(
        live_server, KEY_ONLY, budget=budget, clock=backend.now, sleep=backend.advance
    )
    client.session.headers["X-Mock-Scenario"] = "fail"
    created = client.create_task(CHEAP, prompt())
    assert budget.spent == Decimal("1.5")
    with pytest.raises(TaskFailed, match=f"task {created['id']} failed: .+") as caught:
        client.wait(CHEAP, created["id"], poll_interval=60)
    assert caught.value.task["status"] == "failed"
    assert budget.spent == 0


def test_a_budget_refuses_a_2026_create_before_sending(live_server: str, backend: Backend) -> None:
    client = KlingClient(live_server, KEY_ONLY, budget=Budget(limit=1))
    with pytest.raises(BudgetExceeded, match=r"costs 1\.5 units"):
        client.create_task(CHEAP, prompt())
    assert entries(backend) == []


# ------------------------------------------------------------------ keys


def test_a_client_with_only_ak_sk_is_refused_before_sending_to_the_2026_design(
    live_server: str, backend: Backend
) -> None:
    budget = Budget(limit=100)
    client = KlingClient(live_server, CREDS, budget=budget)
    calls: list[Callable[[], object]] = [
        lambda: client.create_task(T2V, prompt()),
        lambda: client.get_task(T2V, "123456789012345678"),
        lambda: client.query_tasks(external_task_ids=["x"]),
        lambda: client.list_page(),
        lambda: client.request("GET", "/tasks?task_ids=1"),
    ]
    for call in calls:
        with pytest.raises(CredentialsError, match=r"takes an API key only.*KLING_API_KEY"):
            call()
    assert entries(backend) == [] and budget.spent == 0
    assert client.list_tasks("text2video") == []  # the pair still works on /v1


def test_with_both_the_pair_signs_v1_and_the_key_opens_the_2026_design(
    live_server: str, backend: Backend
) -> None:
    client = KlingClient(live_server, CREDS, api_key=MOCK_API_KEY)
    client.list_tasks("text2video")
    client.query_tasks(task_ids=["123456789012345678"])
    # The mock refuses a JWT on /tasks (401/1002) and the raw key is not a JWT: both answered.
    assert [(e["path"], e["status"]) for e in entries(backend)] == [
        ("/v1/videos/text2video", 200),
        ("/tasks", 200),
    ]
    assert client.credentials.has_pair and client.token().count(".") == 2


def test_a_wrong_api_key_is_an_auth_error(live_server: str) -> None:
    client = KlingClient(live_server, api_key="api-key-kling-" + "0" * 43)
    with pytest.raises(AuthError) as caught:
        client.query_tasks(task_ids=["1"])
    assert (caught.value.code, caught.value.http_status) == (1002, 401)


def test_keys_come_from_the_environment_and_never_a_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("KLING_API_KEY", "KLING_ACCESS_KEY", "KLING_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(CredentialsError, match="KLING_API_KEY"):
        KlingClient("http://127.0.0.1:9")
    monkeypatch.setenv("KLING_ACCESS_KEY", "only-half-a-pair")
    with pytest.raises(CredentialsError, match="KLING_API_KEY"):
        KlingClient("http://127.0.0.1:9")  # half a pair is no pair
    secret = "api-key-kling-from-the-environment-" + "k" * 32
    monkeypatch.setenv("KLING_API_KEY", secret)
    found = KlingClient("http://127.0.0.1:9").credentials
    assert found.api_key == secret and not found.has_pair
    assert secret not in repr(found) and secret not in str(found)
    with pytest.raises(CredentialsError, match="api_key is empty"):
        KlingClient("http://127.0.0.1:9", api_key=" ")


def test_half_a_pair_or_no_key_is_refused_clearly() -> None:
    with pytest.raises(CredentialsError, match="secret_key is empty"):
        Credentials("ak")
    with pytest.raises(CredentialsError, match="no keys"):
        Credentials()
    with pytest.raises(CredentialsError, match="API key only"):
        KlingClient("http://127.0.0.1:9", KEY_ONLY).token()


# ------------------------------------------------------------------ idempotent creates


@pytest.mark.parametrize(
    "lost",
    [
        {"type": "transport", "fault": "reset", "when": "after"},
        {"type": "gateway", "status": 502, "when": "after"},
    ],
    ids=["reset", "gateway"],
)
def test_a_create_whose_answer_is_lost_is_found_by_its_external_id(
    client: KlingClient, backend: Backend, lost: dict[str, Any]
) -> None:
    backend.add_rules([{"match": {"method": "POST"}, "action": lost, "times": 1}])
    created = client.create_task(T2V, prompt())
    tasks = backend.all_tasks()
    assert len(tasks) == 1  # the first try created it; the retry found it
    assert created["id"] == tasks[0].task_id
    external = tasks[0].external_task_id
    assert external and created["external_id"] == external
    assert set(created) == {"id", "status", "create_time", "update_time", "external_id"}
    seen = [(e["method"], e["path"], e["query"]) for e in entries(backend)]
    assert seen[:3] == [
        ("POST", "/text-to-video/kling-3.0", ""),
        ("POST", "/text-to-video/kling-3.0", ""),  # refused: the external id is taken
        ("GET", "/tasks", f"external_task_ids={external}"),
    ]


def test_the_callers_options_and_external_id_are_kept(
    client: KlingClient, backend: Backend
) -> None:
    body = {
        **prompt(),
        "options": {"external_task_id": "mine-1", "watermark_info": {"enabled": False}},
    }
    created = client.create_task(T2V, body)
    assert created["external_id"] == "mine-1"
    assert body["options"] == {"external_task_id": "mine-1", "watermark_info": {"enabled": False}}
    made = client.create_task(T2V, {**prompt(), "options": {"watermark_info": {"enabled": False}}})
    assert made["external_id"].startswith("kt-")  # added in options, beside the caller's
    (found,) = client.query_tasks(external_task_ids=[made["external_id"]])
    assert found["id"] == made["id"]
    with pytest.raises(InvalidRequestError, match="external_task_id"):
        client.create_task(T2V, body)  # the caller's own duplicate is the caller's error


def test_without_retries_no_external_id_is_added(live_server: str, backend: Backend) -> None:
    client = KlingClient(live_server, KEY_ONLY, retry=RetryPolicy(attempts=1))
    assert client.create_task(T2V, prompt())["external_id"] == ""
    assert '"options"' not in (entries(backend)[0]["body"] or "")


# ------------------------------------------------------------------ queries


def test_an_unknown_id_is_not_found_like_a_legacy_404(client: KlingClient) -> None:
    legacy = client.text2video("a task of the other design")["task_id"]
    for unknown in ("999999999999999999", legacy):
        with pytest.raises(InvalidRequestError) as caught:
            client.get_task(T2V, unknown)
        assert caught.value.code == 1203
        assert f"task {unknown} not found" in str(caught.value)
    with pytest.raises(InvalidRequestError) as legacy_miss:
        client.get_task("text2video", "999999999999999999")
    assert type(legacy_miss.value) is type(caught.value) and legacy_miss.value.code == 1203


def test_query_tasks_answers_in_the_order_asked(client: KlingClient) -> None:
    first = client.create_task(T2V, {**prompt(), "options": {"external_task_id": "a"}})
    second = client.create_task(
        I2V,
        {"contents": [{"type": "first_frame", "url": IMAGE}], "options": {"external_task_id": "b"}},
    )
    ids = [t["id"] for t in client.query_tasks(task_ids=[second["id"], "1" * 18, first["id"]])]
    assert ids == [second["id"], first["id"]]
    assert [t["id"] for t in client.query_tasks(external_task_ids=["b", "a"])] == ids
    assert client.query_tasks(external_task_ids=["nobody"]) == []
    bad_queries: list[dict[str, Any]] = [
        {},
        {"task_ids": ["1"], "external_task_ids": ["2"]},
        {"task_ids": ["1,2"]},
        {"task_ids": "123"},
    ]
    for bad in bad_queries:
        with pytest.raises(KlingError):
            client.query_tasks(**bad)


def test_many_ids_are_asked_in_batches_of_a_hundred(client: KlingClient, backend: Backend) -> None:
    made = client.create_task(T2V, prompt())["id"]
    unknown = [f"{n:018d}" for n in range(1, 251)]
    assert [t["id"] for t in client.query_tasks(task_ids=[*unknown, made])] == [made]
    queries = [unquote(e["query"]) for e in entries(backend)[1:]]  # clipped when long
    assert len(queries) == 3
    starts = (1, 101, 201)
    assert all(q.startswith(f"task_ids={n:018d},") for q, n in zip(queries, starts, strict=True))
    assert parse_qs(queries[2])["task_ids"][0].split(",") == [*unknown[200:], made]


# ------------------------------------------------------------------ the cursor list


def test_an_empty_account_lists_one_empty_page(client: KlingClient) -> None:
    assert client.list_page() == {"result": [], "count": 0, "has_more": False}
    assert list(client.iter_tasks()) == []


def test_iter_tasks_follows_next_cursor_over_every_page(
    client: KlingClient, backend: Backend
) -> None:
    made = []
    for _ in range(7):
        made.append(client.create_task(T2V, prompt())["id"])
        backend.advance(1)
    walked = list(client.iter_tasks(limit=3))
    assert [t["id"] for t in walked] == made[::-1]  # newest first, each once
    lists = [e for e in entries(backend) if e["path"] == "/tasks"]
    assert len(lists) == 3
    cursors = ['"cursor"' in (e["body"] or "") for e in lists]
    assert cursors == [False, True, True]


def test_iter_tasks_is_bounded(client: KlingClient, backend: Backend) -> None:
    for _ in range(5):
        client.create_task(T2V, prompt())
        backend.advance(1)
    got: list[str] = []
    with pytest.raises(KlingError, match="still more tasks after 2 pages"):
        for task in client.iter_tasks(limit=2, max_pages=2):
            got.append(task["id"])
    assert len(got) == 4
    assert len(list(itertools.islice(client.iter_tasks(limit=2, max_pages=3), 10))) == 5


def test_list_page_filters_and_times(client: KlingClient, backend: Backend) -> None:
    early = client.create_task(T2V, prompt())
    client.wait(T2V, early, poll_interval=60)
    late = client.create_task(T2V, prompt())
    done = client.list_page(filters={"status": ["succeeded"]})
    assert [t["id"] for t in done["result"]] == [early["id"]]
    window = client.list_page(start_time=late["create_time"], end_time=late["create_time"] + 1)
    assert [t["id"] for t in window["result"]] == [late["id"]]
    with pytest.raises(KlingError, match="between 1 and 500"):
        client.list_page(limit=501)
    with pytest.raises(ApiError, match="filters"):
        client.list_page(filters={"model": ["x"]})
    with pytest.raises(KlingError, match="POST /tasks"):
        client.list_tasks(T2V)
