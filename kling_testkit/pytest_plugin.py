"""pytest fixtures for code that calls the Kling API (registered through the ``pytest11`` entry).

Only pytest is imported here at module level: the mock, the client and their dependencies load
inside the fixtures, so a test run that uses none of them pays nothing.

Safe by default: the fixtures never read the production client's variables (``KLING_BASE_URL``,
``KLING_ACCESS_KEY``, ``KLING_SECRET_KEY``, ``KLING_API_KEY``). Only ``--kling-base-url`` or
``$KLING_TESTKIT_BASE_URL`` selects another target; a target without ``/__mock`` is treated as
the real API, where paid calls need ``--kling-max-units N`` (default 0).

- ``kling_mock_config`` (session): start-up config of the in-process mock (override it in a
  ``conftest.py``, or set the ini option ``kling_mock_config = path/to/config.json``);
- ``kling_mock_server`` (session): the target; ``with kling_mock_server.fresh() as mock:``
  gives fresh state anywhere, Hypothesis examples included;
- ``kling_mock`` (function): a :class:`~kling_testkit.control.MockControl` on fresh state;
- ``kling_base_url``, ``kling_credentials``, ``kling_client`` (function), fresh per test too.

Both API designs work through the fixtures: ``kling_credentials`` carries the mock account's
access key and secret key (legacy ``/v1``) and its API key (the 2026 design, e.g.
``kling_client.create_task("text-to-video/kling-3.0", {...})``); on a real target they come from
``$KLING_TESTKIT_ACCESS_KEY``/``$KLING_TESTKIT_SECRET_KEY`` and ``$KLING_TESTKIT_API_KEY``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import requests

    from kling_testkit.client import KlingClient
    from kling_testkit.control import MockControl
    from kling_testkit.credentials import Credentials

BASE_URL_OPTION = "--kling-base-url"
BASE_URL_VAR = "KLING_TESTKIT_BASE_URL"
CONTROL_TOKEN_OPTION = "--kling-control-token"
CONTROL_TOKEN_VAR = "KLING_TESTKIT_CONTROL_TOKEN"
MAX_UNITS_OPTION = "--kling-max-units"
MAX_UNITS_VAR = "KLING_TESTKIT_MAX_UNITS"
ACCESS_KEY_VAR = "KLING_TESTKIT_ACCESS_KEY"
SECRET_KEY_VAR = "KLING_TESTKIT_SECRET_KEY"
API_KEY_VAR = "KLING_TESTKIT_API_KEY"
CONFIG_INI = "kling_mock_config"
MARKER = "kling_config"
AUDIT_MARKER = "kling_audit"
AUDIT_INI = "kling_audit"
_names = itertools.count(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kling", "Kling API test kit")
    group.addoption(
        BASE_URL_OPTION,
        default=None,
        metavar="URL",
        help=f"run the kling fixtures against this target instead of an in-process mock "
        f"(default: ${BASE_URL_VAR}; never the client's $KLING_BASE_URL)",
    )
    group.addoption(
        CONTROL_TOKEN_OPTION,
        default=None,
        metavar="TOKEN",
        help=f"control token of a mock started with --control-token (default: "
        f"${CONTROL_TOKEN_VAR})",
    )
    group.addoption(
        MAX_UNITS_OPTION,
        default=None,
        metavar="N",
        help=f"units the fixtures' client may spend on a real target (default: ${MAX_UNITS_VAR}, "
        "else 0: no paid call is sent)",
    )
    parser.addini(CONFIG_INI, "JSON file: start-up config of the in-process mock", default="")
    parser.addini(
        AUDIT_INI,
        "fail every test whose client broke a rule the mock's audit checks (as if each test "
        f"were marked {AUDIT_MARKER})",
        type="bool",
        default=False,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**changes): run-time mock config for this test (see PATCH "
        "/__mock/config), applied after the reset",
    )
    config.addinivalue_line(
        "markers",
        f"{AUDIT_MARKER}(allow=()): fail the test when the mock's audit (GET /__mock/audit) has a "
        "finding whose id is not in allow (a test that misbehaves on purpose names it)",
    )


def _audit_allowed(item: pytest.Item) -> tuple[str, ...] | None:
    """The finding ids a test may make, or None when its audit is not checked."""
    marker = item.get_closest_marker(AUDIT_MARKER)
    if marker is None:
        return () if item.config.getini(AUDIT_INI) else None
    if marker.args:
        raise pytest.UsageError(f"{AUDIT_MARKER} takes keyword arguments only (allow=[...])")
    allow = marker.kwargs.get("allow", ())
    return (allow,) if isinstance(allow, str) else tuple(allow)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After a test that passed, check its mock's audit when the test asks for it."""
    result = yield
    allow = _audit_allowed(item)
    funcargs = getattr(item, "funcargs", {})
    control = funcargs.get("_kling_state")
    if allow is None or control is None:  # not checked, or the target is no mock
        return result
    from kling_testkit.audit import format_report

    report = format_report(control.audit(), allow)
    if report:
        pytest.fail(f"the client broke rules the mock checks:\n{report}", pytrace=False)
    return result


