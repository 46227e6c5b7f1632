"""Slot finding across time zones: overlap, daylight-saving changes, pairs far apart."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.sessions.domain import slots
from services.sessions.domain.slots import (
    GRID,
    Availability,
    Interval,
    Slot,
    SlotRequest,
    WorkingHours,
    assess,
    find_slot,
    parse_weekdays,
)

HOUR = timedelta(hours=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def request(
    start: datetime,
    mentor: str,
    mentee: str,
    *,
    days: int = 7,
    busy: tuple[Interval, ...] = (),
    mentor_hours: WorkingHours | None = None,
) -> SlotRequest:
    people = (
        Availability("mentor", mentor, mentor_hours or WorkingHours()),
        Availability("mentee", mentee),
    )
    return SlotRequest(Interval(start, start + timedelta(days=days)), HOUR, people, busy)


def test_same_zone_takes_the_first_working_hour() -> None:
    slot = find_slot(request(utc(2025, 3, 3), "Europe/London", "Europe/London"))
    assert slot is not None
    assert slot.start == utc(2025, 3, 3, 9) and slot.end == utc(2025, 3, 3, 10)
    assert slot.warnings == () and slot.minutes_outside == {"mentor": 0, "mentee": 0}


def test_overlap_of_london_and_new_york_in_winter() -> None:
    # London 09-17 = 09-17 UTC, New York (EST) 09-17 = 14-22 UTC: overlap from 14:00 UTC.
    slot = find_slot(request(utc(2025, 3, 3), "Europe/London", "America/New_York"))
    assert slot is not None and slot.start == utc(2025, 3, 3, 14) and not slot.warnings


def test_daylight_saving_change_moves_the_slot_by_an_hour() -> None:
    # The US moved to EDT on Sunday 9 March 2025 (London stays on GMT until 30 March):
    # New York's 09:00 is now 13:00 UTC, so the overlap starts an hour earlier.
    slot = find_slot(request(utc(2025, 3, 8), "Europe/London", "America/New_York"))
    assert slot is not None
    assert slot.start == utc(2025, 3, 10, 13)
    assert slot.start.astimezone(ZoneInfo("America/New_York")).hour == 9
    assert not slot.warnings


def test_window_across_the_european_change_follows_local_time() -> None:
    # Monday 31 March 2025 London is on BST: 09:00 local is 08:00 UTC.
    busy = (Interval(utc(2025, 3, 28, 0), utc(2025, 3, 29, 0)),)  # Friday is full
    slot = find_slot(request(utc(2025, 3, 28), "Europe/London", "Europe/Paris", busy=busy))
    assert slot is not None
    # Paris (CEST, UTC+2) starts at 07:00 UTC, London (BST) at 08:00 UTC.
    assert slot.start == utc(2025, 3, 31, 8)
    assert slot.start.astimezone(ZoneInfo("Europe/London")).hour == 9


def test_pair_thirteen_hours_apart_gets_the_least_bad_slot_and_a_warning() -> None:
    # New York (EST) 14-22 UTC and Manila 01-09 UTC never overlap.
    req = request(utc(2025, 3, 3), "America/New_York", "Asia/Manila")
    slot = find_slot(req)
    assert slot is not None
    assert slot.start == utc(2025, 3, 3, 21)  # 16:00 in New York, 05:00 in Manila
    assert slot.minutes_outside == {"mentor": 0, "mentee": 60}
    assert len(slot.warnings) == 1
    assert "mentee" in slot.warnings[0] and "Asia/Manila" in slot.warnings[0]
    assert "tue 05:00-06:00" in slot.warnings[0]


def test_least_bad_slot_is_minimal_among_all_candidates() -> None:
    req = request(utc(2025, 3, 3), "America/Los_Angeles", "Asia/Kolkata")  # 13.5 h apart
    slot = find_slot(req)
    assert slot is not None
    best_total = min(sum(assess(c, req.people).minutes_outside.values()) for c in _grid(req))
    assert sum(slot.minutes_outside.values()) == best_total
    assert best_total > 0 and slot.warnings


def test_busy_times_are_never_taken() -> None:
    busy = (Interval(utc(2025, 3, 3, 9), utc(2025, 3, 3, 10, 30)),)
    slot = find_slot(request(utc(2025, 3, 3), "Europe/London", "Europe/London", busy=busy))
    assert slot is not None and slot.start == utc(2025, 3, 3, 10, 30)


def test_weekend_window_moves_to_monday() -> None:
    slot = find_slot(request(utc(2025, 3, 8), "Europe/Berlin", "Europe/Berlin", days=3))
    assert slot is not None and slot.start == utc(2025, 3, 10, 8)


def test_every_candidate_busy_gives_none() -> None:
    start = utc(2025, 3, 3)
    busy = (Interval(start - HOUR, start + timedelta(days=2)),)
    assert find_slot(request(start, "UTC", "UTC", days=1, busy=busy)) is None


def test_personal_working_hours_are_used() -> None:
    early = WorkingHours(time(6), time(10))
    slot = find_slot(request(utc(2025, 3, 3), "UTC", "UTC", mentor_hours=early))
    assert slot is not None and slot.start == utc(2025, 3, 3, 9)


def test_window_start_is_rounded_up_to_the_grid() -> None:
    slot = find_slot(request(utc(2025, 3, 3, 10, 7), "UTC", "UTC"))
    assert slot is not None and slot.start == utc(2025, 3, 3, 10, 15)


def test_assess_reports_partial_overlap() -> None:
    people = [Availability("mentor", "UTC"), Availability("mentee", "UTC")]
    slot = assess(Interval(utc(2025, 3, 3, 16, 30), utc(2025, 3, 3, 17, 30)), people)
    assert slot.minutes_outside == {"mentor": 30, "mentee": 30}
    assert len(slot.warnings) == 2 and "30 of 60 minutes" in slot.warnings[0]


@pytest.mark.parametrize(
    ("text", "days"),
    [("mon-fri", {0, 1, 2, 3, 4}), ("mon,wed", {0, 2}), ("sat-sun, tue", {1, 5, 6})],
)
def test_parse_weekdays(text: str, days: set[int]) -> None:
    assert parse_weekdays(text) == frozenset(days)


@pytest.mark.parametrize("text", ["", "fri-mon", "funday"])
def test_parse_weekdays_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        parse_weekdays(text)


def test_working_hours_must_end_after_they_start() -> None:
    with pytest.raises(ValueError):
        WorkingHours(time(17), time(9))


ZONES = [
    "UTC",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Pacific/Honolulu",
]


@settings(max_examples=25, deadline=None)
@given(
    mentor=st.sampled_from(ZONES),
    mentee=st.sampled_from(ZONES),
    day=st.integers(min_value=0, max_value=364),
)
def test_property_no_candidate_is_less_bad(mentor: str, mentee: str, day: int) -> None:
    req = request(utc(2025, 1, 1) + timedelta(days=day), mentor, mentee, days=2)
    slot = find_slot(req)
    assert slot is not None
    totals = [sum(assess(c, req.people).minutes_outside.values()) for c in _grid(req)]
    assert sum(slot.minutes_outside.values()) == min(totals)
    assert bool(slot.warnings) == (min(totals) > 0)


def _grid(req: SlotRequest) -> list[Interval]:
    candidates, start = [], req.window.start
    while start < req.window.end:
        candidates.append(Interval(start, start + req.length))
        start += GRID
    return candidates


def _full_scan(req: SlotRequest) -> Slot | None:
    """The reference: every candidate scored in order (what find_slot did before its
    shortcut to the first slot inside everyone's hours)."""
    padded = Interval(req.window.start, req.window.end + req.length)
    hours = {p.role: p.working_intervals(padded) for p in req.people}
    best = slots._least_bad(req, hours)
    if best is None:
        return None
    warnings = slots._warnings(best, req.people)
    return Slot(best.candidate.start, best.candidate.end, best.outside, warnings)


_HOURS = st.builds(
    lambda start, span, days: WorkingHours(
        time(start // 60, start % 60), time((start + span) // 60, (start + span) % 60), days
    ),
    start=st.integers(min_value=0, max_value=16 * 60).map(lambda m: m - m % 5),
    span=st.integers(min_value=60, max_value=7 * 60).map(lambda m: m - m % 5),
    days=st.frozensets(st.integers(min_value=0, max_value=6), min_size=1),
)


@settings(max_examples=60, deadline=None)
@given(
    mentor=st.sampled_from(ZONES),
    mentee=st.sampled_from(ZONES),
    mentor_hours=_HOURS,
    mentee_hours=_HOURS,
    minute=st.integers(min_value=0, max_value=365 * 24 * 60),
    seconds=st.integers(min_value=0, max_value=59),
    days=st.integers(min_value=1, max_value=7),
    length=st.sampled_from([30, 45, 60, 90]),
    busy_at=st.lists(st.integers(min_value=0, max_value=7 * 24 * 4), max_size=12),
)
def test_property_shortcut_gives_the_full_scans_slot(
    mentor: str,
    mentee: str,
    mentor_hours: WorkingHours,
    mentee_hours: WorkingHours,
    minute: int,
    seconds: int,
    days: int,
    length: int,
    busy_at: list[int],
) -> None:
    start = utc(2025, 1, 1) + timedelta(minutes=minute, seconds=seconds)
    busy = tuple(Interval(start + GRID * q, start + GRID * q + HOUR) for q in busy_at)
    people = (
        Availability("mentor", mentor, mentor_hours),
        Availability("mentee", mentee, mentee_hours),
    )
    window = Interval(start, start + timedelta(days=days))
    req = SlotRequest(window, timedelta(minutes=length), people, busy)
    assert find_slot(req) == _full_scan(req)


def test_shortcut_steps_over_busy_times_inside_shared_hours() -> None:
    req = request(utc(2025, 3, 3), "Europe/London", "Europe/London", busy=(
        Interval(utc(2025, 3, 3, 9), utc(2025, 3, 3, 10, 30)),
    ))  # fmt: skip
    slot = find_slot(req)
    assert slot is not None and slot == _full_scan(req)
    assert slot.start == utc(2025, 3, 3, 10, 30) and slot.warnings == ()


def test_hours_off_the_minute_fall_back_to_the_full_scan() -> None:
    odd = WorkingHours(time(9, 0, 30), time(17))
    req = request(utc(2025, 3, 3), "Europe/London", "Europe/London", mentor_hours=odd)
    slot = find_slot(req)
    assert slot is not None and slot == _full_scan(req)
    # 30 s outside the mentor's hours count as 0 minutes: 09:00 is a perfect slot,
    # which the shortcut (whole minutes only) would have missed.
    assert slot.start == utc(2025, 3, 3, 9) and slot.minutes_outside == {"mentor": 0, "mentee": 0}
