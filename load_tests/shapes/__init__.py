"""Load shapes, one per file, to combine with any scenario.

``kling-testkit load --scenario lifecycle --shape ramp`` or
``locust -f load_tests/lifecycle.py,load_tests/shapes/ramp.py``. Knobs are class attributes in
wall seconds; subclass a shape in your own file to change them. A shape decides the user count
over time (``--users`` and ``--spawn-rate`` are ignored) and stops the run when it ends, or at
``--duration`` (Locust's ``--run-time``) if that comes first: Locust itself arms ``--run-time``
only once a shape has ended, so each shape checks it (:func:`past_run_time`).
"""

from __future__ import annotations

from locust import LoadTestShape


def past_run_time(shape: LoadTestShape) -> bool:
    """Whether the run has lasted Locust's ``--run-time`` (never, without one)."""
    options = shape.runner.environment.parsed_options if shape.runner is not None else None
    limit = getattr(options, "run_time", None)
    if not limit:
        return False
    elapsed: float = shape.get_run_time()
    return elapsed >= float(limit)
