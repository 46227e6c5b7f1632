"""The sessions service's settings come from UPWARD_SESSIONS_* variables."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from pydantic import ValidationError

from services.sessions.service_layer import Policy
from services.sessions.settings import load_sessions_settings


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPWARD_SESSIONS_DATABASE_URL", "postgresql://db/upward_sessions")
    monkeypatch.setenv("UPWARD_SESSIONS_MISSED_GRACE_MINUTES", "15")
    monkeypatch.setenv("UPWARD_SESSIONS_WORKING_HOURS_START", "08:30")
    monkeypatch.setenv("UPWARD_SESSIONS_WORKING_DAYS", "mon-thu")
    monkeypatch.setenv("UPWARD_SESSIONS_CALENDAR_FEED_SECRET", "s3cret")
    settings = load_sessions_settings()
    assert settings.missed_grace_minutes == 15
    assert settings.calendar_feed_secret is not None
    assert settings.calendar_feed_secret.get_secret_value() == "s3cret"
    policy = Policy.from_settings(settings)
    assert policy.missed_grace == timedelta(minutes=15)
    assert policy.default_hours.start == time(8, 30) and policy.default_hours.end == time(17)
    assert policy.default_hours.weekdays == frozenset({0, 1, 2, 3})


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPWARD_SESSIONS_DATABASE_URL", "postgresql://db/upward_sessions")
    settings = load_sessions_settings()
    assert settings.missed_grace_minutes == 60 and settings.calendar_feed_secret is None
    assert settings.sessions_ahead == 2 and settings.working_days == "mon-fri"


def test_unknown_working_days_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPWARD_SESSIONS_DATABASE_URL", "postgresql://db/upward_sessions")
    monkeypatch.setenv("UPWARD_SESSIONS_WORKING_DAYS", "someday")
    with pytest.raises(ValidationError, match="unknown weekday"):
        load_sessions_settings()
