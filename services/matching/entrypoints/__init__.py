"""Entry points of the matching service: its HTTP API and its process."""
