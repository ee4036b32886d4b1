"""Running ``kling-testkit load`` in a subprocess, and reading what it wrote."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILES = ROOT / "tests" / "locustfiles"
RUN_TIMEOUT_S = 120.0  # a run stops by itself well before; this only bounds a hung one


@dataclass
class Run:
    """One finished run: exit code, output, and the CSV and HTML reports it wrote."""

    code: int
    out: str
    err: str
    folder: Path

    def figure(self, pattern: str) -> str:
        """The first group of ``pattern`` in the summary (fails loudly when absent)."""
        found = re.search(pattern, self.out)
        assert found, f"{pattern!r} not in the summary:\n{self.out}\n{self.err[-3000:]}"
        return found.group(1)

    def number(self, label: str) -> int:
        """The whole number after ``label: `` in the summary."""
        return int(self.figure(re.escape(label) + r": (\d+)"))

    def rows(self) -> list[dict[str, str]]:
        """The rows of Locust's ``_stats.csv``."""
        with (self.folder / "run_stats.csv").open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def row(self, kind: str, name: str) -> dict[str, str]:
        found = [r for r in self.rows() if r["Type"] == kind and r["Name"] == name]
        assert found, f"no {kind} {name!r} row in {[(r['Type'], r['Name']) for r in self.rows()]}"
        return found[0]

    def named(self, kind: str) -> dict[str, dict[str, str]]:
        """The rows of one request type, by name."""
        return {r["Name"]: r for r in self.rows() if r["Type"] == kind}

    def __str__(self) -> str:  # what a failed assertion shows
        return f"exit {self.code}\n{self.out}\n--- stderr (tail)\n{self.err[-4000:]}"


def env() -> dict[str, str]:
    """The environment of a run: none of a developer's KLING_ variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("KLING_")}


def load(folder: Path, *args: str, extra_env: dict[str, str] | None = None) -> Run:
    """``kling-testkit load ARGS`` with its reports in ``folder``."""
    command = [sys.executable, "-m", "kling_testkit.cli", "load", *args]
    command += ["--csv", str(folder / "run"), "--html", str(folder / "report.html")]
    done = subprocess.run(
        command,
        cwd=folder,
        env={**env(), **(extra_env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    return Run(done.returncode, done.stdout, done.stderr, folder)