def _mock_credentials() -> Credentials:
    from kling_testkit.credentials import (
        MOCK_ACCESS_KEY,
        MOCK_API_KEY,
        MOCK_SECRET_KEY,
        Credentials,
    )

    return Credentials(MOCK_ACCESS_KEY, MOCK_SECRET_KEY, MOCK_API_KEY)


class KlingTarget:
    """What ``kling_mock_server`` yields: where the API is, and how to steer it if it is a mock.

    On a shared mock (``--kling-base-url`` to a ``kling-mock serve``) every fresh state is a
    namespace of its own, so tests, xdist workers and CI jobs never see each other's state.

    For the in-process mock, every client and control handle it makes talks through one pool
    of kept-alive connections (each still has a ``requests.Session`` of its own: headers,
    cookies and auth set in one test stay there), and none reads proxies or ``.netrc`` from
    the environment: the mock is in this process, on loopback, and a proxy must not see it.
    """

    def __init__(
        self,
        base_url: str,
        control: MockControl | None,
        local: Any = None,
        *,
        token: str | None = None,
        max_units: float = 0,
        credentials: Credentials | None = None,
    ) -> None:
        self.base_url = base_url
        self.control = control  # None when the target is not a mock (a real endpoint)
        self.local = local  # the InProcessMock, when this process runs it
        self.token = token
        self.max_units = max_units
        self.credentials = credentials or _mock_credentials()
        self._pool: requests.adapters.HTTPAdapter | None = None

    @property
    def is_mock(self) -> bool:
        return self.control is not None

    @property
    def shared(self) -> bool:
        """A mock this process does not own: isolate with namespaces, never reset it."""
        return self.is_mock and self.local is None

    def errors(self) -> list[BaseException]:
        return [] if self.local is None else self.local.errors()

    def session(self) -> requests.Session:
        """A new ``requests.Session`` for this target (see the class notes)."""
        import requests

        session = requests.Session()
        if self.local is not None:
            session.trust_env = False
            if self._pool is None:
                self._pool = requests.adapters.HTTPAdapter()
            session.mount(f"{self.base_url}/", self._pool)
        return session

    def close(self) -> None:
        """Close the kept-alive connections of the in-process mock's clients."""
        if self._pool is not None:
            self._pool.close()

    def client(
        self, mock: MockControl | None = None, *, credentials: Credentials | None = None
    ) -> KlingClient:
        """A client for ``mock`` (a handle from :meth:`fresh`), or for the target itself.

        Against a manual-clock mock its waits move the mock's clock instead of sleeping, and
        with ``auth_clock: "mock"`` it signs tokens on that clock. Against a real target it may
        spend at most ``--kling-max-units``.
        """
        from kling_testkit.budget import Budget
        from kling_testkit.client import KlingClient

        creds = credentials or self.credentials
        mock = mock or self.control
        if mock is None:
            return KlingClient(self.base_url, creds, budget=Budget(limit=self.max_units))
        clock = mock.clock  # the in-process mock's is read and moved here, without HTTP
        now, move = clock.now, clock.advance
        info = clock.info()  # one call: the clock's mode and which clock checks tokens
        token_clock = now if info.get("auth_clock") == "mock" else time.time
        session = self.session()
        if info["mode"] != "manual":
            return KlingClient(mock.base_url, creds, token_clock=token_clock, session=session)

        def advance(seconds: float) -> None:
            move(seconds)

        return KlingClient(
            mock.base_url, creds, clock=now, sleep=advance, token_clock=token_clock, session=session
        )

    @contextlib.contextmanager
    def fresh(self) -> Iterator[MockControl]:
        """A handle on fresh mock state for the ``with`` block; its ``base_url`` is where a
        client must point. Usable from session-scoped code, so also inside ``@given``."""
        from kling_testkit.control import MockControl

        if self.control is None:
            raise RuntimeError(f"{self.base_url} is not a mock: there is no state to refresh")
        if not self.shared:
            if self.local is not None and self.local.backend is not None:
                self.local.backend.reset()  # in this process: no HTTP round trip needed
            else:
                self.control.reset()
            yield self.control
            return
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        name = f"pytest-{worker}-{next(_names)}-{uuid.uuid4().hex[:12]}"
        control = MockControl(f"{self.base_url}/ns/{name}", control_token=self.token)
        try:
            yield control
        finally:
            with contextlib.suppress(Exception):  # the mock may be gone; nothing to clean then
                self.control.call("DELETE", f"namespaces/{name}")


