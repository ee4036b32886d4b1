"""What a task costs in units, read from the contract's ``x-kling-pricing`` table."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kling_testkit.spec.document import families, openapi


def pack_kind(family: str) -> str:
    """The resource-pack kind a family draws on: ``"video"`` or ``"image"``."""
    return families()[family].output


def slots(family: str, params: Mapping[str, Any]) -> int:
    """Concurrency slots a task holds while it runs: 1 per video task, ``n`` per image task."""
    return int(params.get("n", 1)) if pack_kind(family) == "image" else 1


def units(family: str, params: Mapping[str, Any]) -> Decimal:
    """Units a successful task deducts, given its effective parameters (defaults filled)."""
    return _units(
        family,
        str(params["model_name"]),
        str(params.get("mode", "std")),
        str(params.get("duration", "5")),
        params.get("sound") == "on",
        int(params.get("n", 1)),
        "image" in params,
    )


@functools.lru_cache(maxsize=4096)
def _units(
    family: str, model: str, mode: str, duration: str, sound: bool, n: int, reference: bool
) -> Decimal:
    """Cached, so the tasks that cost the same share one Decimal."""
    table: dict[str, Any] = openapi()["x-kling-pricing"]
    if pack_kind(family) == "image":
        per_image = table["image"][model]
        if reference:
            per_image = table["image_with_reference"].get(model, per_image)
        return Decimal(str(per_image)) * n
    if sound and model in table["video_sound"]:
        return Decimal(str(table["video_sound"][model][duration]))
    return Decimal(str(table["video"][model][mode][duration]))


def default_concurrency() -> dict[str, int]:
    """Documented parallel-task limits per pack kind."""
    limits: dict[str, int] = openapi()["x-kling-limits"]["concurrency"]
    return dict(limits)


def format_units(amount: Decimal) -> str:
    """Units as the API writes them: a decimal string without exponent or trailing zeros."""
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
