"""Milestone surveys: kickoff + 2 weeks, midpoint and close, placed from pair formation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.feedback.domain.milestones import (
    Milestone,
    ProgramCalendar,
    closing_milestone,
    default_milestone_weeks,
    due_milestones,
    milestone_schedule,
)

START = date(2025, 3, 3)
START_AT = datetime(2025, 3, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("duration", "weeks"),
    [(26, (2, 13, 26)), (5, (2, 3, 5)), (2, (1, 2)), (1, (1,)), (3, (2, 3))],
)
def test_default_weeks_are_kickoff_plus_two_midpoint_and_close(
    duration: int, weeks: tuple[int, ...]
) -> None:
    assert default_milestone_weeks(duration) == weeks


def test_configured_weeks_win_over_the_default() -> None:
    calendar = ProgramCalendar(starts_on=START, duration_weeks=26, milestone_weeks=(12, 4, 4))
    assert calendar.weeks() == (4, 12)


def test_a_pair_formed_before_the_start_counts_from_the_start() -> None:
    calendar = ProgramCalendar(starts_on=START, duration_weeks=26)
    schedule = milestone_schedule(formed_at=START_AT - timedelta(days=10), calendar=calendar)
    assert schedule == [
        Milestone(week=2, due_at=START_AT + timedelta(weeks=2)),
        Milestone(week=13, due_at=START_AT + timedelta(weeks=13)),
        Milestone(week=26, due_at=START_AT + timedelta(weeks=26)),
    ]


def test_a_late_pair_gets_its_milestones_clamped_to_the_close_and_merged() -> None:
    calendar = ProgramCalendar(starts_on=START, duration_weeks=26)
    formed = START_AT + timedelta(weeks=20)
    schedule = milestone_schedule(formed_at=formed, calendar=calendar)
    end = START_AT + timedelta(weeks=26)
    assert schedule == [
        Milestone(week=2, due_at=formed + timedelta(weeks=2)),
        Milestone(week=26, due_at=end),
    ]
    assert closing_milestone(schedule) == Milestone(week=26, due_at=end)


def test_a_pair_formed_after_the_end_has_no_milestone() -> None:
    calendar = ProgramCalendar(starts_on=START, duration_weeks=4)
    assert milestone_schedule(formed_at=START_AT + timedelta(weeks=5), calendar=calendar) == []
    assert closing_milestone([]) is None


def test_due_milestones_are_those_past_and_not_yet_requested() -> None:
    calendar = ProgramCalendar(starts_on=START, duration_weeks=26)
    schedule = milestone_schedule(formed_at=START_AT, calendar=calendar)
    now = START_AT + timedelta(weeks=13)
    assert [m.week for m in due_milestones(schedule, requested_weeks=set(), now=now)] == [2, 13]
    assert [m.week for m in due_milestones(schedule, requested_weeks={2}, now=now)] == [13]
    early = START_AT + timedelta(weeks=2) - timedelta(seconds=1)
    assert due_milestones(schedule, requested_weeks=set(), now=early) == []
