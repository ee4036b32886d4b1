"""Hypothesis strategies for create bodies of the 2026 design (``contents[]``, ``settings{}``,
``options{}``), used by :func:`kling_testkit.strategies.requests` and
:func:`kling_testkit.strategies.invalid_requests` for a family whose ``design`` is ``"2026"``.

Everything is read from the contract: the content types a model takes and each item's fields
(the request schema's ``items`` and ``ContentItem`` conditionals), the settings and their
ranges, and the rules a schema cannot say (``x-kling-family.contents``: ``counts``, ``needs``
and ``rules``). A body is planned as counts of each content type and the settings sent, then
repaired rule by rule until :func:`violations` finds nothing; only then are the items drawn.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from kling_testkit import strategies as base
from kling_testkit.spec import families, field, schema
from kling_testkit.spec.document import resolve
from kling_testkit.spec.validation import field_path

__all__ = ["Violation", "invalid_requests", "valid_requests", "violations"]

Body = dict[str, Any]
_CONTENTS_RULES = ("counts", "needs", "unique", "requires", "excludes", "max_total", "settings")
_ROOM = 4  # a type allowed many items gets at most this many beyond its minimum: enough to meet
# every cap of the contract (the largest is 7) while keeping bodies small


@dataclass(frozen=True)
class Violation:
    """One rule of a family's ``x-kling-family.contents`` that a body breaks.

    ``rule`` is ``counts``, ``needs``, ``unique`` (a repeated item ``id``), or the part of a
    ``rules`` entry that is broken: ``requires``, ``excludes``, ``max_total`` or ``settings``;
    ``field`` is the field :func:`~kling_testkit.spec.check_request` names for it.
    """

    rule: str
    field: str


@dataclass(frozen=True)
class _Shape:
    """What the schema of one 2026 family says of its items and settings."""

    types: tuple[str, ...]
    max_items: int
    item_rules: tuple[dict[str, Any], ...]  # the family's conditionals first, then ContentItem's
    item_props: dict[str, Any]
    settings: dict[str, Any]
    settings_required: bool


@cache
def _shape(family: str) -> _Shape:
    request = schema(families()[family].request_schema)
    contents = resolve(request["properties"]["contents"])
    parts: list[dict[str, Any]] = contents["items"]["allOf"]
    item = resolve(next(p for p in parts if "$ref" in p))
    types: list[str] = list(item["properties"]["type"]["enum"])
    for part in parts:  # the family narrows the types an item may have
        narrowed = part.get("properties", {}).get("type", {}).get("enum")
        if narrowed is not None:
            types = [t for t in types if t in narrowed]
    rules = [p for p in parts if "if" in p] + [r for r in item.get("allOf", []) if "if" in r]
    return _Shape(
        tuple(types),
        int(contents["maxItems"]),
        tuple(rules),
        dict(item["properties"]),
        field(families()[family].request_schema, "settings"),
        "settings" in request.get("required", []),
    )


def _ranges(family: str) -> dict[str, tuple[int, int]]:
    """Each content type's ``[min, max]`` items (a type the counts leave out: 0 to maxItems)."""
    shape = _shape(family)
    counts = families()[family].contents.get("counts", {})
    return {t: tuple(counts.get(t, (0, shape.max_items))) for t in shape.types}


def _holds(cond: Mapping[str, Any], types: Counter[str], settings: Mapping[str, Any]) -> bool:
    if any(types[t] for t in cond.get("contents", ())):
        return True
    return any(settings.get(k) in values for k, values in cond.get("settings", {}).items())


def _effective(family: str, given: Mapping[str, Any]) -> dict[str, Any]:
    props = _shape(family).settings["properties"]
    return {**{k: n["default"] for k, n in props.items() if "default" in n}, **given}


def _applying(
    family: str, types: Counter[str], given: Mapping[str, Any]
) -> Iterator[tuple[int, dict[str, Any], dict[str, Any]]]:
    """The rules that apply, in order, with the effective settings each one sees (a rule that
    limits a setting left out sets it to its first allowed value, as the mock does)."""
    settings = _effective(family, given)
    for index, rule in enumerate(families()[family].contents.get("rules", ())):
        if "when" in rule and not _holds(rule["when"], types, settings):
            continue
        if "unless" in rule and _holds(rule["unless"], types, settings):
            continue
        yield index, rule, settings
        for name, allowed in rule.get("settings", {}).items():
            if settings.get(name) not in allowed:
                settings[name] = allowed[0]


