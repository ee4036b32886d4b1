"""The control API under ``/__mock``: what tests use to steer and inspect the mock."""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, Response, current_app, request

from kling_testkit.codes import ErrorCode
from mock_server import guard
from mock_server.envelope import invalid, ok
from mock_server.errors import ApiError, ConfigError
from mock_server.namespaces import BACKEND_KEY, Namespaces
from mock_server.scenarios import SCENARIOS
from mock_server.views.common import backend, json_body

bp = Blueprint("control", __name__, url_prefix="/__mock")


@bp.before_request
def guard_control() -> None:
    """Refuse cross-site use, DNS rebinding and (with a token set) calls without the token."""
    guard_request(with_token=True)


def guard_request(*, with_token: bool) -> None:
    """The control guard on this request; ``with_token=False`` skips only the token check
    (the dashboard's page and assets, which hold no state: their data calls carry it)."""
    config = backend().config
    scheme_host = request.host_url.rstrip("/")
    guard.check(
        method=request.method,
        host=request.host,
        own_origin=scheme_host,
        origin=request.headers.get("Origin"),
        fetch_site=request.headers.get("Sec-Fetch-Site"),
        mimetype=request.mimetype,
        token=request.headers.get(guard.TOKEN_HEADER),
        expected_token=config.control_token if with_token else None,
        host_check=config.control_host_check,
    )


MAX_ADVANCE_S = 10 * 365 * 86400.0  # one call may move the clock at most ten years


def _clock() -> dict[str, Any]:
    mock = backend()
    now = mock.now()
    return {
        "now": now,
        "now_ms": int(now * 1000),
        "mode": "manual" if mock.clock.manual else "real",
        "time_scale": mock.clock.scale,
        "auth_clock": mock.config.auth_clock,  # which clock checks token times
    }


@bp.get("/health")
def health() -> Response:
    """Say the mock is up, with its task count and clock."""
    return ok({"status": "ok", "tasks": backend().task_count(), "clock": _clock()})


@bp.post("/reset")
def reset() -> Response:
    """Forget all tasks and requests and restore the start-up config and clock."""
    backend().reset()
    return ok({"status": "reset", "clock": _clock()})


@bp.get("/clock")
def clock() -> Response:
    """Show mock time."""
    return ok(_clock())


@bp.post("/clock/advance")
def advance() -> Response:
    """Move mock time forward by ``{"seconds": N}``."""
    body = json_body()
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise invalid('expected {"seconds": N} with N a number >= 0')
    if not 0 <= seconds <= MAX_ADVANCE_S:
        raise invalid(
            f"seconds must be between 0 and {MAX_ADVANCE_S:.0f} (ten years); got {seconds}"
        )
    backend().advance(float(seconds))
    return ok(_clock())


@bp.get("/config")
def get_config() -> Response:
    """Show the config in force (secrets masked)."""
    return ok(backend().config.to_dict())


@bp.patch("/config")
def patch_config() -> Response:
    """Change run-time settings: clock, time_scale, durations, seed, auth clock, ..."""
    body = json_body()
    if not isinstance(body, dict):
        raise invalid("expected a JSON object of config changes")
    try:
        config = backend().patch_config(body)
    except ConfigError as exc:
        raise invalid(str(exc)) from None
    return ok(config.to_dict())


@bp.get("/tasks")
def tasks() -> Response:
    """Tasks newest first, with their timelines: ``?limit=`` (default 1000, at most 10000),
    ``?offset=``, ``?account=``, ``?family=``."""
    mock = backend()
    now = mock.now()
    limit = _whole("limit", 1000, MAX_TASKS_PAGE)
    offset = _whole("offset", 0, 10**9)
    found = mock.tasks_page(offset, limit, request.args.get("account"), request.args.get("family"))
    return ok(
        [
            {
                "account": t.account,
                "family": t.family,
                "params": t.params,
                "outcome": t.outcome,
                "timeline": {
                    "submitted_at": t.created_at,
                    "processing_at": t.processing_at,
                    "ends_at": t.ends_at if math.isfinite(t.ends_at) else None,  # stuck
                },
                "task": mock.render(t, now),
            }
            for t in found
        ]
    )


MAX_TASKS_PAGE = 10_000


