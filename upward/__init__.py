"""Upward command-line tool and local development stack."""
