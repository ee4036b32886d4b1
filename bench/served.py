"""The servers of ``compare.py``, each run as a child process on a free 127.0.0.1 port.

    python bench/served.py bare                  # the bare Flask app
    python bench/served.py mock N [serve flags]  # kling-mock serve, N tasks stored first

Both print ``listening on http://127.0.0.1:PORT`` once they listen, and run on
``mock_server.production`` with ``kling-mock serve``'s defaults (threads, keep-alive, timeouts).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from kling_testkit.credentials import MOCK_ACCESS_KEY, MOCK_SECRET_KEY
from mock_server.cli import (
    DEFAULT_GRACEFUL_S,
    DEFAULT_KEEP_ALIVE_S,
    DEFAULT_REQUEST_TIMEOUT_S,
    DEFAULT_THREADS,
)

T2V = "/v1/videos/text2video"
PROMPT = "a lighthouse in a storm, waves crashing, cinematic light"
THREADS, KEEP_ALIVE_S = DEFAULT_THREADS, DEFAULT_KEEP_ALIVE_S


def bare_app() -> Any:
    """Flask doing what a minimal real handler does: verify the JWT, a dict, an envelope."""
    import uuid

    import jwt
    from flask import Flask, abort, jsonify, request

    app = Flask("bare")
    tasks: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}

    def verify() -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        try:
            claims = jwt.decode(
                token, MOCK_SECRET_KEY, algorithms=["HS256"], options={"require": ["exp"]}
            )
        except jwt.InvalidTokenError:
            abort(401)
        if scheme != "Bearer" or claims.get("iss") != MOCK_ACCESS_KEY:
            abort(401)

    def envelope(data: Any) -> Any:
        return jsonify(code=0, message="SUCCEED", request_id=uuid.uuid4().hex, data=data)

    @app.post(T2V)
    def create() -> Any:
        verify()
        body = request.get_json()
        now = int(time.time() * 1000)
        task = {"task_id": str(len(tasks) + 1), "task_status": "submitted", "created_at": now}
        task.update(updated_at=now, prompt=body["prompt"])
        tasks.append(task)
        by_id[task["task_id"]] = task
        return envelope(task)

    @app.get(f"{T2V}/<task_id>")
    def query(task_id: str) -> Any:
        verify()
        task = by_id.get(task_id)
        if task is None:
            abort(404)
        return envelope(task)

    return app


def serve_bare() -> None:
    """The bare app on ``production.run``, the settings ``kling-mock serve`` gives the mock."""
    from mock_server import production

    options = production.Options(
        host="127.0.0.1",
        port=0,
        threads=THREADS,
        keep_alive_s=KEEP_ALIVE_S,
        graceful_s=DEFAULT_GRACEFUL_S,
        quiet=True,
        request_timeout_s=DEFAULT_REQUEST_TIMEOUT_S,
    )

    def ready(port: int) -> None:
        print(f"listening on http://127.0.0.1:{port}", flush=True)

    raise SystemExit(production.run(bare_app(), options, ready, lambda: None))


def serve_mock(argv: Sequence[str], prefill: int) -> None:
    """``kling-mock serve argv``, its backend given ``prefill`` tasks before it serves."""
    from mock_server import cli
    from mock_server.app import create_app

    def filled(config: Any, **kwargs: Any) -> Any:  # built once, before gunicorn forks
        app = create_app(config, **kwargs)
        mock = app.extensions["kling_mock"]
        account = mock.config.accounts[0]
        for _ in range(prefill):
            mock.create_task(account, "text2video", {"prompt": PROMPT}, base_url="http://x/")
        return app

    cli.create_app = filled  # type: ignore[attr-defined]  # the one seam cli.serve has
    raise SystemExit(cli.main(["serve", *argv]))


if __name__ == "__main__":
    if sys.argv[1] == "bare":
        serve_bare()
    serve_mock(sys.argv[3:], int(sys.argv[2]))
