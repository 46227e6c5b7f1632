"""Who is calling: the one place the HTTP API reads the caller's identity.

For now the caller is taken from two headers, ``X-Upward-Role`` (``admin``,
``participant`` or ``service``) and ``X-Upward-Subject`` (the participant's or the
admin's id). Real JWT verification will replace :func:`caller` alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Header, HTTPException

ID_PATTERN = r"^[^\s\x00-\x1f\x7f]{1,128}$"
"""An id as the API accepts it (subject, path): 1-128 characters, no whitespace or controls.

The same shape as the events' ``Identifier``, so an id taken from a header or a path
always fits the event it ends up in, and PostgreSQL (which refuses NUL) can store it.
"""
_ID = re.compile(ID_PATTERN)


class CallerRole(StrEnum):
    """What the caller is."""

    ADMIN = "admin"
    PARTICIPANT = "participant"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller of one request."""

    role: CallerRole
    subject: str

    @property
    def is_staff(self) -> bool:
        """Admins and other services act on anyone's behalf."""
        return self.role in (CallerRole.ADMIN, CallerRole.SERVICE)

    def require_staff(self) -> None:
        """403 unless an admin or a service calls."""
        if not self.is_staff:
            raise HTTPException(403, "only an admin may do this")

    def require_participant(self) -> None:
        """403 unless a participant calls (accepting is personal)."""
        if self.role is not CallerRole.PARTICIPANT:
            raise HTTPException(403, "only the participant themself may do this")

    def require_self_or_staff(self, participant_id: str) -> None:
        """403 when a participant acts for someone else."""
        if not self.is_staff and self.subject != participant_id:
            raise HTTPException(403, "participants may only act for themselves")


async def caller(
    x_upward_role: Annotated[str | None, Header()] = None,
    x_upward_subject: Annotated[str | None, Header()] = None,
) -> Caller:
    """The caller of this request (401 when the identity headers are missing or wrong)."""
    if not x_upward_role or not x_upward_subject or not x_upward_subject.strip():
        raise HTTPException(401, "X-Upward-Role and X-Upward-Subject headers are required")
    try:
        role = CallerRole(x_upward_role)
    except ValueError as error:
        raise HTTPException(401, "X-Upward-Role must be admin, participant or service") from error
    subject = x_upward_subject.strip()
    if not _ID.match(subject):
        raise HTTPException(
            401, "X-Upward-Subject must be an id: 1-128 characters, no spaces or control characters"
        )
    return Caller(role, subject)
