"""What participants and admins ask the service to do (from the HTTP API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Actor:
    """Who asks: a participant (their id) or an admin (their admin id)."""

    subject: str
    is_admin: bool = False


@dataclass(frozen=True)
class RecordHeld:
    """The session took place: who attended, how long, what was covered, private notes."""

    session_id: str
    actor: Actor
    attendees: tuple[str, ...]
    duration_minutes: int
    topics_covered: tuple[str, ...] = ()
    notes: str | None = None


@dataclass(frozen=True)
class RecordMissed:
    """The session did not take place; ``absent`` lists who did not come, if known."""

    session_id: str
    actor: Actor
    absent: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reschedule:
    """Move a session: to ``starts_at``, or to the next good slot when it is None."""

    session_id: str
    actor: Actor
    starts_at: datetime | None = None


@dataclass(frozen=True)
class Cancel:
    """Cancel a session that has not started."""

    session_id: str
    actor: Actor
