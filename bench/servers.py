"""Compare WSGI servers for ``kling-mock serve`` with wrk, over loopback only.

For each server (Werkzeug threaded, gunicorn gthread 1 worker with 8 and 16 threads, waitress 8
threads) and each app (a bare Flask app answering a small JSON; the mock answering a task query
with an API key), start the server in a child process on a free 127.0.0.1 port, run wrk a few
times, stop the child. Prints each run, then median/min/max and the ratio to Werkzeug.

    .venv/bin/pip install gunicorn waitress   # waitress only for this comparison
    .venv/bin/python bench/servers.py [--runs 3] [--duration 10] [--connections 32]

Needs ``wrk`` on PATH (``apt-get install -y wrk``). Every run is bounded by --duration.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
T2V = "/v1/videos/text2video"
SERVERS = ["werkzeug", "gunicorn-8", "gunicorn-16", "waitress-8"]
APPS = ["bare", "mock"]


def _bare_app() -> Any:
    from flask import Flask, jsonify

    app = Flask("bare")

    @app.get("/ping")
    def ping() -> Any:
        return jsonify(code=0, message="SUCCEED", request_id="x", data={"ok": True})

    return app


def _mock_app() -> Any:
    sys.path.insert(0, str(HERE))
    from limits_off import UNLIMITED_SLOTS, unlimited_account

    from mock_server import create_app

    return create_app(
        {
            "clock": "manual",
            "seed": 1,
            "accounts": [unlimited_account()],
            "concurrency": UNLIMITED_SLOTS,
        }
    )


def child(server: str, app_name: str) -> None:
    """Serve one app on one server on 127.0.0.1:0; print the port on stdout."""
    import logging

    # No access log on any server (like ``kling-mock serve --quiet``); waitress's queue-depth
    # warnings would flood the output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("waitress").setLevel(logging.ERROR)
    app = _bare_app() if app_name == "bare" else _mock_app()
    if server == "werkzeug":
        from werkzeug.serving import make_server

        srv = make_server("127.0.0.1", 0, app, threaded=True)
        print(srv.server_port, flush=True)
        srv.serve_forever()
    elif server.startswith("waitress"):
        import socket

        from waitress.server import create_server

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        threads = int(server.split("-")[1])
        wsrv = create_server(app, host="127.0.0.1", port=port, threads=threads)
        print(port, flush=True)
        wsrv.run()
    else:
        from gunicorn.app.base import BaseApplication

        threads = int(server.split("-")[1])

        class One(BaseApplication):  # type: ignore[misc]
            def load_config(self) -> None:
                self.cfg.set("bind", "127.0.0.1:0")
                self.cfg.set("workers", 1)
                self.cfg.set("worker_class", "gthread")
                self.cfg.set("threads", threads)
                self.cfg.set("loglevel", "warning")
                self.cfg.set("keepalive", 5)

                def when_ready(arbiter: Any) -> None:
                    print(arbiter.LISTENERS[0].sock.getsockname()[1], flush=True)

                self.cfg.set("when_ready", when_ready)

            def load(self) -> Any:
                return app

        One().run()


WRK_LINE = re.compile(r"Requests/sec:\s+([\d.]+)")


def wrk(url: str, duration: int, connections: int, header: str | None) -> tuple[float, str]:
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--latency"]
    if header:
        command += ["-H", header]
    done = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=duration + 30, check=True
    )
    found = WRK_LINE.search(done.stdout)
    if found is None:
        raise RuntimeError(done.stdout + done.stderr)
    if "Non-2xx" in done.stdout or "Socket errors" in done.stdout:
        print("   wrk says:", " | ".join(line.strip() for line in done.stdout.splitlines()[-4:]))
    return float(found.group(1)), done.stdout


def measure(server: str, app_name: str, args: argparse.Namespace) -> list[float]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", server, app_name],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        base = f"http://127.0.0.1:{port}"
        header = None
        if app_name == "bare":
            url = f"{base}/ping"
        else:
            from kling_testkit.credentials import MOCK_API_KEY

            header = f"Authorization: Bearer {MOCK_API_KEY}"
            created = requests.post(
                base + T2V,
                json={"prompt": "a lighthouse in a storm"},
                headers={"Authorization": f"Bearer {MOCK_API_KEY}"},
                timeout=10,
            )
            task_id = created.json()["data"]["task_id"]
            url = f"{base}{T2V}/{task_id}"
            check = requests.get(
                url, headers={"Authorization": f"Bearer {MOCK_API_KEY}"}, timeout=10
            )
            assert check.status_code == 200 and check.json()["code"] == 0, check.text
        wrk(url, 1, args.connections, header)  # warm-up
        rates = []
        for run in range(args.runs):
            rate, _ = wrk(url, args.duration, args.connections, header)
            print(f"  {server:12} {app_name:5} run {run + 1}: {rate:9.0f} req/s", flush=True)
            rates.append(rate)
        return rates
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--servers", nargs="*", default=SERVERS)
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not on PATH (apt-get install -y wrk)")
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, wrk -t2 -c{args.connections} "
        f"-d{args.duration}s, {args.runs} runs, {time.strftime('%Y-%m-%d %H:%M:%S')}"
    )
    results: dict[str, dict[str, list[float]]] = {}
    for app_name in APPS:
        for server in args.servers:
            results.setdefault(app_name, {})[server] = measure(server, app_name, args)
    print()
    print(f"{'app':5} {'server':12} {'median':>8} {'min':>8} {'max':>8} {'x werkzeug':>10}")
    for app_name, by_server in results.items():
        base = statistics.median(by_server["werkzeug"]) if "werkzeug" in by_server else None
        for server, rates in by_server.items():
            median = statistics.median(rates)
            ratio = f"{median / base:10.2f}" if base else f"{'-':>10}"
            print(
                f"{app_name:5} {server:12} {median:8.0f} {min(rates):8.0f} {max(rates):8.0f} "
                f"{ratio}"
            )
    if "bare" in results and "mock" in results:
        print()
        for server in args.servers:
            share = statistics.median(results["mock"][server]) / statistics.median(
                results["bare"][server]
            )
            print(f"mock / bare on {server:12}: {share:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