def _whole(name: str, default: int, highest: int) -> int:
    """A whole-number query parameter between 0 and ``highest``."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and int(raw) <= highest):
        raise invalid(f"{name} must be a whole number from 0 to {highest}; got {raw[:40]!r}")
    return int(raw)


@bp.get("/accounts")
def accounts() -> Response:
    """Every account: access key (no secrets), concurrency, slots in use, packs and units."""
    return ok(backend().accounts_view())


@bp.get("/counters")
def counters() -> Response:
    """Per account and in total: requests, tasks created, 429s, Retry-After violations, units
    spent, callbacks delivered and failed."""
    return ok(backend().judge.counters())


@bp.get("/audit")
def audit() -> Response:
    """What each account's client did against the rules: findings, evidence, fix hints."""
    return ok(backend().judge.report())


@bp.get("/requests")
def requests_journal() -> Response:
    """The journal of API requests, oldest first (``?limit=N`` keeps the newest N)."""
    raw = request.args.get("limit")
    if raw is not None and not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise invalid(f"limit must be a whole number below 10^9; got {raw[:40]!r}")
    return ok(backend().journal.snapshot(None if raw is None else int(raw)))


@bp.get("/faults")
def list_faults() -> Response:
    """The fault rules in order, with how often each fired and how many uses remain."""
    return ok([rule.to_dict() for rule in backend().rules_snapshot()])


@bp.post("/faults")
def add_faults() -> Response:
    """Append one rule (an object) or several (an array); all or none are added."""
    body = json_body()
    try:
        added = backend().add_rules(body if isinstance(body, list) else [body])
    except ValueError as exc:
        raise invalid(f"bad rule: {exc}") from None
    return ok([rule.to_dict() for rule in added])


@bp.delete("/faults")
def clear_faults() -> Response:
    """Remove every rule."""
    backend().clear_rules()
    return ok([])


@bp.delete("/faults/<rule_id>")
def remove_fault(rule_id: str) -> Response:
    """Remove one rule by id."""
    if not backend().remove_rule(rule_id):
        raise ApiError(ErrorCode.RESOURCE_NOT_FOUND, f"no rule with id {rule_id!r}")
    return ok({"removed": rule_id})


@bp.get("/scenarios")
def scenarios() -> Response:
    """The named scenarios a request can pick with X-Mock-Scenario."""
    return ok({name: spec["about"] for name, spec in SCENARIOS.items()})


@bp.get("/callbacks")
def callbacks() -> Response:
    """Every callback attempt, oldest first (``?task_id=`` for one task), and what is queued."""
    mock = backend()
    return ok(
        {
            "attempts": mock.callbacks.records(request.args.get("task_id")),
            "pending": mock.callbacks.pending(),
        }
    )


MAX_WAIT_S = 60.0  # the longest POST /__mock/callbacks/wait


@bp.post("/callbacks/wait")
def wait_callbacks() -> Response:
    """Wait until no callback is due or in flight: ``{"timeout": N}`` (seconds, default 10)."""
    body = json_body() if request.get_data(cache=True).strip() else {}
    timeout = body.get("timeout", 10) if isinstance(body, dict) else None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise invalid('expected {"timeout": N} with N a number of seconds, 0 < N <= 60')
    if not 0 < timeout <= MAX_WAIT_S:
        raise invalid(f"timeout must be more than 0 and at most {MAX_WAIT_S:.0f} s; got {timeout}")
    dispatcher = backend().callbacks
    idle = dispatcher.wait_idle(float(timeout))
    return ok({"idle": idle, "pending": dispatcher.pending()})


def _namespaces() -> Namespaces:
    found: Namespaces | None = current_app.extensions.get("kling_namespaces")
    if found is None or BACKEND_KEY in request.environ:
        raise ApiError(
            ErrorCode.RESOURCE_NOT_FOUND,
            "namespaces are managed on the root mock (/__mock/namespaces), not inside one",
        )
    return found


@bp.get("/namespaces")
def namespaces() -> Response:
    """The namespaces made so far, least recently used first, and how many may exist."""
    spaces = _namespaces()
    return ok({"names": spaces.names(), "limit": spaces.limit})


@bp.delete("/namespaces")
def drop_namespaces() -> Response:
    """Drop every namespace."""
    return ok({"dropped": _namespaces().drop_all()})


@bp.delete("/namespaces/<name>")
def drop_namespace(name: str) -> Response:
    """Drop one namespace: its state is gone; a later request to it makes a fresh one."""
    if not _namespaces().drop(name):
        raise ApiError(ErrorCode.RESOURCE_NOT_FOUND, f"no namespace {name[:80]!r}")
    return ok({"dropped": name})
