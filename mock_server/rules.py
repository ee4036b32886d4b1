"""Fault rules as data: a match on the request and an action, first match wins.

A rule looks like::

    {"id": "flaky-create", "match": {"method": "POST", "path": "/v1/videos/*"},
     "action": {"type": "error", "code": 5000}, "times": 3, "probability": 0.5}

``match`` keys (all optional, all must hold): ``method``, ``path`` (a glob), ``account``,
``headers`` (exact values, names case-insensitive), ``prompt`` (a substring, compared after
normalisation and case folding). Action types: ``error`` (``code``, optional ``status``,
``message``, ``retry_after``), ``latency`` (``seconds``, or ``median`` and ``sigma`` for a seeded
lognormal), ``transport`` (``fault``: reset, empty, malformed_json, truncated), ``outcome``
(``outcome``: fail, slow, stuck; ``message``, ``factor``) and ``callback`` (``fault``: drop,
duplicate, delay; ``seconds``). Outcome and callback rules only match task creation.
"""

from __future__ import annotations

import fnmatch
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kling_testkit.codes import ErrorCode
from kling_testkit.prompts import match_key

ACTIONS: dict[str, dict[str, Any]] = {
    # action type -> {field: allowed values (a tuple) or a type}
    "error": {"code": int, "status": int, "message": str, "retry_after": (int, float)},
    "latency": {"seconds": (int, float), "median": (int, float), "sigma": (int, float)},
    "transport": {"fault": ("reset", "empty", "malformed_json", "truncated")},
    "outcome": {"outcome": ("fail", "slow", "stuck"), "message": str, "factor": (int, float)},
    "callback": {"fault": ("drop", "duplicate", "delay"), "seconds": (int, float)},
}
CREATE_ONLY = frozenset({"outcome", "callback"})
MATCH_KEYS = frozenset({"method", "path", "account", "headers", "prompt"})
MAX_LATENCY_S = 30.0


@dataclass(frozen=True)
class Facts:
    """What a rule can look at in a request."""

    method: str
    path: str
    account: str | None
    headers: Mapping[str, str]
    prompt: str | None
    is_create: bool


def _check_action(action: Mapping[str, Any]) -> None:
    kind = action.get("type")
    if kind not in ACTIONS:
        raise ValueError(f"action.type must be one of {', '.join(ACTIONS)}; got {kind!r}")
    allowed = ACTIONS[kind]
    for key, value in action.items():
        if key == "type":
            continue
        if key not in allowed:
            raise ValueError(f"action of type {kind!r} takes {', '.join(allowed)}; got {key!r}")
        expected = allowed[key]
        if isinstance(expected, tuple) and all(isinstance(v, str) for v in expected):
            if value not in expected:
                raise ValueError(f"action.{key} must be one of {', '.join(expected)}")
        elif isinstance(value, bool) or not isinstance(value, expected):
            raise ValueError(f"action.{key} has the wrong type")
        elif isinstance(value, (int, float)) and (value < 0 or not math.isfinite(value)):
            raise ValueError(f"action.{key} must be a finite number >= 0")
    if kind == "error":
        try:
            ErrorCode(int(action.get("code", -1)))
        except ValueError:
            raise ValueError(f"action.code {action.get('code')!r} is not a Kling code") from None
    if kind == "transport" and "fault" not in action:
        raise ValueError("a transport action needs a fault")
    if kind in ("outcome", "callback") and not ({"outcome", "fault"} & set(action)):
        raise ValueError(
            f"an action of type {kind!r} needs {'outcome' if kind == 'outcome' else 'fault'}"
        )
    if kind == "latency" and "seconds" not in action and "median" not in action:
        raise ValueError("a latency action needs seconds, or median (and sigma)")


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
        if not isinstance(data, Mapping):
            raise ValueError("a rule must be an object")
        unknown = set(data) - {"id", "match", "action", "times", "probability"}
        if unknown:
            raise ValueError(f"unknown rule key {sorted(unknown)[0]!r}")
        match, action = data.get("match", {}), data.get("action")
        if not isinstance(match, Mapping) or set(match) - MATCH_KEYS:
            raise ValueError(
                f"match must be an object with keys among {', '.join(sorted(MATCH_KEYS))}"
            )
        if not isinstance(action, Mapping):
            raise ValueError("a rule needs an action object")
        _check_action(action)
        times, probability = data.get("times"), data.get("probability", 1.0)
        if times is not None and (
            isinstance(times, bool) or not isinstance(times, int) or times < 1
        ):
            raise ValueError("times must be a whole number >= 1 (or absent for no limit)")
        if (
            isinstance(probability, bool)
            or not isinstance(probability, (int, float))
            or not 0 < probability <= 1
        ):
            raise ValueError("probability must be a number in (0, 1]")
        rule_id = data.get("id", default_id)
        if not isinstance(rule_id, str) or not rule_id:
            raise ValueError("id must be a non-empty string")
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
    """Ordered rules; not thread-safe by itself (the backend locks)."""

    def __init__(self) -> None:
        self._rules: list[Rule] = []
        self._next = 1

    def add(self, data: Mapping[str, Any]) -> Rule:
        """Validate and append a rule; an automatic id skips ids already taken."""
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

    def pick(self, facts: Facts, rng: random.Random) -> Rule | None:
        """The first rule that matches, has uses left and wins its draw; count the use."""
        for rule in self._rules:
            if rule.times is not None and rule.fired >= rule.times:
                continue
            if not rule.matches(facts):
                continue
            if rule.probability < 1.0 and rng.random() >= rule.probability:
                rule.skipped += 1
                continue
            rule.fired += 1
            return rule
        return None
