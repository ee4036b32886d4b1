"""A valid create body for every family of the contract, and tasks of any family on a mock.

The bodies come from ``kling_testkit.strategies.requests`` (the simplest one Hypothesis finds),
so a family added to the contract is covered by every suite that iterates ``FAMILIES``. A
family that names an earlier video gets a real one: a text-to-video task made and finished
first, and a family that names a session (multi-elements, advanced lip-sync) one on such a
video.

Both designs are spoken here, so the suites are written once: the legacy ``/v1`` one
(``task_id``, ``task_status`` ``succeed``, ``task_result``, ``GET {path}/{id}``, ``pageNum``
lists, ``final_unit_deduction``) and the 2026 one (``id``, ``status`` ``succeeded``,
``outputs``, ``GET /tasks?task_ids=``, the ``POST /tasks`` cursor list, ``billing``, options in
``options{}``). Every request carries the account's API key, which both designs take.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from hypothesis import Phase, find, settings

from kling_testkit import strategies
from kling_testkit.credentials import MOCK_API_KEY
from kling_testkit.spec import families, operation_path, schema, validate
from kling_testkit.spec.document import DESIGN_2026

KEY = {"Authorization": f"Bearer {MOCK_API_KEY}"}  # the default account's key: both designs

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


def has_parent_video(family: str) -> bool:
    """Whether the family's tasks show the video they were made from (``parent_video``): the
    video a field names, or a session's video (``x-kling-family.session.parent_video``)."""
    session = families()[family].session or {}
    return parent_field(family) is not None or bool(session.get("parent_video"))


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


OPENS = {"selection": "init_selection", "face": "identify_face"}
"""The call that opens each kind of session (``x-kling-family.session.kind``)."""


def open_session(client: FlaskClient, auth: dict[str, str], kind: str) -> str:
    """A session of ``kind`` (a multi-elements selection, identified faces) on a new 5 s
    text-to-video video."""
    video_id = source_video(client, auth)
    path = operation_path(OPENS[kind])
    response = client.post(path, json={"video_id": video_id}, headers=auth)
    assert response.status_code == 200, response.json
    session_id: str = response.json["data"]["session_id"]  # type: ignore[index]
    return session_id


def fetch(client: FlaskClient, url: str) -> Any:
    """GET a URL the mock gave (a result's, a session file's) through the test client."""
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def advance(client: FlaskClient, seconds: float) -> None:
    assert client.post("/__mock/clock/advance", json={"seconds": seconds}).status_code == 200


def is_2026(family: str) -> bool:
    return families()[family].design == DESIGN_2026


def body_for(
    client: FlaskClient, auth: dict[str, str], family: str, **fields: Any
) -> dict[str, Any]:
    """A valid body of ``family`` with ``fields`` on top; a source video made when it needs one.

    For a 2026 family the fields ``TaskOptions`` has (``external_task_id``, ``callback_url``)
    go into ``options`` and the others into ``settings``.
    """
    if is_2026(family):
        body = example(family)
        options = schema("TaskOptions")["properties"]
        for name, value in fields.items():
            body.setdefault("options" if name in options else "settings", {})[name] = value
        return body
    body = {**example(family), **fields}
    where = parent_field(family)
    if where is not None and where.split(".")[0] not in fields:
        put(body, where, source_video(client, auth))
    session = families()[family].session
    if session is not None and session["field"] not in fields:
        body[session["field"]] = open_session(client, auth, session["kind"])
        body.pop("duration", None)  # a multi-elements edit's follows the session's video
        for choice in body.get("face_choose", ()):  # the whole-video face, 3 s of audio at 0
            choice.update(face_id="0", sound_start_time=0, sound_end_time=3000)
            choice["sound_insert_time"] = 0
    return body


def create(client: FlaskClient, auth: dict[str, str], family: str, **fields: Any) -> dict[str, Any]:
    """Create a task of ``family`` (a valid body, ``fields`` on top); its create ``data``,
    checked against the design's schema (``TaskCreated`` or ``TaskCreatedV2``)."""
    body = body_for(client, auth, family, **fields)
    response = client.post(families()[family].path, json=body, headers=auth)
    assert response.status_code == 200, response.json
    data: dict[str, Any] = response.json["data"]  # type: ignore[index]
    validate("TaskCreatedV2" if is_2026(family) else "TaskCreated", data)
    return data


def ident(family: str, data: dict[str, Any]) -> str:
    """The task id of a create answer or a task: ``task_id``, or ``id`` in the 2026 design."""
    return str(data["id"] if is_2026(family) else data["task_id"])


