"""Fault rules as data: a match on the request and an action, first match wins.

A rule looks like::

    {"id": "flaky-create", "match": {"method": "POST", "path": "/v1/videos/*"},
     "action": {"type": "error", "code": 5000}, "times": 3, "probability": 0.5}

``match`` keys (all optional, all must hold): ``method``, ``path`` (a glob), ``account``,
``headers`` (exact values, names case-insensitive), ``prompt`` (a substring, compared after
normalisation and case folding). Action types: ``error`` (``code``, optional ``status``,
``message``, ``retry_after``), ``latency`` (``seconds``, or ``median`` and ``sigma`` for a seeded
lognormal), ``transport`` (``fault``: reset, empty, malformed_json, truncated; ``when``: before,
the default, or after the request was processed), ``gateway`` (``status``: 502 and 504 an HTML
page, 503 an empty body, as a proxy in front of the API answers; ``when`` as for transport),
``outcome``
(``outcome``: fail, slow, stuck; ``message``, ``factor``) and ``callback`` (``fault``: drop,
duplicate, delay; ``seconds``). Outcome and callback rules only match task creation.
"""

from __future__ import annotations

import fnmatch
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from kling_testkit.codes import ErrorCode
from kling_testkit.prompts import match_key
from kling_testkit.spec.validation import field_path

MATCH_KEYS = frozenset({"method", "path", "account", "headers", "prompt"})
CREATE_ONLY = frozenset({"outcome", "callback"})
MAX_LATENCY_S = 30.0
MAX_RULES = 1000  # rules one mock holds at once; adding more is refused
_MAX_WAIT_S = 86400.0


def _number(maximum: float, exclusive_zero: bool = False) -> dict[str, Any]:
    low = {"exclusiveMinimum": 0} if exclusive_zero else {"minimum": 0}
    return {"type": "number", **low, "maximum": maximum}


def _action(kind: str, required: list[str], **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["type", *required],
        "properties": {"type": {"const": kind}, **properties},
    }


_TEXT = {"type": "string", "minLength": 1, "maxLength": 1000}
ACTION_SCHEMAS: dict[str, dict[str, Any]] = {
    "error": _action(
        "error",
        ["code"],
        code={"enum": [int(c) for c in ErrorCode if c != ErrorCode.SUCCESS]},
        status={"type": "integer", "minimum": 400, "maximum": 599},
        message=_TEXT,
        retry_after=_number(_MAX_WAIT_S),
    ),
    "latency": {
        **_action(
            "latency",
            [],
            seconds=_number(MAX_LATENCY_S),
            median=_number(MAX_LATENCY_S),
            sigma=_number(5),
        ),
        "anyOf": [{"required": ["seconds"]}, {"required": ["median"]}],
    },
    "transport": _action(
        "transport",
        ["fault"],
        fault={"enum": ["reset", "empty", "malformed_json", "truncated"]},
        # "after": the request is processed (a create creates), then the answer is lost.
        when={"enum": ["before", "after"]},
    ),
    "gateway": _action(
        "gateway",
        ["status"],
        status={"enum": [502, 503, 504]},
        # "after": the request is processed (a create creates), then the gateway answers.
        when={"enum": ["before", "after"]},
    ),
    "outcome": _action(
        "outcome",
        ["outcome"],
        outcome={"enum": ["fail", "slow", "stuck"]},
        message=_TEXT,
        factor=_number(1000, exclusive_zero=True),
    ),
    "callback": _action(
        "callback",
        ["fault"],
        fault={"enum": ["drop", "duplicate", "delay"]},
        seconds=_number(_MAX_WAIT_S),
    ),
}
"""What each action type takes (the ``type`` picks one)."""

RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["action"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 128},
        "match": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "method": {"type": "string", "pattern": "^[A-Za-z]{1,16}$"},
                "path": {"type": "string", "minLength": 1, "maxLength": 1024},
                "account": {"type": "string", "minLength": 1, "maxLength": 256},
                "headers": {
                    "type": "object",
                    "maxProperties": 32,
                    "propertyNames": {"minLength": 1, "maxLength": 256},
                    "additionalProperties": {"type": "string", "maxLength": 4096},
                },
                "prompt": {"type": "string", "minLength": 1, "maxLength": 2500},
            },
        },
        "action": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"enum": list(ACTION_SCHEMAS)}},
        },
        "times": {"type": "integer", "minimum": 1, "maximum": 1_000_000_000},
        "probability": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    },
}
"""The shape of one rule; the action is then checked against its type's schema."""


@cache
def _validators() -> tuple[Draft202012Validator, dict[str, Draft202012Validator]]:
    return Draft202012Validator(RULE_SCHEMA), {
        kind: Draft202012Validator(schema) for kind, schema in ACTION_SCHEMAS.items()
    }


