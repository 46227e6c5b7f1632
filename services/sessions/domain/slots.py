"""Finding a session time that suits two people in their own time zones.

Working hours are local wall-clock hours (e.g. 09:00-17:00, Monday-Friday) in each
person's IANA time zone; they are turned into UTC intervals day by day with
``zoneinfo``, so a daylight-saving change moves them by an hour exactly when it should.

Candidate starts lie on a 15-minute grid inside the search window. A candidate that
overlaps one of the two people's other sessions is never taken. Among the others the
least bad wins, compared in this order:

1. the fewest minutes outside working hours, added over both people;
2. the smallest distance between the session and the working hours of whoever is
   outside them (an evening just after work beats the middle of the night);
3. the earliest start.

A perfect slot therefore costs ``(0, 0, start)``. When the two working days do not
overlap at all (people 12 or more hours apart), the least-bad slot is taken and every
person outside their hours gets a warning.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

GRID = timedelta(minutes=15)
_NO_HOURS = timedelta(days=7)
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Interval:
    """A half-open time interval ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def overlap(self, other: Interval) -> timedelta:
        """How long the two intervals share."""
        shared = min(self.end, other.end) - max(self.start, other.start)
        return max(shared, timedelta(0))

    def distance(self, other: Interval) -> timedelta:
        """Time between the two intervals; zero when they touch or overlap."""
        gap = max(other.start - self.end, self.start - other.end)
        return max(gap, timedelta(0))


@dataclass(frozen=True)
class WorkingHours:
    """Local working hours: from ``start`` to ``end`` on the given weekdays (Monday = 0)."""

    start: time = time(9)
    end: time = time(17)
    weekdays: frozenset[int] = field(default_factory=lambda: frozenset(range(5)))

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("working hours must end after they start")
        if not self.weekdays or not self.weekdays <= frozenset(range(7)):
            raise ValueError("working days must be a non-empty set of weekdays 0-6")


@dataclass(frozen=True)
class Availability:
    """One person of the pair as the slot finder sees them."""

    role: str
    timezone: str
    hours: WorkingHours = field(default_factory=WorkingHours)

    def working_intervals(self, window: Interval) -> list[Interval]:
        """The UTC intervals of this person's working hours that may touch ``window``."""
        return list(_working_days(*self.working_days(window)))

    def working_days(self, window: Interval) -> _Days:
        """Which working days may touch ``window``: zone, hours, first and last day."""
        zone = ZoneInfo(self.timezone)
        first = window.start.astimezone(zone).date() - timedelta(days=1)
        last = window.end.astimezone(zone).date() + timedelta(days=1)
        return (self.timezone, self.hours, first, last)


_Days = tuple[str, WorkingHours, date, date]


@lru_cache(maxsize=4096)
def _working_days(
    timezone: str, hours: WorkingHours, first: date, last: date
) -> tuple[Interval, ...]:
    """The UTC intervals of ``hours`` in ``timezone`` from day ``first`` to ``last``
    (kept: the pairs planned together mostly share their days, zones and hours)."""
    zone = ZoneInfo(timezone)
    return tuple(
        Interval(
            datetime.combine(day, hours.start, tzinfo=zone).astimezone(UTC),
            datetime.combine(day, hours.end, tzinfo=zone).astimezone(UTC),
        )
        for day in _days(first, last)
        if day.weekday() in hours.weekdays
    )


@dataclass(frozen=True)
class SlotRequest:
    """What to look for: a session of ``length`` starting inside ``window``."""

    window: Interval
    length: timedelta
    people: Sequence[Availability]
    busy: Sequence[Interval] = ()


@dataclass(frozen=True)
class Slot:
    """The chosen time, and what it costs the people who must meet outside their hours."""

    start: datetime
    end: datetime
    minutes_outside: dict[str, int]
    warnings: tuple[str, ...]

    @property
    def interval(self) -> Interval:
        """The slot as an interval."""
        return Interval(self.start, self.end)


@dataclass(frozen=True)
class _Scored:
    cost: tuple[int, int, datetime]
    candidate: Interval
    outside: dict[str, int]


def find_slot(request: SlotRequest) -> Slot | None:
    """The least-bad free slot of the window, or None when every candidate clashes."""
    padded = Interval(request.window.start, request.window.end + request.length)
    days = {p.role: p.working_days(padded) for p in request.people}
    hours = {role: list(_working_days(*key)) for role, key in days.items()}
    shared = _shared_hours(tuple(days.values()))
    best = _first_perfect(request, hours, shared) or _least_bad(request, hours)
    if best is None:
        return None
    warnings = _warnings(best, request.people)
    return Slot(best.candidate.start, best.candidate.end, best.outside, warnings)


def _least_bad(request: SlotRequest, hours: dict[str, list[Interval]]) -> _Scored | None:
    """Score the candidates in order; stop at the first one inside everyone's hours."""
    best: _Scored | None = None
    for candidate in _candidates(request):
        scored = _score(candidate, hours)
        if best is None or scored.cost < best.cost:
            best = scored
        if scored.cost[:2] == (0, 0):
            break  # inside everyone's hours: nothing later can beat the earliest such slot
    return best


