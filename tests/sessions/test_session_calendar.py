"""iCalendar invites and feeds, read back by icalendar and by a second parser (ical)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
from hypothesis import given, settings
from hypothesis import strategies as st
from ical.calendar_stream import IcsCalendarStream
from ical.event import EventStatus

from schemas.sessions import SessionScheduled
from services.sessions.adapters import calendar as calendar_module
from services.sessions.adapters.calendar import (
    PRODID,
    InviteContext,
    Organizer,
    feed,
    invite,
    session_event,
    session_uid,
)
from services.sessions.domain.model import Participant, Session, SessionStatus
from services.sessions.domain.slots import Interval

NOW = datetime(2025, 3, 3, 8, tzinfo=UTC)
START = datetime(2025, 3, 5, 14, tzinfo=UTC)
SESSION = Session(
    session_id="ses-abc",
    pair_id="pair-1",
    program_id="prg-1",
    number=3,
    due_at=START,
    starts_at=START,
    ends_at=START + timedelta(hours=1),
    agenda=("social-media", "genai-tools"),
)
MENTOR = Participant("emp-m", "Aïsha Rahman, Jr.", "aisha@example.com", "Europe/London")
MENTEE = Participant("emp-e", "Wei; Chen", "wei.chen@example.com", "Asia/Shanghai")
CONTEXT = InviteContext(
    program_name="Digital fluency, 2025",
    topic_titles={"social-media": "Posting on social media"},
    mentor=MENTOR,
    mentee=MENTEE,
    organizer=Organizer("mentoring@upward.example", "Upward mentoring"),
)


def parse(text: str) -> tuple[icalendar.Calendar, icalendar.Event]:
    calendar = icalendar.Calendar.from_ical(text)
    events = list(calendar.walk("VEVENT"))
    assert len(events) == 1
    return calendar, events[0]


def test_request_invite_reads_back_with_icalendar() -> None:
    calendar, event = parse(invite(SESSION, CONTEXT, now=NOW))
    assert calendar["METHOD"] == "REQUEST"
    assert str(event["UID"]) == "ses-abc@upward" == session_uid("ses-abc")
    assert event["SEQUENCE"] == 0 and event["STATUS"] == "CONFIRMED"
    assert event.start == START and event.end == START + timedelta(hours=1)
    assert event.stamp == NOW
    assert str(event["ORGANIZER"]) == "mailto:mentoring@upward.example"
    attendees = {str(a): a.params["CN"] for a in event["ATTENDEE"]}
    assert attendees == {
        "mailto:aisha@example.com": "Aïsha Rahman, Jr.",
        "mailto:wei.chen@example.com": "Wei; Chen",
    }
    assert str(event["SUMMARY"]) == "Upward mentoring session 3: Aïsha Rahman, Jr. & Wei; Chen"
    description = str(event["DESCRIPTION"])
    assert "Posting on social media" in description and "genai-tools" in description


def test_request_invite_reads_back_with_a_second_parser() -> None:
    calendar = IcsCalendarStream.calendar_from_ics(invite(SESSION, CONTEXT, now=NOW))
    assert calendar.method == "REQUEST"
    (event,) = calendar.events
    assert event.uid == "ses-abc@upward" and event.sequence == 0
    assert event.dtstart == START and event.dtend == START + timedelta(hours=1)
    assert event.status is EventStatus.CONFIRMED
    assert [a.uri for a in event.attendees] == [
        "mailto:aisha@example.com",
        "mailto:wei.chen@example.com",
    ]
    assert event.summary == "Upward mentoring session 3: Aïsha Rahman, Jr. & Wei; Chen"


def test_reschedule_keeps_the_uid_and_raises_the_sequence() -> None:
    later = Interval(START + timedelta(days=1), START + timedelta(days=1, hours=1))
    moved = SESSION.move(later, now=NOW)
    _, before = parse(invite(SESSION, CONTEXT, now=NOW))
    _, after = parse(invite(moved, CONTEXT, now=NOW))
    assert after["UID"] == before["UID"]
    assert after["SEQUENCE"] == before["SEQUENCE"] + 1
    assert after.start == later.start
    second = IcsCalendarStream.calendar_from_ics(invite(moved, CONTEXT, now=NOW)).events[0]
    assert second.sequence == 1 and second.dtstart == later.start


def test_cancellation_is_method_cancel_with_a_higher_sequence() -> None:
    cancelled = SESSION.cancel(reason="pair_ended", now=NOW)
    text = invite(cancelled, CONTEXT, now=NOW)
    calendar, event = parse(text)
    assert calendar["METHOD"] == "CANCEL"
    assert event["STATUS"] == "CANCELLED" and event["SEQUENCE"] == 1
    assert str(event["UID"]) == "ses-abc@upward"
    other = IcsCalendarStream.calendar_from_ics(text)
    assert other.method == "CANCEL" and other.events[0].status is EventStatus.CANCELLED


def test_invite_without_a_forgotten_person_still_parses() -> None:
    forgotten = replace(CONTEXT, mentee=None)
    text = invite(SESSION, forgotten, now=NOW)
    _, event = parse(text)
    assert str(event["ATTENDEE"]) == "mailto:aisha@example.com"
    assert str(event["SUMMARY"]) == "Upward mentoring session 3"
    assert "wei.chen" not in text and "Wei" not in text
    assert IcsCalendarStream.calendar_from_ics(text).events[0].uid == "ses-abc@upward"


def test_invite_fits_the_event_contract() -> None:
    text = invite(SESSION, CONTEXT, now=NOW)
    event = SessionScheduled.example().model_copy(update={"ics": text})
    assert SessionScheduled.model_validate(event.model_dump()).ics.startswith("BEGIN:VCALENDAR")


def test_feed_lists_every_session_and_reads_back_with_both_parsers() -> None:
    second = replace(SESSION, session_id="ses-def", number=4, starts_at=START + timedelta(days=14))
    second = replace(second, ends_at=second.starts_at + timedelta(hours=1))
    cancelled = replace(second, session_id="ses-ghi", number=5, status=SessionStatus.CANCELLED)
    entries = [(SESSION, CONTEXT), (second, CONTEXT), (cancelled, CONTEXT)]
    text = feed(entries, owner_id="emp-m", now=NOW)
    calendar = icalendar.Calendar.from_ical(text)
    assert calendar["METHOD"] == "PUBLISH"
    uids = [str(e["UID"]) for e in calendar.walk("VEVENT")]
    assert uids == ["ses-abc@upward", "ses-def@upward", "ses-ghi@upward"]
    other = IcsCalendarStream.calendar_from_ics(text)
    statuses = [e.status for e in other.events]
    assert statuses == [EventStatus.CONFIRMED, EventStatus.CONFIRMED, EventStatus.CANCELLED]


def test_empty_feed_is_a_valid_calendar() -> None:
    text = feed([], owner_id="emp-m", now=NOW)
    assert icalendar.Calendar.from_ical(text).walk("VEVENT") == []
    assert IcsCalendarStream.calendar_from_ics(text).events == []


def test_invite_text_is_the_librarys_serialisation_byte_for_byte() -> None:
    long_names = replace(
        CONTEXT,
        program_name="Programme numérique, édition 2025; avec des accents " * 3,
        topic_titles={"social-media": "Publier sur les réseaux sociaux, 社交媒体 " * 4},
        mentor=replace(MENTOR, display_name="Aïsha Rahman-Łukasiewicz, Jr. \\ " * 3),
    )
    around_the_fold = [  # SUMMARY lines of 70 to 80 ASCII characters
        replace(CONTEXT, mentor=replace(MENTOR, display_name="A" * n)) for n in range(21, 32)
    ]
    for context in (CONTEXT, long_names, *around_the_fold):
        for session in (SESSION, replace(SESSION, agenda=(), status=SessionStatus.CANCELLED)):
            calendar = icalendar.Calendar.new(
                prodid=PRODID, subcomponents=[session_event(session, context, now=NOW)]
            )
            text = calendar_module._text(calendar)
            assert text == calendar.to_ical().decode()
            assert max(len(line.encode()) for line in text.split("\r\n")) <= 75


def _library_text(session: Session, context: InviteContext) -> str:
    """The invite as the library serialises its own components (folding included)."""
    cancelled = session.status is SessionStatus.CANCELLED
    calendar = icalendar.Calendar.new(
        prodid=PRODID,
        method="CANCEL" if cancelled else "REQUEST",
        uid=calendar_module._invite_uid(session),
        subcomponents=[session_event(session, context, now=NOW)],
    )
    return str(calendar.to_ical().decode())


_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(" ,;:'\"^\\\n\r\u2019é社N")), st.characters(codec="utf-8")
    ).filter(lambda c: c not in "\x00"),
    max_size=90,
)
_PEOPLE = st.one_of(
    st.none(),
    st.builds(
        Participant,
        participant_id=st.just("emp-x"),
        display_name=_TEXT.filter(bool),
        email=st.from_regex(r"[a-z0-9.]{1,40}@[a-z]{1,20}\.example", fullmatch=True),
        timezone=st.just("Europe/Paris"),
    ),
)


@settings(max_examples=150, deadline=None)
@given(
    program_name=_TEXT,
    titles=st.lists(_TEXT, max_size=3),
    mentor=_PEOPLE,
    mentee=_PEOPLE,
    organizer=st.tuples(st.emails(), _TEXT.filter(bool)),
    number=st.integers(1, 400),
    sequence=st.integers(0, 12),
    status=st.sampled_from(SessionStatus),
    minutes=st.integers(15, 24 * 60),
)
def test_the_invite_is_the_librarys_text_byte_for_byte(
    program_name: str,
    titles: list[str],
    mentor: Participant | None,
    mentee: Participant | None,
    organizer: tuple[str, str],
    number: int,
    sequence: int,
    status: SessionStatus,
    minutes: int,
) -> None:
    keys = [f"topic-{i}" for i in range(len(titles) + 1)]  # the last one has no title
    context = InviteContext(
        program_name=program_name,
        topic_titles=dict(zip(keys, titles, strict=False)),
        mentor=mentor,
        mentee=mentee,
        organizer=Organizer(*organizer),
    )
    session = replace(
        SESSION,
        number=number,
        ical_sequence=sequence,
        status=status,
        agenda=tuple(keys),
        ends_at=START + timedelta(minutes=minutes),
    )
    assert invite(session, context, now=NOW) == _library_text(session, context)


def test_times_not_in_utc_are_written_by_the_library() -> None:
    paris = ZoneInfo("Europe/Paris")
    moved = replace(SESSION, starts_at=START.astimezone(paris), ends_at=START + timedelta(hours=2))
    text = invite(moved, CONTEXT, now=NOW.replace(microsecond=5))
    assert text == calendar_module.library_invite(moved, CONTEXT, now=NOW.replace(microsecond=5))
    assert "DTSTART;TZID=Europe/Paris:" in text


def test_escapes_at_every_fold_position_stay_with_what_they_escape() -> None:
    for n in range(1, 80):
        context = replace(
            CONTEXT,
            program_name="p" * n + "\\;,\n" * 3,
            mentor=replace(MENTOR, display_name="A" * n + '^"^\n'),
            mentee=replace(MENTEE, display_name="é" * n + '^"'),
        )
        assert invite(SESSION, context, now=NOW) == _library_text(SESSION, context)
