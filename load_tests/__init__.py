"""Locust load scenarios, run in their own process (Locust patches the world on import).

The scenarios land with their own issue; this package exists so the layout is fixed from the
start.
"""
