"""Validate request bodies and query parameters against the OpenAPI document.

JSON Schema does the work; this module only turns its first error into a message that names the
field and says what was expected, with the Kling code that goes with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from kling_testkit.codes import ErrorCode
from kling_testkit.spec.document import SPEC_URI, openapi, resolve
from kling_testkit.spec.images import BASE64_FORMAT, check_base64_image

# Which failure to report first when a body breaks several rules: a wrong model is its own code,
# then a missing field, then unknown fields, then the rest in document order.
_PRIORITY = {"required": 1, "additionalProperties": 2}
_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


MAX_QUERY_DIGITS = 18  # every documented integer fits; int() of 4,301 digits would raise


class ContractViolation(Exception):
    """A request breaks the API contract; raised by the validators of this package."""

    def __init__(
        self, message: str, field: str | None = None, code: ErrorCode = ErrorCode.INVALID_VALUE
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


def json_type(value: object) -> str:
    """Name the JSON type of a decoded value."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def formats() -> FormatChecker:
    """The string formats of the document that the mock checks: only its own (others are notes)."""
    checker = FormatChecker(formats=())
    checker.checks(BASE64_FORMAT, raises=ValueError)(check_base64_image)
    return checker


_SCHEMA_REF = "#/components/schemas/"
_LITERALS = frozenset({"const", "default", "enum", "example", "examples"})  # data, not schemas


def _schema_uri(name: str) -> str:
    return f"{SPEC_URI}:schemas:{name}"


def _own_refs(node: Any) -> Any:
    """A copy of ``node`` whose ``#/components/schemas/X`` refs name X's own resource.

    The same schemas, found faster: a ref to a whole resource is a dictionary lookup, while a
    JSON pointer into the document is walked segment by segment on every request.
    """
    if isinstance(node, list):
        return [_own_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str) and value.startswith(_SCHEMA_REF):
            out[key] = _schema_uri(value[len(_SCHEMA_REF) :])
        else:
            out[key] = value if key in _LITERALS else _own_refs(value)
    return out


@cache
def _validator(schema_name: str, form_only: bool = False) -> Draft202012Validator:
    document = openapi()
    resources = [(SPEC_URI, Resource.from_contents(document, DRAFT202012))]
    for name, node in document["components"]["schemas"].items():
        resources.append((_schema_uri(name), DRAFT202012.create_resource(_own_refs(node))))
    registry: Registry[Any] = Registry().with_resources(resources)
    root = _own_refs(document["components"]["schemas"][schema_name])
    if form_only:  # the object's own allOf left out: rules checked in code first
        root = {k: v for k, v in root.items() if k != "allOf"}
    return Draft202012Validator(root, registry=registry, format_checker=formats())


