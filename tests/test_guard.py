"""The control API refuses cross-site use and DNS rebinding, and takes an optional token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kling_testkit.control import ControlError, MockControl
from mock_server.config import MockConfig
from mock_server.errors import ConfigError
from mock_server.guard import is_loopback_host
from tests.conftest import T2V, accepted, create
from tests.test_bad_input import assert_refused

TOKEN = "control-token-for-tests-0123456789abcdef"  # 40 bytes


def task_count(client: FlaskClient) -> int:
    return len(client.get("/__mock/tasks").get_json()["data"])


@pytest.fixture
def seeded(client: FlaskClient, auth: dict[str, str]) -> FlaskClient:
    accepted(create(client, auth))
    return client


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:9999"},  # another port is another origin
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_cross_site_reset_is_refused(seeded: FlaskClient, headers: dict[str, str]) -> None:
    assert_refused(seeded.post("/__mock/reset", headers=headers), "refused", 403, 1103)
    assert task_count(seeded) == 1


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"],
)
def test_a_form_or_text_body_cannot_carry_a_control_call(
    seeded: FlaskClient, content_type: str
) -> None:
    response = seeded.post("/__mock/reset", data="a=b", headers={"Content-Type": content_type})
    assert_refused(response, "body cannot carry a control call", 403, 1103)
    assert task_count(seeded) == 1


@pytest.mark.parametrize("host", ["evil.example", "rebind.attacker.test:8000", "10.0.0.1"])
def test_a_rebound_host_is_refused(seeded: FlaskClient, host: str) -> None:
    response = seeded.post("/__mock/reset", headers={"Host": host})
    assert_refused(response, "not a loopback name", 403, 1103)
    assert_refused(seeded.get("/__mock/tasks", headers={"Host": host}), "loopback", 403, 1103)
    assert task_count(seeded) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},  # plain curl -X POST
        {"Host": "127.0.0.1:8000"},
        {"Host": "[::1]:8000"},
        {"Host": "app.localhost"},
        {"Origin": "http://localhost"},  # the page served by the mock itself
        {"Sec-Fetch-Site": "same-origin"},
    ],
)
def test_a_plain_local_reset_works(seeded: FlaskClient, headers: dict[str, str]) -> None:
    assert seeded.post("/__mock/reset", headers=headers).status_code == 200
    assert task_count(seeded) == 0


def test_the_api_itself_is_not_guarded(client: FlaskClient, auth: dict[str, str]) -> None:
    headers = {**auth, "Origin": "https://app.example", "Host": "mock.internal:8000"}
    assert client.get(T2V, headers=headers).status_code == 200


def test_without_the_host_check_another_host_works(make_app: Callable[..., Flask]) -> None:
    client = make_app(control_host_check=False).test_client()
    assert client.get("/__mock/health", headers={"Host": "mock.internal:8000"}).status_code == 200


@pytest.fixture
def tokened(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app(control_token=TOKEN).test_client()


def test_with_a_token_set_control_calls_need_it(tokened: FlaskClient) -> None:
    assert_refused(tokened.get("/__mock/health"), "X-Mock-Control-Token", 401, 1002)
    wrong = {"X-Mock-Control-Token": TOKEN[:-1] + "x"}
    assert_refused(tokened.post("/__mock/reset", headers=wrong), "missing or wrong", 401, 1002)
    good = {"X-Mock-Control-Token": TOKEN}
    assert tokened.post("/__mock/reset", headers=good).status_code == 200


def test_the_token_is_never_shown(tokened: FlaskClient) -> None:
    response = tokened.get("/__mock/config", headers={"X-Mock-Control-Token": TOKEN})
    assert response.get_json()["data"]["control_token"] == "***"
    assert TOKEN not in response.get_data(as_text=True)


def test_a_short_token_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        MockConfig.from_dict({"control_token": "short"})


def test_mock_control_passes_the_token(live_server_with: Callable[..., str]) -> None:
    url = live_server_with(control_token=TOKEN)
    with pytest.raises(ControlError, match="missing or wrong"):
        MockControl(url).health()
    control = MockControl(url, control_token=TOKEN)
    assert control.health()["status"] == "ok"
    assert TOKEN not in repr(control)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST:80", True),
        ("127.9.9.9:1", True),
        ("[::1]", True),
        ("[::1]:8000", True),
        ("x.localhost.", True),
        ("localhost.evil.example", False),
        ("127.0.0.1.nip.io", False),
        ("[::ffff:10.0.0.1]", False),
        ("0x7f000001", False),
        ("", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.fixture
def live_server_with(make_app: Callable[..., Flask]) -> Any:
    from mock_server.serving import make_server

    servers = []

    def start(**config: Any) -> str:
        import threading

        server = make_server("127.0.0.1", 0, make_app(**config), quiet=True)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
