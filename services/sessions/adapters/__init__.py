"""The sessions service's adapters: its PostgreSQL store, iCalendar and metrics."""
