"""``kling-mock serve``: run the mock on a WSGI server until SIGINT or SIGTERM.

The default server is gunicorn (one gthread worker, see ``mock_server.production``) on POSIX;
``--server werkzeug`` keeps Werkzeug's threaded server (the only one on Windows).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from importlib import metadata
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

from kling_testkit.credentials import ACCESS_KEY_VAR, MOCK_SECRET_KEY, SECRET_KEY_VAR
from mock_server.app import create_app
from mock_server.config import MockConfig
from mock_server.errors import ConfigError
from mock_server.guard import TOKEN_HEADER, is_loopback_host
from mock_server.serving import make_server

CONTROL_TOKEN_VAR = "KLING_MOCK_CONTROL_TOKEN"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kling-mock", description="A mock of the Kling AI API.")
    parser.add_argument("--version", action="version", version=f"kling-mock {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the mock server")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one")
    speed = serve.add_mutually_exclusive_group()
    speed.add_argument(
        "--manual-clock", action="store_true", help="time moves only on POST /__mock/clock/advance"
    )
    speed.add_argument(
        "--time-scale", type=float, metavar="X", help="run the clock X times faster than real time"
    )
    serve.add_argument("--seed", type=int, help="seed for ids, durations and draws")
    serve.add_argument("--config", metavar="FILE", help="JSON config file (see README)")
    serve.add_argument("--quiet", action="store_true", help="do not log each request")
    serve.add_argument(
        "--control-token",
        metavar="TOKEN",
        help=f"require this token (header {TOKEN_HEADER}) on every /__mock call; at least 32 "
        f"bytes (default: ${CONTROL_TOKEN_VAR}, else no token)",
    )
    serve.add_argument(
        "--server",
        choices=SERVERS,
        default=DEFAULT_SERVER,
        help=f"WSGI server (default {DEFAULT_SERVER}; werkzeug is the development server)",
    )
    serve.add_argument(
        "--threads",
        type=_bounded_int(1, MAX_THREADS),
        default=DEFAULT_THREADS,
        metavar="T",
        help=f"gunicorn: request threads, 1..{MAX_THREADS} (default {DEFAULT_THREADS}); "
        "werkzeug starts one thread per connection",
    )
    serve.add_argument(
        "--workers",
        type=_bounded_int(1, MAX_WORKERS),
        default=1,
        metavar="N",
        help=f"gunicorn worker processes, 1..{MAX_WORKERS}; more than 1 needs --store redis://",
    )
    serve.add_argument(
        "--store",
        default="memory",
        metavar="URL",
        help="where the state lives: memory (default; this process) or redis://HOST:PORT/DB "
        "(shared by every worker, and kept across restarts)",
    )
    serve.add_argument(
        "--keep-alive",
        type=_bounded_int(0, 3600),
        default=DEFAULT_KEEP_ALIVE_S,
        metavar="S",
        help="gunicorn: close a kept-alive connection idle for S seconds; 0 closes after each "
        f"answer (default {DEFAULT_KEEP_ALIVE_S})",
    )
    serve.add_argument(
        "--request-timeout",
        type=_bounded_int(1, 3600),
        default=DEFAULT_REQUEST_TIMEOUT_S,
        metavar="S",
        help="gunicorn: drop a client that sends or reads nothing for S seconds in the middle "
        f"of a request (default {DEFAULT_REQUEST_TIMEOUT_S})",
    )
    serve.add_argument(
        "--graceful-timeout",
        type=_bounded_int(0, 3600),
        default=DEFAULT_GRACEFUL_S,
        metavar="S",
        help="gunicorn: on SIGTERM, wait up to S seconds for requests in flight "
        f"(default {DEFAULT_GRACEFUL_S})",
    )
    serve.add_argument(
        "--cpu",
        type=_cpu_list,
        metavar="N[,M...]",
        help="pin the server to these CPUs (Linux; os.sched_setaffinity)",
    )
    return parser


SERVERS = ("gunicorn", "werkzeug")
DEFAULT_SERVER = "gunicorn" if os.name == "posix" else "werkzeug"
MAX_THREADS = 256
MAX_WORKERS = 64
DEFAULT_THREADS = 16
DEFAULT_KEEP_ALIVE_S = 5
DEFAULT_GRACEFUL_S = 5
DEFAULT_REQUEST_TIMEOUT_S = 30


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}..{high}, got {value}")
        return value

    return parse


def _cpu_list(text: str) -> set[int]:
    try:
        cpus = {int(part) for part in text.split(",")}
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of CPU numbers: {text!r}") from None
    if not cpus or min(cpus) < 0:
        raise argparse.ArgumentTypeError(f"not a list of CPU numbers: {text!r}")
    return cpus


def build_config(args: argparse.Namespace) -> MockConfig:
    """The config file (if any) with the command-line flags on top."""
    config = MockConfig.from_file(args.config) if args.config else MockConfig()
    changes: dict[str, Any] = {}
    if args.manual_clock:
        changes["clock"] = "manual"
    elif args.time_scale is not None:
        changes.update(clock="real", time_scale=args.time_scale)
    if args.seed is not None:
        changes["seed"] = args.seed
    token = args.control_token or os.environ.get(CONTROL_TOKEN_VAR)
    if token:
        changes["control_token"] = token
    # The Host check stops DNS rebinding on a loopback mock; a mock bound elsewhere is reached
    # by other names on purpose.
    changes["control_host_check"] = _is_loopback_bind(args.host)
    return config.patched(changes)


def _is_loopback_bind(host: str) -> bool:
    return host == "localhost" or is_loopback_host(host if ":" not in host else f"[{host}]")


def _version() -> str:
    try:
        return metadata.version("kling-testkit")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _describe_accounts(config: MockConfig) -> list[str]:
    lines = []
    for account in config.accounts:
        secret = (
            account.secret_key
            if account.secret_key == MOCK_SECRET_KEY
            else "(hidden; from the config or the environment)"
        )
        lines.append(
            f"account {account.name}: access_key={account.access_key} secret_key={secret}"
            + (f" api_key={account.api_key}" if account.api_key else "")
        )
    return lines


def serve(args: argparse.Namespace) -> int:
    try:
        config = build_config(args)
    except ConfigError as exc:
        print(f"kling-mock: {exc}", file=sys.stderr)
        return 2
    shared = args.store != "memory"
    if args.workers != 1 and not shared:
        print(
            f"kling-mock: --workers {args.workers}: the in-memory store lives in one process; "
            "more workers need a shared store (--store redis://HOST:PORT/DB)",
            file=sys.stderr,
        )
        return 2
    if args.workers != 1 and args.server != "gunicorn":
        print("kling-mock: --workers needs --server gunicorn", file=sys.stderr)
        return 2
    if args.cpu is not None:
        error = _pin(args.cpu)
        if error:
            print(f"kling-mock: --cpu: {error}", file=sys.stderr)
            return 2
    try:
        app = create_app(config, store=args.store)
    except ConfigError as exc:
        print(f"kling-mock: {exc}", file=sys.stderr)
        return 2
    _print_banner(args, config)
    host = f"[{args.host}]" if ":" in args.host else args.host
    if args.server == "gunicorn":
        from mock_server import production

        options = production.Options(
            host=args.host,
            port=args.port,
            threads=args.threads,
            keep_alive_s=args.keep_alive,
            request_timeout_s=args.request_timeout,
            graceful_s=args.graceful_timeout,
            quiet=args.quiet,
            workers=args.workers,
            shared_store=shared,
        )

        def ready(port: int) -> None:
            print(f"listening on http://{host}:{port}", flush=True)

        def stopped() -> None:
            print("stopped", flush=True)

        return production.run(app, options, ready, stopped)
    return _serve_werkzeug(args, app, host)


def _pin(cpus: set[int]) -> str | None:
    if not hasattr(os, "sched_setaffinity"):
        return "CPU pinning needs Linux (os.sched_setaffinity)"
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as exc:
        return f"cannot pin to {sorted(cpus)}: {exc.strerror}"
    return None


def _print_banner(args: argparse.Namespace, config: MockConfig) -> None:
    clock = "manual" if config.clock == "manual" else f"real x{config.time_scale:g}"
    for line in _describe_accounts(config):
        print(line)
    if not config.control_host_check:
        print(
            f"kling-mock: warning: bound to {args.host}, not a loopback address: anyone who can "
            "reach this port can steer the mock through /__mock"
            + ("" if config.control_token else " (set --control-token to require a token)"),
            file=sys.stderr,
        )
    if config.control_token:
        print(f"control API: token required ({TOKEN_HEADER})")
    print(
        f"clock: {clock}; seed: {config.seed}; server: {args.server}; "
        f"store: {_shown_store(args.store)}; workers: {args.workers}; keys from "
        f"{ACCESS_KEY_VAR}/{SECRET_KEY_VAR} when set",
        flush=True,
    )


def _shown_store(url: str) -> str:
    """The store URL without a password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    return parts._replace(netloc=f"***@{host}" + (f":{parts.port}" if parts.port else "")).geturl()


def _serve_werkzeug(args: argparse.Namespace, app: Flask, host: str) -> int:
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(args.host, args.port, app, quiet=args.quiet)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    thread = threading.Thread(target=server.serve_forever, name="kling-mock", daemon=True)
    thread.start()
    print(f"listening on http://{host}:{server.server_port}", flush=True)
    while not stop.wait(0.1):
        if not thread.is_alive():
            return 1
    server.shutdown()
    thread.join(timeout=10)
    print("stopped", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return serve(args)


if __name__ == "__main__":
    raise SystemExit(main())
