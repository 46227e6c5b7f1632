"""``upward match ...``: matching tools that run offline, without the services."""
