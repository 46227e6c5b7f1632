"""Quiet hours, digest slots, rate limit and backoff: pure time arithmetic, DST included."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from services.notifications.domain.preferences import QuietHours
from services.notifications.domain.timing import (
    after_quiet_hours,
    local_instant,
    next_digest_slot,
    rate_limited_until,
    retry_delay,
)

PARIS = ZoneInfo("Europe/Paris")
NIGHT = QuietHours(start=time(22, 0), end=time(7, 0))


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


def test_outside_quiet_hours_a_message_goes_at_once() -> None:
    when = paris(2025, 3, 11, 12, 0)
    assert after_quiet_hours(when, NIGHT, PARIS) == when
    assert after_quiet_hours(when, None, PARIS) == when


def test_late_evening_waits_until_next_morning() -> None:
    assert after_quiet_hours(paris(2025, 3, 11, 23, 30), NIGHT, PARIS) == paris(2025, 3, 12, 7, 0)


def test_small_hours_wait_until_the_same_morning() -> None:
    assert after_quiet_hours(paris(2025, 3, 12, 3, 0), NIGHT, PARIS) == paris(2025, 3, 12, 7, 0)


def test_daytime_window_does_not_span_midnight() -> None:
    lunch = QuietHours(start=time(12, 0), end=time(14, 0))
    assert after_quiet_hours(paris(2025, 3, 11, 12, 30), lunch, PARIS) == paris(2025, 3, 11, 14)
    assert after_quiet_hours(paris(2025, 3, 11, 23, 0), lunch, PARIS) == paris(2025, 3, 11, 23)


def test_quiet_hours_are_evaluated_in_the_persons_zone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    noon_utc = datetime(2025, 3, 11, 14, 0, tzinfo=UTC)  # 23:00 in Tokyo
    held = after_quiet_hours(noon_utc, NIGHT, tokyo)
    assert held == datetime(2025, 3, 12, 7, 0, tzinfo=tokyo)
    assert after_quiet_hours(noon_utc, NIGHT, PARIS) == noon_utc  # 15:00 in Paris


def test_end_of_quiet_hours_on_the_spring_forward_night() -> None:
    # 2025-03-30: Paris jumps from 02:00 to 03:00; a window ending at 02:30 ends at 03:30.
    window = QuietHours(start=time(22, 0), end=time(2, 30))
    held = after_quiet_hours(paris(2025, 3, 29, 23, 0), window, PARIS)
    assert held == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)
    assert held.astimezone(PARIS).time() == time(3, 30)


def test_end_of_quiet_hours_on_the_fall_back_night() -> None:
    # 2025-10-26: 02:30 happens twice in Paris; the window ends at the first 02:30 (CEST).
    window = QuietHours(start=time(22, 0), end=time(2, 30))
    held = after_quiet_hours(paris(2025, 10, 25, 23, 0), window, PARIS)
    assert held == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)


def test_seven_am_stays_seven_am_local_across_a_dst_change() -> None:
    before = after_quiet_hours(paris(2025, 3, 29, 23, 0), NIGHT, PARIS)
    after = after_quiet_hours(paris(2025, 3, 30, 23, 0), NIGHT, PARIS)
    assert before.astimezone(PARIS).time() == after.astimezone(PARIS).time() == time(7, 0)
    assert after - before == timedelta(hours=24)
    assert before.utcoffset() != after.astimezone(PARIS).utcoffset()


@given(
    st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
    ),
    st.times(),
    st.times(),
    st.sampled_from(["Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]),
)
def test_a_held_message_leaves_the_window_and_never_goes_early(
    when: datetime, start: time, end: time, zone_name: str
) -> None:
    if start == end:
        return
    zone = ZoneInfo(zone_name)
    quiet = QuietHours(start=start, end=end)
    held = after_quiet_hours(when, quiet, zone)
    assert held >= when
    assert held - when <= timedelta(hours=25)
    if held != when:
        day = when.astimezone(zone).date()
        ends = {local_instant(day + timedelta(days=d), end, zone) for d in (0, 1)}
        assert quiet.contains(when.astimezone(zone).time())
        assert held in ends


def test_digest_slot_is_the_next_local_digest_time() -> None:
    eight = time(8, 0)
    assert next_digest_slot(paris(2025, 3, 11, 7, 0), eight, PARIS) == paris(2025, 3, 11, 8, 0)
    assert next_digest_slot(paris(2025, 3, 11, 8, 0), eight, PARIS) == paris(2025, 3, 11, 8, 0)
    assert next_digest_slot(paris(2025, 3, 11, 9, 0), eight, PARIS) == paris(2025, 3, 12, 8, 0)


def test_local_instant_of_a_skipped_time_moves_forward() -> None:
    at = local_instant(datetime(2025, 3, 30).date(), time(2, 30), PARIS)
    assert at.astimezone(PARIS).time() == time(3, 30)


def test_rate_limit_holds_the_next_message_until_the_oldest_leaves_the_window() -> None:
    now = datetime(2025, 3, 11, 12, 0, tzinfo=UTC)
    sent = [now - timedelta(minutes=m) for m in (50, 30, 10)]
    hour = timedelta(hours=1)
    assert rate_limited_until(sent, now=now, limit=4, window=hour) is None
    assert rate_limited_until(sent, now=now, limit=3, window=hour) == now + timedelta(minutes=10)
    assert rate_limited_until(sent, now=now, limit=2, window=hour) == now + timedelta(minutes=30)
    old = [now - timedelta(minutes=90)] * 5
    assert rate_limited_until(old, now=now, limit=1, window=hour) is None


def test_retry_delay_doubles_and_is_capped() -> None:
    minute, hour = timedelta(minutes=1), timedelta(hours=1)
    delays = [retry_delay(n, initial=minute, maximum=hour) for n in range(1, 9)]
    assert delays[:4] == [minute, 2 * minute, 4 * minute, 8 * minute]
    assert delays[-1] == hour
