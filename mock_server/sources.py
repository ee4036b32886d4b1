"""The earlier video a create names (a family's ``x-kling-family.parent``): found, checked, and
what the new task takes from it.

A video's id is the seed's id for the number after its task's (``Backend.create_task`` reserves
them together), so the task behind a video is found without an index.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kling_testkit.codes import ErrorCode
from kling_testkit.spec import families
from mock_server import render
from mock_server.config import Account
from mock_server.errors import ApiError
from mock_server.ids import number_of, task_id_of
from mock_server.tasks import SUCCEED, Task

if TYPE_CHECKING:
    from mock_server.backend import Backend


def parent_of(
    mock: Backend, account: Account, family: str, params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A create's parameters with the fields it inherits from the video it names (its
    ``inherit`` list, where the body sends none), and that video as ``task_info.parent_video``
    shows it (plus its ``task_id``); the parameters unchanged and None when it names none."""
    found = source(mock, account, family, params)
    if found is None:
        return dict(params), None
    task, video_id = found
    inherited = families()[family].parent or {}
    taken = {k: task.params[k] for k in inherited.get("inherit", ()) if k in task.params}
    parent = {
        "id": video_id,
        "url": mock.media_url(task, f"{video_id}.mp4"),
        "duration": render.seconds(task),
        "task_id": task.task_id,
    }
    return {**taken, **params}, parent


def source(
    mock: Backend, account: Account, family: str, params: Mapping[str, Any]
) -> tuple[Task, str] | None:
    """The earlier video a create names and its id, if it names one; 400/1201 ``From video
    not found by id`` unless it is a video of this account's that succeeded within
    ``max_age_s`` of now, of a listed family, of a length allowed."""
    spec = families()[family].parent
    if spec is None:
        return None
    value: Any = params
    for part in str(spec["field"]).split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if not isinstance(value, str):
        return None  # the body names a video by URL instead
    task = video(mock, account, value, spec.get("families"))
    now = mock.now()
    if task is None or now - task.ends_at > float(spec["max_age_s"]):
        raise ApiError(ErrorCode.INVALID_VALUE, f"From video not found by id: {value}")
    length = float(render.seconds(task))
    low, high = float(spec.get("min_seconds", 0)), float(spec.get("max_seconds", math.inf))
    if not low <= length <= high:
        raise ApiError(
            ErrorCode.INVALID_VALUE,
            f"{spec['field']}: video {value} is {length:g} s long; this task takes a video "
            f"of {low:g} to {high:g} s",
        )
    return task, value


def video(mock: Backend, account: Account, video_id: str, kinds: list[str] | None) -> Task | None:
    """The succeeded task of ``account`` whose video is ``video_id`` (of one of ``kinds``)."""
    now = mock.now()
    for seed in dict.fromkeys((mock.config.seed, mock.initial_seed)):
        number = number_of(seed, video_id)
        task = None if number is None else mock.store.get(task_id_of(seed, number - 1))
        if (
            task is not None
            and task.account == account.name
            and task.result_ids[:1] == (video_id,)
            and "videos" in families()[task.family].results
            and (kinds is None or task.family in kinds)
            and task.status_at(now) == SUCCEED
        ):
            return task
    return None
