"""The rules of a 2026 family's ``contents`` (``x-kling-family.contents``) as JSON Schema.

The rules are written once, as data, in the family's ``x-kling-family.contents``; the code
that checks them with messages a client can act on is :mod:`kling_testkit.spec.contents`.
This module states the same rules in JSON Schema and :func:`kling_testkit.spec.document.openapi`
adds them to each 2026 request schema (its ``allOf``), so a tool that reads only the schema
(Schemathesis, a validator, a generator) knows them too. ``tests/test_design_2026.py`` checks
that the two agree. One rule stays in code alone: no two items of a task share a handle
(``id``), which JSON Schema cannot say.

Rules apply to what a body sends; a setting it leaves out takes its documented default, so a
condition on a setting holds for an absent one when the default is among its values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["rules_schema"]

Node = dict[str, Any]


def _has(types: Sequence[str]) -> Node:
    """Contents has an item of any of ``types``."""
    item = {"required": ["type"], "properties": {"type": {"enum": list(types)}}}
    return {"required": ["contents"], "properties": {"contents": {"contains": item}}}


def _count(types: Sequence[str], least: int, most: int) -> Node:
    item = {"required": ["type"], "properties": {"type": {"enum": list(types)}}}
    bounds = {"contains": item, "minContains": least, "maxContains": most}
    return {"properties": {"contents": bounds}}


def _setting_in(name: str, values: Sequence[Any], defaults: Mapping[str, Any]) -> Node:
    """The effective setting ``name`` (sent, else its default) is one of ``values``."""
    sent = {"required": ["settings"], "properties": {"settings": {"required": [name]}}}
    one_of = {"properties": {"settings": {"properties": {name: {"enum": list(values)}}}}}
    if name in defaults and defaults[name] in values:
        return {"anyOf": [{"not": sent}, one_of]}  # left out: its default is one of them
    return {"allOf": [sent, one_of]}


def _condition(cond: Mapping[str, Any], defaults: Mapping[str, Any]) -> Node:
    """Any content type of ``cond.contents`` is there, or any setting has a listed value."""
    options = [_has(cond["contents"])] if cond.get("contents") else []
    options += [_setting_in(k, v, defaults) for k, v in cond.get("settings", {}).items()]
    return options[0] if len(options) == 1 else {"anyOf": options}


def _consequence(rule: Mapping[str, Any]) -> Node:
    parts: list[Node] = []
    for name, allowed in rule.get("settings", {}).items():
        limit = {"properties": {name: {"enum": list(allowed)}}}
        parts.append({"properties": {"settings": limit}})
    if rule.get("requires"):
        needed = {"required": list(rule["requires"])}
        parts.append({"required": ["settings"], "properties": {"settings": needed}})
    if rule.get("excludes"):
        parts.append({"not": _has(rule["excludes"])})
    total = rule.get("max_total")
    if total is not None:
        parts.append(_count(total["types"], 0, int(total["max"])))
    return parts[0] if len(parts) == 1 else {"allOf": parts}


def rules_schema(contents: Mapping[str, Any], defaults: Mapping[str, Any]) -> list[Node]:
    """The ``allOf`` entries stating a family's contents rules; ``defaults`` are the
    documented defaults of its settings."""
    found: list[Node] = []
    for kind, (least, most) in contents.get("counts", {}).items():
        found.append(_count([kind], int(least), int(most)))
    for kind, needed in contents.get("needs", {}).items():
        found.append({"if": _has([kind]), "then": {"allOf": [_has([n]) for n in needed]}})
    for rule in contents.get("rules", ()):
        conditions = [_condition(rule["when"], defaults)] if "when" in rule else []
        if "unless" in rule:
            conditions.append({"not": _condition(rule["unless"], defaults)})
        then = _consequence(rule)
        if not conditions:
            found.append(then)
        else:
            found.append(
                {
                    "if": conditions[0] if len(conditions) == 1 else {"allOf": conditions},
                    "then": then,
                }
            )
    return found
