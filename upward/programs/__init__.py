"""``upward program``: create programs through the matching service's API."""
