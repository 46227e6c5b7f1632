"""Events of topic ``upward.sessions``: the meetings of a pair.

Published by the sessions service. Key: ``pair_id`` for every event of this topic (not
``session_id``), so that all the sessions of a pair, and its PairStalled, are ordered on
one partition. Private notes never leave the sessions service: SessionHeld carries only
attendance, duration and the catalogue topics covered.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, ClassVar, Self

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from schemas.base import PairKeyedEvent
from schemas.primitives import (
    EXTERNAL,
    FEEDBACK,
    NOTIFICATIONS,
    SESSIONS,
    Identifier,
    ShortText,
    TopicKey,
)

TOPIC = "upward.sessions"
_PAIR = "pair-7f3a9c"
_PROGRAM = "prg-2025-digital"
_MENTOR = "emp-10442"
_MENTEE = "emp-00231"
_SESSION = "ses-7f3a9c-01"
_START = datetime(2025, 3, 11, 15, 0, tzinfo=UTC)

ICalendarText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=65536, pattern=r"^BEGIN:VCALENDAR"),
]


class CancelReason(StrEnum):
    """Why a session was cancelled."""

    PARTICIPANT_REQUEST = "participant_request"
    PAIR_ENDED = "pair_ended"
    PROGRAM_CLOSED = "program_closed"
    PARTICIPANT_FORGOTTEN = "participant_forgotten"
    ADMIN = "admin"


class StallReason(StrEnum):
    """Which stall rule of the program fired."""

    MISSED_SESSIONS = "missed_sessions"
    NO_SESSION_HELD = "no_session_held"


def _ics(uid: str, start: datetime, *, sequence: int = 0, method: str = "REQUEST") -> str:
    """Build the small iCalendar text used by the examples."""
    stamp = "%Y%m%dT%H%M%SZ"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Upward//sessions//EN",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        f"UID:{uid}@upward",
        f"SEQUENCE:{sequence}",
        f"DTSTAMP:{datetime(2025, 3, 3, 9, 0, tzinfo=UTC).strftime(stamp)}",
        f"DTSTART:{start.strftime(stamp)}",
        f"DTEND:{(start + timedelta(hours=1)).strftime(stamp)}",
        "SUMMARY:Upward mentoring session",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


class _SessionsEvent(PairKeyedEvent):
    topic: ClassVar[str] = TOPIC
    publishers: ClassVar[tuple[str, ...]] = (SESSIONS,)


class _TimedSession(_SessionsEvent):
    session_id: Identifier = Field(description="Session id.")
    starts_at: AwareDatetime = Field(description="Start of the session.")
    ends_at: AwareDatetime = Field(description="End of the session (after the start).")

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class SessionScheduled(_TimedSession):
    """A session was scheduled and the calendar invite (iCalendar) issued."""

    mentor_id: Identifier = Field(description="The mentor (invite attendee).")
    mentee_id: Identifier = Field(description="The mentee (invite attendee).")
    sequence: int = Field(ge=1, description="1 for the pair's first session, then 2, 3...")
    agenda: list[TopicKey] = Field(
        description="Catalogue topics planned, easiest first (difficulty rises over sessions)."
    )
    ics: ICalendarText = Field(description="The iCalendar (RFC 5545) invite, METHOD:REQUEST.")
    warnings: list[ShortText] = Field(
        default_factory=list,
        description="Scheduling compromises, e.g. 'outside working hours for the mentee'.",
    )

    event_type: ClassVar[str] = "SessionScheduled"
    subscribers: ClassVar[tuple[str, ...]] = (NOTIFICATIONS, EXTERNAL)

    @classmethod
    def example(cls) -> Self:
        """Return the first session of a pair, on an easy topic."""
        return cls(
            pair_id=_PAIR,
            program_id=_PROGRAM,
            session_id=_SESSION,
            mentor_id=_MENTOR,
            mentee_id=_MENTEE,
            starts_at=_START,
            ends_at=_START + timedelta(hours=1),
            sequence=1,
            agenda=["social-media"],
            ics=_ics(_SESSION, _START),
        )


class SessionRescheduled(_TimedSession):
    """A session moved; carries the updated invite (higher iCalendar SEQUENCE)."""

    previous_starts_at: AwareDatetime = Field(description="Start before the change.")
    ics: ICalendarText = Field(description="The updated iCalendar invite, METHOD:REQUEST.")
    requested_by: Identifier | None = Field(
        default=None, description="Participant who asked for the change, if one did."
    )
    warnings: list[ShortText] = Field(
        default_factory=list,
        description="Scheduling compromises of the new time, e.g. outside working hours.",
    )

    event_type: ClassVar[str] = "SessionRescheduled"
    subscribers: ClassVar[tuple[str, ...]] = (NOTIFICATIONS, EXTERNAL)

    @classmethod
    def example(cls) -> Self:
        """Return a session moved by a day at the mentee's request."""
        start = _START + timedelta(days=1)
        return cls(
            pair_id=_PAIR,
            program_id=_PROGRAM,
            session_id=_SESSION,
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            previous_starts_at=_START,
            ics=_ics(_SESSION, start, sequence=1),
            requested_by=_MENTEE,
        )


