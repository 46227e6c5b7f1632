"""Why a command was refused; the HTTP layer maps each to a status code."""

from __future__ import annotations


class SessionsError(Exception):
    """Base of the domain's refusals; the message is shown to the caller."""


class NotFound(SessionsError):
    """The session, pair or participant does not exist (HTTP 404)."""


class Forbidden(SessionsError):
    """The caller may not see or change this (HTTP 403)."""


class Conflict(SessionsError):
    """The command does not fit the current state, e.g. a session already held (HTTP 409)."""


class Invalid(SessionsError):
    """The command's content is wrong, e.g. a topic outside the catalogue (HTTP 422)."""
