"""JSON in and out as strict as RFC 8259 readers: no NaN, no Infinity, no numbers out of range.

Python's ``json`` reads ``NaN``, ``Infinity`` and turns ``1e400`` into infinity, and writes them
back out; JavaScript, Go and jq reject all three. The mock reads with :func:`loads` and answers
through :class:`StrictJSONProvider`, so neither kind can get in or out.
"""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn

from flask.json.provider import DefaultJSONProvider


class OutOfRange(ValueError):
    """A JSON number that no float can hold (``1e400``), or a JSON constant (``NaN``)."""


def _constant(name: str) -> NoReturn:
    raise OutOfRange(f"{name} is not valid JSON (numbers must be finite)")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise OutOfRange(f"number {text[:40]} is out of range (numbers must be finite)")
    return value


def loads(text: str | bytes) -> Any:
    """``json.loads`` that refuses NaN, Infinity and numbers out of a float's range."""
    return json.loads(text, parse_constant=_constant, parse_float=_float)


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, but a non-finite float is a bug (ValueError), never ``Infinity``."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)
