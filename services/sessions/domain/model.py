"""The sessions service's aggregates: programs, people, pairs and their sessions.

A **pair** waits (``pending``) until its program and both people are known, then is
``active``: it gets sessions on the program's cadence until the program's duration is
over for it (``formed_at + duration_weeks``), then it is ``ended`` (reason
``completed``, or whatever reason ended it earlier).

A **session** is ``scheduled`` until it is ``held``, ``missed`` or ``cancelled``; a
reschedule keeps it scheduled and raises its iCalendar SEQUENCE. See docs/sessions.md
for the state diagram.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from schemas.sessions import StallReason
from services.sessions.domain.agenda import Topic
from services.sessions.domain.errors import Conflict, Forbidden, Invalid
from services.sessions.domain.slots import Interval, WorkingHours


class PairStatus(StrEnum):
    """Where a pair is in its life, as the sessions service sees it."""

    PENDING = "pending"
    ACTIVE = "active"
    ENDED = "ended"


class SessionStatus(StrEnum):
    """Where a session is in its life."""

    SCHEDULED = "scheduled"
    HELD = "held"
    MISSED = "missed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Program:
    """What the sessions service keeps of a program's definition."""

    program_id: str
    name: str
    cadence_days: int
    duration_weeks: int
    session_minutes: int
    max_missed_sessions: int
    max_days_without_session: int
    catalogue: tuple[Topic, ...]
    revision: int = 1
    closed: bool = False

    def topic_keys(self) -> frozenset[str]:
        """Keys of the topic catalogue."""
        return frozenset(t.key for t in self.catalogue)


@dataclass(frozen=True)
class Participant:
    """An entry of the participant directory (what invites and scheduling need)."""

    participant_id: str
    display_name: str
    email: str
    timezone: str
    working_hours: WorkingHours | None = None
    wants: dict[str, int] | None = None


@dataclass(frozen=True)
class Pair:
    """A formed pair and the figures its stall rules need."""

    pair_id: str
    program_id: str
    mentor_id: str
    mentee_id: str
    topics: tuple[str, ...]
    formed_at: datetime
    status: PairStatus = PairStatus.PENDING
    first_due: datetime | None = None
    ends_at: datetime | None = None
    consecutive_missed: int = 0
    last_held_at: datetime | None = None
    stalled: bool = False
    end_reason: str | None = None

    @property
    def members(self) -> tuple[str, str]:
        """The mentor and the mentee ids."""
        return (self.mentor_id, self.mentee_id)

    def role_of(self, participant_id: str) -> str:
        """``mentor`` or ``mentee``; Forbidden for anyone outside the pair."""
        if participant_id == self.mentor_id:
            return "mentor"
        if participant_id == self.mentee_id:
            return "mentee"
        raise Forbidden("this session belongs to another pair")

    def check_members(self, participant_ids: Sequence[str], *, what: str) -> None:
        """Invalid unless every id is the mentor's or the mentee's."""
        strangers = set(participant_ids) - set(self.members)
        if strangers:
            raise Invalid(f"{what} must be the pair's members; not {sorted(strangers)}")

    def activate(self, *, program: Program, lead: timedelta) -> Pair:
        """Start the pair's calendar: first session due ``lead`` after formation."""
        return replace(
            self,
            status=PairStatus.ACTIVE,
            first_due=self.formed_at + lead,
            ends_at=self.formed_at + timedelta(weeks=program.duration_weeks),
        )

    def end(self, reason: str) -> Pair:
        """The pair ended (no more sessions will be scheduled)."""
        return replace(self, status=PairStatus.ENDED, end_reason=reason)

    def progress(self, moment: datetime) -> float:
        """How far into the pair's program ``moment`` is: 0 at the first session, 1 at the end."""
        if self.first_due is None or self.ends_at is None or self.ends_at <= self.first_due:
            return 0.0
        return (moment - self.first_due) / (self.ends_at - self.first_due)

    def after_held(self, held_at: datetime) -> Pair:
        """A held session resets the missed count and the stall flag."""
        latest = held_at if self.last_held_at is None else max(held_at, self.last_held_at)
        return replace(self, consecutive_missed=0, last_held_at=latest, stalled=False)

    def after_missed(self) -> Pair:
        """One more session missed in a row."""
        return replace(self, consecutive_missed=self.consecutive_missed + 1)

    def days_without_session(self, now: datetime) -> int:
        """Whole days since the last held session (since formation when none was held)."""
        since = self.last_held_at or self.formed_at
        return max((now - since).days, 0)

    def stall_reason(self, *, program: Program, now: datetime) -> StallReason | None:
        """The program's stall rule this active pair breaks now, if any (once per stall)."""
        if self.status is not PairStatus.ACTIVE or self.stalled:
            return None
        if self.consecutive_missed >= program.max_missed_sessions:
            return StallReason.MISSED_SESSIONS
        if self.days_without_session(now) >= program.max_days_without_session:
            return StallReason.NO_SESSION_HELD
        return None


