"""Paid checks: each creates tasks. On a mock they always run; elsewhere only within budget.

The lifecycle through polling to a terminal status, result URLs that download real media, the
charge in ``final_unit_deduction``, lookup by ``external_task_id``, 429/1303 with Retry-After
when the account's limit is known, and callbacks where a receiver is reachable.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from contract_tests.conftest import Target, expect_error
from kling_testkit.codes import ErrorCode
from kling_testkit.pricing import format_units
from kling_testkit.spec import families
from kling_testkit.spec.statuses import PROCESSING, RANK, SUBMITTED, SUCCEED

# The cheapest documented bodies (1 unit each with the legacy prices).
CHEAPEST = {
    "image_generation": {
        "prompt": "a red apple on a white table",
        "model_name": "kling-v1",
        "n": 1,
    },
    "text2video": {
        "prompt": "a red apple on a white table",
        "model_name": "kling-v1",
        "mode": "std",
        "duration": "5",
    },
}
TIMEOUTS = {"image_generation": 300.0, "text2video": 1200.0}  # real time, from the durations
MAGIC = {"image_generation": (b"\x89PNG", b"\xff\xd8\xff"), "text2video": (b"ftyp",)}


def _create(target: Target, family: str, **extra: Any) -> tuple[str, Decimal, dict[str, Any]]:
    body = {**CHEAPEST[family], **extra}
    price = target.spender.reserve(family, body)
    created = target.api.post(families()[family].path, body).data
    assert created["task_status"] == SUBMITTED, created
    return created["task_id"], price, body


@pytest.mark.paid(1)
@pytest.mark.parametrize("family", ["image_generation", "text2video"])
def test_a_task_runs_to_the_end_and_its_result_downloads(target: Target, family: str) -> None:
    external = f"contract-{uuid.uuid4().hex[:16]}"
    task_id, price, _ = _create(target, family, external_task_id=external)
    path = families()[family].path
    done = target.wait_for(path, task_id, TIMEOUTS[family])
    seen = [RANK[s] for s in done.pop("_seen")]
    assert seen == sorted(seen), f"status went backwards: {done}"
    assert done["task_status"] == SUCCEED, f"task failed: {done['task_status_msg']!r}"
    assert done["final_unit_deduction"] == format_units(price), (
        f"final_unit_deduction: expected {format_units(price)}; got {done['final_unit_deduction']}"
    )
    items = done["task_result"].get("videos") or done["task_result"].get("images") or []
    assert items, f"task_result has no results: {done['task_result']}"
    media = requests.get(items[0]["url"], timeout=60)
    assert media.status_code == 200, f"result URL answered {media.status_code}"
    assert any(magic in media.content[:16] for magic in MAGIC[family]), media.content[:16]
    by_query = target.api.get(path, params={"external_task_id": external}).data
    by_path = target.api.get(f"{path}/{external}").data
    assert by_query["task_id"] == by_path["task_id"] == task_id


@pytest.mark.paid(2)
def test_the_concurrency_limit_is_429_1303_with_retry_after(target: Target) -> None:
    limit_text = os.environ.get("KLING_TESTKIT_VIDEO_CONCURRENCY")
    if target.mock is not None:
        target.mock.configure(concurrency={"video": 1})
        limit = 1
    elif limit_text:
        limit = int(limit_text)
    else:
        pytest.skip(
            "the account's video concurrency is unknown (set KLING_TESTKIT_VIDEO_CONCURRENCY)"
        )
    for _ in range(limit):
        _create(target, "text2video")
    body = CHEAPEST["text2video"]
    held = target.spender.reserve("text2video", body)
    answer = target.api.post(families()["text2video"].path, body)
    expect_error(answer, 429, ErrorCode.CONCURRENCY_LIMITED)
    target.spender.refund(held)
    retry_after = answer.headers.get("Retry-After", "")
    assert retry_after.isdigit() and int(retry_after) >= 1, f"Retry-After: {retry_after!r}"


class _Receiver:
    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.arrived = threading.Condition()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        with self.arrived:
            self.bodies.append(json.loads(environ["wsgi.input"].read(size)))
            self.arrived.notify_all()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


@pytest.fixture
def receiver() -> Iterator[tuple[_Receiver, str]]:
    found = _Receiver()
    server = make_server("127.0.0.1", 0, found, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield found, f"http://127.0.0.1:{server.server_port}/kling-callback"
    server.shutdown()
    server.server_close()


@pytest.mark.paid(1)
def test_callbacks_arrive_for_each_status(target: Target, receiver: tuple[_Receiver, str]) -> None:
    found, url = receiver
    if target.mock is None:
        url = os.environ.get("KLING_TESTKIT_CALLBACK_URL", "")
        if not url:
            pytest.skip(
                "no callback receiver the target can reach (set KLING_TESTKIT_CALLBACK_URL)"
            )
        pytest.skip("callbacks to a real target's receiver are checked by that receiver")
    task_id, _, _ = _create(target, "image_generation", callback_url=url)
    target.wait_for(families()["image_generation"].path, task_id, TIMEOUTS["image_generation"])
    target.mock.wait_for_callbacks(timeout=30)
    statuses = [b["task_status"] for b in found.bodies if b.get("task_id") == task_id]
    assert statuses == [SUBMITTED, PROCESSING, SUCCEED], statuses
