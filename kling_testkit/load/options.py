"""The options of ``kling-testkit load``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from kling_testkit.audit import add_audit_arguments

SCENARIOS = ("lifecycle", "burst", "callbacks", "mixed")
SHAPES = ("ramp", "spike", "step")


def duration(text: str) -> float:
    """``30s``, ``2m``, ``1h``, ``1m30s`` or plain seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    total, number = 0.0, ""
    for char in text.strip():
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number:
            total, number = total + float(number) * units[char], ""
        else:
            raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30s, 2m, 1m30s)")
    total += float(number) if number else 0.0
    if total <= 0:
        raise argparse.ArgumentTypeError(f"a duration must be positive; got {text!r}")
    return total


def _json_file(text: str) -> dict[str, Any]:
    try:
        found = json.loads(Path(text).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {error}") from error
    if not isinstance(found, dict):
        raise argparse.ArgumentTypeError(f"{text} must hold a JSON object")
    return found


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive number; got {text}")
        return value

    return parse


def _workers(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be 0 (one process) to 64 workers; got {text}")
    return value


def _at_least_zero(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0; got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``load`` subcommand's options."""
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--scenario", choices=SCENARIOS, help="a scenario of load_tests")
    what.add_argument("-f", "--locustfile", help="your own locustfile")
    parser.add_argument("-u", "--users", type=_positive(int), default=10, help="peak users")
    parser.add_argument(
        "-r", "--spawn-rate", type=_positive(float), default=5.0, help="users started a second"
    )
    parser.add_argument(
        "-t", "--duration", type=duration, default=30.0, help="run time: 30s, 2m ... (30s)"
    )
    parser.add_argument("--host", help="target (default: a mock started for the run)")
    parser.add_argument(
        "--mock-url", help="the mock your service calls, when --host is your service"
    )
    parser.add_argument(
        "--processes",
        type=_workers,
        default=0,
        metavar="K",
        help="Locust's distributed mode: a master and K workers on this machine",
    )
    parser.add_argument("--csv", default="kling-load", metavar="PREFIX", help="CSV reports")
    parser.add_argument("--html", default="kling-load.html", metavar="FILE", help="HTML report")
    parser.add_argument(
        "--max-fail-ratio",
        type=_at_least_zero,
        default=0.0,
        metavar="R",
        help="failed / all, for requests, jobs and callbacks each (default 0: any failure fails)",
    )
    parser.add_argument("--max-p95", type=_at_least_zero, metavar="MS", help="request p95")
    parser.add_argument(
        "--max-job-p95", type=_at_least_zero, metavar="SECONDS", help="job completion p95"
    )
    parser.add_argument(
        "--max-units",
        type=_at_least_zero,
        metavar="N",
        help="unit budget; needed for a host that is not a mock",
    )
    parser.add_argument(
        "--time-scale", type=_positive(float), default=60.0, help="clock of the runner's mock"
    )
    add_audit_arguments(parser, "the users'")
    parser.add_argument("--seed", type=int, default=7, help="seed of the runner's mock")
    parser.add_argument("--shape", choices=SHAPES, help="a load shape of load_tests/shapes")
    parser.add_argument(
        "--mock-config",
        type=_json_file,
        default={},
        metavar="FILE",
        help="JSON fields laid over the runner's mock config",
    )
    parser.add_argument("locust_args", nargs="*", help="after --: more Locust options")
