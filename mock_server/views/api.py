"""The Kling API itself: create, query one and list tasks of each family."""

from __future__ import annotations

from dataclasses import replace
from functools import cache, lru_cache
from typing import Any

from flask import Blueprint, Response, g, request
from werkzeug.sansio.utils import get_current_url

from kling_testkit.codes import ErrorCode
from kling_testkit.spec import (
    ContractViolation,
    check_body,
    families,
    openapi,
    operation_path,
    parameter,
    parse_query,
    validate,
)
from kling_testkit.spec.document import DESIGN_2026
from mock_server import faces, profiles, queries, render, selections
from mock_server.audit import create_key, overlap_detail
from mock_server.backend import Backend
from mock_server.envelope import invalid, ok
from mock_server.errors import ApiError
from mock_server.tasks import Task, to_ms
from mock_server.views import faults
from mock_server.views.common import backend, json_body


def make_blueprint() -> Blueprint:
    """Routes for every family in the contract and the account, behind the request checks."""
    bp = Blueprint("api", __name__)
    bp.before_request(screen_request)
    bp.after_request(faults.lose_answer)
    bp.after_request(note_retry_after)
    for family in families().values():
        defaults = {"family": family.name}
        if family.design == DESIGN_2026:  # created here, queried through /tasks
            for number, path in enumerate(family.paths):
                name = family.name.replace(".", "_").replace("/", "__")
                bp.add_url_rule(
                    path, f"create_{name}_{number}", create, methods=["POST"], defaults=defaults
                )
            continue
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
    bp.add_url_rule(operation_path("account_costs"), "account_costs", account_costs)
    for operation in SESSION_OPERATIONS:  # synchronous calls: no task
        bp.add_url_rule(
            operation_path(operation),
            f"session_{operation}",
            session_call,
            methods=["POST"],
            defaults={"operation": operation},
        )
    tasks = operation_path("get_tasks")
    bp.add_url_rule(tasks, "tasks_2026_query", tasks_query, methods=["GET"])
    bp.add_url_rule(tasks, "tasks_2026_list", tasks_list, methods=["POST"])
    return bp


def _is_2026(endpoint: str | None) -> bool:
    """Whether a request is to an endpoint of the 2026 design (an API key only)."""
    view = request.view_args or {}
    return (endpoint or "").startswith("api.tasks_2026_") or (
        "family" in view and families()[view["family"]].design == DESIGN_2026
    )


def screen_request() -> Response | None:
    """Auth first, then the rate limit, then the request's scenario and fault rules."""
    mock = backend()
    notes: dict[str, Any] = {}
    header = request.headers.get("Authorization")
    try:
        g.account = mock.authenticate(header, notes)
    except ApiError as exc:  # a token refused for its time still names who sent it
        if exc.code == ErrorCode.AUTH_EXPIRED and "account" in notes:
            g.audit = mock.judge.of(
                notes["account"].name,
                request.method,
                request.path,
                counted=False,
                token=header,
                claims=notes["claims"],
            )
        raise
    if "claims" in notes and _is_2026(request.endpoint):
        raise ApiError(
            ErrorCode.AUTH_INVALID,
            "Authorization is invalid: this endpoint takes an API key "
            "(Authorization: Bearer <API key>), not an AK/SK token",
        )
    # Judged with its journal entry: the account's requests, Retry-After, polls, its token.
    ident = (request.view_args or {}).get("ident")
    if request.endpoint == "api.tasks_2026_query":  # one task asked for: a poll of it
        asked = request.args.get("task_ids") or request.args.get("external_task_ids") or ""
        ident = asked if asked and "," not in asked else None
    g.audit = mock.judge.of(
        g.account.name,
        request.method,
        request.path,
        poll=ident if (request.endpoint or "").startswith(POLLS) else None,
        token=header,
        claims=notes.get("claims"),
    )
    is_create = (request.endpoint or "").startswith("api.create_")
    if is_create:
        _enter_create(mock, g.account.name)
    mock.admit(g.account)
    return faults.apply(g.account, is_create=is_create)


