"""A mock account with the limits out of the way, for benchmarks that measure the request path."""

from __future__ import annotations

from typing import Any

from kling_testkit.credentials import MOCK_ACCESS_KEY, MOCK_API_KEY, MOCK_SECRET_KEY

UNLIMITED_SLOTS = {"video": 1_000_000, "image": 1_000_000}


def unlimited_account(name: str = "default") -> dict[str, Any]:
    """The mock's development keys with packs so large no benchmark exhausts them."""
    return {
        "name": name,
        "access_key": MOCK_ACCESS_KEY,
        "secret_key": MOCK_SECRET_KEY,
        "api_key": MOCK_API_KEY,
        "packs": [
            {"name": "v", "kind": "video", "total": 1e9},
            {"name": "i", "kind": "image", "total": 1e9},
        ],
    }
