"""Pitfall 7: blocking while polling. Use callbacks: the app learns the outcome without polling."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from kling_testkit.client import KlingClient
from kling_testkit.control import MockControl


class Inbox:
    """The app's webhook endpoint: it only records what arrives."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        self.events.append(json.loads(environ["wsgi.input"].read(size)))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, str]]:
    app = Inbox()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}/kling-events"
    server.shutdown()
    thread.join(timeout=5)


def test_callbacks_replace_polling(
    kling_mock: MockControl, kling_client: KlingClient, inbox: tuple[Inbox, str]
) -> None:
    events, url = inbox
    task_id = kling_client.text2video("a train crossing a bridge", callback_url=url)["task_id"]
    kling_mock.clock.advance(3600)  # the due callbacks go out on the mock's thread, in order
    assert kling_mock.wait_for_callbacks()
    assert [e["task_status"] for e in events.events] == ["submitted", "processing", "succeed"]
    assert events.events[-1]["task_id"] == task_id
    queries = [r for r in kling_mock.requests() if r["method"] == "GET"]
    assert queries == []  # the app never polled