def _one(client: FlaskClient, auth: dict[str, str], query: str) -> dict[str, Any]:
    response = client.get(f"/tasks?{query}", headers=auth)
    assert response.status_code == 200, response.json
    found: list[dict[str, Any]] = response.json["data"]  # type: ignore[index]
    assert len(found) == 1, found
    validate("TaskV2", found[0])
    return found[0]


def query(client: FlaskClient, auth: dict[str, str], family: str, task_id: str) -> dict[str, Any]:
    """The task with this id (``GET {path}/{id}``, or ``GET /tasks?task_ids=``), checked
    against its design's schema."""
    if is_2026(family):
        return _one(client, auth, f"task_ids={task_id}")
    response = client.get(f"{families()[family].path}/{task_id}", headers=auth)
    assert response.status_code == 200, response.json
    data: dict[str, Any] = response.json["data"]  # type: ignore[index]
    validate("Task", data)
    return data


def by_external_id(
    client: FlaskClient, auth: dict[str, str], family: str, external: str
) -> list[dict[str, Any]]:
    """The tasks found by an external id, both ways the design has (they must agree)."""
    if is_2026(family):
        return [_one(client, auth, f"external_task_ids={external}")]
    path = families()[family].path
    in_path = query(client, auth, family, external)
    response = client.get(path, query_string={"external_task_id": external}, headers=auth)
    assert response.status_code == 200, response.json
    return [in_path, response.json["data"]]  # type: ignore[index]


def pages(client: FlaskClient, auth: dict[str, str], family: str, size: int) -> list[list[str]]:
    """The ids of the family's list, page by page to its end (``pageNum`` until an empty page,
    or the ``POST /tasks`` cursor until ``has_more`` is false)."""
    out: list[list[str]] = []
    if not is_2026(family):
        for number in range(1, 100):
            response = client.get(
                families()[family].path,
                query_string={"pageNum": number, "pageSize": size},
                headers=auth,
            )
            ids = [t["task_id"] for t in response.json["data"]]  # type: ignore[index]
            if not ids:
                return out
            out.append(ids)
        raise AssertionError("the list never ends")
    body: dict[str, Any] = {"limit": size}
    for _ in range(100):
        response = client.post("/tasks", json=body, headers=auth)
        assert response.status_code == 200, response.json
        page: dict[str, Any] = response.json["data"]  # type: ignore[index]
        validate("TaskPage", page)
        out.append([t["id"] for t in page.get("result", [])])
        if not page["has_more"]:
            assert "next_cursor" not in page
            return out
        body = {"limit": size, "cursor": page["next_cursor"]}
    raise AssertionError("the list never ends")


STATUS_2026 = {"submitted": "submitted", "processing": "processing", "succeed": "succeeded"}
STATUS_2026["failed"] = "failed"


def status(family: str, task: dict[str, Any]) -> str:
    """The task's status in the legacy spelling (``succeed``); a 2026 status is checked to be
    the 2026 spelling of it (``succeeded``)."""
    if not is_2026(family):
        return str(task["task_status"])
    legacy = {new: old for old, new in STATUS_2026.items()}
    return legacy[task["status"]]


def results(family: str, task: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The task's results by kind (``{"videos": [...]}``): ``task_result``, or the 2026
    ``outputs`` grouped by their ``type``."""
    if not is_2026(family):
        found: dict[str, list[dict[str, Any]]] = task["task_result"]
        return found
    grouped: dict[str, list[dict[str, Any]]] = {}
    for output in task["outputs"]:
        grouped.setdefault(f"{output['type']}s", []).append(output)
    return grouped


def external_id(family: str, task: dict[str, Any]) -> str | None:
    if is_2026(family):
        return task.get("external_id")
    found: str | None = task["task_info"].get("external_task_id")
    return found


def parent_video(family: str, task: dict[str, Any]) -> dict[str, Any] | None:
    """The earlier video a task names (the 2026 design names none)."""
    return None if is_2026(family) else task["task_info"].get("parent_video")


def message(family: str, task: dict[str, Any]) -> str:
    return str(task["message"] if is_2026(family) else task["task_status_msg"])


def charged(family: str, task: dict[str, Any]) -> str:
    """Units the task deducted as the API writes them: ``final_unit_deduction``, or the one
    ``billing`` entry of a 2026 task (units of its family's pack), ``"0"`` when it has none."""
    if not is_2026(family):
        return str(task["final_unit_deduction"])
    if not task["billing"]:
        return "0"
    (bill,) = task["billing"]
    assert (bill["charge_type"], bill["package_type"]) == ("unit", families()[family].pack)
    return str(bill["amount"])


def run_s(family: str) -> float:
    """Seconds from submit to the end of a task made from ``example(family)``, no spread."""
    timing = families()[family].timing
    return float(timing["queue_s"] + timing["run_s"])
