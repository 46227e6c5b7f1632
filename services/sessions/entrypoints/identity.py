"""Who is calling: the caller dependency and the calendar feed tokens.

Until real JWTs arrive (issue 10), the caller is read from two headers,
``X-Upward-Role`` (``admin`` | ``participant`` | ``service``) and ``X-Upward-Subject``
(the participant or admin id), in :func:`caller` only, so one function changes then.

Calendar clients cannot send headers, so a participant's ``.ics`` feed URL carries a
token instead: the HMAC-SHA256 of the participant id under the configured
``calendar_feed_secret``. Changing the secret revokes every feed URL at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from enum import StrEnum
from typing import Annotated

from fastapi import Header, HTTPException
from pydantic import BaseModel

from services.sessions.domain.commands import Actor

ID_PATTERN = r"^[^\s\x00-\x1f\x7f]{1,128}$"
"""An id as the API accepts it: 1-128 characters, no whitespace or control characters."""
_ID = re.compile(ID_PATTERN)


class CallerRole(StrEnum):
    """The kinds of caller the API knows."""

    ADMIN = "admin"
    PARTICIPANT = "participant"
    SERVICE = "service"


class Caller(BaseModel):
    """The authenticated caller of one request."""

    role: CallerRole
    subject: str

    def actor(self) -> Actor:
        """The caller as the domain's actor; 403 for service callers."""
        if self.role is CallerRole.SERVICE:
            raise HTTPException(403, "service callers cannot act on sessions")
        return Actor(self.subject, is_admin=self.role is CallerRole.ADMIN)

    def participant_id(self) -> str:
        """The caller's participant id; 403 for admins and services."""
        if self.role is not CallerRole.PARTICIPANT:
            raise HTTPException(403, "only participants have their own sessions and feed")
        return self.subject


def caller(
    x_upward_role: Annotated[str | None, Header()] = None,
    x_upward_subject: Annotated[str | None, Header()] = None,
) -> Caller:
    """The caller from the identity headers; 401 when they are missing or unknown."""
    if not x_upward_role or not x_upward_subject:
        raise HTTPException(401, "send X-Upward-Role and X-Upward-Subject")
    if x_upward_role not in set(CallerRole):
        raise HTTPException(401, f"unknown role {x_upward_role!r}")
    if not _ID.fullmatch(x_upward_subject):
        raise HTTPException(401, "X-Upward-Subject must be an id: 1-128 characters, no spaces")
    return Caller(role=CallerRole(x_upward_role), subject=x_upward_subject)


def feed_token(secret: str, participant_id: str) -> str:
    """The calendar feed token of ``participant_id``."""
    return hmac.new(secret.encode(), participant_id.encode(), hashlib.sha256).hexdigest()


def check_feed_token(secret: str, participant_id: str, token: str | None) -> None:
    """401 without a token, 403 with a wrong one."""
    if not token:
        raise HTTPException(401, "the calendar feed needs its token: ?token=...")
    # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    expected = feed_token(secret, participant_id).encode()
    if not hmac.compare_digest(expected, token.encode("utf-8", "surrogatepass")):
        raise HTTPException(403, "this token does not open this participant's calendar feed")
