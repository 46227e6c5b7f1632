"""Adapters of the matching service: its PostgreSQL store and its Prometheus metrics."""