POLLS = ("api.get_", "api.tasks_2026_query")
"""Endpoints that query one task by its id: how often a client asks is judged."""


def _enter_create(mock: Backend, account: str) -> None:
    """A create without ``external_task_id``: its key, and whether a latency rule is still
    holding an identical one of the same client (which gave up waiting and sent it again)."""
    key = create_key(request.path, request.get_data(cache=True, parse_form_data=False))
    if key is None:
        return
    g.create_key = key
    # Per token too: two clients (their own tokens) may send one body at once on purpose; one
    # client sending it again while a latency rule holds the first gave up waiting.
    flight = (f"{account}\0{g.audit.token or ''}", key)
    g.flight = flight  # a latency rule that holds this create marks it in flight (faults.apply)
    earliest = mock.in_flight.earliest(flight)
    if earliest is not None:
        g.audit = replace(g.audit, overlap_detail=overlap_detail(mock.now() - earliest))


def note_retry_after(response: Response) -> Response:
    """Remember a 429's Retry-After (stored with the journal entry), so a request sent before
    then is counted."""
    if response.status_code == 429 and g.get("account") is not None:
        seconds = response.headers.get("Retry-After", "")
        g.audit = backend().judge.told_to_wait(
            g.audit,
            request.method,
            request.path,
            int(g.get("kling_code") or 0),
            int(seconds) if seconds.isdigit() else 0,
        )
    return response


def _query(names: list[str]) -> dict[str, Any]:
    try:
        return parse_query({p["name"]: p for p in map(parameter, names)}, request.args)
    except ContractViolation as exc:
        raise invalid(exc.message) from None


def create(family: str) -> Response:
    """Create a task; it starts at the mock's current time."""
    base_url = _root_url(request.scheme, request.host, request.root_path)
    mock = backend()
    modern = families()[family].design == DESIGN_2026  # response profiles are legacy shapes
    shape = profiles.CURRENT if modern else _profile(mock)  # a bad one: refused before a task
    task = mock.create_task(
        g.account, family, json_body(), base_url=base_url, effects=g.get("create_effects")
    )
    over = mock.judge.overspend(g.account, task)
    if over:
        g.audit = replace(g.audit, findings=(*g.audit.findings, *over))
    if modern:
        return ok(render.created_2026(task))
    data = profiles.created(render.created(task), shape)
    return ok(data, "" if shape == profiles.CURRENT else data["task_id"])


def _profile(mock: Backend) -> str:
    """The response profile of this request: its ``X-Mock-Profile``, else the mock's."""
    asked = request.headers.get(profiles.HEADER)
    if asked is None:
        return mock.config.response_profile
    if asked not in profiles.PROFILES:
        shown = ", ".join(profiles.PROFILES)
        raise invalid(f"{profiles.HEADER} must be one of {shown}, not {asked[:64]!r}")
    return asked


def _task(mock: Backend, task: Task, now: float | None = None) -> dict[str, Any]:
    return mock.render_api(task, now, _profile(mock))


@lru_cache(maxsize=64)
def _root_url(scheme: str, host: str, root_path: str) -> str:
    """``request.url_root`` (as Werkzeug builds it), once per host: the quoting is slow."""
    return get_current_url(scheme, host, root_path)


def list_or_find(family: str) -> Response:
    """List tasks newest first, or return one task when ``external_task_id`` is given."""
    mock = backend()
    # Every documented parameter is checked, even those the answer does not use.
    query = _query(["pageNum", "pageSize", "externalTaskIdQuery"])
    if "external_task_id" in query:
        return ok(_task(mock, mock.get_task(g.account, family, query["external_task_id"])))
    tasks = mock.list_tasks(g.account, family, query["pageNum"], query["pageSize"])
    now = mock.now()
    listed = [_task(mock, t, now) for t in tasks]
    return ok(listed, "" if _profile(mock) == profiles.CURRENT else None)


