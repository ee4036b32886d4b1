"""Task status spellings: the document's ``TaskStatus`` enum, the only place they are written.

The enum lists the statuses in lifecycle order (at submit, while processing, then the success and
the failure status), so each constant is read off its position.
"""

from __future__ import annotations

from kling_testkit.spec.document import schema

_STATUSES: list[str] = schema("TaskStatus")["enum"]

SUBMITTED: str = _STATUSES[0]
"""The status of a task from submit until processing starts."""
PROCESSING: str = _STATUSES[1]
"""The status while the task is generating."""
SUCCEED: str = _STATUSES[2]
"""The terminal status of a task that produced its result."""
FAILED: str = _STATUSES[3]
"""The terminal status of a task that did not."""
TERMINAL: frozenset[str] = frozenset({SUCCEED, FAILED})
"""The statuses a task never leaves."""
RANK: dict[str, int] = {SUBMITTED: 0, PROCESSING: 1, SUCCEED: 2, FAILED: 2}
"""Position along the lifecycle: a task's status never moves to a lower rank."""

if len(_STATUSES) != len(RANK):
    raise RuntimeError(f"TaskStatus must list exactly {len(RANK)} statuses; got {_STATUSES}")

_STATUSES_2026: list[str] = schema("TaskStatusV2")["enum"]
STATUSES_2026: tuple[str, ...] = tuple(_STATUSES_2026)
"""The 2026 design's statuses, in lifecycle order: the same as legacy but for the success."""
SUCCEEDED: str = _STATUSES_2026[2]
"""The 2026 design's success status (``"succeeded"``; the legacy design says ``SUCCEED``)."""
TERMINAL_2026: frozenset[str] = frozenset({SUCCEEDED, _STATUSES_2026[3]})
"""The statuses a 2026-design task never leaves."""
RANK_2026: dict[str, int] = {
    _STATUSES_2026[0]: 0,
    _STATUSES_2026[1]: 1,
    SUCCEEDED: 2,
    _STATUSES_2026[3]: 2,
}
"""Position along the 2026 lifecycle (``submitted``, ``processing``, then an end)."""

if _STATUSES_2026[0] != SUBMITTED or _STATUSES_2026[1] != PROCESSING or _STATUSES_2026[3] != FAILED:
    raise RuntimeError(
        f"TaskStatusV2 must differ from TaskStatus in success only; {_STATUSES_2026}"
    )
