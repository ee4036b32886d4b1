"""``make demo``: start the mock, run a text-to-video flow with the client, stop the mock.

Run as ``python -m kling_testkit.demo``. The mock runs in its own process with its clock 120x
faster than real time, so a two-minute job takes about a second.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kling_testkit.client import KlingClient
from kling_testkit.credentials import Credentials

TIME_SCALE = 120


def start_mock(*extra: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``kling-mock serve`` on a free port; return the process and its base URL."""
    command = [sys.executable, "-m", "mock_server.cli", "serve", "--port", "0", *extra]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        print(f"  mock | {line.rstrip()}")
        if line.startswith("listening on "):
            return process, line.split("listening on ", 1)[1].strip()
    process.wait(timeout=10)
    raise RuntimeError(f"the mock exited with code {process.returncode} before listening")


def stop_mock(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run() -> int:
    print(f"starting the mock (clock x{TIME_SCALE}) ...")
    process, base_url = start_mock("--time-scale", str(TIME_SCALE), "--seed", "7", "--quiet")
    try:
        client = KlingClient(base_url, Credentials.mock_default(), timeout=10)
        created = client.text2video(
            "A red fox trots through fresh snow at dawn, soft light",
            duration="5",
            mode="std",
            external_task_id="demo-1",
        )
        task_id = created["task_id"]
        print(f"submitted task {task_id} (status {created['task_status']})")
        started = time.monotonic()
        seen: list[str] = []

        def show(task: dict[str, Any]) -> None:
            if not seen or seen[-1] != task["task_status"]:
                seen.append(task["task_status"])
                print(f"  {time.monotonic() - started:5.2f}s  status {task['task_status']}")

        task = client.wait(
            "text2video", task_id, timeout=60, poll_interval=0.2, max_interval=1, on_poll=show
        )
        video = task["task_result"]["videos"][0]
        print(f"completed task {task_id}: video {video['id']}, {video['duration']} s")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "result.mp4"
            size = client.download(video["url"], path)
            kind = path.read_bytes()[4:8].decode("ascii", "replace")
            print(f"downloaded {size} bytes of video ({kind!r} box) from {video['url']}")
        return 0
    finally:
        stop_mock(process)
        print(f"mock stopped (exit code {process.returncode})")


if __name__ == "__main__":
    raise SystemExit(run())
