"""Named scenarios a request picks with the ``X-Mock-Scenario`` header.

Each is a predefined rule action (see rules.py) bound to the header, so a test can choose a whole
lifecycle for one request without touching global config. ``*-once`` scenarios answer with their
error until their Retry-After has passed on the mock's clock, then let requests through for good
(per account and header value: add a suffix, ``rate-limited-once:job-7``, for a fresh one).
"""

from __future__ import annotations

from typing import Any

HEADER = "X-Mock-Scenario"

SCENARIOS: dict[str, dict[str, Any]] = {
    "rate-limited-once": {
        "once": True,
        "action": {
            "type": "error",
            "code": 1302,
            "retry_after": 2,
            "message": "request rate too high (scenario rate-limited-once)",
        },
        "about": "429/1302 with Retry-After: 2 until 2 s have passed, then through",
    },
    "concurrency-limited-once": {
        "once": True,
        "action": {
            "type": "error",
            "code": 1303,
            "retry_after": 5,
            "message": "parallel task over resource pack limit",
        },
        "about": "429/1303 with Retry-After: 5 until 5 s have passed, then through",
    },
    "server-error-once": {
        "once": True,
        "action": {"type": "error", "code": 5000, "message": "internal error (scenario)"},
        "about": "500/5000 on the first request, then through",
    },
    "policy-violation": {
        "action": {
            "type": "error",
            "code": 1301,
            "message": "Failure to pass the risk control system",
        },
        "about": "400/1301 at submit",
    },
    "no-credits": {
        "action": {"type": "error", "code": 1102, "message": "Account balance not enough"},
        "about": "429/1102 at submit",
    },
    "fail": {
        "action": {"type": "outcome", "outcome": "fail"},
        "about": "the task ends failed with a task_status_msg",
    },
    "slow": {
        "action": {"type": "outcome", "outcome": "slow", "factor": 10},
        "about": "the task takes 10x longer",
    },
    "stuck": {
        "action": {"type": "outcome", "outcome": "stuck"},
        "about": "the task stays processing forever (and holds its slot)",
    },
    "expire-fast": {
        "result_ttl_s": 60,
        "about": "the task's result URLs expire 60 s after it succeeds",
    },
    "callback-lost": {
        "action": {"type": "callback", "fault": "drop"},
        "about": "no callback of the task is ever delivered",
    },
    "connection-reset": {
        "action": {"type": "transport", "fault": "reset"},
        "about": "the connection is reset before any answer",
    },
    "malformed-json": {
        "action": {"type": "transport", "fault": "malformed_json"},
        "about": "HTTP 200 with a body that is not valid JSON",
    },
}


def lookup(value: str) -> tuple[str, dict[str, Any]] | None:
    """The scenario named by a header value (``name`` or ``name:suffix``), or None."""
    name = value.split(":", 1)[0].strip()
    found = SCENARIOS.get(name)
    return None if found is None else (name, found)
