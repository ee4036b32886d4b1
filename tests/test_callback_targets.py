"""Callback targets: the host the sender connects to is the host that was checked.

Every test here talks to loopback only. The disguised URLs point at a receiver on 127.0.0.2 (and
the allowed one on 127.0.0.1 shares its port), with only 127.0.0.1 allowed: neither may see a call.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from urllib3.util import parse_url

from mock_server.callback_targets import Blocked, Unresolved, check_target
from tests.conftest import T2V, Receiver, serving, wait_callbacks

ONLY_127_0_0_1: dict[str, Any] = {"allowed_hosts": ["127.0.0.1"], "max_attempts": 1}
DEFAULT_HOSTS = ["127.0.0.1", "localhost", "::1"]


def post_task(client: FlaskClient, callback_url: str) -> str:
    key = client.application.extensions["kling_mock"].config.accounts[0].api_key
    response = client.post(
        T2V,
        json={"prompt": "x", "callback_url": callback_url},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.json
    task_id: str = response.json["data"]["task_id"]  # type: ignore[index]
    return task_id


def deliver(client: FlaskClient, seconds: float) -> None:
    """Advance the manual clock, then wait until every due callback has been handled."""
    assert client.post("/__mock/clock/advance", json={"seconds": seconds}).status_code == 200
    assert wait_callbacks(client)["idle"] is True


def attempts(client: FlaskClient) -> list[dict[str, Any]]:
    return client.get("/__mock/callbacks").json["data"]["attempts"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("http://127.0.0.2:{port}\\@127.0.0.1/hook", "backslash"),
        ("http://127.0.0.2:{port}\\@127.0.0.1:{port}/hook", "backslash"),
        ("http://127.0.0.1@127.0.0.2:{port}/hook", "userinfo"),
        ("http://127.0.0.1:{port}@127.0.0.2:{port}/hook", "userinfo"),
        ("http://0x7f000002:{port}/hook", "not in callbacks.allowed_hosts"),
        ("http://2130706434:{port}/hook", "not in callbacks.allowed_hosts"),
        ("http://0177.0.0.2:{port}/hook", "not in callbacks.allowed_hosts"),
        ("http://127.0.2:{port}/hook", "not in callbacks.allowed_hosts"),
        ("http://127.1:{port}/hook", "not in callbacks.allowed_hosts"),
        ("http://[::ffff:127.0.0.2]:{port}/hook", "not in callbacks.allowed_hosts"),
        ("http://127.0.0.2:{port}/hook", "not in callbacks.allowed_hosts"),
    ],
)
def test_disguised_targets_are_blocked_and_recorded(
    make_app: Callable[..., Flask],
    receiver_pair: tuple[Receiver, Receiver],
    template: str,
    reason: str,
) -> None:
    allowed, other = receiver_pair
    client = make_app(callbacks=ONLY_127_0_0_1).test_client()
    port = allowed.url.rsplit(":", 1)[1]
    url = template.format(port=port)
    # Two walls: the contract's URL form refuses some of these at the create itself (400/1201);
    # the sender's own check must stop every one that gets past it (and the unit tests of
    # check_target cover those the form refuses, for a sender reached some other way).
    key = client.application.extensions["kling_mock"].config.accounts[0].api_key
    response = client.post(
        T2V, json={"prompt": "x", "callback_url": url}, headers={"Authorization": f"Bearer {key}"}
    )
    if response.status_code == 400:
        assert "callback_url" in response.json["message"]  # type: ignore[index]
        deliver(client, 200)
        assert other.calls == [] and allowed.calls == [] and attempts(client) == []
        return
    task_id = response.json["data"]["task_id"]  # type: ignore[index]
    deliver(client, 200)
    assert other.calls == [] and allowed.calls == []
    found = attempts(client)
    assert [(a["task_id"], a["task_status"], a["outcome"]) for a in found] == [
        (task_id, "submitted", "blocked"),
        (task_id, "processing", "blocked"),
        (task_id, "succeed", "blocked"),
    ]
    assert all(reason in a["error"] and "nothing was sent" in a["error"] for a in found)
    assert {a["target"] for a in found} == {None}
    assert {a["url"] for a in found} == {url}


def test_an_allowed_target_records_the_address_connected_to(
    make_app: Callable[..., Flask], receiver_pair: tuple[Receiver, Receiver]
) -> None:
    allowed, other = receiver_pair
    client = make_app(callbacks=ONLY_127_0_0_1).test_client()
    port = allowed.url.rsplit(":", 1)[1]
    post_task(client, f"{allowed.url}/hook/../in?x=1#frag")
    deliver(client, 200)
    assert other.calls == []
    assert [c["path"] for c in allowed.calls] == ["/in"] * 3  # dot segments go, as in requests
    assert {c["headers"]["host"] for c in allowed.calls} == {f"127.0.0.1:{port}"}
    assert [(a["outcome"], a["target"]) for a in attempts(client)] == [
        ("delivered", f"127.0.0.1:{port}")
    ] * 3


def test_an_ipv6_loopback_target_is_reached(make_app: Callable[..., Flask]) -> None:
    found = Receiver()
    with ExitStack() as stack:
        try:
            found.url = stack.enter_context(serving(found, "::1"))
        except OSError:
            pytest.skip("this machine has no IPv6 loopback")
        client = make_app().test_client()  # the default allowed_hosts include ::1
        post_task(client, f"{found.url}/v6")
        deliver(client, 200)
    port = found.url.rsplit(":", 1)[1]
    assert [c["path"] for c in found.calls] == ["/v6"] * 3
    assert [(a["outcome"], a["target"]) for a in attempts(client)] == [
        ("delivered", f"[::1]:{port}")
    ] * 3


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """Answer chosen names with chosen loopback addresses, in turn; other names as usual.

    The patch is on ``socket.getaddrinfo`` itself, so it is what any HTTP client would see.
    """
    answers: dict[str, list[list[str]]] = {}
    turns: dict[str, itertools.cycle[list[str]]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in answers:
            return real(host, port, *args, **kwargs)
        cycle = turns.setdefault(name, itertools.cycle(answers[name]))
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, int(port or 0)))
            for ip in next(cycle)
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def test_a_name_is_resolved_once_and_that_address_is_used(
    make_app: Callable[..., Flask],
    receiver_pair: tuple[Receiver, Receiver],
    fake_dns: dict[str, list[list[str]]],
) -> None:
    allowed, other = receiver_pair
    fake_dns["hooks.test"] = [["127.0.0.1"]]
    client = make_app(callbacks={"allowed_hosts": ["hooks.test"]}).test_client()
    port = allowed.url.rsplit(":", 1)[1]
    post_task(client, f"http://HOOKS.test:{port}/in")
    deliver(client, 200)
    assert other.calls == []
    assert {c["headers"]["host"] for c in allowed.calls} == {f"hooks.test:{port}"}
    assert [(a["outcome"], a["target"]) for a in attempts(client)] == [
        ("delivered", f"127.0.0.1:{port}")
    ] * 3


def test_a_name_whose_answer_changes_is_blocked(
    make_app: Callable[..., Flask],
    receiver_pair: tuple[Receiver, Receiver],
    fake_dns: dict[str, list[list[str]]],
) -> None:
    """DNS rebinding: the name's address must be the same one the allowed name stands for."""
    allowed, other = receiver_pair
    fake_dns["flip.test"] = [["127.0.0.2"], ["127.0.0.1"]]
    client = make_app(callbacks={"allowed_hosts": ["flip.test"], "max_attempts": 1}).test_client()
    port = allowed.url.rsplit(":", 1)[1]
    post_task(client, f"http://flip.test:{port}/in")
    deliver(client, 200)
    assert other.calls == [] and allowed.calls == []
    found = attempts(client)
    assert [a["outcome"] for a in found] == ["blocked"] * 3
    assert all("not an address of callbacks.allowed_hosts" in a["error"] for a in found)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8000\\@127.0.0.1/", "backslash"),
        ("http://127.0.0.1:8000/a b", "white space"),
        ("http://127.0.0.1:8000/a\tb", "white space"),
        ("http://127.0.0.1:8000/\x00", "control character"),
        ("http://127.0.0.1:8000/\x7f", "control character"),
        ("http://127.0.0.1:8000/\x85", "control character"),
        ("http://127.0.0.1:8000/a\u3000b", "white space"),
        ("http://user@127.0.0.1/", "userinfo"),
        ("http://:@127.0.0.1/", "userinfo"),
        ("ftp://127.0.0.1/", "http or https"),
        ("//127.0.0.1/", "http or https"),
        ("http:/127.0.0.1/", "http or https"),
        ("http://127.0.0.1:0/", "port"),
        ("http://127.0.0.1:99999/", "cannot be parsed"),
        ("http://%6cocalhost/", "percent"),
        ("http://lo\u0441alhost/", "non-ASCII"),
        ("http:///hook", "no host"),
        ("http://[127.0.0.1]/", "IPv6"),
        ("http://127.000.000.001/", "not in callbacks.allowed_hosts"),
        ("http://localhost./", "not in callbacks.allowed_hosts"),
        ("http://[::2]/", "not in callbacks.allowed_hosts"),
        ("http://example.com/", "not in callbacks.allowed_hosts"),
    ],
)
def test_check_target_refuses(url: str, reason: str) -> None:
    with pytest.raises(Blocked, match=reason):
        check_target(url, DEFAULT_HOSTS)