def _probe(base_url: str, token: str | None) -> MockControl | None:
    """A control handle if the target answers ``/__mock/health``, else None."""
    from kling_testkit.control import ControlError, MockControl

    control = MockControl(base_url, timeout=5, control_token=token)
    try:
        health: Any = control.health()
    except ControlError as exc:  # a mock, but it refuses us: say so rather than call it real
        raise pytest.UsageError(
            f"{base_url} is a kling mock that refused the fixtures: {exc}"
        ) from None
    except Exception:  # not reachable, not JSON, no /__mock: not a mock
        return None
    if not (isinstance(health, dict) and health.get("status") == "ok" and "clock" in health):
        return None  # something answers every path with success: that is no kling mock
    return control


def _max_units(config: pytest.Config) -> float:
    raw = config.getoption(MAX_UNITS_OPTION) or os.environ.get(MAX_UNITS_VAR) or "0"
    try:
        value = float(raw)
    except ValueError:
        raise pytest.UsageError(f"{MAX_UNITS_OPTION} must be a number; got {raw!r}") from None
    if not 0 <= value < float("inf"):
        raise pytest.UsageError(f"{MAX_UNITS_OPTION} must be a finite number >= 0; got {raw!r}")
    return value


def _remote_credentials() -> Credentials | None:
    """The keys for a target named by URL: ``$KLING_TESTKIT_ACCESS_KEY`` with
    ``$KLING_TESTKIT_SECRET_KEY`` (both, or neither counts) and ``$KLING_TESTKIT_API_KEY``."""
    from kling_testkit.credentials import Credentials

    access, secret = os.environ.get(ACCESS_KEY_VAR, ""), os.environ.get(SECRET_KEY_VAR, "")
    api_key = os.environ.get(API_KEY_VAR, "").strip()
    if not (access and secret):
        access = secret = ""
    return Credentials(access, secret, api_key) if access or api_key else None


@pytest.fixture(scope="session")
def kling_mock_config(pytestconfig: pytest.Config) -> dict[str, Any]:
    """Start-up config of the in-process mock: accounts, packs, rules, durations ...

    Override this fixture in a ``conftest.py``, or point the ini option ``kling_mock_config``
    at a JSON file. Only the in-process mock reads it (a served mock has its own ``--config``).
    """
    path = str(pytestconfig.getini(CONFIG_INI) or "")
    if not path:
        return {}
    file = Path(path) if Path(path).is_absolute() else pytestconfig.rootpath / path
    try:
        loaded = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise pytest.UsageError(f"{CONFIG_INI} = {path}: {exc}") from None
    if not isinstance(loaded, dict):
        raise pytest.UsageError(f"{CONFIG_INI} = {path}: expected a JSON object")
    return loaded


