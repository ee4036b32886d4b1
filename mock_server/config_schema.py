"""JSON Schema of the mock's config: one check for files, PATCH /__mock/config and handles."""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from kling_testkit.spec import families, schema
from kling_testkit.spec.document import choices
from mock_server.rules import MAX_RULES

# Pack kinds and pack types come from the API contract, not from a second list here.
_KIND_NAMES = sorted({family.output for family in families().values()})
_PACK_TYPES = schema("ResourcePack")["properties"]["resource_pack_type"]["enum"]
# Every number has a ceiling and every string and list a length, so whatever is accepted works:
# no infinity reaches the clock, no ten-million-item list reaches a request.
YEAR_S = 365 * 86400.0
MAX_SECONDS = 10 * YEAR_S
MAX_NAME = 256
MAX_TEXT = 2000


def _seconds(maximum: float = MAX_SECONDS, exclusive_zero: bool = False) -> dict[str, Any]:
    low = {"exclusiveMinimum": 0} if exclusive_zero else {"minimum": 0}
    return {"type": "number", **low, "maximum": maximum}


def _text(max_length: int = MAX_TEXT) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_length}


_UNITS: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 1e12}
_FACTOR: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 100}
_KINDS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        kind: {"type": "integer", "minimum": 1, "maximum": 1_000_000} for kind in _KIND_NAMES
    },
}
_PACK: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "kind", "total"],
    "properties": {
        "name": _text(MAX_NAME),
        "kind": {"enum": _KIND_NAMES},
        "total": _UNITS,
        "pack_type": {"enum": _PACK_TYPES},
        "starts_after_s": {"type": "number", "minimum": -MAX_SECONDS, "maximum": MAX_SECONDS},
        "lifetime_s": _seconds(10 * MAX_SECONDS, exclusive_zero=True),
    },
}
_ACCOUNT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "access_key", "secret_key"],
    "properties": {
        "name": _text(MAX_NAME),
        "access_key": _text(MAX_NAME),
        "secret_key": _text(1024),
        "api_key": {"type": ["string", "null"], "minLength": 1, "maxLength": 1024},
        "packs": {"type": "array", "maxItems": 100, "items": _PACK},
        "concurrency": {"oneOf": [_KINDS, {"type": "null"}]},
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "seed": {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
        "clock": {"enum": ["real", "manual"]},
        "time_scale": {"type": "number", "exclusiveMinimum": 0, "maximum": 1_000_000},
        "clock_start": {"type": ["number", "null"], "minimum": 0, "maximum": 1e11},
        "durations": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"queue_s": _seconds(), "run_s": _seconds()},
            },
        },
        # Keys name a request option of the contract (``mode_pro``), or ``per_extra_image``;
        # ``full_schema()`` fills in the names from the document.
        "duration_multipliers": {"type": "object", "additionalProperties": _FACTOR},
        "duration_spread": {"type": "number", "minimum": 0, "maximum": 2},
        "accounts": {"type": "array", "minItems": 1, "maxItems": 1000, "items": _ACCOUNT},
        "auth_clock": {"enum": ["wall", "mock"]},
        "token_leeway_s": _seconds(86400.0),
        "journal_size": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
        "max_tasks": {"type": ["integer", "null"], "minimum": 10, "maximum": 100_000_000},
        "max_body_bytes": {"type": "integer", "minimum": 1024, "maximum": 256 * 1024 * 1024},
        "public_base_url": {
            "type": ["string", "null"],
            "maxLength": 2048,
            # A base: scheme, host (name, IPv4 or [IPv6]), optional port and path; no query.
            "pattern": "^https?://([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]+\\])"
            "(:[0-9]{1,5})?(/[^\\s?#]*)?$",
        },
        "concurrency": _KINDS,
        "rate_limit": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["requests", "window_s"],
                    "properties": {
                        "requests": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
                        "window_s": _seconds(YEAR_S, exclusive_zero=True),
                    },
                },
            ]
        },
        "retry_after_header": {"type": "boolean"},
        "audit": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "retry_after_grace_s": _seconds(60.0),
                "poll_interval_s": _seconds(86400.0),
                "max_polls": {"type": "integer", "minimum": 1, "maximum": 1_000_000_000},
                "max_token_lifetime_s": _seconds(YEAR_S, exclusive_zero=True),
                "budget_units": {"oneOf": [{"type": "null"}, _UNITS]},
                "retry_window_s": _seconds(86400.0),
                "poll_deadline_s": _seconds(YEAR_S),
                "callback_slow_s": _seconds(3600.0),
            },
        },
        "failure_rate": {
            "type": "object",
            "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "failure_message": _text(),
        "blocked_terms": {"type": "array", "maxItems": 1000, "items": _text(200)},
        "response_profile": {"enum": ["current", "2025"]},
        "withdrawn_models": {
            "oneOf": [
                {"type": "array", "maxItems": 100, "items": _text(64)},
                {
                    "type": "object",
                    "maxProperties": 100,
                    "propertyNames": _text(64),
                    "additionalProperties": {"type": "array", "maxItems": 100, "items": _text(64)},
                },
                {"enum": ["2026-09-15"]},
            ]
        },
        "policy_action": {"enum": ["reject", "fail"]},
        "policy_message": _text(),
        "result_ttl_s": _seconds(exclusive_zero=True),
        "callbacks": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "secret": {
                    "type": ["string", "null"],
                    "maxLength": 1024,
                    "pattern": "^whsec_[A-Za-z0-9+/=]+$",
                },
                "max_attempts": {"type": "integer", "minimum": 1, "maximum": 20},
                "backoff_s": _seconds(86400.0),
                "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
                "allowed_hosts": {"type": "array", "maxItems": 100, "items": _text(MAX_NAME)},
            },
        },
        "rules": {"type": "array", "maxItems": MAX_RULES, "items": {"type": "object"}},
        "control_token": {
            "type": ["string", "null"],
            "maxLength": 1024,
            "pattern": "^[\\x21-\\x7e]+$",
        },
        "control_host_check": {"type": "boolean"},
        "max_namespaces": {"type": "integer", "minimum": 1, "maximum": 100_000},
    },
}


@cache
def full_schema() -> dict[str, Any]:
    """``SCHEMA`` with the names only the document knows: families, request options."""
    family = {"enum": sorted(families()), "x-name": "family"}
    props = SCHEMA["properties"]
    return {
        **SCHEMA,
        "properties": {
            **props,
            "durations": {**props["durations"], "propertyNames": family},
            "failure_rate": {**props["failure_rate"], "propertyNames": family},
            "duration_multipliers": {
                **props["duration_multipliers"],
                "propertyNames": {"enum": [*choices(), "per_extra_image"]},
            },
        },
    }


@cache
def validator() -> Draft202012Validator:
    """The config validator (built on first use, from the document as it is then)."""
    return Draft202012Validator(full_schema())
