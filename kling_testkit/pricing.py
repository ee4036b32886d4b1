"""What a task costs in units, read from the contract's ``x-kling-pricing`` table."""

from __future__ import annotations

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
    table: dict[str, Any] = openapi()["x-kling-pricing"]
    model = str(params["model_name"])
    if pack_kind(family) == "image":
        per_image = table["image"][model]
        if "image" in params:
            per_image = table["image_with_reference"].get(model, per_image)
        return Decimal(str(per_image)) * int(params.get("n", 1))
    duration = str(params.get("duration", "5"))
    if params.get("sound") == "on" and model in table["video_sound"]:
        return Decimal(str(table["video_sound"][model][duration]))
    return Decimal(str(table["video"][model][str(params.get("mode", "std"))][duration]))


def default_concurrency() -> dict[str, int]:
    """Documented parallel-task limits per pack kind."""
    limits: dict[str, int] = openapi()["x-kling-limits"]["concurrency"]
    return dict(limits)


def format_units(amount: Decimal) -> str:
    """Units as the API writes them: a decimal string without exponent or trailing zeros."""
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
