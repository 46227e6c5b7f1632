"""The feedback service's adapters: its PostgreSQL store and its metrics."""
