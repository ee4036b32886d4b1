"""``kling-testkit``: the contract runner and the drift report.

- ``kling-testkit contract [--base-url URL] [--max-units N] [--junitxml FILE] [-- pytest args]``
  runs the contract suite (``contract_tests``) against an in-process mock (no URL) or a target,
  and prints a one-screen summary; exit 0 only when the contract holds.
- ``kling-testkit drift --base-url URL [--max-units N] [--recorded DIR]`` sends the same requests
  to a fresh in-process mock and to the target and prints where their answers' shapes differ.
- ``kling-testkit load (--scenario NAME | -f LOCUSTFILE) --users N --spawn-rate R --duration D``
  runs a Locust scenario headless (Locust in processes of its own: it is never imported here)
  and prints a summary; exit 1 when a threshold is broken.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kling_testkit.audit import add_audit_arguments, format_report, offending
from kling_testkit.credentials import ACCESS_KEY_VAR, API_KEY_VAR, SECRET_KEY_VAR

TESTKIT_ACCESS_VAR = "KLING_TESTKIT_ACCESS_KEY"
TESTKIT_SECRET_VAR = "KLING_TESTKIT_SECRET_KEY"
TESTKIT_API_KEY_VAR = "KLING_TESTKIT_API_KEY"


def _units(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0; got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kling-testkit", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    contract = commands.add_parser("contract", help="check a target against the API contract")
    contract.add_argument("--base-url", help="target (default: an in-process mock)")
    contract.add_argument(
        "--max-units",
        type=_units,
        default=0.0,
        help="units paid checks may spend on a target that is not a mock (default 0: none run)",
    )
    contract.add_argument("--junitxml", metavar="FILE", help="also write a JUnit XML report")
    add_audit_arguments(contract, "the suite's")
    contract.add_argument("pytest_args", nargs="*", help="after --: more pytest arguments")
    drift = commands.add_parser("drift", help="compare a target's answers with the mock's")
    drift.add_argument("--base-url", required=True, help="the target to compare")
    drift.add_argument("--max-units", type=_units, default=0.0, help="units paid requests may use")
    drift.add_argument("--recorded", metavar="DIR", help="a folder of recorded answers (JSON)")
    from kling_testkit.load.options import add_arguments

    add_arguments(commands.add_parser("load", help="run a Locust load scenario headless"))
    return parser


def _target_env(base_url: str | None) -> dict[str, str]:
    """The environment of the suite: the user's keys for the target they named."""
    env = dict(os.environ)
    if base_url and ACCESS_KEY_VAR in env and SECRET_KEY_VAR in env:
        env.setdefault(TESTKIT_ACCESS_VAR, env[ACCESS_KEY_VAR])
        env.setdefault(TESTKIT_SECRET_VAR, env[SECRET_KEY_VAR])
    if base_url and env.get(API_KEY_VAR):
        env.setdefault(TESTKIT_API_KEY_VAR, env[API_KEY_VAR])
    return env


def contract(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "contract_tests",
            "-p",
            "no:cacheprovider",
            "-v" if args.base_url else "-q",  # one line per check: progress on slow targets
            "-rfs",
            f"--kling-max-units={args.max_units}",
        ]
        if args.base_url:
            command.append(f"--kling-base-url={args.base_url}")
        if args.junitxml:
            command.append(f"--junitxml={args.junitxml}")
        command += args.pytest_args
        env = {**_target_env(args.base_url), "KLING_CONTRACT_REPORT": str(report)}
        print(f"contract: checking {args.base_url or 'an in-process mock'}", flush=True)
        done = subprocess.run(command, env=env, check=False)
        summary = json.loads(report.read_text()) if report.exists() else None
    if summary is None:
        print("contract: the suite did not run (see above)", file=sys.stderr)
        return done.returncode or 2
    allow = args.audit_allow
    print(render_summary(summary, allow))
    broke = bool(offending(summary.get("audit", {}), allow))
    if args.fail_on_audit and broke:
        print("contract: FAILED --fail-on-audit: the suite broke rules the mock checks")
        return done.returncode or 1
    return done.returncode


def render_summary(summary: dict[str, Any], allow: Sequence[str] = ()) -> str:
    """One screen: how many checks held, each failure with its rule, skips grouped by reason."""
    checks = summary["checks"]
    counts: dict[str, int] = {}
    for check in checks:
        counts[check["outcome"]] = counts.get(check["outcome"], 0) + 1
    lines = [
        "",
        "== kling contract ==",
        f"checked {len(checks)}: {counts.get('passed', 0)} held, {counts.get('failed', 0)} "
        f"broken, {counts.get('skipped', 0)} skipped",
    ]
    for check in (c for c in checks if c["outcome"] == "failed"):
        lines.append(f"BROKEN {check['check'].split('::', 1)[-1]}")
        lines += [f"    {line}" for line in check["reason"].splitlines()[:4]]
    reasons: dict[str, int] = {}
    for check in (c for c in checks if c["outcome"] == "skipped"):
        reasons[check["reason"]] = reasons.get(check["reason"], 0) + 1
    for reason, count in sorted(reasons.items(), key=lambda r: -r[1]):
        lines.append(f"skipped {count}: {reason}")
    spent = summary["units_spent"]
    lines.append(f"units spent: {spent}" + ("" if summary["real"] else " (mock units, no money)"))
    if "audit" in summary:  # the target was a mock: what the suite's own requests did
        shown = format_report(summary["audit"], allow)
        said = "the suite broke rules the mock checks" if shown else "clean"
        lines.append(f"audit: {said}")
        lines += shown.splitlines()
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "contract":
        return contract(args)
    if args.command == "load":
        from kling_testkit.load.runner import run

        return run(args)
    from kling_testkit.drift import run_drift

    return run_drift(args.base_url, args.max_units, args.recorded)


if __name__ == "__main__":
    raise SystemExit(main())
