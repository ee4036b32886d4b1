"""``kling-mock serve``: run the mock on a threaded WSGI server until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from importlib import metadata
from types import FrameType
from typing import Any

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
    return parser


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
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(args.host, args.port, create_app(config), quiet=args.quiet)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    thread = threading.Thread(target=server.serve_forever, name="kling-mock", daemon=True)
    thread.start()
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
        f"clock: {clock}; seed: {config.seed}; keys from {ACCESS_KEY_VAR}/{SECRET_KEY_VAR} when set"
    )
    host = f"[{args.host}]" if ":" in args.host else args.host
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
