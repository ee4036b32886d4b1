"""The Kling API itself: create, query one and list tasks of each family."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, request, url_for

from kling_testkit.spec import ContractViolation, families, parameter, parse_query
from mock_server import render
from mock_server.envelope import invalid, ok
from mock_server.tasks import Task
from mock_server.views.common import backend, json_body


def make_blueprint() -> Blueprint:
    """Routes for every family in the contract, behind the auth check."""
    bp = Blueprint("api", __name__)
    bp.before_request(authenticate)
    for family in families().values():
        defaults = {"family": family.name}
        bp.add_url_rule(
            family.path, f"create_{family.name}", create, methods=["POST"], defaults=defaults
        )
        bp.add_url_rule(
            family.path, f"list_{family.name}", list_or_find, methods=["GET"], defaults=defaults
        )
        bp.add_url_rule(
            f"{family.path}/<path:ident>",
            f"get_{family.name}",
            get_one,
            methods=["GET"],
            defaults=defaults,
        )
    return bp


def authenticate() -> None:
    """Prove who is calling before anything else is looked at."""
    g.account = backend().authenticate(request.headers.get("Authorization"))


def media_url(task: Task, name: str) -> str:
    base = backend().config.public_base_url
    path = url_for("media.file", task_id=task.task_id, name=name)
    return (
        f"{base.rstrip('/')}{path}"
        if base
        else url_for("media.file", task_id=task.task_id, name=name, _external=True)
    )


def _query(names: list[str]) -> dict[str, Any]:
    try:
        return parse_query({p["name"]: p for p in map(parameter, names)}, request.args)
    except ContractViolation as exc:
        raise invalid(exc.message) from None


def create(family: str) -> Response:
    """Create a task; it starts at the mock's current time."""
    task = backend().create_task(g.account, family, json_body())
    return ok(render.created(task))


def list_or_find(family: str) -> Response:
    """List tasks newest first, or return one task when ``external_task_id`` is given."""
    mock = backend()
    if "external_task_id" in request.args:
        external = _query(["externalTaskIdQuery"])["external_task_id"]
        task = mock.get_task(g.account, family, external)
        return ok(render.task(task, mock.now(), media_url))
    page = _query(["pageNum", "pageSize"])
    tasks = mock.list_tasks(g.account, family, page["pageNum"], page["pageSize"])
    now = mock.now()
    return ok([render.task(t, now, media_url) for t in tasks])


def get_one(family: str, ident: str) -> Response:
    """Query one task by task_id or external_task_id."""
    mock = backend()
    task = mock.get_task(g.account, family, ident)
    return ok(render.task(task, mock.now(), media_url))
