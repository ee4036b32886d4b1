"""JSON Schema of the mock's config: one check for files, PATCH /__mock/config and handles."""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from kling_testkit.spec import families, schema
from kling_testkit.spec.document import choices

# Pack kinds and pack types come from the API contract, not from a second list here.
_KIND_NAMES = sorted({family.output for family in families().values()})
_PACK_TYPES = schema("ResourcePack")["properties"]["resource_pack_type"]["enum"]
_NUMBER: dict[str, Any] = {"type": "number", "minimum": 0}
_KINDS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {kind: {"type": "integer", "minimum": 1} for kind in _KIND_NAMES},
}
_PACK: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "kind", "total"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "kind": {"enum": _KIND_NAMES},
        "total": _NUMBER,
        "pack_type": {"enum": _PACK_TYPES},
        "starts_after_s": {"type": "number"},
        "lifetime_s": {"type": "number", "exclusiveMinimum": 0},
    },
}
_ACCOUNT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "access_key", "secret_key"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "access_key": {"type": "string", "minLength": 1},
        "secret_key": {"type": "string", "minLength": 1},
        "api_key": {"type": ["string", "null"], "minLength": 1},
        "packs": {"type": "array", "items": _PACK},
        "concurrency": {"oneOf": [_KINDS, {"type": "null"}]},
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "seed": {"type": "integer"},
        "clock": {"enum": ["real", "manual"]},
        "time_scale": {"type": "number", "exclusiveMinimum": 0, "maximum": 1_000_000},
        "clock_start": {"type": ["number", "null"], "minimum": 0},
        "durations": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"queue_s": _NUMBER, "run_s": _NUMBER},
            },
        },
        # Keys name a request option of the contract (``mode_pro``), or ``per_extra_image``;
        # the names allowed are filled in by ``validator()`` from the document.
        "duration_multipliers": {"type": "object", "additionalProperties": _NUMBER},
        "duration_spread": {"type": "number", "minimum": 0, "maximum": 2},
        "accounts": {"type": "array", "minItems": 1, "items": _ACCOUNT},
        "auth_clock": {"enum": ["wall", "mock"]},
        "token_leeway_s": _NUMBER,
        "journal_size": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
        "max_body_bytes": {"type": "integer", "minimum": 1024},
        "public_base_url": {"type": ["string", "null"], "pattern": "^https?://[^\\s]+$"},
        "concurrency": _KINDS,
        "rate_limit": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["requests", "window_s"],
                    "properties": {
                        "requests": {"type": "integer", "minimum": 1},
                        "window_s": {"type": "number", "exclusiveMinimum": 0},
                    },
                },
            ]
        },
        "retry_after_header": {"type": "boolean"},
        "failure_rate": {
            "type": "object",
            "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "failure_message": {"type": "string", "minLength": 1},
        "blocked_terms": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "policy_action": {"enum": ["reject", "fail"]},
        "policy_message": {"type": "string", "minLength": 1},
        "result_ttl_s": {"type": "number", "exclusiveMinimum": 0},
        "callbacks": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "secret": {"type": ["string", "null"], "pattern": "^whsec_[A-Za-z0-9+/=]+$"},
                "max_attempts": {"type": "integer", "minimum": 1, "maximum": 20},
                "backoff_s": _NUMBER,
                "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
                "allowed_hosts": {"type": "array", "items": {"type": "string", "minLength": 1}},
            },
        },
        "rules": {"type": "array", "items": {"type": "object"}},
    },
}


@cache
def validator() -> Draft202012Validator:
    """The config validator (built on first use)."""
    multipliers = {
        **SCHEMA["properties"]["duration_multipliers"],
        "propertyNames": {"enum": [*choices(), "per_extra_image"]},
    }
    properties = {**SCHEMA["properties"], "duration_multipliers": multipliers}
    return Draft202012Validator({**SCHEMA, "properties": properties})
