"""Checks of the 2026 design: the model in the path, an API key only, ``GET /tasks`` to query,
``POST /tasks`` to list, the new task shape (``succeeded``, ``outputs``, ``billing``).

Each check first makes sure the target's API key is known (a target that is not a mock needs
``$KLING_TESTKIT_API_KEY``, else the check is skipped). Free checks create nothing; paid ones
run on a mock always and elsewhere only within the budget (``--max-units``), cheapest first. Every
answer is checked against the document (``TaskV2``, ``TaskCreatedV2``, ``TaskPage``) by ``api``.
"""

from __future__ import annotations

import base64
import uuid
from decimal import Decimal
from typing import Any

import pytest
import requests

from contract_tests.conftest import Target, expect_error
from kling_testkit.codes import ErrorCode
from kling_testkit.image_bytes import png_bytes
from kling_testkit.pricing import format_units
from kling_testkit.spec import families
from kling_testkit.spec.document import DESIGN_2026, designs
from kling_testkit.spec.statuses import RANK_2026, SUBMITTED, SUCCEEDED

T2V = "text-to-video/kling-2.5-turbo"  # the cheapest text-to-video: 0.3 u/s, 1.5 units for 5 s
I2V = "image-to-video/kling-2.5-turbo"  # the cheapest image-to-video, as much
# A first frame any target can read without fetching anything: a 512 x 512 PNG as raw Base64.
FRAME = base64.b64encode(png_bytes(512, 512)).decode()
CHEAPEST: dict[str, dict[str, Any]] = {
    T2V: {"contents": [{"type": "prompt", "text": "a red apple on a white table"}]},
    I2V: {
        "contents": [
            {"type": "first_frame", "url": FRAME},
            {"type": "prompt", "text": "the apple rolls slowly to the left"},
        ]
    },
}
TIMEOUT = 1200.0  # real seconds a video may take on a target that is not a mock
UNKNOWN_ID = "000000000000000001"
NEITHER = "task_ids or external_task_ids is required"


@pytest.fixture
def keyed(target: Target) -> Target:
    """The target, once its API key is known (else the check is skipped)."""
    target.require_api_key()
    return target


def _create(target: Target, family: str, external: str | None = None) -> tuple[str, Decimal]:
    body: dict[str, Any] = dict(CHEAPEST[family])
    if external is not None:
        body["options"] = {"external_task_id": external}
    price = target.spender.reserve(family, body)
    created = target.api.post(families()[family].path, body).data
    assert created["status"] == SUBMITTED, created
    assert created["external_id"] == (external or ""), created
    return str(created["id"]), price


# ------------------------------------------------------------------ free: querying


def test_get_tasks_leaves_unknown_ids_out(keyed: Target) -> None:
    api = keyed.api
    assert api.get("/tasks", params={"task_ids": UNKNOWN_ID}).data == []
    never = f"contract-never-used-{uuid.uuid4().hex[:12]}"
    assert api.get("/tasks", params={"external_task_ids": never}).data == []


@pytest.mark.parametrize("params", [{}, {"ids": UNKNOWN_ID}], ids=["no-parameter", "ids"])
def test_get_tasks_without_ids_is_1201_naming_both_parameters(
    keyed: Target, params: dict[str, str]
) -> None:
    answer = keyed.api.get("/tasks", params=params)
    expect_error(answer, 400, ErrorCode.INVALID_VALUE)
    assert NEITHER in answer.body["message"], answer.body


# ------------------------------------------------------------------ free: auth


def test_no_authorization_on_tasks_is_1001(keyed: Target) -> None:
    answer = keyed.api.get("/tasks", params={"task_ids": UNKNOWN_ID}, authed=False)
    expect_error(answer, 401, ErrorCode.AUTH_EMPTY)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_jwt_is_refused_on_tasks(keyed: Target, method: str) -> None:
    """The 2026 design takes an API key only: a valid AK/SK token is 401/1002."""
    api = keyed.api
    token = api.token()
    if method == "GET":
        answer = api.get("/tasks", params={"task_ids": UNKNOWN_ID}, authed=False, headers=token)
    else:
        answer = api.post("/tasks", {}, authed=False, headers=token)
    expect_error(answer, 401, ErrorCode.AUTH_INVALID)


# ------------------------------------------------------------------ free: the cursor list