def _plan_violations(
    family: str, types: Counter[str], given: Mapping[str, Any]
) -> list[tuple[Violation, int | None, Any]]:
    """Every broken rule of a plan (counts of each type, the settings sent), with the index of
    the ``rules`` entry and what is wrong (the types or setting involved)."""
    meta = families()[family].contents
    out: list[tuple[Violation, int | None, Any]] = []
    for kind, (least, most) in _ranges(family).items():
        if not least <= types[kind] <= most:
            out.append((Violation("counts", "contents"), None, kind))
    for kind, needed in meta.get("needs", {}).items():
        missing = [n for n in needed if types[kind] and not types[n]]
        if missing:
            out.append((Violation("needs", "contents"), None, (kind, missing)))
    for index, rule, _ in _applying(family, types, given):
        for name in rule.get("requires", ()):
            if name not in given:
                out.append((Violation("requires", f"settings.{name}"), index, name))
        banned = [t for t in rule.get("excludes", ()) if types[t]]
        if banned:
            out.append((Violation("excludes", "contents"), index, banned))
        total = rule.get("max_total")
        if total is not None and sum(types[t] for t in total["types"]) > int(total["max"]):
            out.append((Violation("max_total", "contents"), index, total))
        for name, allowed in rule.get("settings", {}).items():
            if name in given and given[name] not in allowed:
                out.append((Violation("settings", f"settings.{name}"), index, (name, allowed)))
    return out


def violations(family: str, body: Mapping[str, Any]) -> list[Violation]:
    """Every rule of ``x-kling-family.contents`` a schema-valid 2026 body breaks (all of them,
    where :func:`~kling_testkit.spec.check_request` stops at the first), in the order it checks.
    """
    items: list[dict[str, Any]] = list(body.get("contents", ()))
    types: Counter[str] = Counter(item["type"] for item in items)
    found = [v for v, _, _ in _plan_violations(family, types, body.get("settings", {}))]
    seen: set[str] = set()
    for index, item in enumerate(items):
        handle = item.get("id")
        if handle is not None and handle in seen:
            found.append(Violation("unique", f"contents[{index}].id"))
        if handle is not None:
            seen.add(handle)
    order = {rule: n for n, rule in enumerate(("counts", "needs", "unique"))}
    return sorted(found, key=lambda v: order.get(v.rule, len(order)))


def _allowed_values(family: str, name: str, allowed: list[Any]) -> list[Any]:
    node = resolve(_shape(family).settings["properties"][name])
    check = Draft202012Validator(node)
    return [v for v in allowed if check.is_valid(v)]


def _repair(
    draw: st.DrawFn, family: str, types: Counter[str], given: dict[str, Any], pinned: set[str]
) -> None:
    """Change the plan until it breaks no rule; types in ``pinned`` keep their count. A plan
    that cannot be repaired is rejected (``assume``)."""
    ranges = _ranges(family)
    shape = _shape(family)
    rules = families()[family].contents.get("rules", ())

    def drop(kinds: list[str]) -> bool:
        free = [k for k in kinds if k not in pinned and ranges[k][0] == 0]
        for kind in free:
            types[kind] = 0
        return bool(free)

    for _ in range(4 * len(ranges) + 4 * len(rules) + 8):
        while sum(types.values()) > shape.max_items:  # the schema's maxItems
            spare = [k for k in types if types[k] > ranges[k][0] and k not in pinned]
            assume(spare)
            types[max(spare, key=lambda k: types[k])] -= 1
        found = _plan_violations(family, types, given)
        if not found:
            return
        broken, index, what = found[0]
        if broken.rule == "needs":
            kind, _ = what
            assume(drop([kind]))  # the needy type goes: repairs only take away
        elif broken.rule == "requires":
            node = shape.settings["properties"][what]
            given[what] = draw(base._from_schema(node))
        elif broken.rule == "excludes":
            when = rules[index or 0].get("when", {}).get("contents", [])
            assume(drop(what) or drop([k for k in when if types[k]]))
        elif broken.rule == "max_total":
            over = sum(types[t] for t in what["types"]) - int(what["max"])
            for kind in reversed(what["types"]):
                cut = min(over, types[kind] - ranges[kind][0]) if kind not in pinned else 0
                types[kind] -= max(cut, 0)
                over -= max(cut, 0)
            assume(over <= 0)
        elif broken.rule == "settings":
            name, allowed = what
            values = _allowed_values(family, name, allowed)
            assume(values)
            given[name] = draw(st.sampled_from(values))
        else:  # counts: only a pinned range can leave them
            assume(False)
    assume(False)


