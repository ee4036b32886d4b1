"""pytest fixtures for code that calls the Kling API (registered through the ``pytest11`` entry).

Only pytest is imported here at module level: the mock, the client and their dependencies load
inside the fixtures, so a test run that uses none of them pays nothing.

- ``kling_mock_server`` (session): the target, an in-process mock with a manual clock, or the
  URL given by ``--kling-base-url`` / ``KLING_BASE_URL``;
- ``kling_mock`` (function): a :class:`~kling_testkit.control.MockControl` on fresh state;
- ``kling_base_url``, ``kling_credentials``, ``kling_client`` (function).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from kling_testkit.client import KlingClient
    from kling_testkit.control import MockControl
    from kling_testkit.credentials import Credentials

BASE_URL_OPTION = "--kling-base-url"
CONTROL_TOKEN_OPTION = "--kling-control-token"
CONTROL_TOKEN_VAR = "KLING_TESTKIT_CONTROL_TOKEN"
MARKER = "kling_config"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kling", "Kling API test kit")
    group.addoption(
        BASE_URL_OPTION,
        default=None,
        metavar="URL",
        help="run the kling fixtures against this target instead of an in-process "
        "mock (default: $KLING_BASE_URL, else an in-process mock)",
    )
    group.addoption(
        CONTROL_TOKEN_OPTION,
        default=None,
        metavar="TOKEN",
        help="control token of a mock started with --control-token "
        f"(default: ${CONTROL_TOKEN_VAR})",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**changes): run-time mock config for this test (see PATCH "
        "/__mock/config), applied after the reset",
    )


class KlingTarget:
    """What ``kling_mock_server`` yields: where the API is, and how to steer it if it is a mock."""

    def __init__(self, base_url: str, control: MockControl | None, local: Any = None) -> None:
        self.base_url = base_url
        self.control = control  # None when the target is not a mock (a real endpoint)
        self.local = local  # the InProcessMock, when this process runs it

    @property
    def is_mock(self) -> bool:
        return self.control is not None

    def errors(self) -> list[BaseException]:
        return [] if self.local is None else self.local.errors()


def _probe(base_url: str, token: str | None) -> MockControl | None:
    """A control handle if the target answers ``/__mock/health``, else None."""
    from kling_testkit.control import MockControl

    control = MockControl(base_url, timeout=5, control_token=token)
    try:
        control.health()
    except Exception:  # not reachable, not JSON, no /__mock: not a mock
        return None
    return control


@pytest.fixture(scope="session")
def kling_mock_server(pytestconfig: pytest.Config) -> Iterator[KlingTarget]:
    """The session's target: one in-process mock on a free port (per xdist worker), or the URL
    given by ``--kling-base-url`` / ``KLING_BASE_URL``."""
    url = pytestconfig.getoption(BASE_URL_OPTION) or os.environ.get("KLING_BASE_URL")
    if url:
        token = pytestconfig.getoption(CONTROL_TOKEN_OPTION) or os.environ.get(CONTROL_TOKEN_VAR)
        yield KlingTarget(url.rstrip("/"), _probe(url.rstrip("/"), token))
        return
    from kling_testkit.control import MockControl
    from kling_testkit.server import InProcessMock

    with InProcessMock() as local:
        yield KlingTarget(local.base_url, MockControl(local.base_url), local)


@pytest.fixture
def kling_mock(
    kling_mock_server: KlingTarget, request: pytest.FixtureRequest
) -> Iterator[MockControl]:
    """Fresh mock state for this test, and the handle to steer it.

    Errors raised inside an in-process mock during the test are re-raised at teardown.
    """
    control = kling_mock_server.control
    if control is None:
        pytest.skip(f"kling_mock needs a mock target; {kling_mock_server.base_url} has no /__mock")
    control.reset()
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            raise pytest.UsageError(f"{MARKER} takes keyword arguments only")
        control.configure(**marker.kwargs)
    seen = len(kling_mock_server.errors())
    yield control
    new = kling_mock_server.errors()[seen:]
    if new:
        raise new[0]


@pytest.fixture
def kling_base_url(kling_mock_server: KlingTarget, request: pytest.FixtureRequest) -> str:
    """The base URL of the target; a mock target starts this test with fresh state."""
    if kling_mock_server.is_mock:
        request.getfixturevalue("kling_mock")  # reset (and marker config) first
    return kling_mock_server.base_url


@pytest.fixture
def kling_credentials() -> Credentials:
    """Keys from ``KLING_ACCESS_KEY``/``KLING_SECRET_KEY``, else the mock's development keys."""
    from kling_testkit.credentials import Credentials

    return Credentials.mock_default()


@pytest.fixture
def kling_client(
    kling_mock_server: KlingTarget,
    kling_base_url: str,
    kling_credentials: Credentials,
    request: pytest.FixtureRequest,
) -> KlingClient:
    """A client for the target. Against a manual-clock mock its waits move the mock's clock
    instead of sleeping, so ``wait()`` returns at once."""
    from kling_testkit.client import KlingClient

    if kling_mock_server.is_mock:
        request.getfixturevalue("kling_mock")  # fresh state and marker config come first
    control = kling_mock_server.control
    if control is not None and control.clock.info()["mode"] == "manual":
        clock = control.clock

        def advance(seconds: float) -> None:
            clock.advance(seconds)

        return KlingClient(kling_base_url, kling_credentials, clock=clock.now, sleep=advance)
    return KlingClient(kling_base_url, kling_credentials)
