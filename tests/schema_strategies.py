"""Hypothesis strategies from the mock's own JSON Schemas (config, rules), valid and mutated.

hypothesis-jsonschema would do this, but its last release (0.23.1) breaks on current Hypothesis
(``'many' object has no attribute 'more'``), so this covers the subset of JSON Schema that the
mock's config and rule schemas use. Every generated value is checked against the schema with
``jsonschema`` itself, so a gap here can only make generation narrower, never wrong.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st
from jsonschema import Draft202012Validator

Schema = dict[str, Any]
MAX_STRING = 24  # generated strings stay short: the bounds themselves are tested elsewhere
MAX_ITEMS = 3


def _number(schema: Schema, integer: bool) -> st.SearchStrategy[Any]:
    """Numbers within the bounds (exclusive bounds are left to the final schema check)."""
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    ints = st.integers(
        None if low is None else math.ceil(low), None if high is None else math.floor(high)
    )
    if integer:
        return ints
    return ints | st.floats(low, high, allow_nan=False, allow_infinity=False)


def _string(schema: Schema) -> st.SearchStrategy[str]:
    low, high = schema.get("minLength", 0), min(schema.get("maxLength", MAX_STRING), MAX_STRING)
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True).filter(
            lambda s: low <= len(s) <= schema.get("maxLength", 10**9)
        )
    return st.text(min_size=low, max_size=max(low, high))


def _object(schema: Schema) -> st.SearchStrategy[dict[str, Any]]:
    props: dict[str, Schema] = schema.get("properties", {})
    required = set(schema.get("required", []))
    fixed = st.fixed_dictionaries(
        {k: from_schema(v) for k, v in props.items() if k in required},
        optional={k: from_schema(v) for k, v in props.items() if k not in required},
    )
    extra = schema.get("additionalProperties", True)
    if extra is False:
        return fixed
    values = from_schema(extra) if isinstance(extra, dict) else st.integers()
    names = from_schema({"type": "string", "maxLength": 12, **schema.get("propertyNames", {})})
    more = st.dictionaries(names, values, max_size=min(schema.get("maxProperties", 2), 2))
    return st.tuples(fixed, more).map(lambda pair: {**pair[1], **pair[0]})


def _typed(schema: Schema, kind: str) -> st.SearchStrategy[Any]:
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        return _number(schema, integer=kind == "integer")
    if kind == "string":
        return _string(schema)
    if kind == "array":
        items = from_schema(schema.get("items", {}))
        high = min(schema.get("maxItems", MAX_ITEMS), MAX_ITEMS)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=max(high, 0))
    if kind == "object":
        return _object(schema)
    raise ValueError(f"unsupported type {kind!r}")


def _unchecked(schema: Schema) -> st.SearchStrategy[Any]:
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("oneOf", "anyOf"):
        if key in schema:
            base = {k: v for k, v in schema.items() if k != key}
            return st.one_of([_unchecked({**base, **sub}) for sub in schema[key]])
    kind = schema.get("type")
    if kind is None:
        return json_values
    kinds = kind if isinstance(kind, list) else [kind]
    return st.one_of([_typed(schema, k) for k in kinds])


def from_schema(schema: Schema) -> st.SearchStrategy[Any]:
    """Values valid against ``schema`` (checked with jsonschema)."""
    validator = Draft202012Validator(schema)
    return _unchecked(schema).filter(validator.is_valid)


json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> Any:
    """A valid value with one change: a value replaced, a key dropped or an unknown key added."""
    value = draw(valid)
    path = draw(st.sampled_from(_paths(value)))
    how = draw(st.sampled_from(["replace", "drop", "add"]))
    target: Any = value
    for part in path:
        target = target[part]
    if how == "drop" and path:
        parent_path, last = path[:-1], path[-1]
        parent: Any = value
        for part in parent_path:
            parent = parent[part]
        if isinstance(parent, dict):
            return _replace(value, parent_path, {k: v for k, v in parent.items() if k != last})
        return _replace(value, parent_path, [v for i, v in enumerate(parent) if i != last])
    if how == "add" and isinstance(target, dict):
        key = draw(st.text(min_size=1, max_size=8))
        return _replace(value, path, {**target, key: draw(json_values)})
    edge = st.sampled_from([-1, 0, 10**18, -(10**18), 1e308, "", "x" * 300, [], {}, True, None])
    return _replace(value, path, draw(json_values | edge))
