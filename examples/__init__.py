"""Example services built on the runtime kit."""
