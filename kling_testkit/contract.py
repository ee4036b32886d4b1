"""Check an HTTP answer against the contract: the OpenAPI document's response schemas.

One home for the contract: this reads the same document the mock validates requests with.
Every problem is a :class:`Violation` that names where (the operation and the field), what the
contract expects and what came back, so a report says what broke rather than that something did.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from kling_testkit.codes import ErrorCode
from kling_testkit.spec.document import SPEC_URI, openapi
from kling_testkit.spec.validation import _describe, field_path

MAX_REPORTED = 5


@dataclass(frozen=True)
class Violation:
    """One way an answer breaks the contract."""

    where: str  # "GET /v1/videos/text2video/{id} -> 200"
    field: str  # "data.task_status", or "body", "Content-Type", "status"
    problem: str  # what was expected and what came back

    def __str__(self) -> str:
        return f"{self.where}: {self.field}: {self.problem}"


def _shown(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


@cache
def _templates() -> list[tuple[str, str, re.Pattern[str]]]:
    """(method, path template, regex) of every operation in the document."""
    found = []
    for template, item in openapi()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{[^/]+\\\}", "[^/]+", re.escape(template)) + "$")
        for method, op in item.items():
            if isinstance(op, dict) and "responses" in op:
                found.append((method.upper(), template, pattern))
    return found


def operation(method: str, path: str) -> str | None:
    """The path template of the documented operation a request hits, or None."""
    bare = path.split("?", 1)[0]
    for op_method, template, pattern in _templates():
        if op_method == method.upper() and pattern.match(bare):
            return template
    return None


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@cache
def _validator(method: str, template: str, status: str) -> Draft202012Validator:
    registry: Registry[Any] = Registry().with_resource(
        SPEC_URI, Resource.from_contents(openapi(), default_specification=DRAFT202012)
    )
    where = _pointer(
        "paths", template, method.lower(), "responses", status, "content", "application/json"
    )
    return Draft202012Validator({"$ref": f"{SPEC_URI}#/{where}/schema"}, registry=registry)


def _leaf(error: ValidationError) -> ValidationError:
    """The most specific error under a oneOf/anyOf (the branch that got furthest)."""
    while error.context:
        deepest = max(error.context, key=lambda e: (len(e.absolute_path), -len(e.message)))
        if len(deepest.absolute_path) < len(error.absolute_path):
            break
        error = deepest
    return error


def _field(error: ValidationError) -> str:
    parts = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in error.validator_value if k not in error.instance]
        parts += missing[:1]
    return field_path(parts) or "body"


def check_body(method: str, path: str, status: int, body: Any) -> list[Violation]:
    """Check a decoded JSON answer against the documented response of its operation."""
    template = operation(method, path)
    where = f"{method.upper()} {template or path.split('?', 1)[0]} -> {status}"
    if template is None:
        return (
            []
            if _is_error_envelope(body)
            else [
                Violation(
                    where, "body", f"an error envelope for an undocumented path; got {_shown(body)}"
                )
            ]
        )
    responses = openapi()["paths"][template][method.lower()]["responses"]
    key = str(status) if str(status) in responses else "default"
    found: list[Violation] = []
    for error in _validator(method.upper(), template, key).iter_errors(body):
        leaf = _leaf(error)
        found.append(Violation(where, _field(leaf), _describe(leaf, _field(leaf))))
        if len(found) >= MAX_REPORTED:
            break
    found += _status_agrees(where, status, body)
    return found


def _is_error_envelope(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and isinstance(body.get("code"), int)
        and body.get("code") != 0
        and isinstance(body.get("message"), str)
        and isinstance(body.get("request_id"), str)
    )


def _status_agrees(where: str, status: int, body: Any) -> list[Violation]:
    """A success is HTTP 200 with code 0; an error travels with its code's documented status."""
    if not isinstance(body, dict) or not isinstance(body.get("code"), int):
        return []
    code = body["code"]
    if (code == 0) != (status == 200):
        return [
            Violation(
                where,
                "code",
                f"code {code} must come with HTTP {'200' if code == 0 else 'an error status'}; "
                f"got {status}",
            )
        ]
    try:
        documented = ErrorCode(code).http_status
    except ValueError:
        return [Violation(where, "code", f"a documented Kling code; got {code}")]
    if code != 0 and documented != status:
        return [Violation(where, "status", f"HTTP {documented} with code {code}; got {status}")]
    return []


def check_answer(
    method: str, path: str, status: int, headers: Mapping[str, str], text: str
) -> list[Violation]:
    """Check a raw answer: JSON content type, strict JSON, then :func:`check_body`."""
    template = operation(method, path)
    where = f"{method.upper()} {template or path.split('?', 1)[0]} -> {status}"
    lowered = {k.lower(): v for k, v in headers.items()}
    content_type = lowered.get("content-type", "")
    problems = []
    if content_type.split(";")[0].strip() != "application/json":
        problems.append(Violation(where, "Content-Type", f"application/json; got {content_type!r}"))
    try:
        body = json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        problems.append(Violation(where, "body", f"a JSON envelope; got {_shown(text)}"))
        return problems
    return problems + check_body(method, path, status, body)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
