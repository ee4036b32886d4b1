"""Load the OpenAPI document and answer questions about it (families, schemas, defaults)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from kling_testkit.spec.contents_schema import rules_schema

SPEC_URI = "urn:kling-testkit:openapi"
LEGACY = "legacy"
"""The ``/v1`` design: ``model_name`` in the body, AK/SK tokens or an API key."""
DESIGN_2026 = "2026"
"""The design with the model in the path, an API key only, and ``/tasks`` to query."""


@cache
def openapi() -> dict[str, Any]:
    """Return the parsed OpenAPI 3.1 document shipped with the package (read once)."""
    text = resources.files(__package__).joinpath("openapi.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    _state_contents_rules(doc)
    return doc


def _state_contents_rules(doc: dict[str, Any]) -> None:
    """Add each 2026 family's contents rules to its request schema (see
    :mod:`kling_testkit.spec.contents_schema`): written once, as the family's data."""
    schemas = doc["components"]["schemas"]
    for item in doc["paths"].values():
        meta = item.get("post", {}).get("x-kling-family", {})
        if meta.get("design") != DESIGN_2026:
            continue
        ref = item["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        request = schemas[ref.rsplit("/", 1)[-1]]
        settings = request["properties"].get("settings", {}).get("properties", {})
        defaults = {k: v["default"] for k, v in settings.items() if "default" in v}
        request["allOf"] = rules_schema(meta.get("contents", {}), defaults)


@dataclass(frozen=True)
class Family:
    """A task family: where it lives, what it produces and what it costs.

    Everything here is read from the create operation's ``x-kling-family``: ``results`` (the
    ``task_result`` lists a task fills: ``videos``, ``images``, ``audios``), ``pack`` (the
    resource-pack kind it draws on and counts slots in), ``timing`` (default seconds queued and
    processing), ``price`` (its rule in ``x-kling-pricing``), ``seconds`` (where the length of
    its output comes from), ``parent`` (the earlier video it names, if any) and ``session``
    (the multi-elements selection session it names, if any). A family of the
    2026 design (``design == "2026"``: the model in the path, ``contents[]``/``settings{}``/
    ``options{}`` bodies, queried through ``/tasks``) also has its ``model``, the other names
    its path takes (``aliases``) and the rules of its ``contents``.
    """

    name: str
    path: str
    request_schema: str
    results: tuple[str, ...]
    pack: str
    timing: dict[str, float] = dataclasses.field(default_factory=dict)
    price: dict[str, Any] = dataclasses.field(default_factory=dict)
    seconds: dict[str, Any] = dataclasses.field(default_factory=dict)
    parent: dict[str, Any] | None = None
    aspect_ratio: str = "16:9"  # the result's shape when the request names none
    design: str = LEGACY
    model: str | None = None
    aliases: tuple[str, ...] = ()
    contents: dict[str, Any] = dataclasses.field(default_factory=dict)
    session: dict[str, Any] | None = None

    @property
    def paths(self) -> tuple[str, ...]:
        """Where its create is served: its path, then one per alias of its model."""
        base = self.path.rsplit("/", 1)[0]
        return (self.path, *(f"{base}/{alias}" for alias in self.aliases))

    @property
    def output(self) -> str:
        """The kind of its first result: ``"video"``, ``"image"`` or ``"audio"``."""
        return self.results[0].removesuffix("s")


def designs(design: str) -> dict[str, Family]:
    """The families of one design (``LEGACY`` or ``DESIGN_2026``), keyed by name."""
    return {name: f for name, f in families().items() if f.design == design}


@cache
def families() -> dict[str, Family]:
    """Every task family, keyed by name, read from the ``x-kling-family`` create operations."""
    found: dict[str, Family] = {}
    for path, item in openapi()["paths"].items():
        post = item.get("post")
        if not post or "x-kling-family" not in post:
            continue
        meta = post["x-kling-family"]
        ref: str = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        found[meta["name"]] = Family(
            meta["name"],
            path,
            ref.rsplit("/", 1)[-1],
            tuple(meta["results"]),
            meta["pack"],
            dict(meta["timing"]),
            dict(meta["price"]),
            dict(meta.get("seconds", {})),
            meta.get("parent"),
            meta.get("aspect_ratio", "16:9"),
            meta.get("design", LEGACY),
            meta.get("model"),
            tuple(meta.get("aliases", ())),
            dict(meta.get("contents", {})),
            meta.get("session"),
        )
    return found


def pack_kinds() -> list[str]:
    """Every resource-pack kind of the contract (``x-kling-limits``), in document order."""
    return list(openapi()["x-kling-limits"]["concurrency"])


def operation_path(operation_id: str) -> str:
    """The path of the operation with this ``operationId``."""
    for path, item in openapi()["paths"].items():
        if any(op.get("operationId") == operation_id for op in item.values()):
            return str(path)
    raise KeyError(operation_id)


def schema(name: str) -> dict[str, Any]:
    """Return a component schema by name."""
    schemas: dict[str, dict[str, Any]] = openapi()["components"]["schemas"]
    return schemas[name]


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (one level at a time, until none is left) and merge siblings."""
    while "$ref" in node:
        target = schema(node["$ref"].rsplit("/", 1)[-1])
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **siblings}
    return node


def field(request_schema: str, name: str) -> dict[str, Any]:
    """Return the resolved schema of one request field."""
    return resolve(schema(request_schema)["properties"][name])


def defaults(request_schema: str) -> dict[str, Any]:
    """Return the documented default of every field of a request schema that has one."""
    return dict(_defaults(request_schema))  # a copy: the caller may change it


@cache
def _defaults(request_schema: str) -> dict[str, Any]:
    """Read once per schema (every create needs them); dropped with the document's caches."""
    out: dict[str, Any] = {}
    for name in schema(request_schema)["properties"]:
        resolved = field(request_schema, name)
        if "default" in resolved:
            out[name] = resolved["default"]
    return out


@cache
def choices() -> dict[str, tuple[str, str]]:
    """Every ``<field>_<value>`` that names one enum value of a create field, e.g. ``mode_pro``.

    Config that depends on a request option (the mock's ``duration_multipliers``) names it so;
    the values themselves are only ever written in the document.
    """
    found: dict[str, tuple[str, str]] = {}
    for family in families().values():
        for name, node in schema(family.request_schema)["properties"].items():
            if node.get("deprecated"):  # a legacy alias is folded into its field
                continue
            for value in field(family.request_schema, name).get("enum", []):
                found.setdefault(f"{name}_{value}", (name, str(value)))
    return found


def enum_values(output: str, name: str) -> list[str]:
    """Every value of the ``name`` enum over the families producing ``output``, in order."""
    out: list[str] = []
    for family in families().values():
        if family.output == output and name in schema(family.request_schema)["properties"]:
            out += [str(v) for v in field(family.request_schema, name)["enum"] if str(v) not in out]
    return out


def _refuses(node: object) -> bool:
    """Whether a schema admits nothing: ``false`` or ``{"not": {}}`` (notes aside)."""
    if node is False:
        return True
    return isinstance(node, dict) and node.get("not") == {} and set(node) <= {"not", "x-messages"}


def _node(request_schema: str | dict[str, Any]) -> dict[str, Any]:
    return schema(request_schema) if isinstance(request_schema, str) else request_schema


def exclusions(request_schema: str | dict[str, Any]) -> dict[str, frozenset[str]]:
    """Fields that cannot be sent together, each way round: ``field -> fields it excludes``.

    Read from the schema's ``dependentSchemas``: ``{"A": {"properties": {"B": {"not": {}}}}}``
    says A and B exclude each other.
    """
    pairs: dict[str, set[str]] = {}
    for name, node in _node(request_schema).get("dependentSchemas", {}).items():
        for other, rule in node.get("properties", {}).items():
            if _refuses(rule):
                pairs.setdefault(name, set()).add(other)
                pairs.setdefault(other, set()).add(name)
    return {name: frozenset(others) for name, others in pairs.items()}


def requirements(request_schema: str | dict[str, Any]) -> dict[str, list[str]]:
    """Fields that need others (``dependentRequired``): ``field -> fields it needs``."""
    found: dict[str, list[str]] = _node(request_schema).get("dependentRequired", {})
    return found


def alternatives(request_schema: str | dict[str, Any]) -> list[list[str]]:
    """Groups of fields of which a body needs one, all present (``anyOf`` of ``required``)."""
    return [list(node["required"]) for node in _node(request_schema).get("anyOf", [])]


def parameter(name: str) -> dict[str, Any]:
    """Return a component parameter (its ``schema`` holds the limits)."""
    params: dict[str, dict[str, Any]] = openapi()["components"]["parameters"]
    return params[name]
