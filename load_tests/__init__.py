"""Locust load scenarios for Kling clients, and the small library they stand on.

Scenarios, one per file, run by ``kling-testkit load --scenario NAME`` or plain
``locust -f load_tests/NAME.py``: ``lifecycle``, ``burst``, ``callbacks``, ``mixed``; load
shapes in ``load_tests/shapes/``. Your own locustfiles import the library from here: the
abstract :class:`KlingUser` (auth, response checks, submit, poll, download, ``Retry-After``),
:class:`Job` (job timing entries), :func:`report_mock_counters` (the mock's counters in the
stats and report). Importing this package imports Locust, which patches the standard library
with gevent: keep it out of processes that are not load generators.
"""

from load_tests.base import Answer, KlingUser, read_answer
from load_tests.counters import report_mock_counters
from load_tests.gate import RetryAfterGate, gate_for
from load_tests.jobs import JOB, POLLS, Job, JobFailed
from load_tests.target import Target, TargetError, target_of

__all__ = [
    "JOB",
    "POLLS",
    "Answer",
    "Job",
    "JobFailed",
    "KlingUser",
    "RetryAfterGate",
    "Target",
    "TargetError",
    "gate_for",
    "read_answer",
    "report_mock_counters",
    "target_of",
]