def get_one(family: str, ident: str) -> Response:
    """Query one task by task_id or external_task_id."""
    mock = backend()
    task = mock.get_task(g.account, family, profiles.current_task_id(ident) or ident)
    now = mock.now()
    if now < task.ends_at:  # still running: how long it has been polled for is judged
        g.audit = replace(g.audit, poll_age=now - task.created_at)
    return ok(_task(mock, task, now))


def account_costs() -> Response:
    """The account's resource packs, in the documented double-wrapped shape."""
    query = _query(["startTime", "endTime", "resourcePackName"])  # the window filters nothing
    packs = backend().packs(g.account, query.get("resource_pack_name"))
    data: dict[str, Any] = {"code": 0, "msg": "success"}
    if packs:  # an account without packs gets no list at all (as recorded live)
        data["resource_pack_subscribe_infos"] = packs
    return ok(data)


def tasks_query() -> Response:
    """``GET /tasks``: the account's 2026 tasks by ``task_ids`` or ``external_task_ids``."""
    mock = backend()
    query = _query(["taskIds", "externalTaskIds"])
    if "task_ids" in query and "external_task_ids" in query:
        raise invalid("task_ids and external_task_ids cannot be used together")
    external = "external_task_ids" in query
    value = query.get("external_task_ids" if external else "task_ids")
    if value is None:
        raise invalid("task_ids or external_task_ids is required")
    try:
        idents = queries.split_ids(value)
    except queries.QueryError as exc:
        raise invalid(str(exc)) from None
    found = queries.find(mock.store, g.account, idents, external)
    now = mock.now()
    if len(found) == 1 and now < found[0].ends_at:  # one running task polled: judged
        g.audit = replace(g.audit, poll_age=now - found[0].created_at)
    return ok([mock.render_api(task, now) for task in found])


def tasks_list() -> Response:
    """``POST /tasks``: the account's 2026 tasks, newest first, one page per cursor."""
    mock = backend()
    body = json_body() if request.get_data(cache=True) else {}
    try:
        validate("TaskListRequest", body)
        now = mock.now()
        where = queries.window(body, to_ms(now), mock.epoch())
        statuses, kinds = queries.filters(body)
    except ContractViolation as exc:
        raise invalid(exc.message) from None
    except queries.QueryError as exc:
        raise invalid(str(exc)) from None
    limit = int(body.get("limit", 100))
    tasks, more = queries.page(mock.store, g.account, where, limit, now, statuses, kinds)
    data: dict[str, Any] = {"count": len(tasks), "has_more": more}
    if tasks:  # an empty page has neither (as recorded live)
        data["result"] = [mock.render_api(task, now) for task in tasks]
    if more:
        data["next_cursor"] = where.cursor(tasks[-1])
    return ok(data)


OPENS: dict[str, Any] = {"init_selection": selections.init, "identify_face": faces.identify}
"""Synchronous calls that open a session on a video (they name its files' base URL)."""
SESSION_OPERATIONS: dict[str, Any] = {
    **OPENS,
    "add_selection": selections.add,
    "delete_selection": selections.delete,
    "clear_selection": selections.clear,
    "preview_selection": selections.preview,
}


@cache
def _request_schema(operation: str) -> str:
    """The name of the request schema of a POST operation of the contract."""
    post = openapi()["paths"][operation_path(operation)]["post"]
    ref: str = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


def session_call(operation: str) -> Response:
    """A synchronous call of a session (multi-elements selections, identify-face): no task."""
    mock = backend()
    try:
        body = check_body(_request_schema(operation), json_body())
    except ContractViolation as exc:
        raise ApiError(exc.code, exc.message) from None
    if operation in OPENS:
        base_url = _root_url(request.scheme, request.host, request.root_path)
        return ok(OPENS[operation](mock, g.account, body, base_url))
    return ok(SESSION_OPERATIONS[operation](mock, g.account, body))
