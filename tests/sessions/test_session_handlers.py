"""The sessions handlers end to end on the fake store: events in, events out, time moved."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import icalendar
import pytest
from prometheus_client import REGISTRY
from sessions_harness import START, Harness, ended, formed, participant, program

from schemas.pairs import PairEnded, PairEndReason
from schemas.participants import (
    ErasureCompleted,
    LeaveReason,
    ParticipantForgotten,
    ParticipantLeft,
    ParticipantUpdated,
)
from schemas.programs import ProgramClosed, ProgramClosedReason, ProgramUpdated
from schemas.sessions import (
    CancelReason,
    PairStalled,
    SessionCancelled,
    SessionHeld,
    SessionMissed,
    SessionRescheduled,
    SessionScheduled,
    StallReason,
)
from servicekit.unit_of_work import Rejected
from services.sessions.domain.commands import Actor, Cancel, RecordHeld, RecordMissed, Reschedule
from services.sessions.domain.errors import Conflict, Forbidden, Invalid, NotFound
from services.sessions.domain.model import Pair, PairStatus, Session, SessionStatus
from services.sessions.handlers import (
    cancel_session,
    record_session_held,
    record_session_missed,
    reschedule_session,
)

MENTOR, MENTEE = Actor("emp-m"), Actor("emp-e")
ADMIN = Actor("emp-00017", is_admin=True)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def method(ics: str) -> str:
    return str(icalendar.Calendar.from_ical(ics)["METHOD"])


def sequence(ics: str) -> int:
    return int(next(iter(icalendar.Calendar.from_ical(ics).walk("VEVENT")))["SEQUENCE"])


async def held(h: Harness, number: int, topics: tuple[str, ...] = ()) -> None:
    session = h.of(SessionScheduled)[number - 1]
    h.clock.set(max(h.clock.now(), session.starts_at + timedelta(minutes=5)))
    command = RecordHeld(session.session_id, MENTEE, ("emp-m", "emp-e"), 55, topics, "private!")
    await h.run(record_session_held, command)


async def test_pair_formed_first_waits_for_program_and_people() -> None:
    h = Harness()
    await h.send(formed())
    await h.send(program(), participant("emp-m", "Europe/London"))
    assert h.events == []
    pending = await h.repo.get_pair(pair_id="pair-1")
    assert pending is not None and pending.status is PairStatus.PENDING
    await h.send(participant("emp-e", "Europe/London"))
    assert [e.sequence for e in h.of(SessionScheduled)] == [1, 2]


async def test_first_sessions_follow_the_cadence_inside_working_hours() -> None:
    h = Harness()
    await h.ready_pair()
    first, second = h.of(SessionScheduled)
    assert first.starts_at == utc(2025, 3, 5, 9)  # 48 h after forming, first working hour
    assert second.starts_at == utc(2025, 3, 19, 9)  # 14 days later
    assert first.ends_at - first.starts_at == timedelta(minutes=60)
    assert (first.mentor_id, first.mentee_id) == ("emp-m", "emp-e") and first.warnings == []
    assert first.agenda == ["social-media"] and second.agenda == ["genai-tools"]
    assert method(first.ics) == "REQUEST" and sequence(first.ics) == 0
    assert "mailto:emp-e@example.com" in first.ics.replace("\r\n ", "")


async def test_pairs_far_apart_get_a_warning() -> None:
    h = Harness()
    await h.ready_pair("America/New_York", "Asia/Manila")
    first = h.of(SessionScheduled)[0]
    assert first.warnings and "Asia/Manila" in first.warnings[0]


async def test_redelivered_pair_formed_schedules_nothing_twice() -> None:
    h = Harness()
    await h.ready_pair()
    await h.send(formed(), formed())
    assert len(h.of(SessionScheduled)) == 2
    await h.send(participant("emp-e", "Europe/London"), program())
    assert len(h.of(SessionScheduled)) == 2


async def test_a_mentor_with_two_mentees_never_has_two_sessions_at_once() -> None:
    h = Harness()
    await h.ready_pair()
    await h.send(participant("emp-x", "Europe/London"), formed("pair-2", "emp-m", "emp-x"))
    sessions = h.of(SessionScheduled)
    assert len(sessions) == 4
    slots = sorted((s.starts_at, s.ends_at) for s in sessions)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(slots))


async def test_held_session_keeps_notes_private_and_schedules_the_next() -> None:
    h = Harness()
    await h.ready_pair()
    await held(h, 1, ("social-media",))
    (event,) = h.of(SessionHeld)
    assert event.attendees == ["emp-m", "emp-e"] and event.topics_covered == ["social-media"]
    assert "private!" not in event.model_dump_json()
    notes = await h.repo.notes(session_id=event.session_id)
    assert [(n.author_id, n.body) for n in notes] == [("emp-e", "private!")]
    third = h.of(SessionScheduled)[2]
    assert third.sequence == 3 and third.starts_at == utc(2025, 4, 2, 8)  # London on BST now
    assert "social-media" not in third.agenda


async def test_recording_held_twice_or_too_early_is_refused() -> None:
    h = Harness()
    await h.ready_pair()
    first = h.of(SessionScheduled)[0]
    early = RecordHeld(first.session_id, MENTOR, ("emp-m",), 30)
    with pytest.raises(Conflict):
        await h.run(record_session_held, early)
    await held(h, 1)
    with pytest.raises(Conflict):
        await h.run(record_session_held, early)


async def test_only_the_pair_records_what_happened() -> None:
    h = Harness()
    await h.ready_pair()
    first = h.of(SessionScheduled)[0]
    h.clock.set(first.starts_at + timedelta(minutes=1))
    with pytest.raises(Forbidden):
        await h.run(
            record_session_held, RecordHeld(first.session_id, Actor("emp-x"), ("emp-x",), 30)
        )
    with pytest.raises(Forbidden):
        await h.run(record_session_held, RecordHeld(first.session_id, ADMIN, ("emp-m",), 30))
    with pytest.raises(Invalid):
        await h.run(record_session_held, RecordHeld(first.session_id, MENTOR, ("emp-x",), 30))
    with pytest.raises(NotFound):
        await h.run(record_session_held, RecordHeld("ses-nope", MENTOR, ("emp-m",), 30))


async def test_unrecorded_sessions_become_missed_after_the_grace_period() -> None:
    h = Harness()
    await h.ready_pair()
    first = h.of(SessionScheduled)[0]
    h.clock.set(first.ends_at + timedelta(minutes=59))
    await h.tick()
    assert h.of(SessionMissed) == []
    await h.advance(timedelta(minutes=2))
    (missed,) = h.of(SessionMissed)
    assert missed.session_id == first.session_id and missed.consecutive_missed == 1
    assert len(h.of(SessionScheduled)) == 3  # the next one is planned
    assert h.of(PairStalled) == []


async def test_the_grace_period_is_a_setting() -> None:
    h = Harness(missed_grace_minutes=5)
    await h.ready_pair()
    h.clock.set(h.of(SessionScheduled)[0].ends_at + timedelta(minutes=6))
    await h.tick()
    assert len(h.of(SessionMissed)) == 1


async def test_two_missed_in_a_row_stall_the_pair_once() -> None:
    h = Harness()
    await h.ready_pair()
    second = h.of(SessionScheduled)[1]
    h.clock.set(second.ends_at + timedelta(hours=2))
    await h.tick()
    assert [m.consecutive_missed for m in h.of(SessionMissed)] == [1, 2]
    (stalled,) = h.of(PairStalled)
    assert stalled.reason is StallReason.MISSED_SESSIONS and stalled.consecutive_missed == 2
    assert stalled.last_held_at is None
    await h.advance(timedelta(days=20))
    assert len(h.of(PairStalled)) == 1


async def test_days_without_a_held_session_stall_the_pair() -> None:
    h = Harness()
    rules = {"stall_rules": {"max_missed_sessions": 20, "max_days_without_session": 10}}
    await h.send(
        program(**rules),
        participant("emp-m", "Europe/London"),
        participant("emp-e", "Europe/London"),
        formed(),
    )
    await h.advance(timedelta(days=9, hours=23))
    assert h.of(PairStalled) == []
    await h.advance(timedelta(hours=1))
    (stalled,) = h.of(PairStalled)
    assert stalled.reason is StallReason.NO_SESSION_HELD and stalled.days_without_session == 10


async def test_a_held_session_clears_the_stall() -> None:
    h = Harness()
    await h.ready_pair()
    h.clock.set(h.of(SessionScheduled)[1].ends_at + timedelta(hours=2))
    await h.tick()
    await held(h, 3)
    pair = await h.repo.get_pair(pair_id="pair-1")
    assert pair is not None and not pair.stalled and pair.consecutive_missed == 0


async def test_participant_reports_a_no_show() -> None:
    h = Harness()
    await h.ready_pair()
    first = h.of(SessionScheduled)[0]
    h.clock.set(first.starts_at + timedelta(minutes=20))
    session = await h.run(record_session_missed, RecordMissed(first.session_id, MENTOR, ("emp-e",)))
    assert session.status is SessionStatus.MISSED
    assert h.of(SessionMissed)[0].absent == ["emp-e"]
    with pytest.raises(Invalid):
        await h.run(
            record_session_missed,
            RecordMissed(h.of(SessionScheduled)[1].session_id, MENTOR, ("x",)),
        )


async def test_reschedule_to_a_given_time_reissues_the_invite() -> None:
    h = Harness()
    await h.ready_pair()
    first = h.of(SessionScheduled)[0]
    new_start = utc(2025, 3, 6, 20)  # evening: outside working hours
    moved = await h.run(reschedule_session, Reschedule(first.session_id, MENTEE, new_start))
    assert moved.starts_at == new_start and moved.ical_sequence == 1
    (event,) = h.of(SessionRescheduled)
    assert event.previous_starts_at == first.starts_at and event.requested_by == "emp-e"
    assert sequence(event.ics) == 1 and method(event.ics) == "REQUEST"
    assert len(event.warnings) == 2


async def test_reschedule_refuses_clashes_and_the_past() -> None:
    h = Harness()
    await h.ready_pair()
    first, second = h.of(SessionScheduled)
    with pytest.raises(Conflict):
        await h.run(reschedule_session, Reschedule(first.session_id, MENTOR, second.starts_at))
    with pytest.raises(Invalid):
        await h.run(reschedule_session, Reschedule(first.session_id, MENTOR, START - timedelta(1)))
    with pytest.raises(Invalid):
        after_end = START + timedelta(weeks=30)
        await h.run(reschedule_session, Reschedule(first.session_id, MENTOR, after_end))


async def test_reschedule_without_a_time_finds_the_next_good_slot() -> None:
    h = Harness()
    await h.ready_pair()
    h.clock.set(utc(2025, 3, 4, 12))
    first = h.of(SessionScheduled)[0]
    moved = await h.run(reschedule_session, Reschedule(first.session_id, ADMIN))
    assert moved.starts_at == utc(2025, 3, 5, 12, 0)  # 24 h notice, then the first free slot
    assert h.of(SessionRescheduled)[0].requested_by is None


async def test_cancel_by_a_participant_then_the_next_is_planned() -> None:
    h = Harness()
    await h.ready_pair()
    first = h.of(SessionScheduled)[0]
    cancelled = await h.run(cancel_session, Cancel(first.session_id, MENTOR))
    assert cancelled.status is SessionStatus.CANCELLED
    (event,) = h.of(SessionCancelled)
    assert event.reason is CancelReason.PARTICIPANT_REQUEST and event.cancelled_by == "emp-m"
    assert method(event.ics) == "CANCEL" and sequence(event.ics) == 1
    assert [s.sequence for s in h.of(SessionScheduled)] == [1, 2, 3]
    admin_cancel = await h.run(cancel_session, Cancel(h.of(SessionScheduled)[1].session_id, ADMIN))
    assert admin_cancel.cancel_reason == "admin"
    with pytest.raises(Conflict):
        await h.run(cancel_session, Cancel(first.session_id, MENTOR))


async def test_pair_ended_cancels_future_sessions_with_method_cancel() -> None:
    h = Harness()
    await h.ready_pair()
    end = ended("emp-e")
    await h.send(end)
    cancelled = h.of(SessionCancelled)
    assert len(cancelled) == 2
    assert {c.reason for c in cancelled} == {CancelReason.PAIR_ENDED}
    assert all(method(c.ics) == "CANCEL" for c in cancelled)
    await h.send(end)
    await h.advance(timedelta(days=60))
    assert len(h.of(SessionCancelled)) == 2 and h.of(SessionScheduled)[2:] == []


async def four_weeks_both_held() -> Harness:
    """A pair in a 4-week program whose two sessions were held: no third one fits."""
    h = Harness()
    await h.send(
        program(duration_weeks=4),
        participant("emp-m", "Europe/London"),
        participant("emp-e", "Europe/London"),
        formed(),
    )
    assert len(h.of(SessionScheduled)) == 2
    await held(h, 1)
    await held(h, 2)
    assert len(h.of(SessionScheduled)) == 2  # no third session fits in 4 weeks
    return h


async def test_program_duration_over_ends_the_pair_completed() -> None:
    h = await four_weeks_both_held()
    await h.advance(timedelta(weeks=4))
    (completed,) = h.of(PairEnded)
    assert completed.reason is PairEndReason.COMPLETED and completed.pair_id == "pair-1"
    await h.send(completed)  # our own PairEnded comes back from upward.pairs
    await h.advance(timedelta(days=1))
    assert len(h.of(PairEnded)) == 1


async def test_completion_cancels_what_is_left() -> None:
    h = Harness(sessions_ahead=3)
    await h.send(
        program(duration_weeks=4, cadence_days=7),
        participant("emp-m", "Europe/London"),
        participant("emp-e", "Europe/London"),
        formed(),
    )
    await h.send(
        ProgramUpdated.model_validate(
            program(duration_weeks=2).model_dump()
            | {"revision": 2, "changed_fields": ["duration_weeks"]}
        )
    )
    h.clock.set(START + timedelta(weeks=2))
    await h.tick()
    assert h.of(PairEnded)[0].reason is PairEndReason.COMPLETED
    assert {c.reason for c in h.of(SessionCancelled)} == {CancelReason.PAIR_ENDED}
    assert len(h.of(SessionCancelled)) == 1


async def test_forgotten_participant_is_erased_and_their_sessions_cancelled() -> None:
    h = Harness()
    await h.ready_pair()
    await h.send(ParticipantForgotten(participant_id="emp-e", requested_at=START))
    (erasure,) = h.of(ErasureCompleted)
    assert erasure.participant_id == "emp-e" and erasure.records_erased == 2
    cancelled = h.of(SessionCancelled)
    assert {c.reason for c in cancelled} == {CancelReason.PARTICIPANT_FORGOTTEN}
    assert all("emp-e@example.com" not in c.ics for c in cancelled)
    assert await h.repo.get_participant(participant_id="emp-e", program_id="x") is None
    update = ParticipantUpdated.model_validate(
        participant("emp-e", "Europe/Paris").model_dump() | {"changed_fields": ["timezone"]}
    )
    await h.send(update)
    assert await h.repo.get_participant(participant_id="emp-e", program_id="x") is None


async def test_program_closed_cancels_and_ends_its_pairs() -> None:
    h = Harness()
    await h.ready_pair()
    await h.send(
        ProgramClosed(
            program_id="prg-2025-digital",
            reason=ProgramClosedReason.CANCELLED,
            closed_at=START,
            closed_by="emp-00017",
        )
    )
    assert {c.reason for c in h.of(SessionCancelled)} == {CancelReason.PROGRAM_CLOSED}
    pair = await h.repo.get_pair(pair_id="pair-1")
    assert pair is not None and pair.status is PairStatus.ENDED
    await h.send(formed("pair-2"))
    assert len(h.of(SessionScheduled)) == 2  # a closed program schedules nothing new


async def test_personal_working_hours_from_the_profile() -> None:
    h = Harness()
    early = {"working_hours": {"start": "06:00", "end": "10:00", "days": ["tue"]}}
    await h.send(
        program(),
        participant("emp-m", "UTC", **early),
        participant("emp-e", "UTC"),
        formed(),
    )
    first = h.of(SessionScheduled)[0]
    assert first.starts_at == utc(2025, 3, 11, 9) and first.warnings == []


async def test_planning_locks_both_calendars() -> None:
    h = Harness()
    await h.ready_pair()
    assert h.repo.locked_calendars == [("emp-e", "emp-m")]


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("upward_sessions_total", {"outcome": outcome}) or 0.0


async def test_outcomes_are_counted_in_metrics() -> None:
    before = {o: counted(o) for o in ("scheduled", "held", "missed", "cancelled")}
    stalled_before = REGISTRY.get_sample_value("upward_pairs_stalled_total") or 0.0
    h = Harness()
    await h.ready_pair()
    await held(h, 1)
    await h.run(cancel_session, Cancel(h.of(SessionScheduled)[1].session_id, MENTOR))
    h.clock.set(h.of(SessionScheduled)[3].ends_at + timedelta(hours=2))
    await h.tick()
    after = {o: counted(o) - before[o] for o in before}
    assert after == {
        "scheduled": len(h.of(SessionScheduled)),
        "held": 1,
        "missed": len(h.of(SessionMissed)),
        "cancelled": 1,
    }
    stalled_now = REGISTRY.get_sample_value("upward_pairs_stalled_total") or 0.0
    assert stalled_now - stalled_before == len(h.of(PairStalled)) == 1


async def test_participant_left_ends_their_pairs_before_matching_says_so() -> None:
    h = Harness()
    await h.ready_pair()
    left = ParticipantLeft(
        participant_id="emp-e",
        program_id="prg-2025-digital",
        reason=LeaveReason.VOLUNTARY,
        left_at=START,
    )
    await h.send(left)
    cancelled = h.of(SessionCancelled)
    assert len(cancelled) == 2 and {c.cancelled_by for c in cancelled} == {"emp-e"}
    pair = await h.repo.get_pair(pair_id="pair-1")
    assert pair is not None and pair.status is PairStatus.ENDED
    assert pair.end_reason == "participant_left"
    await h.send(ended("emp-e", PairEndReason.PARTICIPANT_LEFT), left)  # matching's, then again
    await h.advance(timedelta(days=30))
    assert len(h.of(SessionCancelled)) == 2 and len(h.of(SessionScheduled)) == 2
    assert h.of(PairEnded) == []  # matching announces the end, not this service


async def test_participant_left_another_program_changes_nothing() -> None:
    h = Harness()
    await h.ready_pair()
    await h.send(
        ParticipantLeft(
            participant_id="emp-e",
            program_id="prg-other",
            reason=LeaveReason.VOLUNTARY,
            left_at=START,
        )
    )
    assert h.of(SessionCancelled) == []


async def test_a_pair_of_one_person_is_rejected() -> None:
    h = Harness()
    await h.send(program(), participant("emp-m", "Europe/London"))
    with pytest.raises(Rejected):
        await h.send(formed(mentor="emp-m", mentee="emp-m"))
    assert await h.repo.get_pair(pair_id="pair-1") is None


async def test_a_window_where_every_time_clashes_moves_on_to_the_next() -> None:
    h = Harness()
    blocker = Pair("pair-0", "prg-2025-digital", "emp-m", "emp-b", (), formed_at=START)
    await h.repo.add_pair(pair=replace(blocker, status=PairStatus.ACTIVE))
    busy_until = utc(2025, 3, 12, 12)  # the first session's whole window (from 5 March, 08:00)
    await h.repo.add_session(
        session=Session("ses-block", "pair-0", "prg-2025-digital", 1, START, START, busy_until, ())
    )
    await h.ready_pair()
    first, second = h.of(SessionScheduled)
    assert first.starts_at == busy_until  # the next window's first free working hour
    assert second.starts_at == utc(2025, 3, 19, 9)  # the cadence goes on from the due time


async def test_a_longer_program_gives_pairs_at_the_old_end_their_next_sessions() -> None:
    h = await four_weeks_both_held()
    changed = {"revision": 2, "changed_fields": ["duration_weeks"]}
    longer = program(duration_weeks=8).model_dump() | changed
    await h.send(ProgramUpdated.model_validate(longer))
    assert [s.sequence for s in h.of(SessionScheduled)] == [1, 2, 3, 4]
    renamed = longer | {"revision": 3, "name": "Renamed", "changed_fields": ["name"]}
    await h.send(ProgramUpdated.model_validate(renamed))
    assert len(h.of(SessionScheduled)) == 4


async def test_reschedule_to_the_next_slot_moves_later_never_earlier() -> None:
    h = Harness()
    await h.ready_pair()
    first, second = h.of(SessionScheduled)
    moved = await h.run(reschedule_session, Reschedule(second.session_id, MENTOR))
    assert moved.starts_at == second.ends_at  # after the time that did not suit, not before
    assert moved.starts_at > first.starts_at


@pytest.mark.parametrize(
    "when",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1, 1, 1, 3, tzinfo=timezone(timedelta(hours=5))),
    ],
)
async def test_reschedule_to_the_first_day_of_the_calendar_is_invalid(when: datetime) -> None:
    h = Harness()
    await h.ready_pair()
    first = h.of(SessionScheduled)[0]
    with pytest.raises(Invalid):
        await h.run(reschedule_session, Reschedule(first.session_id, MENTOR, when))


# A consumer batch: the PairFormed of one transaction are started together --------------


def _scheduled(h: Harness) -> list[tuple[object, ...]]:
    return [
        (s.pair_id, s.session_id, s.starts_at, s.ends_at, tuple(s.agenda), s.ics, tuple(s.warnings))
        for s in h.of(SessionScheduled)
    ]


async def _people(h: Harness, *people: tuple[str, str]) -> None:
    await h.send(program(), *(participant(p, tz) for p, tz in people))


PEOPLE = (
    ("emp-m", "Europe/London"),
    ("emp-e", "Asia/Tokyo"),
    ("emp-x", "America/New_York"),
    ("emp-y", "Europe/London"),
)
PAIRS = (
    formed("pair-1", "emp-m", "emp-e"),
    formed("pair-2", "emp-m", "emp-x"),  # the same mentor: must not clash with pair-1
    formed("pair-3", "emp-y", "emp-x"),
    formed("pair-1", "emp-m", "emp-e"),  # the same pair again (another event id)
    formed("pair-4", "emp-y", "emp-nobody"),  # waits for its mentee
)


async def test_a_batch_of_pair_formed_schedules_what_one_by_one_would() -> None:
    alone, batch = Harness(), Harness()
    for h in (alone, batch):
        await _people(h, *PEOPLE)
    await alone.send(*PAIRS)
    await batch.send_batch(*PAIRS)
    assert len(_scheduled(batch)) == 6
    assert _scheduled(batch) == _scheduled(alone)
    assert batch.repo.pairs_by_id == alone.repo.pairs_by_id
    assert batch.repo.sessions_by_id == alone.repo.sessions_by_id
    assert batch.repo.pairs_by_id["pair-4"].status is PairStatus.PENDING
    slots = sorted((s.starts_at, s.ends_at) for s in batch.of(SessionScheduled)[:4])
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(slots))  # emp-m's four sessions
    assert batch.repo.locked_calendars == [("emp-e", "emp-m", "emp-x", "emp-y")]


async def test_a_batch_sees_sessions_stored_before_it() -> None:
    alone, batch = Harness(), Harness()
    for h in (alone, batch):
        await _people(h, *PEOPLE)
        await h.send(PAIRS[0])
    await alone.send(PAIRS[1], PAIRS[2])
    await batch.send_batch(PAIRS[1], PAIRS[2])
    assert _scheduled(batch) == _scheduled(alone)
    assert len(_scheduled(batch)) == 6


async def test_an_event_after_pair_formed_in_a_batch_sees_the_pair() -> None:
    h = Harness()
    await _people(h, *PEOPLE)
    await h.send_batch(
        formed("pair-1", "emp-m", "emp-e"),
        ended("emp-m"),
        formed("pair-2", "emp-y", "emp-nobody"),
        participant("emp-nobody", "Europe/Paris"),
    )
    assert h.repo.pairs_by_id["pair-1"].status is PairStatus.ENDED
    assert [e.session_id for e in h.of(SessionCancelled)] == [
        e.session_id for e in h.of(SessionScheduled)[:2]
    ]
    assert h.repo.pairs_by_id["pair-2"].status is PairStatus.ACTIVE  # started by the join
    assert len(h.of(SessionScheduled)) == 4


async def test_a_batch_of_pairs_waiting_for_their_program_schedules_nothing() -> None:
    h = Harness()
    await h.send_batch(formed("pair-1"), formed("pair-2", "emp-m", "emp-x"))
    assert {p.status for p in h.repo.pairs_by_id.values()} == {PairStatus.PENDING}
    assert h.of(SessionScheduled) == [] and h.repo.locked_calendars == []
