"""What a load run is aimed at: a mock (and how fast its clock runs) or a real endpoint."""

from __future__ import annotations

import os
from dataclasses import dataclass

import requests

from kling_testkit.credentials import Credentials

HOST_VAR = "KLING_LOAD_HOST"
"""Where ``python load_tests/<scenario>.py`` (``run_single_user``) sends its requests."""
DEBUG_HOST = "http://127.0.0.1:8000"


class TargetError(Exception):
    """Raised when a target cannot be load-tested as asked (a manual clock, no keys)."""


@dataclass(frozen=True)
class Target:
    """A base URL; on a mock, its clock's speed (API seconds per wall second)."""

    base_url: str
    is_mock: bool
    time_scale: float = 1.0

    def wall(self, api_seconds: float) -> float:
        """Wall seconds that ``api_seconds`` of the target's time take."""
        return api_seconds / self.time_scale


_TARGETS: dict[str, Target] = {}


def target_of(base_url: str) -> Target:
    """Probe ``base_url`` once per process: ``GET /__mock/clock`` answers only on a mock."""
    found = _TARGETS.get(base_url)
    if found is None:
        found = _TARGETS[base_url] = _probe(base_url.rstrip("/"))
    return found


def _probe(base_url: str) -> Target:
    try:
        answer = requests.get(f"{base_url}/__mock/clock", timeout=10)
        body = answer.json()
    except (requests.RequestException, ValueError):
        return Target(base_url, is_mock=False)
    if answer.status_code != 200 or not isinstance(body, dict) or body.get("code") != 0:
        return Target(base_url, is_mock=False)
    clock = body["data"]
    if clock.get("mode") == "manual":
        raise TargetError(
            f"the mock at {base_url} runs a manual clock: its tasks never end under load; "
            "start it with a running clock (kling-mock serve --time-scale 60)"
        )
    return Target(base_url, is_mock=True, time_scale=float(clock.get("time_scale") or 1.0))


def credentials_for(target: Target) -> Credentials:
    """``KLING_ACCESS_KEY`` / ``KLING_SECRET_KEY``; on a mock, its default keys without them."""
    found = Credentials.from_env()
    if found is not None:
        return found
    if target.is_mock:
        return Credentials.mock_default()
    raise TargetError(f"{target.base_url} is not a mock: set KLING_ACCESS_KEY and KLING_SECRET_KEY")


def debug_host() -> str:
    """The host of a single-user debug run: ``$KLING_LOAD_HOST`` or a local mock on 8000."""
    return os.environ.get(HOST_VAR, DEBUG_HOST)
