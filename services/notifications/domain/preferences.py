"""A person's contact details and notification preferences.

Contacts come from ParticipantJoined / ParticipantUpdated (participants) or from the
contact API (program admins, who need not be participants). Preferences are set by the
person through the preferences API; a person who never set any gets the defaults: e-mail
only, no quiet hours, no digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from enum import StrEnum
from typing import Annotated, Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from schemas.notifications import Channel
from schemas.primitives import Email, Identifier, LanguageCode, ShortText, TimezoneName

WebhookUrl = Annotated[
    str,
    StringConstraints(max_length=2048, pattern=r"^https?://[^\s/]+(/\S*)?$"),
    Field(description="Incoming-webhook URL of the person's chat (http or https)."),
]
DELIVERY_CHANNELS = (Channel.EMAIL, Channel.CHAT)
"""Channels this service delivers on (``calendar`` invites travel as e-mail attachments)."""


class ChatFormat(StrEnum):
    """The JSON shape a chat webhook expects."""

    SLACK = "slack"
    TEAMS = "teams"


class QuietHours(BaseModel):
    """A daily window, in the person's time zone, during which nothing is sent.

    ``start`` after ``end`` spans midnight (22:00-07:00). Messages due inside the window
    wait until it ends.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time = Field(description="Local time the quiet window begins, e.g. 22:00.")
    end: time = Field(description="Local time it ends, e.g. 07:00 (the next morning).")

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("quiet hours need a start different from their end")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are local times, without a UTC offset")
        return self

    def contains(self, local: time) -> bool:
        """True when the local wall-clock time ``local`` is inside the window."""
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class Preferences(BaseModel):
    """How and when a person wants to be notified."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channels: list[Channel] = Field(
        default_factory=lambda: [Channel.EMAIL],
        min_length=1,
        description="Channels to deliver on: `email`, `chat` or both.",
    )
    chat_webhook_url: WebhookUrl | None = Field(
        default=None, description="Required when `chat` is a channel."
    )
    chat_format: ChatFormat = Field(
        default=ChatFormat.SLACK, description="`slack` or `teams` payloads."
    )
    quiet_hours: QuietHours | None = Field(
        default=None, description="Local window during which messages wait."
    )
    digest: bool = Field(
        default=False,
        description="Gather non-urgent messages into one daily digest per channel.",
    )
    digest_time: time = Field(
        default=time(8, 0), description="Local time the daily digest is sent."
    )
    timezone: TimezoneName | None = Field(
        default=None, description="Overrides the time zone of the person's profile."
    )
    locale: LanguageCode | None = Field(
        default=None, description="Language of messages; default: the profile's first language."
    )

    @model_validator(mode="after")
    def _channels_are_usable(self) -> Self:
        unknown = [c for c in self.channels if c not in DELIVERY_CHANNELS]
        if unknown:
            raise ValueError(f"channels not delivered by this service: {unknown}")
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("a channel is listed twice")
        if Channel.CHAT in self.channels and self.chat_webhook_url is None:
            raise ValueError("the chat channel needs chat_webhook_url")
        if self.digest_time.tzinfo is not None:
            raise ValueError("digest_time is a local time, without a UTC offset")
        return self


class ContactDetails(BaseModel):
    """How to reach a person: name, address, time zone and languages."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    display_name: ShortText = Field(description="Name used to address the person.")
    email: Email = Field(description="E-mail address.")
    timezone: TimezoneName = Field(default="UTC", description="IANA time zone.")
    languages: list[LanguageCode] = Field(
        default_factory=lambda: ["en"], min_length=1, description="Languages, preferred first."
    )


class Contact(ContactDetails):
    """Where and how to address one person."""

    person_id: Identifier = Field(description="Participant or admin id.")


@dataclass(frozen=True, slots=True)
class Recipient:
    """A person as the delivery planner sees them: contact (if known) and preferences.

    A plain value made of models already validated (read from the store for every person
    an event addresses), so it is not validated again.
    """

    person_id: str
    contact: Contact | None
    preferences: Preferences

    @property
    def zone(self) -> ZoneInfo:
        """The person's time zone: preference override, then profile, then UTC."""
        name = self.preferences.timezone or (self.contact.timezone if self.contact else "UTC")
        return ZoneInfo(name)

    def locale(self, available: frozenset[str], default: str) -> str:
        """The first of the person's languages that has templates, else ``default``."""
        wanted = [self.preferences.locale] if self.preferences.locale else []
        wanted += self.contact.languages if self.contact else []
        return next((lang for lang in wanted if lang in available), default)
