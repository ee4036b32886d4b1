"""The contract suite: checks any target (the mock or a real endpoint) against the API contract.

The suite itself lands with its own issue; this package exists so the layout is fixed from the
start.
"""
