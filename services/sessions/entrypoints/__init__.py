"""The sessions service's entry points: its HTTP API and its process."""