@st.composite
def _plan(
    draw: st.DrawFn, family: str, pins: Mapping[str, tuple[int, int]] | None = None
) -> tuple[Counter[str], dict[str, Any]]:
    """Counts of each content type and the settings sent, breaking no rule; ``pins`` narrow the
    count ranges of some types (and those are never changed by the repairs)."""
    pins = pins or {}
    shape = _shape(family)
    types: Counter[str] = Counter()
    for kind, (least, most) in _ranges(family).items():
        low, high = pins.get(kind, (least, min(most, least + _ROOM)))
        types[kind] = draw(st.integers(low, high))
    given: dict[str, Any] = {}
    if shape.settings_required or draw(st.booleans()):
        given = draw(base._from_schema(shape.settings))
    _repair(draw, family, types, given, set(pins))
    return types, given


def _item_fields(family: str, kind: str) -> tuple[dict[str, Any], list[str], list[str]]:
    """For an item of ``kind``: the schema of each field it may have, the required fields and
    the optional ones (from the conditionals of the family's items and of ``ContentItem``)."""
    shape = _shape(family)
    nodes: dict[str, Any] = {}
    forbidden: set[str] = set()
    required: list[str] = []
    for rule in shape.item_rules:
        if not Draft202012Validator(rule["if"]).is_valid({"type": kind}):
            continue
        then = rule.get("then", {})
        required += [k for k in then.get("required", []) if k not in required]
        for key, node in then.get("properties", {}).items():
            if node is False:
                forbidden.add(key)
            elif key not in nodes:
                nodes[key] = node
    names = [k for k in shape.item_props if k != "type" and k not in forbidden]
    nodes = {k: nodes.get(k, shape.item_props[k]) for k in names}
    return nodes, required, [k for k in names if k not in required]


@cache
def _field_strategy(family: str, kind: str, key: str) -> st.SearchStrategy[Any]:
    node = resolve(_item_fields(family, kind)[0][key])
    if key == "id":  # a handle; made unique by its index when the items are drawn
        room = int(node["maxLength"]) - 4
        return st.from_regex(node["pattern"], fullmatch=True).filter(lambda s: len(s) <= room)
    return base._from_schema(node)


