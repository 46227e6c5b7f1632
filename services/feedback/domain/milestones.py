"""When milestone surveys are due for a pair: kickoff + 2 weeks, the midpoint and the close.

Weeks count from the pair's *kickoff*: its formation, or the program's first day when the
pair formed before the program started. A milestone that would fall after the program's
end is due at the end (so a late pair still gets its close survey, once); milestones that
land on the same moment are merged into the latest week.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

KICKOFF_CHECK_WEEKS = 2


@dataclass(frozen=True)
class ProgramCalendar:
    """The part of a program's definition that places milestones in time."""

    starts_on: date
    duration_weeks: int
    milestone_weeks: tuple[int, ...] | None = None

    @property
    def starts_at(self) -> datetime:
        """Midnight UTC of the program's first day."""
        return datetime.combine(self.starts_on, time(0), tzinfo=UTC)

    @property
    def ends_at(self) -> datetime:
        """Midnight UTC after ``duration_weeks`` weeks."""
        return self.starts_at + timedelta(weeks=self.duration_weeks)

    def weeks(self) -> tuple[int, ...]:
        """The configured milestone weeks, or the default ones for the program's length."""
        if self.milestone_weeks:
            return tuple(sorted({w for w in self.milestone_weeks if w >= 1}))
        return default_milestone_weeks(self.duration_weeks)


@dataclass(frozen=True)
class Milestone:
    """A milestone survey: its program week and when it is due to be sent."""

    week: int
    due_at: datetime


def default_milestone_weeks(duration_weeks: int) -> tuple[int, ...]:
    """Kickoff + 2 weeks, the midpoint and the close of a program of ``duration_weeks``."""
    kickoff_check = min(KICKOFF_CHECK_WEEKS, duration_weeks)
    midpoint = max(1, math.ceil(duration_weeks / 2))
    return tuple(sorted({kickoff_check, midpoint, duration_weeks}))


def milestone_schedule(*, formed_at: datetime, calendar: ProgramCalendar) -> list[Milestone]:
    """The milestones of a pair formed at ``formed_at``, earliest first."""
    kickoff = max(formed_at, calendar.starts_at)
    if kickoff >= calendar.ends_at:
        return []
    by_time: dict[datetime, int] = {}
    for week in calendar.weeks():
        due = min(kickoff + timedelta(weeks=week), calendar.ends_at)
        by_time[due] = max(week, by_time.get(due, 0))
    return [Milestone(week=w, due_at=t) for t, w in sorted(by_time.items())]


def due_milestones(
    schedule: Sequence[Milestone], *, requested_weeks: Collection[int], now: datetime
) -> list[Milestone]:
    """The milestones due at ``now`` that were not requested yet."""
    return [m for m in schedule if m.due_at <= now and m.week not in requested_weeks]


def closing_milestone(schedule: Sequence[Milestone]) -> Milestone | None:
    """The last milestone of a schedule (the close survey), if any."""
    return schedule[-1] if schedule else None
