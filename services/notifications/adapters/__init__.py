"""Adapters of the notifications service: its store, mail and chat channels, templates."""