@pytest.mark.parametrize(
    ("url", "allowed", "host_header", "port", "path", "addresses"),
    [
        ("http://127.0.0.1:9/a?b=1#c", ["127.0.0.1"], "127.0.0.1:9", 9, "/a?b=1", ("127.0.0.1",)),
        ("HTTP://LocalHost:9", ["LOCALHOST"], "localhost:9", 9, "/", ("127.0.0.1",)),
        ("http://[::1]:9/x", ["::1"], "[::1]:9", 9, "/x", ("::1",)),
        ("http://[0:0::1]/x", ["[::1]"], "[0:0::1]", 80, "/x", ("::1",)),
        ("https://127.0.0.1/", ["127.0.0.1"], "127.0.0.1", 443, "/", ("127.0.0.1",)),
    ],
)
def test_check_target_accepts_exact_hosts_and_pins_their_addresses(
    url: str,
    allowed: list[str],
    host_header: str,
    port: int,
    path: str,
    addresses: tuple[str, ...],
    fake_dns: dict[str, list[list[str]]],
) -> None:
    fake_dns["localhost"] = [["127.0.0.1"]]  # whatever the machine's hosts file says
    target = check_target(url, allowed)
    assert (target.host_header, target.port, target.path) == (host_header, port, path)
    assert target.addresses == addresses


