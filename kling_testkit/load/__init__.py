"""``kling-testkit load``: the runner of the Locust scenarios in ``load_tests``.

Nothing here imports Locust: the runner starts Locust in processes of its own.
"""
