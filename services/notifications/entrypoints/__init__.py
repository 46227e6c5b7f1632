"""Entry points of the notifications service: HTTP routes and the process entry point."""
