"""Session and pair rules: state transitions, stall rules, cadence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from schemas.sessions import StallReason
from services.sessions.domain.agenda import Topic
from services.sessions.domain.cadence import next_due, search_window, session_id_for
from services.sessions.domain.errors import Conflict, Forbidden, Invalid
from services.sessions.domain.model import (
    Attendance,
    Pair,
    PairStatus,
    Program,
    Session,
    SessionStatus,
)
from services.sessions.domain.slots import Interval

T0 = datetime(2025, 3, 3, 9, tzinfo=UTC)
PROGRAM = Program(
    program_id="prg-1",
    name="Digital fluency",
    cadence_days=14,
    duration_weeks=26,
    session_minutes=60,
    max_missed_sessions=2,
    max_days_without_session=35,
    catalogue=(Topic("social-media", "Social media", 1), Topic("strategy", "Strategy", 5)),
)
PAIR = Pair("pair-1", "prg-1", "emp-m", "emp-e", ("social-media",), formed_at=T0)
ACTIVE = PAIR.activate(program=PROGRAM, lead=timedelta(hours=48))
SESSION = Session(
    session_id="ses-1",
    pair_id="pair-1",
    program_id="prg-1",
    number=1,
    due_at=T0 + timedelta(days=2),
    starts_at=T0 + timedelta(days=2),
    ends_at=T0 + timedelta(days=2, hours=1),
    agenda=("social-media",),
)
DURING = SESSION.starts_at + timedelta(minutes=10)
BEFORE = SESSION.starts_at - timedelta(hours=1)
BOTH = Attendance(("emp-m", "emp-e"), 55, ("social-media",))


def test_activation_sets_first_due_and_end() -> None:
    assert ACTIVE.status is PairStatus.ACTIVE
    assert ACTIVE.first_due == T0 + timedelta(hours=48)
    assert ACTIVE.ends_at == T0 + timedelta(weeks=26)


def test_hold_records_attendance() -> None:
    held = SESSION.hold(BOTH, pair=ACTIVE, program=PROGRAM, now=DURING)
    assert held.status is SessionStatus.HELD
    assert held.attendees == ("emp-m", "emp-e") and held.duration_minutes == 55
    assert held.topics_covered == ("social-media",)


def test_hold_before_the_start_is_refused() -> None:
    with pytest.raises(Conflict, match="not started"):
        SESSION.hold(BOTH, pair=ACTIVE, program=PROGRAM, now=BEFORE)


def test_hold_twice_is_refused() -> None:
    held = SESSION.hold(BOTH, pair=ACTIVE, program=PROGRAM, now=DURING)
    with pytest.raises(Conflict, match="held"):
        held.hold(BOTH, pair=ACTIVE, program=PROGRAM, now=DURING)


@pytest.mark.parametrize(
    "attendance",
    [
        Attendance(("emp-m", "stranger"), 30, ()),
        Attendance((), 30, ()),
        Attendance(("emp-m",), 30, ("not-a-topic",)),
    ],
)
def test_hold_with_bad_content_is_invalid(attendance: Attendance) -> None:
    with pytest.raises(Invalid):
        SESSION.hold(attendance, pair=ACTIVE, program=PROGRAM, now=DURING)


def test_cancel_raises_the_sequence_and_only_before_the_start() -> None:
    cancelled = SESSION.cancel(reason="participant_request", now=BEFORE)
    assert cancelled.status is SessionStatus.CANCELLED and cancelled.ical_sequence == 1
    with pytest.raises(Conflict):
        SESSION.cancel(reason="participant_request", now=DURING)
    with pytest.raises(Conflict):
        cancelled.cancel(reason="participant_request", now=BEFORE)


def test_move_raises_the_sequence_and_refuses_the_past() -> None:
    later = Interval(SESSION.starts_at + timedelta(days=1), SESSION.ends_at + timedelta(days=1))
    moved = SESSION.move(later, now=BEFORE)
    assert moved.starts_at == later.start and moved.ical_sequence == 1
    assert moved.move(later, now=BEFORE).ical_sequence == 2
    with pytest.raises(Invalid):
        SESSION.move(Interval(BEFORE - timedelta(hours=2), BEFORE), now=BEFORE)
    with pytest.raises(Conflict):
        SESSION.move(later, now=DURING)


def test_miss_needs_a_started_scheduled_session() -> None:
    missed = SESSION.miss(absent=("emp-e",), now=DURING)
    assert missed.status is SessionStatus.MISSED and missed.absent == ("emp-e",)
    with pytest.raises(Conflict):
        SESSION.miss(absent=(), now=BEFORE)
    with pytest.raises(Conflict):
        missed.miss(absent=(), now=DURING)


def test_role_of_refuses_strangers() -> None:
    assert PAIR.role_of("emp-m") == "mentor" and PAIR.role_of("emp-e") == "mentee"
    with pytest.raises(Forbidden):
        PAIR.role_of("emp-x")


def test_stalled_after_n_missed_in_a_row() -> None:
    once = ACTIVE.after_missed()
    assert once.stall_reason(program=PROGRAM, now=T0 + timedelta(days=20)) is None
    twice = once.after_missed()
    assert twice.stall_reason(program=PROGRAM, now=T0) is StallReason.MISSED_SESSIONS


def test_stalled_after_x_days_without_a_held_session() -> None:
    assert ACTIVE.stall_reason(program=PROGRAM, now=T0 + timedelta(days=34)) is None
    late = T0 + timedelta(days=35)
    assert ACTIVE.stall_reason(program=PROGRAM, now=late) is StallReason.NO_SESSION_HELD
    held = ACTIVE.after_held(T0 + timedelta(days=30))
    assert held.stall_reason(program=PROGRAM, now=late) is None


def test_a_held_session_resets_the_stall() -> None:
    stalled = replace(ACTIVE.after_missed().after_missed(), stalled=True)
    assert stalled.stall_reason(program=PROGRAM, now=T0) is None  # flagged once
    recovered = stalled.after_held(T0 + timedelta(days=3))
    assert not recovered.stalled and recovered.consecutive_missed == 0
    assert recovered.last_held_at == T0 + timedelta(days=3)


def test_ended_or_pending_pairs_never_stall() -> None:
    ended = ACTIVE.after_missed().after_missed().end("admin_ended")
    assert ended.stall_reason(program=PROGRAM, now=T0) is None
    assert PAIR.after_missed().after_missed().stall_reason(program=PROGRAM, now=T0) is None


def test_progress_runs_from_first_session_to_the_end() -> None:
    assert ACTIVE.first_due is not None and ACTIVE.ends_at is not None
    assert ACTIVE.progress(ACTIVE.first_due) == 0
    assert ACTIVE.progress(ACTIVE.ends_at) == 1
    assert PAIR.progress(T0) == 0


CADENCE = timedelta(days=14)


def test_next_due_follows_the_cadence() -> None:
    assert next_due(ACTIVE, [], cadence=CADENCE, earliest=T0) == ACTIVE.first_due
    first = replace(SESSION, due_at=T0 + timedelta(days=2))
    assert next_due(ACTIVE, [first], cadence=CADENCE, earliest=T0) == T0 + timedelta(days=16)


def test_next_due_catches_up_when_behind() -> None:
    first = replace(SESSION, due_at=T0 + timedelta(days=2))
    late = T0 + timedelta(days=40)
    assert next_due(ACTIVE, [first], cadence=CADENCE, earliest=late) == late


def test_no_session_due_after_the_program() -> None:
    assert ACTIVE.ends_at is not None
    last = replace(SESSION, due_at=ACTIVE.ends_at - timedelta(days=1))
    assert next_due(ACTIVE, [last], cadence=CADENCE, earliest=T0) is None
    assert next_due(PAIR, [], cadence=CADENCE, earliest=T0) is None


def test_search_window_is_one_cadence_at_most_a_week_and_inside_the_program() -> None:
    end = T0 + timedelta(days=100)
    assert search_window(T0, cadence=CADENCE, ends_at=end) == Interval(T0, T0 + timedelta(days=7))
    short = search_window(T0, cadence=timedelta(days=3), ends_at=end)
    assert short.end == T0 + timedelta(days=3)
    near_end = search_window(T0, cadence=CADENCE, ends_at=T0 + timedelta(days=2))
    assert near_end.end == T0 + timedelta(days=2)


def test_session_ids_are_stable_and_distinct() -> None:
    assert session_id_for("pair-1", 1) == session_id_for("pair-1", 1)
    assert len({session_id_for("pair-1", 1), session_id_for("pair-1", 2)}) == 2
    assert len(session_id_for("p" * 128, 99)) <= 128