@dataclass(frozen=True)
class Attendance:
    """What a participant records about a session that took place."""

    attendees: tuple[str, ...]
    duration_minutes: int
    topics_covered: tuple[str, ...]


@dataclass(frozen=True)
class Session:
    """One meeting of a pair."""

    session_id: str
    pair_id: str
    program_id: str
    number: int
    due_at: datetime
    starts_at: datetime
    ends_at: datetime
    agenda: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    status: SessionStatus = SessionStatus.SCHEDULED
    ical_sequence: int = 0
    attendees: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    duration_minutes: int | None = None
    topics_covered: tuple[str, ...] = ()
    cancel_reason: str | None = None
    updated_at: datetime | None = None

    @property
    def interval(self) -> Interval:
        """When the session takes place."""
        return Interval(self.starts_at, self.ends_at)

    def hold(
        self, attendance: Attendance, *, pair: Pair, program: Program, now: datetime
    ) -> Session:
        """Record the session as held."""
        self._require_open(now)
        _check_attendance(attendance, pair=pair, program=program)
        return replace(
            self,
            status=SessionStatus.HELD,
            attendees=attendance.attendees,
            duration_minutes=attendance.duration_minutes,
            topics_covered=attendance.topics_covered,
            updated_at=now,
        )

    def miss(self, *, absent: Sequence[str], now: datetime) -> Session:
        """Record the session as missed (``absent`` may be empty: nobody recorded it)."""
        self._require_open(now)
        return replace(self, status=SessionStatus.MISSED, absent=tuple(absent), updated_at=now)

    def cancel(self, *, reason: str, now: datetime) -> Session:
        """Cancel a session that has not started yet; its invite gets a higher SEQUENCE."""
        if self.status is not SessionStatus.SCHEDULED:
            raise Conflict(f"session is {self.status}, not scheduled")
        if self.starts_at <= now:
            raise Conflict("session has already started; record it as held or missed")
        return replace(
            self,
            status=SessionStatus.CANCELLED,
            cancel_reason=reason,
            ical_sequence=self.ical_sequence + 1,
            updated_at=now,
        )

    def move(self, slot: Interval, *, now: datetime) -> Session:
        """Move a session that has not started yet; its invite gets a higher SEQUENCE."""
        if self.status is not SessionStatus.SCHEDULED:
            raise Conflict(f"session is {self.status}, not scheduled")
        if self.starts_at <= now:
            raise Conflict("session has already started; record it as held or missed")
        if slot.start <= now:
            raise Invalid("a session can only be moved to a time in the future")
        return replace(
            self,
            starts_at=slot.start,
            ends_at=slot.end,
            ical_sequence=self.ical_sequence + 1,
            updated_at=now,
        )

    def _require_open(self, now: datetime) -> None:
        if self.status is not SessionStatus.SCHEDULED:
            raise Conflict(f"session is {self.status}, not scheduled")
        if self.starts_at > now:
            raise Conflict("session has not started yet")


def _check_attendance(attendance: Attendance, *, pair: Pair, program: Program) -> None:
    if not attendance.attendees:
        raise Invalid("a held session has at least one attendee")
    pair.check_members(attendance.attendees, what="attendees")
    unknown = set(attendance.topics_covered) - program.topic_keys()
    if unknown:
        raise Invalid(f"topics not in the program's catalogue: {sorted(unknown)}")


@dataclass(frozen=True)
class Note:
    """A private note about a session: read only by the two people of the pair."""

    session_id: str
    pair_id: str
    author_id: str
    body: str
    written_at: datetime
