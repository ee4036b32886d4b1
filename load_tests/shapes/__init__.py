"""Load shapes, one per file, to combine with any scenario.

``kling-testkit load --scenario lifecycle --shape ramp`` or
``locust -f load_tests/lifecycle.py,load_tests/shapes/ramp.py``. Knobs are class attributes in
wall seconds; subclass a shape in your own file to change them. A shape decides the user count
over time (``--users`` and ``--spawn-rate`` are ignored) and stops the run when it ends;
``--duration`` still stops it first.
"""
