"""From an event to the deliveries it causes: who is told what, on which channel, when.

An event becomes :class:`Notice` values (what one person should learn, channel-free),
then :func:`plan_deliveries` turns a notice into one :class:`PlannedDelivery` per channel
the person chose, each due after quiet hours and, for non-urgent notices of a person
who wants a digest, at their next digest slot.

Every delivery has a *natural key* (source key, recipient, channel). The source key is the
id of the event that caused it, or a stable key when several events could cause the same
message (a reminder is keyed by session, start time and offset). Its id is derived from
that key, so planning twice yields the same id: the store keeps the first
(``ON CONFLICT DO NOTHING``) and the id doubles as the idempotency key on the wire.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.notifications import Channel, NotificationKind
from schemas.primitives import PairSide
from services.notifications.domain.preferences import Recipient
from services.notifications.domain.timing import after_quiet_hours, next_digest_slot

ContextValue = str | int | list[str] | None
Context = dict[str, ContextValue]
_NAMESPACE = uuid.UUID("0b5e6a8e-5d0f-4c7e-9a51-6e6f74696679")


@dataclass(frozen=True, slots=True)
class CalendarPart:
    """An iCalendar (RFC 5545) attachment and its iTIP method (REQUEST or CANCEL)."""

    ics: str
    method: str


@dataclass(frozen=True, slots=True)
class Notice:
    """What one person should learn because of one event (before channels are chosen)."""

    source_key: str
    recipient_id: str
    kind: NotificationKind
    reference_id: str | None
    context: Context
    not_before: datetime
    urgent: bool = False
    """Urgent notices (invites, reminders) are never held for a digest."""
    calendar: CalendarPart | None = None
    cancel_key: str | None = None
    """Pending deliveries sharing a cancel key are dropped together (e.g. a session's reminders)."""
    partner_id: str | None = None
    """The other person the message names; their name is scrubbed if they are forgotten."""


@dataclass(frozen=True, slots=True)
class PlannedDelivery:
    """One message to send: a notice on one channel, due at ``due_at``."""

    delivery_id: str
    notice: Notice
    channel: Channel
    due_at: datetime
    digest: bool


@dataclass(frozen=True)
class Links:
    """Base addresses of the participant app and the admin console, for links in messages."""

    app_url: str
    admin_url: str

    def pair(self, pair_id: str) -> str:
        """Where a participant answers a proposal or sees their pair."""
        return f"{self.app_url.rstrip('/')}/pairs/{pair_id}"

    def feedback(self, request_id: str) -> str:
        """Where a participant answers a feedback request."""
        return f"{self.app_url.rstrip('/')}/feedback/{request_id}"

    def admin_pair(self, program_id: str, pair_id: str) -> str:
        """Where an admin looks at a pair that needs attention."""
        return f"{self.admin_url.rstrip('/')}/programs/{program_id}/pairs/{pair_id}"


@dataclass(frozen=True)
class ProgramInfo:
    """What the notifications service keeps of a program."""

    program_id: str
    name: str
    admin_ids: list[str]
    reminder_offsets_minutes: list[int]
    topic_titles: dict[str, str] = field(default_factory=dict)

    def titles(self, keys: Sequence[str]) -> list[str]:
        """Catalogue titles of topic keys (the key itself when the topic is unknown)."""
        return [self.topic_titles.get(k, k) for k in keys]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What the notifications service keeps of a session."""

    session_id: str
    pair_id: str
    program_id: str
    mentor_id: str
    mentee_id: str
    starts_at: datetime
    ends_at: datetime


_NAMESPACE_SHA1 = hashlib.sha1(_NAMESPACE.bytes, usedforsecurity=False)


def delivery_id(source_key: str, recipient_id: str, channel: Channel) -> str:
    """The stable id of the delivery with this natural key.

    ``"ntf-" + uuid5(namespace, "source|recipient|channel").hex``, computed as RFC 4122
    does (SHA-1 of namespace and name, version and variant bits set) without building a
    UUID object: this runs for every delivery planned.
    """
    digest = _NAMESPACE_SHA1.copy()
    digest.update(f"{source_key}|{recipient_id}|{channel}".encode())
    raw = bytearray(digest.digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return "ntf-" + raw.hex()


def digest_message_id(delivery_ids: Sequence[str]) -> str:
    """The stable id of a digest carrying exactly these deliveries."""
    return "dig-" + uuid.uuid5(_NAMESPACE, "|".join(sorted(delivery_ids))).hex


def plan_deliveries(
    notice: Notice, recipient: Recipient, *, now: datetime
) -> list[PlannedDelivery]:
    """One delivery per channel the recipient chose, due when their preferences allow."""
    prefs = recipient.preferences
    digest = prefs.digest and not notice.urgent
    due = notice.not_before if notice.not_before > now else now
    if digest:
        due = next_digest_slot(due, prefs.digest_time, recipient.zone)
    if prefs.quiet_hours is not None:  # the zone only when a local rule needs it
        due = after_quiet_hours(due, prefs.quiet_hours, recipient.zone)
    return [
        PlannedDelivery(
            delivery_id=delivery_id(notice.source_key, recipient.person_id, channel),
            notice=notice,
            channel=channel,
            due_at=due,
            digest=digest,
        )
        for channel in prefs.channels
    ]


def pair_sides(mentor_id: str, mentee_id: str) -> list[tuple[str, str, PairSide]]:
    """(recipient, partner, recipient's side) for both people of a pair."""
    return [(mentor_id, mentee_id, PairSide.MENTOR), (mentee_id, mentor_id, PairSide.MENTEE)]


def partner_name(names: Mapping[str, str], partner_id: str) -> str | None:
    """The partner's display name, or None when their contact is unknown (or erased)."""
    return names.get(partner_id)


def reminder_notices(
    session: SessionInfo,
    *,
    program: ProgramInfo | None,
    names: Mapping[str, str],
    offsets_minutes: Sequence[int],
    now: datetime,
) -> list[Notice]:
    """The reminders of one session for both people, skipping those already past."""
    start = session.starts_at
    stamp = (
        f"{start.year:04d}{start.month:02d}{start.day:02d}"
        f"T{start.hour:02d}{start.minute:02d}{start.second:02d}Z"
    )  # strftime("%Y%m%dT%H%M%SZ"), without strftime's cost
    shared: Context = {
        "program_name": program.name if program else None,
        "starts_at": start.isoformat(),
        "ends_at": session.ends_at.isoformat(),
    }
    cancel_key = session_cancel_key(session.session_id)
    upcoming = [  # the same for both people: worked out once
        (offset, at, f"reminder:{session.session_id}:{stamp}:{offset}")
        for offset in sorted(set(offsets_minutes), reverse=True)
        if (at := start - timedelta(minutes=offset)) > now
    ]
    return [
        Notice(
            source_key=source_key,
            recipient_id=recipient,
            kind=NotificationKind.SESSION_REMINDER,
            reference_id=session.session_id,
            context={
                "side": side.value,
                "partner_name": partner_name(names, partner),
                **shared,
                "minutes_before": offset,
            },
            not_before=at,
            urgent=True,
            cancel_key=cancel_key,
            partner_id=partner,
        )
        for recipient, partner, side in pair_sides(session.mentor_id, session.mentee_id)
        for offset, at, source_key in upcoming
    ]


def session_cancel_key(session_id: str) -> str:
    """The cancel key shared by the pending reminders of a session."""
    return f"session:{session_id}"


def feedback_cancel_key(request_id: str) -> str:
    """The cancel key of the overdue reminder of a feedback request."""
    return f"feedback:{request_id}"
