"""The sample service: a video shop that calls Kling and takes its callbacks.

- ``POST /videos`` ``{"prompt": ...}``: submits a text-to-video task with kling_testkit's client,
  with ``callback_url`` pointing back here; answers 202 ``{"id": <task id>, "status": ...}``.
- ``GET /videos/<id>``: the status the callbacks have told so far, and the video URL once done.
- ``POST /kling/callback``: where Kling (the mock) reports each status change.

Run it against a mock, then load-test it (``locustfile.py`` beside this file)::

    kling-mock serve --port 8000 --time-scale 60 &
    python -m examples.sample_service.app --kling-url http://127.0.0.1:8000 --port 5000
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

from flask import Flask, jsonify, request, url_for
from flask.typing import ResponseReturnValue

from kling_testkit.client import KlingClient
from kling_testkit.credentials import Credentials
from kling_testkit.errors import KlingError
from kling_testkit.spec.statuses import RANK


def create_app(kling_url: str, credentials: Credentials | None = None) -> Flask:
    """The service, calling Kling at ``kling_url`` with ``credentials`` (the mock's keys)."""
    app = Flask(__name__)
    keys = credentials or Credentials.mock_default()
    local = threading.local()  # one client per server thread: a client is not shared
    lock = threading.Lock()
    videos: dict[str, dict[str, Any]] = {}  # task id -> the newest task object heard of

    def client() -> KlingClient:
        if not hasattr(local, "client"):
            local.client = KlingClient(kling_url, keys, timeout=10)
        found: KlingClient = local.client
        return found

    def remember(task: dict[str, Any]) -> None:
        """Keep the furthest status (callbacks and answers may arrive out of order)."""
        with lock:
            known = videos.get(task["task_id"])
            if known is None or RANK[task["task_status"]] >= RANK[known["task_status"]]:
                videos[task["task_id"]] = task

    @app.post("/videos")
    def order() -> ResponseReturnValue:
        """Submit a video task; Kling calls back when its status changes."""
        prompt = (request.get_json(silent=True) or {}).get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return jsonify(error="a prompt is required"), 400
        callback = url_for("callback", _external=True)
        try:
            task = client().text2video(prompt, callback_url=callback)
        except KlingError as error:
            return jsonify(error=str(error)), 502
        remember(task)
        return jsonify(id=task["task_id"], status=task["task_status"]), 202

    @app.get("/videos/<task_id>")
    def video(task_id: str) -> ResponseReturnValue:
        """What Kling has told about the video so far."""
        with lock:
            task = videos.get(task_id)
        if task is None:
            return jsonify(error="no such video"), 404
        found = (task.get("task_result") or {}).get("videos") or [{}]
        return jsonify(id=task_id, status=task["task_status"], url=found[0].get("url"))

    @app.post("/kling/callback")
    def callback() -> ResponseReturnValue:
        """Take Kling's callback (the task object)."""
        task = request.get_json(silent=True)
        if not isinstance(task, dict) or task.get("task_status") not in RANK:
            return jsonify(error="not a task"), 400
        remember(task)
        return "", 204

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kling-url", required=True, help="the mock (or Kling) to call")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    create_app(args.kling_url).run("127.0.0.1", args.port, threaded=True)


if __name__ == "__main__":
    main()