def _first_perfect(
    request: SlotRequest, hours: dict[str, list[Interval]], shared: tuple[Interval, ...] | None
) -> _Scored | None:
    """The earliest free candidate inside everyone's working hours, found without scoring
    the candidates before it; None when there is none (or when the shortcut does not apply).

    A candidate costs ``(0, 0, start)`` exactly when it lies inside one working interval
    of each person, provided every bound is a whole minute and each person's intervals
    are separated by gaps (always so for real working hours; otherwise the full scan
    decides). Such candidates lie inside the intersection of the people's intervals, so
    only its stretches are walked, in time order.
    """
    if not hours or shared is None or not _whole_minutes(request.length):
        return None
    first = _round_up(request.window.start)
    for stretch in shared:
        start = _round_up(max(first, stretch.start))
        while start < request.window.end and start + request.length <= stretch.end:
            candidate = Interval(start, start + request.length)
            if not any(candidate.overlap(b) for b in request.busy):
                return _Scored((0, 0, start), candidate, dict.fromkeys(hours, 0))
            start += GRID
    return None


@lru_cache(maxsize=4096)
def _shared_hours(people: tuple[_Days, ...]) -> tuple[Interval, ...] | None:
    """Where the people's working days overlap, in order; None when the shortcut of
    :func:`_first_perfect` does not apply (some intervals not separated, or nobody).
    Kept: pairs planned together mostly share their zones, hours and days."""
    shared: list[Interval] | None = None
    for days in people:
        intervals = list(_working_days(*days))
        if not _separated(intervals):
            return None
        shared = intervals if shared is None else _intersection(shared, intervals)
    return None if shared is None else tuple(shared)


def _whole_minutes(delta: timedelta) -> bool:
    return delta.microseconds == 0 and delta.seconds % 60 == 0


def _separated(intervals: list[Interval]) -> bool:
    """Non-empty intervals on whole minutes, in order, each ending before the next starts."""
    previous_end: datetime | None = None
    for interval in intervals:
        for bound in (interval.start, interval.end):
            if bound.second or bound.microsecond:
                return False
        if interval.end <= interval.start:
            return False
        if previous_end is not None and interval.start <= previous_end:
            return False
        previous_end = interval.end
    return True


def _intersection(left: list[Interval], right: list[Interval]) -> list[Interval]:
    """Where two sorted lists of disjoint intervals overlap, in order."""
    shared: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i].start, right[j].start)
        end = min(left[i].end, right[j].end)
        if start < end:
            shared.append(Interval(start, end))
        if left[i].end <= right[j].end:
            i += 1
        else:
            j += 1
    return shared


def assess(interval: Interval, people: Sequence[Availability]) -> Slot:
    """How a given time suits the people: minutes outside their hours, and warnings."""
    padded = Interval(interval.start - timedelta(days=1), interval.end + timedelta(days=1))
    scored = _score(interval, {p.role: p.working_intervals(padded) for p in people})
    return Slot(interval.start, interval.end, scored.outside, _warnings(scored, people))


def _candidates(request: SlotRequest) -> Iterator[Interval]:
    start = _round_up(request.window.start)
    while start < request.window.end:
        candidate = Interval(start, start + request.length)
        if not any(candidate.overlap(b) for b in request.busy):
            yield candidate
        start += GRID


def _score(candidate: Interval, hours: dict[str, list[Interval]]) -> _Scored:
    outside: dict[str, int] = {}
    farthest = timedelta(0)
    for role, intervals in hours.items():
        near = _near(candidate, intervals)
        inside = sum((candidate.overlap(i) for i in near), timedelta(0))
        outside[role] = _minutes(candidate.end - candidate.start - inside)
        if outside[role]:
            nearest = min((candidate.distance(i) for i in near), default=_NO_HOURS)
            farthest = max(farthest, nearest)
    cost = (sum(outside.values()), _minutes(farthest), candidate.start)
    return _Scored(cost, candidate, outside)


def _near(candidate: Interval, intervals: list[Interval]) -> list[Interval]:
    """The working intervals that can overlap or be nearest to ``candidate``.

    ``intervals`` are disjoint and sorted (one per working day), and a session is
    shorter than the gap between two working days, so the last interval starting
    before the candidate and the two after it are the only ones that matter.
    """
    index = bisect_right(intervals, candidate.start, key=lambda i: i.start)
    return intervals[max(index - 1, 0) : index + 2]


def _warnings(best: _Scored, people: Sequence[Availability]) -> tuple[str, ...]:
    length = _minutes(best.candidate.end - best.candidate.start)
    found: list[str] = []
    for person in people:
        minutes = best.outside[person.role]
        if minutes:
            found.append(
                f"{minutes} of {length} minutes outside the {person.role}'s working hours "
                f"({_local_span(best.candidate, person.timezone)})"
            )
    return tuple(found)


def _local_span(interval: Interval, timezone: str) -> str:
    zone = ZoneInfo(timezone)
    start, end = interval.start.astimezone(zone), interval.end.astimezone(zone)
    return f"{WEEKDAY_NAMES[start.weekday()]} {start:%H:%M}-{end:%H:%M} {timezone}"


def _round_up(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    floor = moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)
    return floor if floor == moment else floor + GRID


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def parse_weekdays(text: str) -> frozenset[int]:
    """Turn ``"mon,tue,wed"`` or ``"mon-fri"`` into weekday numbers (Monday = 0)."""
    days: set[int] = set()
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        first, _, last = part.partition("-")
        low, high = _weekday(first), _weekday(last or first)
        if high < low:
            raise ValueError(f"weekday range {part!r} runs backwards")
        days.update(range(low, high + 1))
    if not days:
        raise ValueError("give at least one working day, e.g. 'mon-fri'")
    return frozenset(days)


def _weekday(name: str) -> int:
    if name not in WEEKDAY_NAMES:
        raise ValueError(f"unknown weekday {name!r}; use mon, tue, wed, thu, fri, sat, sun")
    return WEEKDAY_NAMES.index(name)
