"""iCalendar (RFC 5545) invites and feeds, written with the ``icalendar`` library.

Each session is one VEVENT whose UID never changes (``<session_id>@upward``); its
SEQUENCE starts at 0 and rises by one at every reschedule and at cancellation, so
calendar clients replace the old copy. Invites are iTIP messages (RFC 5546):
``METHOD:REQUEST`` while the session stands, ``METHOD:CANCEL`` with
``STATUS:CANCELLED`` once cancelled. The per-participant feed is a plain published
calendar of the same VEVENTs (cancelled ones kept, marked CANCELLED, so subscribed
clients drop them).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import icalendar
from icalendar.enums import PARTSTAT, ROLE, STATUS, TRANSP
from icalendar.parser import Contentline

from services.sessions.domain.model import Participant, Session, SessionStatus

PRODID = "-//Upward//sessions//EN"
_NAMESPACE = uuid.UUID("6f1c1c62-3f0e-4d55-9a53-7f4f0d2a8e11")


@dataclass(frozen=True)
class Organizer:
    """Who sends the invites (the platform's calendar mailbox)."""

    email: str
    name: str


@dataclass(frozen=True)
class InviteContext:
    """What an invite shows besides the session: program, people, organizer."""

    program_name: str
    topic_titles: Mapping[str, str]
    mentor: Participant | None
    mentee: Participant | None
    organizer: Organizer


def session_uid(session_id: str) -> str:
    """The iCalendar UID of a session: stable for its whole life."""
    return f"{session_id}@upward"


def invite(session: Session, context: InviteContext, *, now: datetime) -> str:
    """The iTIP message for the session as it stands now: REQUEST, or CANCEL once cancelled."""
    cancelled = session.status is SessionStatus.CANCELLED
    calendar = icalendar.Calendar.new(
        prodid=PRODID,
        method="CANCEL" if cancelled else "REQUEST",
        uid=uuid.uuid5(_NAMESPACE, f"{session.session_id}/{session.ical_sequence}"),
        subcomponents=[session_event(session, context, now=now)],
    )
    return _text(calendar)


def feed(entries: Sequence[tuple[Session, InviteContext]], *, owner_id: str, now: datetime) -> str:
    """A published calendar (``.ics`` feed) of one participant's sessions."""
    calendar = icalendar.Calendar.new(
        prodid=PRODID,
        method="PUBLISH",
        name="Upward mentoring sessions",
        uid=uuid.uuid5(_NAMESPACE, f"feed/{owner_id}"),
        subcomponents=[session_event(s, c, now=now) for s, c in entries],
    )
    return _text(calendar)


def _text(calendar: icalendar.Calendar) -> str:
    """``calendar.to_ical()`` as text, without running the folding over short lines.

    The library folds each content line character by character; a line of at most 74
    ASCII characters is never folded, so it is taken as it is and only longer lines
    go through the library's folding. The text is the same, byte for byte.
    """
    lines = calendar.content_lines()
    return "\r\n".join(_folded(line) for line in lines if line) + "\r\n"


def _folded(line: Contentline) -> str:
    if len(line) < _FOLD_AT and line.isascii():
        return str(line)
    folded: bytes = line.to_ical()  # type: ignore[no-untyped-call]  # untyped in icalendar
    return folded.decode()


_FOLD_AT = 75
"""Content lines are folded before their 75th octet (RFC 5545, section 3.1)."""


def session_event(session: Session, context: InviteContext, *, now: datetime) -> icalendar.Event:
    """The VEVENT of one session."""
    cancelled = session.status is SessionStatus.CANCELLED
    return icalendar.Event.new(
        uid=session_uid(session.session_id),
        sequence=session.ical_sequence,
        stamp=now,
        start=session.starts_at,
        end=session.ends_at,
        summary=_summary(session, context),
        description=_description(session, context),
        organizer=icalendar.vCalAddress.new(
            f"mailto:{context.organizer.email}", cn=context.organizer.name
        ),
        attendees=[_attendee(p) for p in (context.mentor, context.mentee) if p is not None],
        status=STATUS.CANCELLED if cancelled else STATUS.CONFIRMED,
        transparency=TRANSP.OPAQUE,
        categories=["Upward", "Mentoring"],
    )


def _attendee(person: Participant) -> icalendar.vCalAddress:
    return icalendar.vCalAddress.new(
        f"mailto:{person.email}",
        cn=person.display_name,
        role=ROLE.REQ_PARTICIPANT,
        partstat=PARTSTAT.NEEDS_ACTION,
        rsvp=True,
    )


def _summary(session: Session, context: InviteContext) -> str:
    title = f"Upward mentoring session {session.number}"
    if context.mentor is None or context.mentee is None:
        return title
    return f"{title}: {context.mentor.display_name} & {context.mentee.display_name}"


def _description(session: Session, context: InviteContext) -> str:
    agenda = [f"- {context.topic_titles.get(key, key)}" for key in session.agenda]
    return "\n".join(
        [
            context.program_name,
            "",
            "Agenda:",
            *(agenda or ["- open conversation"]),
            "",
            "What is said in the pair stays in the pair.",
        ]
    )
