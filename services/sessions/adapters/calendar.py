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

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

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

    @property
    def people(self) -> list[Participant]:
        """The mentor and the mentee, those of them who are known."""
        return [p for p in (self.mentor, self.mentee) if p is not None]


def session_uid(session_id: str) -> str:
    """The iCalendar UID of a session: stable for its whole life."""
    return f"{session_id}@upward"


def invite(session: Session, context: InviteContext, *, now: datetime) -> str:
    """The iTIP message for the session as it stands now: REQUEST, or CANCEL once cancelled.

    Written line by line (:func:`_invite_lines`): the same text, byte for byte, as
    :func:`library_invite` (tests compare them on generated sessions, people and
    programs), for a small fraction of its cost. Times not in UTC go through the library.
    """
    if not all(_in_utc(moment) for moment in (session.starts_at, session.ends_at, now)):
        return library_invite(session, context, now=now)
    return "\r\n".join(map(_fold, _invite_lines(session, context, now))) + "\r\n"


def library_invite(session: Session, context: InviteContext, *, now: datetime) -> str:
    """:func:`invite` built with the ``icalendar`` library's components."""
    cancelled = session.status is SessionStatus.CANCELLED
    calendar = icalendar.Calendar.new(
        prodid=PRODID,
        method="CANCEL" if cancelled else "REQUEST",
        uid=_invite_uid(session),
        subcomponents=[session_event(session, context, now=now)],
    )
    return _text(calendar)


def _invite_uid(session: Session) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{session.session_id}/{session.ical_sequence}")


def _invite_lines(session: Session, context: InviteContext, now: datetime) -> list[str]:
    """The invite's content lines, unfolded, in the library's order (its canonical
    properties first, then the others by name)."""
    cancelled = session.status is SessionStatus.CANCELLED
    attendees = [_attendee_line(p.email, p.display_name) for p in context.people]
    return [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        _PRODID_LINE,
        "METHOD:CANCEL" if cancelled else "METHOD:REQUEST",
        f"UID:{_invite_uid(session)}",
        "BEGIN:VEVENT",
        f"SUMMARY:{_escaped(_summary(session, context))}",
        f"DTSTART:{_utc_text(session.starts_at)}",
        f"DTEND:{_utc_text(session.ends_at)}",
        f"DTSTAMP:{_utc_text(now)}",
        f"UID:{_escaped(session_uid(session.session_id))}",
        f"SEQUENCE:{session.ical_sequence}",
        *attendees,
        "CATEGORIES:Upward,Mentoring",
        f"DESCRIPTION:{_escaped(_description(session, context))}",
        _organizer_line(context.organizer.email, context.organizer.name),
        "STATUS:CANCELLED" if cancelled else "STATUS:CONFIRMED",
        "TRANSP:OPAQUE",
        "END:VEVENT",
        "END:VCALENDAR",
    ]


@lru_cache(maxsize=4096)
def _attendee_line(email: str, name: str) -> str:
    return (
        f"ATTENDEE;CN={_cn(name)};PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT;RSVP=TRUE"
        f":mailto:{email}"
    )


@lru_cache(maxsize=16)
def _organizer_line(email: str, name: str) -> str:
    return f"ORGANIZER;CN={_cn(name)}:mailto:{email}"


@lru_cache(maxsize=4096)
def _escaped(text: str) -> str:
    """A TEXT value escaped as RFC 5545 (section 3.3.11) and the library write it (kept:
    descriptions and summaries repeat across the sessions of a program)."""
    return (
        text.replace("\\N", "\n")
        .replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


_PRODID_LINE = f"PRODID:{_escaped(PRODID)}"
_RFC_6868 = re.compile('\\^|\r\n|\r|\n|"')
_RFC_6868_ESCAPES = {"^": "^^", "\r\n": "^n", "\r": "^n", "\n": "^n", '"': "^'"}
_QUOTABLE = re.compile("[,;:\u2019]")


def _cn(name: str) -> str:
    """A CN parameter value: RFC 6868 escapes, quoted when it holds a space, a quote or
    a separator (as the library quotes it)."""
    value = _RFC_6868.sub(lambda m: _RFC_6868_ESCAPES[m.group(0)], name)
    if " " in name or "'" in name or _QUOTABLE.search(value):
        return f'"{value}"'
    return value


def _in_utc(moment: datetime) -> bool:
    return moment.tzinfo is UTC


@lru_cache(maxsize=4096)
def _utc_text(moment: datetime) -> str:
    """A UTC DATE-TIME value (kept: sessions start on a 15-minute grid, and the invites
    of one transaction share their DTSTAMP)."""
    return f"{moment:%Y%m%dT%H%M%S}Z"


def _fold(line: str) -> str:
    """The line folded as the library folds it: as many whole characters as fit in 74
    octets per physical line, and never right after a backslash or a caret (the escape
    moves on with what it escapes)."""
    if len(line) < _FOLD_AT and line.isascii():
        return line
    octets = line.encode()
    parts: list[bytes] = []
    start = 0
    while len(octets) - start >= _FOLD_AT:
        end = start + _FOLD_AT - 1
        while octets[end] & 0xC0 == 0x80:  # inside a character: cut before it
            end -= 1
        if end - start > 1 and octets[end - 1] in b"\\^":
            end -= 1
        parts.append(octets[start:end])
        start = end
    parts.append(octets[start:])
    return b"\r\n ".join(parts).decode()


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
        attendees=[_attendee(p) for p in context.people],
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
