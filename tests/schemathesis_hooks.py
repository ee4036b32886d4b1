"""The project's Schemathesis run: the contract's formats (``kling_testkit.schemathesis_hooks``)
and one change to generated bodies, so a positive case is never refused for state.

``external_task_id`` is unique per account, and Schemathesis draws the same short strings for
it again and again, across operations: a schema-valid create then fails as a duplicate, and
whether any create of a family gets through came down to the run's order. Each valid-looking
id (non-empty, at most 240 characters) gets a suffix of its own; an invalid one is left as it
is, so negative cases stay negative.
"""

from __future__ import annotations

import itertools
from typing import Any

import schemathesis

import kling_testkit.schemathesis_hooks  # noqa: F401  (registers the contract's formats)

_NUMBERS = itertools.count(1)


def _unique(value: Any) -> Any:
    if isinstance(value, str) and 0 < len(value) <= 240:
        return f"{value}~{next(_NUMBERS)}"
    return value


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    if isinstance(body, dict):
        if "external_task_id" in body:
            body = {**body, "external_task_id": _unique(body["external_task_id"])}
        options = body.get("options")
        if isinstance(options, dict) and "external_task_id" in options:
            body = {
                **body,
                "options": {**options, "external_task_id": _unique(options["external_task_id"])},
            }
    return body