def test_check_target_refuses_a_name_whose_answer_changes(
    fake_dns: dict[str, list[list[str]]],
) -> None:
    fake_dns["flip.test"] = [["127.0.0.2"], ["127.0.0.1"]]
    with pytest.raises(
        Blocked, match=r"127\.0\.0\.[12].*not an address of callbacks.allowed_hosts"
    ):
        check_target("http://flip.test/", ["flip.test"])


URL_HOSTS = ["127.0.0.1", "127.0.0.2", "localhost", "[::1]", "0x7f000001", "127.1", "a", ""]
URL_MARKS = ["[", "]", ":", ":80", "@", "\\", "/", "?", "#", "%", "%40", ".", ";", "\u3002"]
URL_ODD = ["\uff0e", " ", "\t", "\x00", "[::ffff:127.0.0.1]", "http://"]
URL_PIECES = st.sampled_from([*URL_HOSTS, *URL_MARKS, *URL_ODD])
URLS = st.builds(
    "{}{}{}".format,
    st.sampled_from(["http://", "HTTPS://", "http:/", ""]),
    st.sampled_from(URL_HOSTS),
    st.lists(URL_PIECES, max_size=8).map("".join),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(URLS)
def test_an_accepted_url_means_the_same_host_to_requests(url: str) -> None:
    """Whatever check_target accepts, requests would have sent to that very host and port."""
    try:
        target = check_target(url, DEFAULT_HOSTS)
    except (Blocked, Unresolved):
        return
    sent = parse_url(requests.Request("POST", url).prepare().url)
    assert (sent.host or "").strip("[]") == target.host
    assert (sent.port or {"http": 80, "https": 443}[sent.scheme or ""]) == target.port
    assert target.host in ("127.0.0.1", "localhost", "::1")


def test_an_https_target_gets_tls_and_no_plain_text_fallback(
    make_app: Callable[..., Flask], receiver: Receiver
) -> None:
    """An https URL on a plain-HTTP receiver: the TLS handshake fails; nothing is POSTed."""
    client = make_app(callbacks={"max_attempts": 1}).test_client()
    port = receiver.url.rsplit(":", 1)[1]
    post_task(client, f"https://127.0.0.1:{port}/tls")
    deliver(client, 200)
    assert receiver.calls == []
    found = attempts(client)
    assert [a["outcome"] for a in found] == ["gave_up"] * 3
    assert all("SSL" in a["error"] for a in found), found[0]["error"]
    assert {a["target"] for a in found} == {f"127.0.0.1:{port}"}
