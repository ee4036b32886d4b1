"""The pitfall examples are judged too: the reference client must break no rule the mock's
audit checks (a test that misbehaves on purpose says which finding it makes)."""

from __future__ import annotations

import pytest

from kling_testkit.pytest_plugin import AUDIT_MARKER


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker(AUDIT_MARKER) is None:
            item.add_marker(AUDIT_MARKER)
