"""Pausing and resuming a running clock: ``PATCH /__mock/config`` with ``{"clock": "manual"}``
stops it where it is, ``{"clock": "real"}`` runs it again at its ``time_scale``, with no jump."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import with_config

pytestmark = pytest.mark.both_stores

SCALE = 1000.0  # a wall millisecond is a mock second: any time that passes shows


def clock(client: FlaskClient) -> dict[str, Any]:
    data: dict[str, Any] = client.get("/__mock/clock").json["data"]  # type: ignore[index]
    return data


def patch(client: FlaskClient, **changes: Any) -> None:
    answer = client.patch("/__mock/config", json=changes)
    assert answer.status_code == 200, answer.json


@with_config(clock="real", time_scale=SCALE)
def test_a_paused_clock_stands_still_and_resumes_without_a_jump(client: FlaskClient) -> None:
    before = clock(client)["now"]
    patch(client, clock="manual")
    paused = clock(client)
    assert paused["mode"] == "manual" and paused["time_scale"] == 0
    assert paused["now"] >= before
    # Wall time is what is tested here: a paused clock must not follow it. Bounded (50 ms,
    # 50 mock seconds at this scale were the clock still running), never a job duration.
    time.sleep(0.05)
    assert clock(client)["now"] == paused["now"]
    started = time.monotonic()
    patch(client, clock="real")
    resumed = clock(client)
    elapsed = time.monotonic() - started  # the only wall time the clock ran since the pause
    assert resumed["mode"] == "real" and resumed["time_scale"] == SCALE
    assert paused["now"] < resumed["now"] <= paused["now"] + elapsed * SCALE + 1e-3


@with_config(clock="real", time_scale=SCALE)
def test_a_paused_clock_still_moves_when_advanced(client: FlaskClient) -> None:
    patch(client, clock="manual")
    paused = clock(client)["now"]
    advanced = client.post("/__mock/clock/advance", json={"seconds": 30})
    assert advanced.json["data"]["now"] == pytest.approx(paused + 30)  # type: ignore[index]


@with_config(clock="real", time_scale=SCALE)
def test_a_reset_restores_the_start_up_clock(client: FlaskClient) -> None:
    patch(client, clock="manual")
    assert client.post("/__mock/reset").status_code == 200
    assert clock(client)["mode"] == "real"