class SessionCancelled(_SessionsEvent):
    """A session was cancelled; carries the iCalendar cancellation."""

    session_id: Identifier = Field(description="Session id.")
    reason: CancelReason = Field(description="Why it was cancelled.")
    cancelled_by: Identifier | None = Field(
        default=None, description="Participant or admin who cancelled, if one did."
    )
    ics: ICalendarText = Field(description="The iCalendar cancellation, METHOD:CANCEL.")

    event_type: ClassVar[str] = "SessionCancelled"
    subscribers: ClassVar[tuple[str, ...]] = (NOTIFICATIONS, EXTERNAL)

    @classmethod
    def example(cls) -> Self:
        """Return a session cancelled because its pair ended."""
        return cls(
            pair_id=_PAIR,
            program_id=_PROGRAM,
            session_id=_SESSION,
            reason=CancelReason.PAIR_ENDED,
            ics=_ics(_SESSION, _START, sequence=2, method="CANCEL"),
        )


class SessionHeld(_SessionsEvent):
    """A session took place. No notes: what is said in a pair stays in the pair."""

    session_id: Identifier = Field(description="Session id.")
    sequence: int = Field(ge=1, description="Number of the session within the pair.")
    held_at: AwareDatetime = Field(description="When the session started.")
    duration_minutes: int = Field(ge=1, le=600, description="How long it lasted.")
    attendees: list[Identifier] = Field(min_length=1, description="Participant ids who attended.")
    topics_covered: list[TopicKey] = Field(
        default_factory=list, description="Catalogue topics covered (keys only)."
    )

    event_type: ClassVar[str] = "SessionHeld"
    subscribers: ClassVar[tuple[str, ...]] = (FEEDBACK, EXTERNAL)

    @classmethod
    def example(cls) -> Self:
        """Return a first session both attended."""
        return cls(
            pair_id=_PAIR,
            program_id=_PROGRAM,
            session_id=_SESSION,
            sequence=1,
            held_at=_START,
            duration_minutes=55,
            attendees=[_MENTOR, _MENTEE],
            topics_covered=["social-media"],
        )


class SessionMissed(_SessionsEvent):
    """A scheduled session did not take place."""

    session_id: Identifier = Field(description="Session id.")
    sequence: int = Field(ge=1, description="Number of the session within the pair.")
    scheduled_starts_at: AwareDatetime = Field(description="When it should have started.")
    absent: list[Identifier] = Field(
        default_factory=list, description="Who did not attend; empty when unknown."
    )
    consecutive_missed: int = Field(ge=1, description="Sessions missed in a row by the pair.")

    event_type: ClassVar[str] = "SessionMissed"
    subscribers: ClassVar[tuple[str, ...]] = (FEEDBACK,)

    @classmethod
    def example(cls) -> Self:
        """Return a second session the mentee missed."""
        return cls(
            pair_id=_PAIR,
            program_id=_PROGRAM,
            session_id="ses-7f3a9c-02",
            sequence=2,
            scheduled_starts_at=_START + timedelta(days=14),
            absent=[_MENTEE],
            consecutive_missed=1,
        )


class PairStalled(_SessionsEvent):
    """A pair hit one of the program's stall rules (missed sessions, or no session)."""

    mentor_id: Identifier = Field(description="The mentor.")
    mentee_id: Identifier = Field(description="The mentee.")
    reason: StallReason = Field(description="Which stall rule fired.")
    consecutive_missed: int = Field(ge=0, description="Sessions missed in a row.")
    days_without_session: int = Field(ge=0, description="Days since the last held session.")
    last_held_at: AwareDatetime | None = Field(
        default=None, description="Last held session; absent if none was ever held."
    )

    event_type: ClassVar[str] = "PairStalled"
    subscribers: ClassVar[tuple[str, ...]] = (FEEDBACK, NOTIFICATIONS)

    @classmethod
    def example(cls) -> Self:
        """Return a pair that missed two sessions in a row."""
        return cls(
            pair_id=_PAIR,
            program_id=_PROGRAM,
            mentor_id=_MENTOR,
            mentee_id=_MENTEE,
            reason=StallReason.MISSED_SESSIONS,
            consecutive_missed=2,
            days_without_session=42,
            last_held_at=_START,
        )
