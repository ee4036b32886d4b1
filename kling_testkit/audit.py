"""Reading the mock's audit (``GET /__mock/audit``): what a client did against the rules.

An audit document is ``{"clean", "accounts": {account: {finding id: {"count", "evidence",
"hint"}}}, "totals"}``; these helpers read it, add several up, and tell what changed between
two readings, without knowing the finding ids (new ones need no change here)."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import requests

from kling_testkit.errors import KlingError

if TYPE_CHECKING:
    from kling_testkit.control import MockControl


def read(control: MockControl) -> dict[str, Any] | None:
    """The audit of the mock behind ``control``; None when it has none to give (a mock from
    before the audit, a refused control token, a target that is not a mock, unreachable)."""
    try:
        found = control.audit()
    except (KlingError, requests.RequestException, ValueError, AttributeError):
        return None  # (AttributeError: an answer that is JSON but not an object)
    return found if isinstance(found, dict) else None


def offending(data: dict[str, Any], allow: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Per account, the findings of an audit document not in ``allow`` (empty: a clean run)."""
    allowed = set(allow)
    out: dict[str, dict[str, Any]] = {}
    for account, found in data.get("accounts", {}).items():
        kept = {fid: item for fid, item in found.items() if fid not in allowed}
        if kept:
            out[account] = kept
    return out


def format_report(data: dict[str, Any], allow: Iterable[str] = ()) -> str:
    """A readable report of the findings not in ``allow``: per account each finding, how many
    requests, the first offending ones and how to fix it; ``""`` when there is none."""
    lines: list[str] = []
    for account, found in offending(data, allow).items():
        lines.append(f"account {account!r}:")
        for fid, item in found.items():
            count = item["count"]
            lines.append(f"  {fid}: {'once' if count == 1 else f'{count} times'}")
            for e in item["evidence"]:
                request = f" (request {e['request_id']})" if e.get("request_id") else ""
                lines.append(
                    f"    {e['method']} {e['path']} at mock time {e['time'] / 1000:.3f}"
                    f"{request}: {e['detail']}"
                )
            shown = len(item["evidence"])
            if item["count"] > shown:
                lines.append(f"    ... and {item['count'] - shown} more")
            lines.append(f"    fix: {item['hint']}")
    return "\n".join(lines)


MAX_SHOWN = 5  # evidence kept per finding when documents are added up


def add(total: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """Add an audit document's findings to ``total`` (an audit document too, ``{}`` to start):
    counts summed, the first evidence kept; for the findings of several fresh mocks (one per
    test) read one after another."""
    accounts = total.setdefault("accounts", {})
    for account, found in doc.get("accounts", {}).items():
        mine = accounts.setdefault(account, {})
        for fid, item in found.items():
            kept = mine.setdefault(fid, {"count": 0, "evidence": [], "hint": item["hint"]})
            kept["count"] += item["count"]
            kept["evidence"] = (kept["evidence"] + item["evidence"])[:MAX_SHOWN]
    totals: dict[str, int] = {}
    for found in accounts.values():
        for fid, item in found.items():
            totals[fid] = totals.get(fid, 0) + item["count"]
    total.update(clean=not totals, totals=totals)
    return total


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The findings made between two readings of one mock's audit (an audit document): each
    count's growth, and the evidence the first reading did not have."""
    out: dict[str, Any] = {"accounts": {}}
    for account, found in after.get("accounts", {}).items():
        earlier = before.get("accounts", {}).get(account, {})
        for fid, item in found.items():
            old = earlier.get(fid, {"count": 0, "evidence": []})
            grown = item["count"] - old["count"]
            if grown <= 0:  # (a finding read off the state, a ratio, may also shrink)
                continue
            seen = {(e.get("request_id"), e.get("time"), e.get("detail")) for e in old["evidence"]}
            new = [
                e
                for e in item["evidence"]
                if (e.get("request_id"), e.get("time"), e.get("detail")) not in seen
            ]
            out["accounts"].setdefault(account, {})[fid] = {
                "count": grown,
                "evidence": new,
                "hint": item["hint"],
            }
    return add({}, out)


def add_audit_arguments(parser: argparse.ArgumentParser, whose: str) -> None:
    """``--fail-on-audit`` and ``--audit-allow`` (the contract and load commands)."""
    parser.add_argument(
        "--fail-on-audit",
        action="store_true",
        help=f"fail when the target is a mock and {whose} requests broke a rule its audit "
        "checks (GET /__mock/audit); without it the findings are only shown",
    )
    parser.add_argument(
        "--audit-allow",
        type=lambda text: [part.strip() for part in text.split(",") if part.strip()],
        default=[],
        metavar="ID,...",
        help="finding ids that neither show nor fail (e.g. poll_storm)",
    )
