"""A downstream project, as a user has it: only the wheel installed, production settings exported.

1. Builds the wheel, makes a fresh venv in a temporary folder, installs the wheel (and
   pytest-xdist) into it, and writes a small downstream test suite there (no conftest).
2. Runs that suite with ``KLING_BASE_URL``, ``KLING_ACCESS_KEY`` and ``KLING_SECRET_KEY``
   pointing at a stand-in for the real API on loopback, and checks the stand-in got nothing.
3. Starts one ``kling-mock serve --manual-clock`` from that venv and runs the same suite with
   ``-n 2 --kling-base-url URL`` three times in a row.

    .venv/bin/python scripts/downstream_check.py
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parent.parent
SUITE = """
import pytest
from kling_testkit.errors import TaskFailed


def test_a_video(kling_client, kling_base_url):
    assert kling_base_url.startswith("http://127.0.0.1:")
    task = kling_client.text2video("a paper boat on a river")
    done = kling_client.wait("text2video", task)
    assert done["task_status"] == "succeed"


def test_more_tasks_than_slots(kling_client):
    for n in range(6):
        kling_client.text2video(f"shot {n}")


@pytest.mark.parametrize("n", range(10))
def test_faults_and_clock_stay_in_the_test(kling_mock, kling_client, n):
    kling_mock.add_fault(action={"type": "error", "code": 5000}, match={"path": "/nowhere"})
    kling_client.text2video(f"shot {n}", external_task_id="same-id")
    kling_mock.clock.advance(5)
    assert len(kling_mock.tasks()) == 1 and len(kling_mock.faults()) == 1


@pytest.mark.kling_config(failure_rate={"text2video": 1.0})
def test_a_failing_task(kling_client):
    with pytest.raises(TaskFailed):
        kling_client.wait("text2video", kling_client.text2video("a kite"))
"""


class StandIn(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def _any(self) -> None:
        StandIn.seen.append(f"{self.command} {self.path}")
        body = b'{"code": 0, "message": "SUCCEED", "request_id": "r", "data": {}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = _any

    def log_message(self, *args: object) -> None:
        pass


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    print("$", " ".join(cmd[-6:]), flush=True)
    return subprocess.run(cmd, text=True, check=False, **kwargs)  # type: ignore[call-overload, no-any-return]


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        assert (
            run(
                [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp), str(ROOT)]
            ).returncode
            == 0
        )
        wheel = next(tmp.glob("kling_testkit-*.whl"))
        assert run([sys.executable, "-m", "venv", str(tmp / "venv")]).returncode == 0
        py = str(tmp / "venv" / "bin" / "python")
        assert run([py, "-m", "pip", "install", "-q", str(wheel), "pytest-xdist"]).returncode == 0
        project = tmp / "downstream"
        project.mkdir()
        (project / "test_app.py").write_text(textwrap.dedent(SUITE))

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        stand_in = f"http://127.0.0.1:{server.server_port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KLING")}
        prod = {
            **env,
            "KLING_BASE_URL": stand_in,
            "KLING_ACCESS_KEY": "prod-access-key",
            "KLING_SECRET_KEY": "prod-secret-key-0123456789abcdef0123456789",
        }
        first = run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, env=prod)
        print(
            f"stand-in for the real API received {len(StandIn.seen)} requests: {StandIn.seen[:5]}"
        )
        ok = first.returncode == 0 and not StandIn.seen
        server.shutdown()

        serve = subprocess.Popen(
            [
                str(tmp / "venv" / "bin" / "kling-mock"),
                "serve",
                "--port",
                "0",
                "--manual-clock",
                "--quiet",
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert serve.stdout is not None
        url = next(line.split()[-1] for line in serve.stdout if line.startswith("listening on "))
        try:
            for attempt in range(3):
                done = run(
                    [
                        py,
                        "-m",
                        "pytest",
                        "-q",
                        "-p",
                        "no:cacheprovider",
                        "-n",
                        "2",
                        f"--kling-base-url={url}",
                    ],
                    cwd=project,
                    env=prod,
                )
                print(f"shared-mock run {attempt + 1}: exit {done.returncode}")
                ok = ok and done.returncode == 0
        finally:
            serve.terminate()
            serve.wait(timeout=10)
        print(f"stand-in total after all runs: {len(StandIn.seen)} requests")
        ok = ok and not StandIn.seen
    print("downstream check:", "passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
