"""Events of topic ``upward.notifications``: what was sent to whom, and what failed.

Published by the notifications service. Key: ``notification_id``. Neither the address nor
the content of a message is on the wire: only who, how, why and the outcome.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar, Self

from pydantic import AwareDatetime, Field

from schemas.base import EventData
from schemas.primitives import EXTERNAL, NOTIFICATIONS, Identifier, ShortText

TOPIC = "upward.notifications"


class Channel(StrEnum):
    """How a notification was delivered."""

    EMAIL = "email"
    CHAT = "chat"
    CALENDAR = "calendar"


class NotificationKind(StrEnum):
    """What a notification was about."""

    PAIR_PROPOSED = "pair_proposed"
    PAIR_FORMED = "pair_formed"
    PAIR_ENDED = "pair_ended"
    SESSION_INVITE = "session_invite"
    SESSION_UPDATE = "session_update"
    SESSION_CANCELLED = "session_cancelled"
    SESSION_REMINDER = "session_reminder"
    FEEDBACK_REQUEST = "feedback_request"
    FEEDBACK_OVERDUE = "feedback_overdue"
    PAIR_AT_RISK = "pair_at_risk"
    PAIR_STALLED = "pair_stalled"
    MATCH_RUN_SUMMARY = "match_run_summary"
    ELIGIBILITY = "eligibility"


class _NotificationEvent(EventData):
    notification_id: Identifier = Field(description="Notification id (the Kafka key).")
    recipient_id: Identifier = Field(description="Participant or admin notified.")
    channel: Channel = Field(description="email, chat or calendar.")
    kind: NotificationKind = Field(description="What it was about.")
    reference_id: Identifier | None = Field(
        default=None, description="Pair, session, request or run it refers to."
    )

    topic: ClassVar[str] = TOPIC
    subject_field: ClassVar[str] = "notification_id"
    publishers: ClassVar[tuple[str, ...]] = (NOTIFICATIONS,)
    subscribers: ClassVar[tuple[str, ...]] = (EXTERNAL,)
    schema_version: ClassVar[int] = 1


class NotificationSent(_NotificationEvent):
    """A notification was handed to its channel (SMTP server, chat API, calendar)."""

    sent_at: AwareDatetime = Field(description="When the channel accepted it.")

    event_type: ClassVar[str] = "NotificationSent"

    @classmethod
    def example(cls) -> Self:
        """Return a session invite sent by e-mail."""
        return cls(
            notification_id="ntf-000981",
            recipient_id="emp-00231",
            channel=Channel.EMAIL,
            kind=NotificationKind.SESSION_INVITE,
            reference_id="ses-7f3a9c-01",
            sent_at=datetime(2025, 3, 3, 9, 0, 2, tzinfo=UTC),
        )


class NotificationFailed(_NotificationEvent):
    """A notification could not be delivered (after retries when `final`)."""

    error_code: ShortText = Field(description="Machine-readable error, e.g. `smtp_550`.")
    attempts: int = Field(ge=1, description="Delivery attempts so far.")
    final: bool = Field(description="True when no further attempt will be made.")

    event_type: ClassVar[str] = "NotificationFailed"

    @classmethod
    def example(cls) -> Self:
        """Return a reminder rejected by the mail server for good."""
        return cls(
            notification_id="ntf-000982",
            recipient_id="emp-00231",
            channel=Channel.EMAIL,
            kind=NotificationKind.SESSION_REMINDER,
            reference_id="ses-7f3a9c-01",
            error_code="smtp_550",
            attempts=3,
            final=True,
        )
