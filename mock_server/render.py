"""Turn tasks into the API's JSON shapes (documented field names, types and units)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kling_testkit.pricing import format_units, output_seconds
from kling_testkit.spec import families
from kling_testkit.spec.statuses import SUCCEEDED
from mock_server.tasks import SUBMITTED, SUCCEED, TERMINAL, Task, to_ms

MediaUrl = Callable[[Task, str], str]
"""Builds the absolute URL of one result file of a task (the view knows the host)."""


@dataclass(frozen=True)
class MediaFile:
    """One result file of a task: its name, what it holds, and which result it belongs to."""

    name: str
    kind: str  # "mp4", "png", "mp3" or "wav"
    result: str  # the video's or audio's id, or the image's index
    second: bool = False  # the watermarked video or image, or the WAV of an audio


def media_path(task_id: str, name: str) -> str:
    """Where the mock serves one result file (``views/media.py`` routes the same shape)."""
    return f"/media/{task_id}/{name}"


def result_ids(family: str) -> int:
    """How many ids a task's results take: one per video and per audio (images use indexes)."""
    return sum(kind in ("videos", "audios") for kind in families()[family].results)


def media_files(task: Task) -> list[MediaFile]:
    """Every result file of a task, in order: videos (plain, watermarked), images, audios."""
    ids = iter(task.result_ids)
    out: list[MediaFile] = []
    for kind in families()[task.family].results:
        if kind == "videos":
            vid = next(ids)
            out += [
                MediaFile(f"{vid}.mp4", "mp4", vid),
                MediaFile(f"{vid}-wm.mp4", "mp4", vid, True),
            ]
        elif kind == "images":
            for i in range(int(task.params.get("n", 1))):
                out += [
                    MediaFile(f"{i}.png", "png", str(i)),
                    MediaFile(f"{i}-wm.png", "png", str(i), True),
                ]
        else:
            aid = next(ids)
            out += [MediaFile(f"{aid}.mp3", "mp3", aid), MediaFile(f"{aid}.wav", "wav", aid, True)]
    return out


def seconds(task: Task) -> str:
    """The length of the task's video or audio, in seconds as the API writes it."""
    source = float(task.parent["duration"]) if task.parent else None
    return output_seconds(task.family, task.params, source)


def aspect_ratio(task: Task) -> str:
    """The shape of the task's video or images: its own, its source's, or its family's."""
    return str(task.params.get("aspect_ratio", families()[task.family].aspect_ratio))


def task_info(task: Task) -> dict[str, Any]:
    info: dict[str, Any] = {}
    if task.parent is not None:
        info["parent_video"] = {k: task.parent[k] for k in ("id", "url", "duration")}
    external = task.external_task_id
    if external is not None:
        info["external_task_id"] = external
    return info


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
    """``videos[]``, ``images[]`` and ``audios[]``, as the family's ``results`` name them."""
    length = seconds(task)
    session = families()[task.family].session  # multi-elements: its videos name the session
    edited = {} if session is None else {"session_id": task.params[session["field"]]}
    out: dict[str, list[dict[str, Any]]] = {}
    for f in media_files(task):
        url = media_url(task, f.name)
        item: dict[str, Any]
        if f.kind == "mp4" and not f.second:
            item = {"id": f.result, **edited, "url": url, "watermark_url": "", "duration": length}
            out.setdefault("videos", []).append(item)
        elif f.kind == "png" and not f.second:
            item = {"index": int(f.result), "url": url, "watermark_url": ""}
            out.setdefault("images", []).append(item)
        elif f.kind == "mp3":
            item = {"id": f.result, "url_mp3": url, "url_wav": "", "duration_mp3": length}
            out.setdefault("audios", []).append({**item, "duration_wav": length})
        else:  # the second file of the result just listed
            last = out[{"mp4": "videos", "png": "images"}.get(f.kind, "audios")][-1]
            last["url_wav" if f.kind == "wav" else "watermark_url"] = url
    return out


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


# -- the 2026 design ----------------------------------------------------------------------


def status_2026(status: str) -> str:
    """A status in the 2026 design's spelling (legacy ``succeed`` is ``succeeded`` there)."""
    return SUCCEEDED if status == SUCCEED else status


def created_2026(task: Task) -> dict[str, Any]:
    """The ``data`` of a 2026 create: the task as it starts."""
    at = to_ms(task.created_at)
    return {
        "id": task.task_id,
        "status": SUBMITTED,
        "create_time": at,
        "update_time": at,
        "external_id": task.external_task_id or "",
    }


def outputs(task: Task, media_url: MediaUrl) -> list[dict[str, Any]]:
    """The typed ``outputs[]`` of a 2026 task that succeeded, built from its legacy results."""
    found: list[dict[str, Any]] = []
    for kind, items in task_result(task, media_url).items():
        for item in items:
            if kind == "videos":
                found.append({"type": "video", **item})
            elif kind == "images":
                found.append(
                    {"type": "image", "url": item["url"], "watermark_url": item["watermark_url"]}
                )
            else:
                found.append(
                    {
                        "type": "audio",
                        "id": item["id"],
                        "mp3_url": item["url_mp3"],
                        "wav_url": item["url_wav"],
                        "mp3_duration": item["duration_mp3"],
                        "wav_duration": item["duration_wav"],
                    }
                )
    return found


def billing(task: Task) -> list[dict[str, Any]]:
    """What a 2026 task that succeeded was charged: units of its pack kind."""
    kind = families()[task.family].pack
    return [{"charge_type": "unit", "amount": format_units(task.cost), "package_type": kind}]


def task_2026(task: Task, now: float, media_url: MediaUrl) -> dict[str, Any]:
    """The task object of the 2026 design (``GET /tasks``, ``POST /tasks``, callbacks) at
    mock time ``now``: ``outputs`` and ``billing`` are empty until it succeeds (a failed task
    costs nothing)."""
    status = task.status_at(now)
    done = status == SUCCEED
    return {
        "id": task.task_id,
        "status": status_2026(status),
        "message": task.status_msg if status == task.outcome and not done else "",
        "create_time": to_ms(task.created_at),
        "update_time": to_ms(task.updated_at(now)),
        "external_id": task.external_task_id or "",
        "outputs": outputs(task, media_url) if done else [],
        "billing": billing(task) if done else [],
    }
