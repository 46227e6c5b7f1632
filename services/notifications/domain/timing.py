"""When a message may go out: quiet hours, digest slots, rate limit, retry backoff.

All instants are aware datetimes; local rules (quiet hours, digest time) are evaluated on
the person's wall clock with :mod:`zoneinfo`, so they stay right across DST changes: a
window "22:00-07:00" ends at 07:00 local time whether that day has 23, 24 or 25 hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.notifications.domain.preferences import QuietHours


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The instant (UTC) of local wall-clock ``at`` on ``day`` in ``zone``.

    A wall-clock time skipped by a DST jump (02:30 on a spring-forward night) is moved
    forward by the jump (03:30); a repeated one (fall-back night) is its first occurrence.
    """
    naive = datetime.combine(day, at)
    earlier, later = sorted(naive.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1))
    exists = earlier.astimezone(zone).replace(tzinfo=None) == naive
    return earlier if exists else later


def after_quiet_hours(when: datetime, quiet: QuietHours | None, zone: ZoneInfo) -> datetime:
    """``when`` itself, or the end of the quiet window it falls in (local to ``zone``)."""
    if quiet is None:
        return when
    local = when.astimezone(zone)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return when
    end_day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        end_day += timedelta(days=1)
    return max(when, local_instant(end_day, quiet.end, zone))


def next_digest_slot(after: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The first daily digest instant (local ``at`` in ``zone``) at or after ``after``."""
    day = after.astimezone(zone).date()
    slot = local_instant(day, at, zone)
    if slot < after:
        slot = local_instant(day + timedelta(days=1), at, zone)
    return slot


def rate_limited_until(
    sent: Sequence[datetime], *, now: datetime, limit: int, window: timedelta
) -> datetime | None:
    """When the next message may go, if ``limit`` messages went in the last ``window``.

    ``sent`` are the send times of the person's recent messages. None means: now.
    """
    recent = sorted(t for t in sent if now - window < t <= now)
    if len(recent) < limit:
        return None
    return recent[len(recent) - limit] + window


def retry_delay(attempt: int, *, initial: timedelta, maximum: timedelta) -> timedelta:
    """Delay after failed attempt number ``attempt`` (1, 2, ...): doubles each time, capped."""
    factor: int = 2 ** max(0, attempt - 1)
    return min(maximum, initial * factor)
