"""Locustfiles the load tests run (never imported by pytest: Locust patches the world)."""