def test_an_empty_account_lists_count_0_without_result_or_cursor(keyed: Target) -> None:
    if not keyed.is_mock:
        pytest.skip("a real account's history is not empty: checked on a fresh mock only")
    assert keyed.api.post("/tasks", {}).data == {"count": 0, "has_more": False}


def test_the_list_pages_follow_next_cursor(keyed: Target) -> None:
    """Whatever the account holds (three pages of two at most): each page's ``count`` is its
    length, ``next_cursor`` comes exactly when ``has_more``, and no task shows twice."""
    seen: list[str] = []
    body: dict[str, Any] = {"limit": 2}
    for _ in range(3):
        page = keyed.api.post("/tasks", body).data
        result = page.get("result", [])
        assert page["count"] == len(result) <= 2, page
        assert ("next_cursor" in page) == page["has_more"], page
        seen += [t["id"] for t in result]
        if not page["has_more"]:
            break
        body = {"cursor": page["next_cursor"], "limit": 2}
    assert len(seen) == len(set(seen)), f"a task on two pages: {seen}"


# ------------------------------------------------------------------ paid


@pytest.mark.paid(0)
@pytest.mark.parametrize("family", sorted(designs(DESIGN_2026)))
def test_a_jwt_is_refused_on_each_create_path(keyed: Target, family: str) -> None:
    """Refused before anything is made; a target that wrongly accepted would charge, so on a
    target that is not a mock each case holds the price of a cheap create until refused."""
    token = keyed.api.token()
    held = None if keyed.is_mock else keyed.spender.reserve(T2V, CHEAPEST[T2V])
    answer = keyed.api.post(families()[family].path, CHEAPEST[T2V], authed=False, headers=token)
    expect_error(answer, 401, ErrorCode.AUTH_INVALID)
    if held is not None:
        keyed.spender.refund(held)


@pytest.mark.paid(1.5)
@pytest.mark.parametrize("family", [T2V, I2V])
def test_a_task_runs_to_succeeded_with_outputs_billing_and_media(
    keyed: Target, family: str
) -> None:
    external = f"contract-{uuid.uuid4().hex[:16]}"
    task_id, price = _create(keyed, family, external)
    done = keyed.wait_for_2026(task_id, TIMEOUT)
    seen = done.pop("_seen")
    ranks = [RANK_2026[s] for s in seen]
    assert ranks == sorted(ranks), f"status went backwards: {seen}"
    assert done["status"] == SUCCEEDED, f"task ended {done['status']}: {done['message']!r}"
    assert done["external_id"] == external
    videos = [o for o in done["outputs"] if o["type"] == "video"]
    assert videos, f"outputs has no video: {done['outputs']}"
    media = requests.get(videos[0]["url"], timeout=60)
    assert media.status_code == 200, f"result URL answered {media.status_code}"
    assert b"ftyp" in media.content[:16], media.content[:16]
    units = [b for b in done["billing"] if b["charge_type"] == "unit"]
    assert units or done["billing"], "billing is empty after success"
    if units:  # cash billing is a discounted price: only units can be compared
        assert units[0]["amount"] == format_units(price), (
            f"billing amount: expected {format_units(price)} units; got {units[0]['amount']}"
        )
    by_external = keyed.api.get("/tasks", params={"external_task_ids": external}).data
    assert [t["id"] for t in by_external] == [task_id]


@pytest.mark.paid(3)
def test_tasks_are_found_by_ids_in_order_and_walked_by_cursor(keyed: Target) -> None:
    first, _ = _create(keyed, T2V)
    second, _ = _create(keyed, T2V)
    asked = f"{second},{UNKNOWN_ID},{first}"
    found = keyed.api.get("/tasks", params={"task_ids": asked}).data
    assert [t["id"] for t in found] == [second, first], "not in the order asked"
    assert {t["status"] for t in found} <= set(RANK_2026)
    times = [t["create_time"] for t in found]
    walked: list[str] = []
    # A window around the two creates (a second either side), walked one task per page.
    body: dict[str, Any] = {
        "limit": 1,
        "start_time": min(times) - 1000,
        "end_time": max(times) + 1000,
    }
    for _ in range(50):  # ours are two; a real account may make others meanwhile
        page = keyed.api.post("/tasks", body).data
        walked += [t["id"] for t in page.get("result", [])]
        if not page["has_more"]:
            break
        body = {"cursor": page["next_cursor"], "limit": 1}
    assert {first, second} <= set(walked), f"the walk missed a task: {walked}"
    assert len(walked) == len(set(walked)), f"a task on two pages: {walked}"
