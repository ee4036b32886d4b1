"""What a task costs in units, read from the contract's ``x-kling-pricing`` table.

Each family's ``x-kling-family.price`` names its rule (``video``, ``image``, ``extend``,
``per_source_seconds``, ``by_seconds``, ``flat``, and the 2026 design's ``per_second``); the
numbers are all in the document.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kling_testkit.spec.document import families, field, openapi, schema

DEFAULT_SOURCE_SECONDS = 5.0
"""The length assumed for a source video the price depends on but the body does not name
(a ``video_url``, or a budget estimate before the mock has looked the video up)."""


def pack_kind(family: str) -> str:
    """The resource-pack kind a family draws on (``video``, ``image``, ``try_on``, ``audio``)."""
    return families()[family].pack


def slots(family: str, params: Mapping[str, Any]) -> int:
    """Concurrency slots a task holds while it runs: 1, or ``n`` for an image-generation task."""
    return int(params.get("n", 1)) if pack_kind(family) == "image" else 1


def output_seconds(family: str, params: Mapping[str, Any], source: float | None = None) -> str:
    """The length of a task's output in seconds, as the API writes it (``"5"``, ``"3.5"``).

    Read from the field ``x-kling-family.seconds`` names (a dotted path), or from the source
    video (``source`` seconds, plus ``add``), or its ``default`` when the source is a URL.
    """
    rule = families()[family].seconds
    if "field" in rule:
        value: Any = params
        for part in str(rule["field"]).split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return _seconds_text(value if value is not None else rule.get("default", 5))
    if rule.get("parent"):
        base = source if source is not None else float(rule.get("default", DEFAULT_SOURCE_SECONDS))
        return _seconds_text(base + float(rule.get("add", 0)))
    return ""


def _seconds_text(value: Any) -> str:
    number = Decimal(str(value))
    return format_units(number)


def units(family: str, params: Mapping[str, Any], source: float | None = None) -> Decimal:
    """Units a successful task deducts, given its effective parameters (defaults filled) and
    the length of the source video it names (``source`` seconds), if any. A multi-elements
    edit without its ``duration`` takes its session's video's, unknown here: the dearest."""
    found = families()[family]
    named = found.session is not None and "duration" not in params
    if named and "duration" in schema(found.request_schema)["properties"]:
        lengths = field(found.request_schema, "duration")["enum"]
        return max(units(family, {**params, "duration": d}, source) for d in lengths)
    rule = found.price
    kind = rule["rule"]
    if kind == "image":
        return _image_units(str(params["model_name"]), int(params.get("n", 1)), "image" in params)
    if kind == "flat":
        return Decimal(str(rule["units"]))
    if kind == "per_source_seconds":
        seconds = DEFAULT_SOURCE_SECONDS if source is None else source
        blocks = max(1, math.ceil(seconds / float(rule["seconds"])))
        return Decimal(str(rule["units"])) * blocks
    if kind == "per_second":
        length = Decimal(output_seconds(family, params, source))
        tier = str(params.get("resolution", params.get("mode")))  # 2026: resolution; legacy: mode
        return _per_second_rate(family, _variant(params), tier) * length
    if kind == "by_seconds":
        return Decimal(str(rule["units"][output_seconds(family, params, source)]))
    if kind == "extend" and "model_name" not in params:  # no source known: the dearest
        return max(
            _extend_units(m, mode) for m, modes in _table("video_extend").items() for mode in modes
        )
    model, mode = str(params["model_name"]), str(params.get("mode", "std"))
    if kind == "extend":
        return _extend_units(model, mode)
    return _video_units(model, mode, str(params.get("duration", "5")), params.get("sound") == "on")


def _variant(params: Mapping[str, Any]) -> str:
    """Which row of a 2026 family's per-second prices a task takes (``x-kling-pricing``)."""
    kinds = {item.get("type") for item in params.get("contents", ()) if isinstance(item, dict)}
    if "voice" in kinds:
        return "voice"
    if kinds & {"feature_video", "base_video"}:
        return "video_input"
    return "audio" if params.get("audio") == "native" else "silent"


@functools.lru_cache(maxsize=256)
def _per_second_rate(family: str, variant: str, tier: str) -> Decimal:
    rows: dict[str, dict[str, float]] = openapi()["x-kling-pricing"]["per_second"][family]
    row = rows.get(variant, rows["silent"])
    return Decimal(str(row.get(tier, rows["silent"][tier])))


def _table(name: str) -> dict[str, Any]:
    table: dict[str, Any] = openapi()["x-kling-pricing"][name]
    return table


@functools.lru_cache(maxsize=4096)
def _video_units(model: str, mode: str, duration: str, sound: bool) -> Decimal:
    """Cached, so the tasks that cost the same share one Decimal."""
    table: dict[str, Any] = openapi()["x-kling-pricing"]
    if sound and model in table["video_sound"]:
        return Decimal(str(table["video_sound"][model][duration]))
    fixed = table["video"].get(model, {}).get(mode, {})
    if duration in fixed:
        return Decimal(str(fixed[duration]))
    per_second = Decimal(str(table["video_per_second"][model][mode]))
    return per_second * Decimal(duration)


@functools.lru_cache(maxsize=256)
def _image_units(model: str, n: int, reference: bool) -> Decimal:
    table: dict[str, Any] = openapi()["x-kling-pricing"]
    per_image = table["image"][model]
    if reference:
        per_image = table["image_with_reference"].get(model, per_image)
    return Decimal(str(per_image)) * n


@functools.lru_cache(maxsize=256)
def _extend_units(model: str, mode: str) -> Decimal:
    table: dict[str, Any] = openapi()["x-kling-pricing"]
    found = table["video_extend"].get(model, {}).get(mode)
    return Decimal(str(found)) if found is not None else _video_units(model, mode, "5", False)


def default_concurrency() -> dict[str, int]:
    """Documented parallel-task limits per pack kind."""
    limits: dict[str, int] = openapi()["x-kling-limits"]["concurrency"]
    return dict(limits)


def format_units(amount: Decimal) -> str:
    """Units as the API writes them: a decimal string without exponent or trailing zeros."""
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
