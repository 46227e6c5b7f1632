"""The delivery worker: sends due deliveries, at least once on the wire, once in effect.

Each round (a kit ExclusiveTimer, see bootstrap.py: one replica at a time, no
transaction open around the round):

1. **Claim** (one committed transaction): lock due deliveries with ``FOR UPDATE SKIP
   LOCKED``, group a person's digest deliveries into one message, hold back what quiet
   hours or the rate limit forbid now (``due_at`` moves, no attempt counted), and mark
   the rest ``sending``: attempt counted, leased to this round's token until
   ``now + lease``.
2. **Send** each message, outside any transaction, with its stable message id.
3. **Complete** (one transaction per message): mark it ``sent`` and emit NotificationSent
   per delivery; or schedule a retry with backoff; or, after the last attempt or on a
   permanent error, mark it ``failed`` and emit NotificationFailed (``final``). Each update
   only touches rows still leased to this round's token, so a round whose lease ran out
   and was taken over cannot complete twice.

A worker that dies between 2 and 3 leaves the rows ``sending``; when the lease ends, a
later round sends them again, with the same message id (see docs/notifications.md).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from jinja2 import TemplateError

from schemas.notifications import Channel, NotificationFailed, NotificationSent
from servicekit.clock import Clock
from servicekit.db import Connection
from servicekit.logs import get_logger
from servicekit.unit_of_work import UnitOfWork, unit_of_work
from services.notifications.adapters import metrics
from services.notifications.adapters.channels import MessageChannel, Outgoing
from services.notifications.adapters.repository import NotificationsRepository
from services.notifications.adapters.templates import Rendered, TemplateRenderer
from services.notifications.domain.delivery import (
    ClaimedDelivery,
    Message,
    RetryPolicy,
    SendError,
    group_into_messages,
)
from services.notifications.domain.preferences import Recipient
from services.notifications.domain.timing import after_quiet_hours, rate_limited_until
from services.notifications.settings import NotificationsSettings

_log = get_logger(__name__)
RATE_WINDOW = timedelta(hours=1)
RepositoryFactory = Callable[[Connection], NotificationsRepository]


@dataclass(frozen=True)
class Claim:
    """What one round took: its token, the messages to send and who they are for."""

    token: str
    messages: list[Message]
    recipients: dict[str, Recipient]


class DeliveryWorker:
    """Claims, sends and completes due deliveries."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        settings: NotificationsSettings,
        clock: Clock,
        repository: RepositoryFactory,
        channels: Sequence[MessageChannel],
        renderer: TemplateRenderer,
    ) -> None:
        self._pool = pool
        self._s = settings
        self._clock = clock
        self._repo = repository
        self._channels = {c.channel: c for c in channels}
        self._renderer = renderer
        self._policy = RetryPolicy(
            max_attempts=settings.delivery_max_attempts,
            initial_backoff=timedelta(seconds=settings.delivery_initial_backoff_s),
            max_backoff=timedelta(seconds=settings.delivery_max_backoff_s),
        )

    async def run_round(self) -> int:
        """One round: claim, send, complete. Returns how many messages were attempted."""
        claim = await self.claim()
        limit = asyncio.Semaphore(self._s.delivery_concurrency)

        async def deliver(message: Message) -> None:
            async with limit:
                await self.deliver(message, claim)

        outcomes = await asyncio.gather(
            *(deliver(m) for m in claim.messages), return_exceptions=True
        )
        await self.refresh_pending()
        for outcome in outcomes:  # every message was completed or left leased; now report
            if isinstance(outcome, BaseException):
                raise outcome
        return len(claim.messages)

    async def claim(self) -> Claim:
        """Step 1, committed before anything is sent."""
        token = uuid.uuid4().hex
        async with self._command() as uow:
            repo = self._repo(uow.conn)
            claimed = await repo.claim_due(now=uow.now, limit=self._s.delivery_batch_max)
            exhausted = [d for d in claimed if d.attempts >= self._policy.max_attempts]
            await self._give_up(uow, repo, exhausted, token=None, error="interrupted")
            usable = [d for d in claimed if d.attempts < self._policy.max_attempts]
            recipients = await repo.recipients(person_ids=[d.recipient_id for d in usable])
            messages = await self._admit(uow, repo, usable, recipients, token)
        return Claim(token, messages, recipients)

    async def _admit(
        self,
        uow: UnitOfWork,
        repo: NotificationsRepository,
        claimed: list[ClaimedDelivery],
        recipients: dict[str, Recipient],
        token: str,
    ) -> list[Message]:
        now = uow.now
        recent = await repo.recent_send_times(
            recipient_ids=list(recipients), since=now - RATE_WINDOW
        )
        admitted: list[Message] = []
        sending: list[str] = []
        for message in group_into_messages(claimed):
            ids = [d.delivery_id for d in message.deliveries]
            hold = self._hold_until(recipients[message.recipient_id], recent, now)
            if hold is not None:
                await repo.defer(delivery_ids=ids, until=hold)
                continue
            recent.setdefault(message.recipient_id, []).append(now)
            sending += ids
            admitted.append(
                Message(tuple(replace(d, attempts=d.attempts + 1) for d in message.deliveries))
            )
        if sending:  # one statement for the round (same token and lease for every message)
            await repo.mark_sending(
                delivery_ids=sending, token=token, lease_until=now + self._s.lease
            )
        return admitted

    def _hold_until(
        self, recipient: Recipient, recent: dict[str, list[datetime]], now: datetime
    ) -> datetime | None:
        """Quiet hours (current preferences), then the per-person rate limit."""
        quiet_end = after_quiet_hours(now, recipient.preferences.quiet_hours, recipient.zone)
        if quiet_end > now:
            return quiet_end
        return rate_limited_until(
            recent.get(recipient.person_id, []),
            now=now,
            limit=self._s.rate_limit_per_hour,
            window=RATE_WINDOW,
        )

    async def deliver(self, message: Message, claim: Claim) -> None:
        """Steps 2 and 3 for one message."""
        try:
            outgoing = self._outgoing(message, claim.recipients[message.recipient_id])
            await self._channels[message.channel].send(outgoing)
        except SendError as error:
            _log.warning("delivery_failed", message_id=message.message_id, error=str(error))
            await self._failed(message, claim.token, error)
            return
        except Exception as exc:  # a bug, not the receiver: retried, then reported failed
            _log.exception("delivery_crashed", message_id=message.message_id)
            crash = SendError("internal_error", transient=True, detail=repr(exc))
            await self._failed(message, claim.token, crash)
            return
        await self._sent(message, claim.token)

    def _outgoing(self, message: Message, recipient: Recipient) -> Outgoing:
        if recipient.contact is None:
            raise SendError("no_contact", transient=True)
        if message.channel not in self._channels:
            raise SendError(f"no_{message.channel.value}_channel", transient=False)
        try:
            rendered = self._render(message, recipient)
        except TemplateError as exc:
            raise SendError("template_error", transient=False, detail=repr(exc)) from exc
        first = message.deliveries[0]
        return Outgoing(
            message_id=message.message_id,
            kind="digest" if first.digest else first.kind.value,
            contact=recipient.contact,
            preferences=recipient.preferences,
            rendered=rendered,
            calendar=first.calendar if message.channel is Channel.EMAIL else None,
            sent_at=self._clock.now(),
        )

    def _render(self, message: Message, recipient: Recipient) -> Rendered:
        assert recipient.contact is not None
        locale = recipient.locale(self._renderer.locales, self._s.default_locale)
        name, zone = recipient.contact.display_name, recipient.zone
        items = [
            self._renderer.render(
                d.kind.value,
                locale=locale,
                context=d.context,
                recipient_name=name,
                zone=zone,
                has_calendar=d.calendar is not None and message.channel is Channel.EMAIL,
            )
            for d in message.deliveries
        ]
        if not message.deliveries[0].digest:
            return items[0]
        return self._renderer.render_digest(items, locale=locale, recipient_name=name, zone=zone)

    async def _sent(self, message: Message, token: str) -> None:
        async with self._command() as uow:
            repo = self._repo(uow.conn)
            marked = set(
                await repo.mark_sent(
                    token=token,
                    delivery_ids=[d.delivery_id for d in message.deliveries],
                    message_id=message.message_id,
                    sent_at=uow.now,
                )
            )
            for d in message.deliveries:
                if d.delivery_id in marked:
                    await uow.emit(_sent_event(d, uow.now))
                    uow.after_commit(
                        metrics.NOTIFICATIONS_SENT.labels(d.channel.value, d.kind.value).inc
                    )

    async def _failed(self, message: Message, token: str, error: SendError) -> None:
        async with self._command() as uow:
            repo = self._repo(uow.conn)
            ids = [d.delivery_id for d in message.deliveries]
            retry_at = self._policy.next_attempt_at(error, attempts=message.attempts, now=uow.now)
            if retry_at is not None:
                await repo.schedule_retry(
                    token=token, delivery_ids=ids, due_at=retry_at, error=error.code
                )
                return
            await self._give_up(uow, repo, list(message.deliveries), token=token, error=error.code)

    async def _give_up(
        self,
        uow: UnitOfWork,
        repo: NotificationsRepository,
        deliveries: list[ClaimedDelivery],
        *,
        token: str | None,
        error: str,
    ) -> None:
        if not deliveries:
            return
        ids = [d.delivery_id for d in deliveries]
        failed = set(await repo.mark_failed(token=token, delivery_ids=ids, error=error))
        for d in deliveries:
            if d.delivery_id in failed:
                await uow.emit(_failed_event(d, error))
                uow.after_commit(
                    metrics.NOTIFICATIONS_FAILED.labels(d.channel.value, d.kind.value).inc
                )

    def _command(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A transaction whose emitted events go to the outbox when it commits."""
        return unit_of_work(
            self._pool,
            source=f"/upward/{self._s.service_name}",
            region=self._s.region,
            clock=self._clock,
            max_event_bytes=self._s.max_event_bytes,
        )

    async def refresh_pending(self) -> None:
        """Update the pending-deliveries gauge."""
        async with self._pool.acquire() as conn:
            metrics.NOTIFICATIONS_PENDING.set(await self._repo(conn).pending_count())


def _about(d: ClaimedDelivery) -> dict[str, Any]:
    """The fields NotificationSent and NotificationFailed share."""
    return {
        "notification_id": d.delivery_id,
        "recipient_id": d.recipient_id,
        "channel": d.channel,
        "kind": d.kind,
        "reference_id": d.reference_id,
    }


def _sent_event(d: ClaimedDelivery, sent_at: datetime) -> NotificationSent:
    return NotificationSent(**_about(d), sent_at=sent_at)


def _failed_event(d: ClaimedDelivery, error: str) -> NotificationFailed:
    return NotificationFailed(
        **_about(d), error_code=error, attempts=max(d.attempts, 1), final=True
    )