def _first_error(validator: Draft202012Validator, instance: Any, prefix: str) -> str | None:
    error = next(iter(validator.iter_errors(instance)), None)
    if error is None:
        return None
    where = field_path([prefix, *error.absolute_path] if prefix else error.absolute_path)
    message = error.message if len(error.message) <= 200 else f"{error.message[:200]}..."
    return f"{where or 'rule'}: {message}"


def check_rule(data: Any) -> None:
    """Raise ValueError naming the first thing wrong with a rule (its shape, then its action)."""
    rules, actions = _validators()
    problem = _first_error(rules, data, "")
    if problem is None:
        problem = _first_error(actions[data["action"]["type"]], data["action"], "action")
    if problem is not None:
        raise ValueError(problem)


@dataclass(frozen=True)
class Facts:
    """What a rule can look at in a request."""

    method: str
    path: str
    account: str | None
    headers: Mapping[str, str]
    prompt: str | None
    is_create: bool


@dataclass
class Rule:
    """One rule, with how many more times it may fire (None = no limit)."""

    id: str
    match: dict[str, Any]
    action: dict[str, Any]
    times: int | None = None
    probability: float = 1.0
    fired: int = 0
    skipped: int = field(default=0)  # matched but lost the probability draw

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], default_id: str = "rule") -> Rule:
        """Build and validate a rule; raises ValueError saying what is wrong."""
        check_rule(data)
        match, action = data.get("match", {}), data["action"]
        times, probability = data.get("times"), data.get("probability", 1.0)
        rule_id = data.get("id", default_id)
        return cls(rule_id, dict(match), dict(action), times, float(probability))

    def matches(self, facts: Facts) -> bool:
        m = self.match
        if self.action["type"] in CREATE_ONLY and not facts.is_create:
            return False
        if "method" in m and str(m["method"]).upper() != facts.method:
            return False
        if "path" in m and not fnmatch.fnmatchcase(facts.path, str(m["path"])):
            return False
        if "account" in m and m["account"] != facts.account:
            return False
        lowered = {k.lower(): v for k, v in facts.headers.items()}
        for name, value in dict(m.get("headers", {})).items():
            if lowered.get(str(name).lower()) != value:
                return False
        return "prompt" not in m or (
            facts.prompt is not None and match_key(str(m["prompt"])) in match_key(facts.prompt)
        )

    def latency(self, rng: random.Random) -> float:
        """Seconds of delay for a latency action (seeded lognormal when median is given)."""
        if "seconds" in self.action:
            return min(MAX_LATENCY_S, float(self.action["seconds"]))
        median, sigma = float(self.action["median"]), float(self.action.get("sigma", 0.5))
        return min(MAX_LATENCY_S, median * math.exp(rng.gauss(0.0, sigma)))

    def to_dict(self) -> dict[str, Any]:
        remaining = None if self.times is None else self.times - self.fired
        return {
            "id": self.id,
            "match": self.match,
            "action": self.action,
            "times": self.times,
            "probability": self.probability,
            "fired": self.fired,
            "remaining": remaining,
        }


class RuleSet:
    """Ordered rules, as kept in the store: a document of their data and the next free id.

    Use counts live in the store apart from the document (they change on every use); a
    ``RuleSet`` is a working copy that the backend edits and writes back whole.
    """

    def __init__(self) -> None:
        self._rules: list[Rule] = []
        self._next = 1

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> RuleSet:
        """The rules of a document (already checked when they were added)."""
        found = cls()
        found._next = int(doc.get("next", 1))
        for data in doc.get("rules", []):
            found._rules.append(
                Rule(
                    str(data["id"]),
                    dict(data["match"]),
                    dict(data["action"]),
                    data.get("times"),
                    float(data.get("probability", 1.0)),
                )
            )
        return found

    def to_doc(self) -> dict[str, Any]:
        return {
            "next": self._next,
            "rules": [
                {
                    "id": r.id,
                    "match": r.match,
                    "action": r.action,
                    "times": r.times,
                    "probability": r.probability,
                }
                for r in self._rules
            ],
        }

    def add(self, data: Mapping[str, Any]) -> Rule:
        """Validate and append a rule; an automatic id skips ids already taken."""
        if len(self._rules) >= MAX_RULES:
            raise ValueError(f"a mock holds at most {MAX_RULES} rules; remove some first")
        taken = {r.id for r in self._rules}
        while f"rule-{self._next}" in taken:
            self._next += 1
        rule = Rule.from_dict(data, default_id=f"rule-{self._next}")
        if rule.id in taken:
            raise ValueError(f"a rule with id {rule.id!r} exists")
        if rule.id == f"rule-{self._next}":
            self._next += 1
        self._rules.append(rule)
        return rule

    def remove(self, rule_id: str) -> bool:
        before = len(self._rules)
        self._rules = [r for r in self._rules if r.id != rule_id]
        return len(self._rules) != before

    def clear(self) -> None:
        self._rules.clear()

    def all(self) -> list[Rule]:
        return list(self._rules)
