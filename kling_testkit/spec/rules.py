"""The full request check: the document's schema, plus the little a JSON Schema cannot say.

Every rule a schema can state is in the OpenAPI document (so the mock's validator and every
generator agree). What is left here is listed in the document's ``x-kling-rules``: text must be
Unicode (no unpaired surrogates), and the defaults and the ``model`` alias are folded into the
effective parameters. Inline images are checked by the ``kling-image-base64`` format
(:mod:`kling_testkit.spec.images`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from kling_testkit.spec.contents import effective_params
from kling_testkit.spec.document import DESIGN_2026, _defaults, families, schema
from kling_testkit.spec.images import check_base64_image, image_size
from kling_testkit.spec.validation import ContractViolation, field_path, json_type, validate

__all__ = ["check_body", "check_image", "check_request", "check_url", "image_size"]


def check_url(name: str, value: str) -> None:
    """Require an absolute http(s) URL with a host; the mock never fetches it."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # an unclosed or invalid IPv6 literal, such as http://[x
        host = None
    if host is None or parts.scheme not in ("http", "https") or any(c.isspace() for c in value):
        raise ContractViolation(f"{name} must be an absolute http(s) URL; got {value[:80]!r}", name)


def check_image(name: str, value: str) -> None:
    """Check an image given as an http(s) URL (form only) or as raw Base64 of a JPEG or PNG."""
    if value.lower().startswith(("http://", "https://")):
        check_url(name, value)
        return
    try:
        check_base64_image(value)
    except ValueError as exc:
        raise ContractViolation(f"{name} {exc}", name) from None


def _strings(value: object, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str, str]]:
    """Every string in a decoded JSON value (keys included), with the path that leads to it."""
    if isinstance(value, str):
        yield field_path(path), value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield field_path((*path, key)), key
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _check_unicode(body: dict[str, Any]) -> None:
    """Refuse unpaired surrogates (``"\\ud800"`` in JSON): they are no Unicode text."""
    for where, text in _strings(body):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ContractViolation(
                f"{where or 'request body'} must not contain unpaired surrogates", where or None
            ) from None


def check_body(schema_name: str, body: object) -> dict[str, Any]:
    """Validate the body of a request that creates no task (``schema_name`` is its request
    schema) and return it; :class:`ContractViolation` naming the first field that is wrong."""
    if not isinstance(body, dict):
        raise ContractViolation(f"request body must be a JSON object; got {json_type(body)}")
    _check_unicode(body)
    validate(schema_name, body)
    return body


def check_request(family: str, body: object) -> dict[str, Any]:
    """Validate a create body for ``family`` and return its effective parameters.

    Raises :class:`ContractViolation` naming the first field that is wrong. The result has every
    documented default filled in and the legacy ``model`` alias folded into ``model_name``; for
    a family of the 2026 design it is flat (:func:`kling_testkit.spec.contents.effective_params`).
    """
    found = families()[family]
    schema_name = found.request_schema
    if not isinstance(body, dict):
        raise ContractViolation(f"request body must be a JSON object; got {json_type(body)}")
    _check_unicode(body)
    if found.design == DESIGN_2026:  # contents[], settings{}, options{}: flattened
        validate(schema_name, body, form_only=True)  # the rules: with messages, in code
        params = effective_params(found, body)
        validate(schema_name, body)  # the same rules in the schema: never fails after them
        return params
    validate(schema_name, body)
    _check_decimals(schema_name, body)
    _check_references(schema_name, body)
    documented = _defaults(schema_name)  # read only: copied into params below
    params = {**documented, **body}
    if "model_name" in documented:
        params["model_name"] = str(
            body.get("model_name", body.get("model", documented["model_name"]))
        )
    params.pop("model", None)
    return params


def _check_decimals(schema_name: str, body: dict[str, Any]) -> None:
    """A number with ``x-kling-decimals: N`` has at most N decimals (``3.3``, not ``3.33``)."""
    for name, node in schema(schema_name)["properties"].items():
        places = node.get("x-kling-decimals")
        value = body.get(name)
        if places is None or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if round(value, places) != value:
            raise ContractViolation(
                f"{name} must have at most {places} decimal(s); got {value!r}", name
            )


def _check_references(schema_name: str, body: dict[str, Any]) -> None:
    """Arrays that share a cap (``x-kling-max-references``): together at most ``max`` items,
    fewer when a ``max_with`` field is sent."""
    rule = schema(schema_name).get("x-kling-max-references")
    if rule is None:
        return
    names: list[str] = rule["fields"]
    limit = int(rule["max"])
    for other, cap in rule.get("max_with", {}).items():
        if body.get(other):
            limit = min(limit, int(cap))
    total = sum(len(body.get(n) or ()) for n in names)
    if total > limit:
        raise ContractViolation(
            f"{' and '.join(names)} must have at most {limit} items together; got {total}",
            names[-1],
        )
