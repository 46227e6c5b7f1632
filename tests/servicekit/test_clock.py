"""The injectable clock: manual time only moves forward, always in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from servicekit.clock import ManualClock, SystemClock, clock_from_settings
from servicekit.settings import ServiceSettings, load_settings

START = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(START)
    assert clock.now() == START
    assert clock.advance(timedelta(hours=2)) == START + timedelta(hours=2)
    assert clock.now() == START + timedelta(hours=2)


def test_manual_clock_never_goes_backwards() -> None:
    clock = ManualClock(START)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(START - timedelta(seconds=1))
    assert clock.now() == START


def test_manual_clock_refuses_naive_times_and_normalises_to_utc() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 1, 1))
    paris_summer = timezone(timedelta(hours=2))
    clock = ManualClock(datetime(2026, 7, 1, 12, 0, tzinfo=paris_summer))
    assert clock.now() == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert clock.now().tzinfo == UTC


def test_system_clock_is_aware_utc() -> None:
    assert SystemClock().now().tzinfo == UTC


def test_clock_mode_comes_from_shared_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPWARD_CLOCK", "manual")
    monkeypatch.setenv("UPWARD_CLOCK_START", "2026-03-29T00:30:00+00:00")
    monkeypatch.setenv("UPWARD_DEMO_DATABASE_URL", "postgresql://x/y")
    settings = load_settings("demo")
    clock = clock_from_settings(settings.clock, settings.clock_start)
    assert isinstance(clock, ManualClock) and clock.now() == START


def test_service_settings_subclass_reads_its_own_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    class DemoSettings(ServiceSettings):
        missed_grace_minutes: int = 60

    monkeypatch.setenv("UPWARD_DEMO_DATABASE_URL", "postgresql://x/y")
    monkeypatch.setenv("UPWARD_DEMO_MISSED_GRACE_MINUTES", "15")
    settings = load_settings("demo", DemoSettings)
    assert isinstance(settings, DemoSettings)
    assert settings.missed_grace_minutes == 15
    assert settings.clock == "system"