@pytest.fixture(scope="session")
def kling_mock_server(
    pytestconfig: pytest.Config, kling_mock_config: dict[str, Any]
) -> Iterator[KlingTarget]:
    """The session's target: one in-process mock on a free loopback port (per xdist worker),
    or the URL given by ``--kling-base-url`` / ``$KLING_TESTKIT_BASE_URL``."""
    url = pytestconfig.getoption(BASE_URL_OPTION) or os.environ.get(BASE_URL_VAR)
    if url:
        url = url.rstrip("/")
        token = pytestconfig.getoption(CONTROL_TOKEN_OPTION) or os.environ.get(CONTROL_TOKEN_VAR)
        yield KlingTarget(
            url,
            _probe(url, token),
            token=token,
            max_units=_max_units(pytestconfig),
            credentials=_remote_credentials(),
        )
        return
    from kling_testkit.control import MockControl
    from kling_testkit.credentials import MOCK_API_KEY, Credentials
    from kling_testkit.server import InProcessClock, InProcessMock

    config = dict(kling_mock_config)
    if "accounts" not in config:  # the documented keys, never the environment's
        creds = _mock_credentials()
        config["accounts"] = [
            {
                "name": "default",
                "access_key": creds.access_key,
                "secret_key": creds.secret_key,
                "api_key": MOCK_API_KEY,
            }
        ]
    first = config["accounts"][0]
    with InProcessMock(config) as local:
        target = KlingTarget(
            local.base_url,
            None,
            local,
            credentials=Credentials(
                first["access_key"], first["secret_key"], first.get("api_key") or ""
            ),
        )
        target.control = MockControl(local.base_url, session=target.session())
        target.control.clock = InProcessClock(target.control, local)  # no round trip
        try:
            yield target
        finally:
            target.close()


def _not_a_mock(target: KlingTarget) -> str:
    return (
        f"needs a mock target; {target.base_url} has no /__mock (point {BASE_URL_OPTION} at a "
        "kling-mock serve, or drop it to use the in-process mock)"
    )


@pytest.fixture
def _kling_state(
    kling_mock_server: KlingTarget, request: pytest.FixtureRequest
) -> Iterator[MockControl | None]:
    """Fresh mock state for this test (None when the target is not a mock), shared by
    ``kling_mock``, ``kling_base_url`` and ``kling_client`` as a plain dependency: asking for
    ``kling_mock`` by name from inside them cost pytest twice as much per test.

    Errors raised inside an in-process mock during the test are re-raised at teardown.
    """
    if not kling_mock_server.is_mock:
        yield None
        return
    with kling_mock_server.fresh() as control:
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
def kling_mock(kling_mock_server: KlingTarget, _kling_state: MockControl | None) -> MockControl:
    """Fresh mock state for this test, and the handle to steer it.

    Errors raised inside an in-process mock during the test are re-raised at teardown.
    """
    if _kling_state is None:
        pytest.skip(f"kling_mock {_not_a_mock(kling_mock_server)}")
    return _kling_state


@pytest.fixture
def kling_base_url(kling_mock_server: KlingTarget, _kling_state: MockControl | None) -> str:
    """Where this test's client must point: on a mock, fresh state of its own."""
    return kling_mock_server.base_url if _kling_state is None else _kling_state.base_url


@pytest.fixture
def kling_credentials(kling_mock_server: KlingTarget) -> Credentials:
    """The mock's keys (its first account: access key, secret key and API key); on a real
    target ``$KLING_TESTKIT_ACCESS_KEY`` and ``$KLING_TESTKIT_SECRET_KEY``, and
    ``$KLING_TESTKIT_API_KEY`` for the 2026 design (never the production ``KLING_*``
    variables)."""
    if not kling_mock_server.is_mock and _remote_credentials() is None:
        pytest.skip(
            f"a real target needs ${API_KEY_VAR}, or ${ACCESS_KEY_VAR} and ${SECRET_KEY_VAR}"
        )
    return kling_mock_server.credentials


@pytest.fixture
def kling_client(
    kling_mock_server: KlingTarget,
    _kling_state: MockControl | None,
    kling_credentials: Credentials,
) -> KlingClient:
    """A client for this test's target (see :meth:`KlingTarget.client`)."""
    if _kling_state is None:
        return kling_mock_server.client(credentials=kling_credentials)
    return kling_mock_server.client(_kling_state, credentials=kling_credentials)
