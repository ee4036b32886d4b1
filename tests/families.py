"""A valid create body for every family of the contract, and tasks of any family on a mock.

The bodies come from ``kling_testkit.strategies.requests`` (the simplest one Hypothesis finds),
so a family added to the contract is covered by every suite that iterates ``FAMILIES``. A
family that names an earlier video gets a real one: a text-to-video task made and finished
first.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from flask.testing import FlaskClient
from hypothesis import Phase, find, settings

from kling_testkit import strategies
from kling_testkit.spec import families

FAMILIES = sorted(families())
SOURCE = "text2video"  # the family the source videos of the others come from
SOURCE_BODY = {"prompt": "a lighthouse in a storm, waves crashing"}
SOURCE_DONE_S = 600  # past the end of any text-to-video task on the default timings


@cache
def _simplest(family: str) -> dict[str, Any]:
    # Hypothesis tries the simplest example first: no shrinking needed (it cost seconds).
    quick = settings(database=None, phases=[Phase.generate], derandomize=True)
    found: dict[str, Any] = find(strategies.requests(family), lambda _: True, settings=quick)
    return found


def example(family: str) -> dict[str, Any]:
    """The simplest valid body of ``family`` (a copy: callers may change it)."""
    return copy.deepcopy(_simplest(family))


def parent_field(family: str) -> str | None:
    """The dotted path of the field naming an earlier video, if the family has one."""
    spec = families()[family].parent
    return None if spec is None else str(spec["field"])


def put(body: dict[str, Any], path: str, value: Any) -> None:
    """Set ``body[a][b]`` for the dotted path ``a.b``."""
    *outer, last = path.split(".")
    for part in outer:
        body = body.setdefault(part, {})
    body[last] = value


def source_video(client: FlaskClient, auth: dict[str, str], **body: Any) -> str:
    """The id of a finished text-to-video task's video (the clock is moved past its end)."""
    created = client.post(f"{families()[SOURCE].path}", json={**SOURCE_BODY, **body}, headers=auth)
    assert created.status_code == 200, created.json
    task_id = created.json["data"]["task_id"]  # type: ignore[index]
    advance(client, SOURCE_DONE_S)
    task = client.get(f"{families()[SOURCE].path}/{task_id}", headers=auth).json["data"]  # type: ignore[index]
    assert task["task_status"] == "succeed", task
    video_id: str = task["task_result"]["videos"][0]["id"]
    return video_id


def advance(client: FlaskClient, seconds: float) -> None:
    assert client.post("/__mock/clock/advance", json={"seconds": seconds}).status_code == 200


def body_for(
    client: FlaskClient, auth: dict[str, str], family: str, **fields: Any
) -> dict[str, Any]:
    """A valid body of ``family`` with ``fields`` on top; a source video made when it needs one."""
    body = {**example(family), **fields}
    where = parent_field(family)
    if where is not None and where.split(".")[0] not in fields:
        put(body, where, source_video(client, auth))
    return body


def create(client: FlaskClient, auth: dict[str, str], family: str, **fields: Any) -> dict[str, Any]:
    """Create a task of ``family`` (a valid body, ``fields`` on top); its create ``data``."""
    body = body_for(client, auth, family, **fields)
    response = client.post(families()[family].path, json=body, headers=auth)
    assert response.status_code == 200, response.json
    data: dict[str, Any] = response.json["data"]  # type: ignore[index]
    return data


def query(client: FlaskClient, auth: dict[str, str], family: str, ident: str) -> dict[str, Any]:
    response = client.get(f"{families()[family].path}/{ident}", headers=auth)
    assert response.status_code == 200, response.json
    data: dict[str, Any] = response.json["data"]  # type: ignore[index]
    return data


def run_s(family: str) -> float:
    """Seconds from submit to the end of a task made from ``example(family)``, no spread."""
    timing = families()[family].timing
    return float(timing["queue_s"] + timing["run_s"])
