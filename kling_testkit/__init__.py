"""Test and simulate apps that call the Kling AI API.

Names load on first use, so importing the package (as pytest does for the plugin) costs nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kling_testkit.client import KlingClient
    from kling_testkit.codes import ErrorCode
    from kling_testkit.control import MockControl
    from kling_testkit.credentials import Credentials
    from kling_testkit.errors import ApiError, KlingError

__all__ = ["ApiError", "Credentials", "ErrorCode", "KlingClient", "KlingError", "MockControl"]

_HOMES = {
    "ApiError": "kling_testkit.errors",
    "Credentials": "kling_testkit.credentials",
    "ErrorCode": "kling_testkit.codes",
    "KlingClient": "kling_testkit.client",
    "KlingError": "kling_testkit.errors",
    "MockControl": "kling_testkit.control",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'kling_testkit' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
