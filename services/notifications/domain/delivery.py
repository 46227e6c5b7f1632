"""Sending what was planned: claimed deliveries, messages, failures and retries.

A *message* is what goes over one channel to one person: a single delivery, or a digest
of several. Its id is the delivery id (or a digest id derived from the delivery ids),
stable across attempts, so a receiver can drop a copy sent twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schemas.notifications import Channel, NotificationKind
from services.notifications.domain.planning import CalendarPart, digest_message_id
from services.notifications.domain.timing import retry_delay


class SendError(Exception):
    """A channel did not accept a message.

    ``code`` is machine-readable (``smtp_550``, ``webhook_unreachable``); ``transient``
    says whether trying again later may succeed.
    """

    def __init__(self, code: str, *, transient: bool, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code[:200]
        self.transient = transient


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery the worker took for sending (status ``sending``, attempt counted)."""

    delivery_id: str
    recipient_id: str
    channel: Channel
    kind: NotificationKind
    reference_id: str | None
    context: dict[str, Any]
    calendar: CalendarPart | None
    digest: bool
    attempts: int
    due_at: datetime


@dataclass(frozen=True)
class Message:
    """One message to one person on one channel: one delivery, or a digest of several."""

    deliveries: tuple[ClaimedDelivery, ...]

    @property
    def message_id(self) -> str:
        """Stable id: the delivery id, or a digest id derived from the delivery ids."""
        if len(self.deliveries) == 1 and not self.deliveries[0].digest:
            return self.deliveries[0].delivery_id
        return digest_message_id([d.delivery_id for d in self.deliveries])

    @property
    def recipient_id(self) -> str:
        """Who receives it."""
        return self.deliveries[0].recipient_id

    @property
    def channel(self) -> Channel:
        """Where it goes."""
        return self.deliveries[0].channel

    @property
    def attempts(self) -> int:
        """The attempt this send is (the highest of its deliveries)."""
        return max(d.attempts for d in self.deliveries)


def group_into_messages(claimed: list[ClaimedDelivery]) -> list[Message]:
    """Digest deliveries of one person and channel travel together; others alone."""
    messages: list[Message] = []
    digests: dict[tuple[str, Channel], list[ClaimedDelivery]] = {}
    for delivery in claimed:
        if delivery.digest:
            digests.setdefault((delivery.recipient_id, delivery.channel), []).append(delivery)
        else:
            messages.append(Message((delivery,)))
    for group in digests.values():
        messages.append(Message(tuple(sorted(group, key=lambda d: (d.due_at, d.delivery_id)))))
    return messages


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed message is tried again."""

    max_attempts: int
    initial_backoff: timedelta
    max_backoff: timedelta

    def next_attempt_at(self, error: SendError, *, attempts: int, now: datetime) -> datetime | None:
        """When to try again after failed attempt ``attempts``; None: give up (final failure)."""
        if not error.transient or attempts >= self.max_attempts:
            return None
        return now + retry_delay(attempts, initial=self.initial_backoff, maximum=self.max_backoff)
