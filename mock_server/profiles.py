"""Response profiles: the shapes the real API has sent, so a strict client can be tested
against each.

``current`` (the default) is what the API sends today. ``2025`` is what it sent in 2025 (recorded
bodies, kling-api.md section 5): no ``task_info`` on a create, whose ``request_id`` equals its
``task_id``; no ``request_id`` on lists; task ids in a base64-like form of 22 characters
(``CjI17WevH1IAAAAAAHmgsw``) and video ids as UUIDs; no watermark fields. The mock keeps one id
per task: the 2025 form is a reversible spelling of it, so a client that sends it back (to query
a task) finds the same task.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Any

CURRENT = "current"
PROFILES = (CURRENT, "2025")
HEADER = "X-Mock-Profile"

_PREFIX = b"\x0a\x32"  # what the recorded 2025 ids start with once decoded
_OLD_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")


def old_task_id(task_id: str) -> str:
    """The 2025 spelling of a task id (18 digits): 22 characters of unpadded base64url."""
    raw = _PREFIX + int(task_id).to_bytes(8, "big") + bytes(6)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def current_task_id(ident: str) -> str | None:
    """The task id a 2025 spelling stands for; None when ``ident`` is not one."""
    if not _OLD_ID.match(ident):
        return None
    try:
        raw = base64.urlsafe_b64decode(ident + "==")
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 16 or not raw.startswith(_PREFIX) or raw[10:] != bytes(6):
        return None
    return str(int.from_bytes(raw[2:10], "big"))


def old_video_id(video_id: str) -> str:
    """The 2025 spelling of a video id: a UUID (reversible, like the task id's)."""
    return str(uuid.UUID(int=int(video_id)))


def task(obj: dict[str, Any], profile: str) -> dict[str, Any]:
    """A task object (a query's ``data``, a list item, a callback body) in ``profile``."""
    if profile == CURRENT:
        return obj
    out = {k: v for k, v in obj.items() if k != "watermark_info"}
    out["task_id"] = old_task_id(str(obj["task_id"]))
    result = obj.get("task_result") or {}
    if result:
        out["task_result"] = {
            kind: [_old_item(item) for item in items] for kind, items in result.items()
        }
    return out


def _old_item(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    out = {k: v for k, v in item.items() if k != "watermark_url"}
    if "id" in out and str(out["id"]).isdigit():
        out["id"] = old_video_id(str(out["id"]))
    return out


def created(data: dict[str, Any], profile: str) -> dict[str, Any]:
    """A create's ``data`` in ``profile``."""
    if profile == CURRENT:
        return data
    out = {k: v for k, v in data.items() if k != "task_info"}
    out["task_id"] = old_task_id(str(data["task_id"]))
    return out
