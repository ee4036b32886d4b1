"""Turn tasks into the API's JSON shapes (documented field names, types and units)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from kling_testkit.pricing import format_units
from kling_testkit.spec import families
from mock_server.tasks import SUBMITTED, SUCCEED, TERMINAL, Task, to_ms

MediaUrl = Callable[[Task, str], str]
"""Builds the absolute URL of one result file of a task (the view knows the host)."""


def media_path(task_id: str, name: str) -> str:
    """Where the mock serves one result file (``views/media.py`` routes the same shape)."""
    return f"/media/{task_id}/{name}"


def media_names(task: Task) -> list[tuple[str, str]]:
    """(file name, watermarked file name) of every result of a task, in order."""
    if families()[task.family].output == "video":
        return [(f"{vid}.mp4", f"{vid}-wm.mp4") for vid in task.result_ids]
    return [(f"{i}.png", f"{i}-wm.png") for i in range(int(task.params.get("n", 1)))]


def task_info(task: Task) -> dict[str, Any]:
    external = task.external_task_id
    return {} if external is None else {"external_task_id": external}


def created(task: Task) -> dict[str, Any]:
    """The ``data`` of a create response."""
    at = to_ms(task.created_at)
    return {
        "task_id": task.task_id,
        "task_status": SUBMITTED,
        "task_info": task_info(task),
        "created_at": at,
        "updated_at": at,
    }


def task_result(task: Task, media_url: MediaUrl) -> dict[str, Any]:
    names = media_names(task)
    if families()[task.family].output == "video":
        return {
            "videos": [
                {
                    "id": vid,
                    "url": media_url(task, plain),
                    "watermark_url": media_url(task, marked),
                    "duration": str(task.params.get("duration", "5")),
                }
                for vid, (plain, marked) in zip(task.result_ids, names, strict=True)
            ]
        }
    return {
        "images": [
            {"index": i, "url": media_url(task, plain), "watermark_url": media_url(task, marked)}
            for i, (plain, marked) in enumerate(names)
        ]
    }


def task(task: Task, now: float, media_url: MediaUrl) -> dict[str, Any]:
    """The task object of a query response, as it stands at mock time ``now``."""
    status = task.status_at(now)
    return {
        "task_id": task.task_id,
        "task_status": status,
        "task_status_msg": task.status_msg if status == task.outcome and status != SUCCEED else "",
        "task_info": task_info(task),
        "task_result": task_result(task, media_url) if status == SUCCEED else {},
        "watermark_info": {"enabled": bool(task.params.get("watermark_info", {}).get("enabled"))},
        **(
            {"final_unit_deduction": format_units(task.cost if status == SUCCEED else Decimal(0))}
            if status in TERMINAL
            else {}
        ),
        "created_at": to_ms(task.created_at),
        "updated_at": to_ms(task.updated_at(now)),
    }