@st.composite
def _items(draw: st.DrawFn, family: str, types: Counter[str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for kind in _shape(family).types:
        nodes, required, optional = _item_fields(family, kind)
        for _ in range(types[kind]):
            keys = [*required, *draw(st.lists(st.sampled_from(optional), unique=True))]
            item = {"type": kind}
            for key in (k for k in nodes if k in keys):
                item[key] = draw(_field_strategy(family, kind, key))
            items.append(item)
    items = list(draw(st.permutations(items)))
    for index, item in enumerate(items):
        if "id" in item:
            item["id"] = f"{item['id']}_{index}"
    return items


@st.composite
def _options(draw: st.DrawFn, family: str) -> Body:
    props = resolve(field(families()[family].request_schema, "options"))["properties"]
    special: dict[str, st.SearchStrategy[Any]] = {
        "external_task_id": base.external_task_ids(),
        "callback_url": st.builds("https://example.com/hooks/{}".format, base._tokens()),
    }
    chosen = draw(st.lists(st.sampled_from(sorted(props)), unique=True))
    return {
        k: draw(special[k] if k in special else base._from_schema(props[k]))
        for k in props
        if k in chosen
    }


def _assemble(draw: st.DrawFn, family: str, types: Counter[str], given: dict[str, Any]) -> Body:
    body: Body = {"contents": draw(_items(family, types))}
    if given or _shape(family).settings_required:
        body["settings"] = given
    if draw(st.booleans()):
        body["options"] = draw(_options(family))
    return body


@st.composite
def valid_requests(draw: st.DrawFn, family: str) -> Body:
    """A valid create body of a 2026 family (what ``strategies.requests`` returns for one)."""
    types, given = draw(_plan(family))
    return _assemble(draw, family, types, given)


# -- invalid bodies ---------------------------------------------------------------------------


def _schema_breaks(family: str, body: Body) -> list[tuple[str, tuple[str | int, ...]]]:
    """Every (rule, path) of the schema one change of ``body`` can break alone."""
    shape = _shape(family)
    request = schema(families()[family].request_schema)
    out: list[tuple[str, tuple[str | int, ...]]] = [("unknown_field", ())]
    out += [("required", (k,)) for k in request.get("required", []) if k in body]
    for index, item in enumerate(body["contents"]):
        out.append(("unknown_field", ("contents", index)))
        out.append(("enum", ("contents", index, "type")))
        nodes, required, _ = _item_fields(family, item["type"])
        out += [("required", ("contents", index, k)) for k in required]
        for key in item:
            if key == "type":
                continue
            node = resolve(nodes[key])
            if "x-kling-image" not in node:  # images: their limit is megabytes
                out.append(("maxLength", ("contents", index, key)))
            if key == "text":
                out += [("pattern", ("contents", index, key)), ("type", ("contents", index, key))]
    settings = body.get("settings")
    if settings is not None:
        out.append(("unknown_field", ("settings",)))
        out += [("required", ("settings", k)) for k in shape.settings.get("required", [])]
        for key in settings:
            node = resolve(shape.settings["properties"][key])
            out.append(("enum" if "enum" in node else "type", ("settings", key)))
            if "minimum" in node or "maximum" in node:
                out.append(("range", ("settings", key)))
    options = body.get("options")
    if options is not None:
        out.append(("unknown_field", ("options",)))
        out += [("maxLength", ("options", k)) for k in options if isinstance(options[k], str)]
        if "watermark_info" in options:
            out += [
                ("unknown_field", ("options", "watermark_info")),
                ("required", ("options", "watermark_info", "enabled")),
                ("type", ("options", "watermark_info", "enabled")),
            ]
    return out


def _node_at(family: str, body: Body, path: tuple[str | int, ...]) -> dict[str, Any]:
    """The schema node governing the value at ``path`` (for the paths of ``_schema_breaks``)."""
    shape = _shape(family)
    if path[0] == "contents":
        item = body["contents"][path[1]]
        if len(path) == 2:
            return {"properties": shape.item_props}
        nodes = _item_fields(family, item["type"])[0]
        return resolve(nodes[str(path[2])]) if path[2] != "type" else shape.item_props["type"]
    if path[0] == "settings":
        if len(path) == 1:
            return shape.settings
        return resolve(shape.settings["properties"][path[1]])
    node = resolve(field(families()[family].request_schema, "options"))
    for key in path[1:]:
        node = resolve(node["properties"][key])
    return node


def _break_schema(
    draw: st.DrawFn, family: str, body: Body, only: str | None
) -> base.InvalidRequest:
    options = _schema_breaks(family, body)
    if only is not None:
        options = [(r, p) for r, p in options if r == only]
        assume(options)
    rule = draw(st.sampled_from(sorted({r for r, _ in options})))
    path = draw(st.sampled_from([p for r, p in options if r == rule]))
    parent: Any = body
    for key in path[:-1] if rule != "unknown_field" else path:
        parent = parent[key]
    if rule == "unknown_field":
        known = schema(families()[family].request_schema)["properties"] if not path else None
        names = set(known or _node_at(family, body, path).get("properties", {}))
        typos = st.sampled_from(sorted(names)).map(lambda k: k[:-1])
        key = draw(
            (typos | st.from_regex(r"[a-z][a-z0-9_]{0,19}", fullmatch=True)).filter(
                lambda k: k and k not in names
            )
        )
        parent[key] = draw(st.booleans() | st.integers() | base._tokens())
        return base.InvalidRequest(body=body, field=field_path((*path, key)), rule=rule)
    last = path[-1]
    if rule == "required":
        del parent[last]
        return base.InvalidRequest(body=body, field=field_path(path), rule=rule)
    node = _node_at(family, body, path)
    value = parent[last]
    if rule == "enum" and node.get("type") == "integer":  # an integer the enum has not
        broken: Any = draw(st.integers(-1000, 1000).filter(lambda v: v not in node["enum"]))
    elif rule == "type" and isinstance(value, bool):
        broken = draw(st.sampled_from(["true", 1, None]))
    else:
        broken = base._broken_value(draw, rule, node, value)
    parent[last] = broken
    return base.InvalidRequest(body=body, field=field_path(path), rule=rule)


def _target(family: str, rule: str) -> list[tuple[int | None, Any]]:
    """The places of the contract a contents rule can be broken at: (rules index, detail)."""
    meta = families()[family].contents
    ranges = _ranges(family)
    if rule == "counts":
        return [(None, k) for k in ranges]
    if rule == "needs":  # without breaking the counts: the needed type may be absent
        return [
            (None, (kind, need))
            for kind, needed in meta.get("needs", {}).items()
            for need in needed
            if ranges[need][0] == 0
        ]
    if rule == "unique":
        return [(None, None)] if sum(hi for _, hi in ranges.values()) >= 2 else []
    return [
        (index, entry[rule]) for index, entry in enumerate(meta.get("rules", ())) if entry.get(rule)
    ]


def _pins_for(family: str, rule: str, index: int | None, detail: Any) -> dict[str, tuple[int, int]]:
    """Counts that make the target applicable before it is broken."""
    ranges = _ranges(family)
    pins: dict[str, tuple[int, int]] = {}
    if rule == "needs":  # both there, then the needed one taken away (repairs only take away)
        kind, need = detail
        return {kind: (1, ranges[kind][1]), need: (1, ranges[need][1])}
    if index is None:
        return pins
    entry = families()[family].contents["rules"][index]
    when = [k for k in entry.get("when", {}).get("contents", []) if ranges[k][1] > 0]
    if when:
        kind = when[0]
        pins[kind] = (max(1, ranges[kind][0]), ranges[kind][1])
    for kind in entry.get("unless", {}).get("contents", []):
        if ranges[kind][0] == 0 and kind not in pins:
            pins[kind] = (0, 0)
    return pins


@st.composite
def _break_contents(draw: st.DrawFn, family: str, rule: str) -> base.InvalidRequest:
    index, detail = draw(st.sampled_from(_target(family, rule)))
    pins = _pins_for(family, rule, index, detail)
    types, given = draw(_plan(family, pins))
    ranges = _ranges(family)
    field_name = "contents"
    if rule == "counts":
        least, most = ranges[detail]
        below = least > 0 and draw(st.booleans())
        types[detail] = least - 1 if below else most + 1
        assume(0 < sum(types.values()) <= _shape(family).max_items)
    elif rule == "needs":
        types[detail[1]] = 0
    elif rule == "requires":
        assume(detail[0] in given)
        field_name = f"settings.{detail[0]}"
        del given[detail[0]]
    elif rule == "excludes":
        kind = draw(st.sampled_from(detail))
        types[kind] += 1
    elif rule == "max_total":
        room = int(detail["max"]) - sum(types[t] for t in detail["types"])
        for kind in detail["types"]:
            extra = min(room + 1, ranges[kind][1] - types[kind])
            types[kind] += max(extra, 0)
            room -= max(extra, 0)
        assume(room < 0)
    elif rule == "settings":
        name = draw(st.sampled_from(sorted(detail)))
        others = [v for v in _setting_values(family, name) if v not in detail[name]]
        assume(others)
        given[name] = draw(st.sampled_from(others))
        field_name = f"settings.{name}"
    body = _assemble(draw, family, types, given)
    if rule == "unique":
        assume(len(body["contents"]) >= 2)
        first, second = sorted(draw(st.permutations(range(len(body["contents"]))))[:2])
        handle = body["contents"][first].get("id") or f"@item_{first}"
        body["contents"][first]["id"] = body["contents"][second]["id"] = handle
        field_name = f"contents[{second}].id"
    found = violations(family, body)
    assume([(v.rule, v.field) for v in found] == [(rule, field_name)])
    return base.InvalidRequest(body=body, field=field_name, rule=rule)


def _setting_values(family: str, name: str) -> list[Any]:
    """Every value the schema allows a setting: its enum, both booleans, or its integer range."""
    node = resolve(_shape(family).settings["properties"][name])
    if "enum" in node:
        return list(node["enum"])
    if node.get("type") == "boolean":
        return [True, False]
    return list(range(int(node["minimum"]), int(node["maximum"]) + 1))


@st.composite
def _invalid_schema(draw: st.DrawFn, family: str, only: str | None) -> base.InvalidRequest:
    body = copy.deepcopy(draw(valid_requests(family)))
    if draw(st.booleans()):  # the settings left out, sent with their defaults: more to break
        props = _shape(family).settings["properties"]
        defaults = {k: n["default"] for k, n in props.items() if "default" in n}
        body["settings"] = {**defaults, **body.get("settings", {})}
        assume(not violations(family, body))
    return _break_schema(draw, family, body, only)


def invalid_requests(
    family: str, rules: Sequence[str] | None = None
) -> st.SearchStrategy[base.InvalidRequest]:
    """A valid body of a 2026 family with one rule broken: one of the schema's (the
    :class:`~kling_testkit.strategies.InvalidRequest` rules of the legacy design) or one of
    ``x-kling-family.contents`` (``counts``, ``needs``, ``unique``, ``requires``, ``excludes``,
    ``max_total``, ``settings``) the family has; ``rules`` picks some of those (a rule the
    family cannot break alone is never drawn)."""
    reachable = [r for r in _CONTENTS_RULES if _target(family, r)]
    if rules is None:
        contents = st.one_of(*(_break_contents(family, r) for r in reachable))
        return st.one_of(_invalid_schema(family, None), contents)  # half and half
    parts = [_break_contents(family, r) for r in rules if r in reachable]
    parts += [_invalid_schema(family, r) for r in rules if r not in _CONTENTS_RULES]
    return st.one_of(parts)