def field_path(parts: Iterable[str | int]) -> str:
    """Render a JSON path as ``camera_control.config.pan`` or ``image_list[0].image``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _is_model_error(error: ValidationError) -> bool:
    return error.validator == "enum" and list(error.absolute_path) in (["model_name"], ["model"])


def _dependent(error: ValidationError) -> tuple[str, list[str]]:
    """The field of a ``dependentRequired`` error and the fields it needs that are missing."""
    for name, needs in error.validator_value.items():
        missing = [n for n in needs if n not in error.instance]
        if name in error.instance and missing:
            return str(name), missing
    return "", []


def _field_of(error: ValidationError) -> str | None:
    """Name the field an error is about: the missing, unknown or dependent key when there is one."""
    parts = list(error.absolute_path)
    kind = error.validator
    if kind in ("required", "additionalProperties", "dependentRequired") and isinstance(
        error.instance, dict
    ):
        if kind == "required":
            keys = [k for k in error.validator_value if k not in error.instance]
        elif kind == "dependentRequired":
            keys = [_dependent(error)[0]]
        else:
            keys = sorted(k for k in error.instance if k not in error.schema.get("properties", {}))
        parts += keys[:1]
    return field_path(parts) or None


def _describe(error: ValidationError, where: str | None = None) -> str:
    """Turn one JSON Schema error into 'field: what was wrong, what was expected'."""
    where = where or field_path(error.absolute_path)
    custom = error.schema.get("x-messages", {}) if isinstance(error.schema, dict) else {}
    kind, value, expected = error.validator, error.instance, error.validator_value
    if kind == "required":
        missing = [name for name in expected if name not in value]
        name = field_path([*error.absolute_path, missing[0]]) if missing else where
        return f"{name} {custom.get(kind, 'is required')}"
    if kind in custom:
        return f"{where} {custom[kind]}" if where else str(custom[kind])
    if kind == "dependentRequired":
        name, missing = _dependent(error)
        return f"{field_path([*error.absolute_path, name])} requires {', '.join(missing)}"
    if kind == "format" and error.cause is not None:
        return f"{where} {error.cause}"
    if kind == "additionalProperties":
        known = set(error.schema.get("properties", {}))
        extra = sorted(k for k in value if k not in known)
        prefix = f"{where}: " if where else ""
        return f"{prefix}unknown field {extra[0]!r}; expected only {', '.join(sorted(known))}"
    if kind == "type":
        return f"{where} must be of type {expected}, got {json_type(value)}"
    if kind == "enum":
        choices = ", ".join(repr(c) for c in expected)
        return f"{where} must be one of {choices}; got {value!r}"
    if kind == "const":
        return f"{where} must be {expected!r}; got {value!r}"
    if kind in ("minimum", "maximum"):
        low, high = error.schema.get("minimum"), error.schema.get("maximum")
        span = (
            f"between {low} and {high}"
            if low is not None and high is not None
            else (f"at least {low}" if low is not None else f"at most {high}")
        )
        return f"{where} must be {span}; got {value!r}"
    if kind == "maxLength":
        return f"{where} must be at most {expected} characters; got {len(value)}"
    if kind == "minLength":
        return (
            f"{where} must not be empty"
            if expected == 1
            else (f"{where} must be at least {expected} characters; got {len(value)}")
        )
    if kind in ("maxItems", "minItems"):
        bound = "at most" if kind == "maxItems" else "at least"
        return f"{where} must have {bound} {expected} items; got {len(value)}"
    return f"{where}: {error.message}" if where else error.message


def validate(schema_name: str, instance: object, *, form_only: bool = False) -> None:
    """Raise :class:`ContractViolation` for the first way ``instance`` breaks ``schema_name``
    (``form_only``: leaving out the schema's top-level ``allOf``, the rules of a 2026 body's
    contents, which :mod:`kling_testkit.spec.contents` checks with clearer messages)."""
    errors = list(_validator(schema_name, form_only).iter_errors(instance))
    if not errors:
        return
    for error in errors:
        if _is_model_error(error):
            name = field_path(error.absolute_path)
            raise ContractViolation(
                f"{name} {error.instance!r} does not exist; available models: "
                f"{', '.join(error.validator_value)}",
                field=name,
                code=ErrorCode.RESOURCE_NOT_FOUND,
            )
    first = min(
        errors, key=lambda e: (_PRIORITY.get(str(e.validator), 3), field_path(e.absolute_path))
    )
    raise ContractViolation(_describe(first), field=_field_of(first))


@cache
def _query_validator(schema_text: str) -> Draft202012Validator:
    """One validator per distinct parameter schema (keyed by its text, so a changed document
    gets new ones), instead of one per request."""
    return Draft202012Validator(json.loads(schema_text))


def parse_query(
    parameters: Mapping[str, dict[str, Any]], query: Mapping[str, str]
) -> dict[str, Any]:
    """Convert and check query parameters against their documented schemas; fill defaults.

    ``parameters`` maps a query name to its OpenAPI parameter object.
    """
    out: dict[str, Any] = {}
    for name, param in parameters.items():
        schema: dict[str, Any] = param["schema"]
        if name not in query:
            if param.get("required"):
                raise ContractViolation(f"query parameter {name} is required", field=name)
            if "default" in schema:
                out[name] = schema["default"]
            continue
        raw = query[name]
        value: Any = raw
        if schema.get("type") == "integer":
            digits = raw.strip().removeprefix("-")
            if not (digits.isascii() and digits.isdigit()):
                raise ContractViolation(
                    f"query parameter {name} must be an integer; got {raw[:40]!r}", field=name
                )
            if len(digits.lstrip("0")) > MAX_QUERY_DIGITS:
                raise ContractViolation(
                    f"query parameter {name} is out of range: an integer of at most "
                    f"{MAX_QUERY_DIGITS} digits; got {len(digits)} digits",
                    field=name,
                )
            value = int(raw.strip())
        checker = _query_validator(json.dumps(resolve(schema), sort_keys=True))
        error = next(iter(checker.iter_errors(value)), None)
        if error is not None:
            raise ContractViolation(_describe(error, f"query parameter {name}"), field=name)
        out[name] = value
    return out
