"""Reading the mock's audit (``GET /__mock/audit``): what a client did against the rules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


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
