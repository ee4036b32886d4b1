"""The lifecycle state machine, run against an in-process mock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest
from hypothesis import settings

from kling_testkit.client import KlingClient
from kling_testkit.control import MockControl
from kling_testkit.credentials import Credentials
from kling_testkit.retry import NO_RETRIES
from kling_testkit.server import InProcessMock
from kling_testkit.stateful import KlingLifecycleMachine


class LifecycleOnMock(KlingLifecycleMachine):
    mock: ClassVar[InProcessMock | None] = None

    def make_target(self) -> tuple[KlingClient, MockControl]:
        if LifecycleOnMock.mock is None:
            LifecycleOnMock.mock = InProcessMock({"seed": 5}).start()
        url = LifecycleOnMock.mock.base_url
        return KlingClient(url, Credentials.mock_default(), retry=NO_RETRIES), MockControl(url)


@pytest.fixture(scope="module", autouse=True)
def _stop_mock() -> Iterator[None]:
    yield
    if LifecycleOnMock.mock is not None:
        LifecycleOnMock.mock.stop()
        LifecycleOnMock.mock = None


TestLifecycle = LifecycleOnMock.TestCase
TestLifecycle.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)


def test_machine_needs_a_target() -> None:
    class Unset(KlingLifecycleMachine):
        pass

    with pytest.raises(TypeError, match="base_url"):
        Unset()
