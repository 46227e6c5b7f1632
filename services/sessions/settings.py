"""The sessions service's own settings, read as ``UPWARD_SESSIONS_<FIELD>``.

The kit's shared settings (Kafka, database, clock, ...) come from
:class:`servicekit.settings.ServiceSettings`; what a program decides (cadence,
duration, session length, stall rules, topic catalogue) comes from its events, not
from here.
"""

from __future__ import annotations

from datetime import time

from pydantic import Field, SecretStr, field_validator

from servicekit.settings import ServiceSettings, settings_for
from services.sessions.domain.slots import parse_weekdays


class SessionsSettings(ServiceSettings):
    """Settings of the sessions service."""

    missed_grace_minutes: int = Field(
        default=60,
        ge=0,
        le=10080,
        description="A session not recorded this long after its end becomes SessionMissed",
    )
    working_hours_start: time = Field(
        default=time(9), description="Default local start of a working day (HH:MM)"
    )
    working_hours_end: time = Field(
        default=time(17), description="Default local end of a working day (HH:MM)"
    )
    working_days: str = Field(
        default="mon-fri", description="Default working days, e.g. 'mon-fri' or 'mon,tue,thu'"
    )
    first_session_lead_hours: int = Field(
        default=48, ge=0, le=2160, description="The first session is due this long after PairFormed"
    )
    min_notice_hours: int = Field(
        default=24, ge=0, le=720, description="No session is placed closer to now than this"
    )
    sessions_ahead: int = Field(
        default=2, ge=1, le=12, description="Sessions kept scheduled ahead for each pair"
    )
    agenda_size: int = Field(default=2, ge=1, le=10, description="Topics on a session's agenda")
    calendar_feed_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key of the calendar feed tokens; the feed is off while unset",
    )
    organizer_email: str = Field(
        default="mentoring@upward.example",
        description="ORGANIZER of the invites: the mailbox that sends them",
    )
    organizer_name: str = Field(default="Upward mentoring", description="ORGANIZER's name")
    timer_interval_s: float = Field(
        default=60.0, gt=0, description="How often missed, stall and completion checks run"
    )
    timer_batch_max: int = Field(
        default=200, ge=1, description="Sessions or pairs one timer tick handles at most"
    )

    @field_validator("working_days")
    @classmethod
    def _known_days(cls, value: str) -> str:
        parse_weekdays(value)
        return value


def load_sessions_settings() -> SessionsSettings:
    """Read the settings of the sessions service from the environment."""
    settings = settings_for("sessions", base=SessionsSettings)(service_name="sessions")
    assert isinstance(settings, SessionsSettings)
    return settings
