"""Where services get the time: an injectable clock.

Services never call ``datetime.now()``: handlers read ``uow.now``, timers and
routes read ``context.clock.now()``. In production the clock is the system's;
in tests and in the demo it is a :class:`ManualClock` that is moved forward on
purpose (``POST /ops/clock``), so time-driven behaviour (missed sessions,
reminders, acceptance timeouts) is exercised without sleeping.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta


class Clock(ABC):
    """A source of the current time, always timezone-aware UTC."""

    @abstractmethod
    def now(self) -> datetime:
        """The current time."""


class SystemClock(Clock):
    """The machine's clock."""

    def now(self) -> datetime:
        """The current time of the machine, in UTC."""
        return datetime.now(UTC)


class ManualClock(Clock):
    """A clock that moves only when told; it never goes backwards."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = _utc(start) if start is not None else datetime.now(UTC)

    def now(self) -> datetime:
        """The time the clock was last set to."""
        return self._now

    def set(self, when: datetime) -> datetime:
        """Move the clock to ``when``; raise ValueError when that is in its past."""
        when = _utc(when)
        if when < self._now:
            raise ValueError(f"the clock never goes backwards: {when} < {self._now}")
        self._now = when
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` (not negative)."""
        return self.set(self._now + delta)


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("clock times must be timezone-aware")
    return when.astimezone(UTC)


def clock_from_settings(mode: str, start: datetime | None) -> Clock:
    """The clock a service runs with: ``system`` or ``manual`` (starting at ``start``)."""
    if mode == "manual":
        return ManualClock(start)
    return SystemClock()
