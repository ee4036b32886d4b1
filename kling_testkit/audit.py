"""Reading the mock's audit (``GET /__mock/audit``): what a client did against the rules.

An audit document is ``{"clean", "accounts": {name: {finding id: {"count", "evidence",
"hint"}}}, "totals": {finding id: count}}``. The set of finding ids is open: nothing here lists
them, so a mock that judges more needs no change here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kling_testkit.control import probe


def read(
    base_url: str, *, control_token: str | None = None, timeout: float = 10.0
) -> dict[str, Any] | None:
    """The audit of the mock at ``base_url``; None when it has none to give (not a mock, a mock
    without ``/__mock/audit``, a refused control token, unreachable)."""
    return probe(base_url, "audit", control_token=control_token, timeout=timeout)


def document(accounts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An audit document of these findings per account, with its totals and ``clean``."""
    totals: dict[str, int] = {}
    for found in accounts.values():
        for fid, item in found.items():
            totals[fid] = totals.get(fid, 0) + int(item["count"])
    return {"clean": not totals, "accounts": accounts, "totals": totals}


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """What an audit gained between two readings of one mock, as an audit document.

    Each finding's count is the difference (a count lower than before means the mock was reset
    in between: all of ``after``'s count is new); its evidence is what ``after`` holds that
    ``before`` did not (by request id), its hint is ``after``'s. Findings that did not grow are
    left out.
    """
    old_accounts = (before or {}).get("accounts", {})
    accounts: dict[str, dict[str, Any]] = {}
    for account, found in after.get("accounts", {}).items():
        old = old_accounts.get(account, {})
        grown: dict[str, Any] = {}
        for fid, item in found.items():
            was = old.get(fid, {"count": 0, "evidence": []})
            count = item["count"] - was["count"] if item["count"] >= was["count"] else item["count"]
            if count > 0:
                seen = {e["request_id"] for e in was["evidence"]}
                fresh = [e for e in item["evidence"] if e["request_id"] not in seen]
                grown[fid] = {**item, "count": count, "evidence": fresh}
        accounts[account] = grown
    return document(accounts)


def offending(data: dict[str, Any], allow: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Per account, the findings of an audit document not in ``allow`` (empty: a clean run)."""
    allowed = set(allow)
    out: dict[str, dict[str, Any]] = {}
    for account, found in data.get("accounts", {}).items():
        kept = {fid: item for fid, item in found.items() if fid not in allowed}
        if kept:
            out[account] = kept
    return out


def format_report(
    data: dict[str, Any], allow: Iterable[str] = (), *, max_evidence: int | None = None
) -> str:
    """A readable report of the findings not in ``allow``: per account each finding, how many
    requests, the first offending ones (at most ``max_evidence``) and how to fix it; ``""``
    when there is none."""
    lines: list[str] = []
    for account, found in offending(data, allow).items():
        lines.append(f"account {account!r}:")
        for fid, item in found.items():
            lines.append(f"  {fid}: {item['count']} request(s)")
            shown = item["evidence"][:max_evidence]
            for e in shown:
                lines.append(
                    f"    {e['method']} {e['path']} at mock time {e['time'] / 1000:.3f}"
                    f" (request {e['request_id']}): {e['detail']}"
                )
            if not shown:
                lines.append("    (the mock keeps only the first offending requests: all earlier)")
            elif item["count"] > len(shown):
                lines.append(f"    ... and {item['count'] - len(shown)} more")
            lines.append(f"    fix: {item['hint']}")
    return "\n".join(lines)


def summary(data: dict[str, Any], allow: Iterable[str] = (), *, max_evidence: int = 2) -> str:
    """The audit part of a runner's summary: ``audit: clean``, or a line with each finding id
    and its count (allowed ones marked), then the report of those not allowed, indented."""
    allowed = set(allow)
    totals: dict[str, int] = data.get("totals", {})
    if not totals:
        return "audit: clean"
    listed = ", ".join(
        f"{fid} {count}" + (" (allowed)" if fid in allowed else "")
        for fid, count in sorted(totals.items())
    )
    report = format_report(data, allowed, max_evidence=max_evidence)
    return f"audit: {listed}" + "".join(f"\n  {line}" for line in report.splitlines())


def verdict(data: dict[str, Any], allow: Iterable[str] = ()) -> str | None:
    """Why a run with ``--fail-on-audit`` fails (the findings not allowed), or None."""
    allowed = set(allow)
    bad = {fid: n for fid, n in sorted(data.get("totals", {}).items()) if fid not in allowed}
    if not bad:
        return None
    listed = ", ".join(f"{fid} {count}" for fid, count in bad.items())
    return f"--fail-on-audit: the mock's audit found {listed} (see audit above)"
