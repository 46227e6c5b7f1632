"""Drives the notifications service's handlers and delivery worker on a real database.

Events are applied the way the kit's consumer applies them (one transaction, a
UnitOfWork whose cause is the event, emitted events flushed to the outbox), without
Kafka, so a test can apply the same event twice, move a manual clock and run delivery
rounds one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from schemas.base import EventData
from schemas.codec import decode, new_event
from schemas.envelope import CloudEvent
from schemas.participants import ParticipantJoined
from schemas.programs import ProgramCreated
from servicekit.clock import ManualClock
from servicekit.unit_of_work import TransactionScope, UnitOfWork
from services.notifications.adapters.channels import MessageChannel
from services.notifications.adapters.repository import PostgresNotificationsRepository
from services.notifications.adapters.templates import TemplateRenderer
from services.notifications.bootstrap import default_channels, dependencies
from services.notifications.domain.preferences import Preferences
from services.notifications.handlers import build_handlers
from services.notifications.sending import DeliveryWorker
from services.notifications.settings import NotificationsSettings

START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
MENTOR, MENTEE, ADMIN = "emp-10442", "emp-00231", "emp-00017"


class Harness:
    """Handlers, worker and store of one service instance, on ``pool``."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: NotificationsSettings,
        *,
        clock: ManualClock | None = None,
        channels: Sequence[MessageChannel] | None = None,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.clock = clock or ManualClock(START)
        self.handlers = build_handlers(dependencies(settings))
        self.worker = self.new_worker(channels)

    def new_worker(self, channels: Sequence[MessageChannel] | None = None) -> DeliveryWorker:
        """A fresh worker (as after a restart), sharing the store and the clock."""
        return DeliveryWorker(
            pool=self.pool,
            settings=self.settings,
            clock=self.clock,
            repository=PostgresNotificationsRepository,
            channels=list(channels) if channels is not None else default_channels(self.settings),
            renderer=TemplateRenderer(),
        )

    async def apply(self, data: EventData, *, event: CloudEvent | None = None) -> CloudEvent:
        """Apply one event (a new envelope, or ``event`` again to redeliver it)."""
        event = event or new_event(data, source="/test", time=self.clock.now())
        async with self.pool.acquire() as conn, conn.transaction():
            uow = UnitOfWork(
                conn, source="/upward/notifications", region="local", cause=event, clock=self.clock
            )
            await self.handlers[type(data)](data, uow)
            await uow.flush(max_bytes=self.settings.max_event_bytes)
        return event

    async def apply_batch(self, events: Sequence[EventData]) -> None:
        """Apply several events in one transaction, as the consumer applies a batch of one
        partition: a unit of work per event, all sharing the transaction's scope."""
        async with self.pool.acquire() as conn, conn.transaction():
            scope = TransactionScope()
            for data in events:
                uow = UnitOfWork(
                    conn,
                    source="/upward/notifications",
                    region="local",
                    cause=new_event(data, source="/test", time=self.clock.now()),
                    clock=self.clock,
                    scope=scope,
                )
                await self.handlers[type(data)](data, uow)
            await scope.finish()

    async def round(self) -> int:
        """One delivery round at the clock's time."""
        return await self.worker.run_round()

    async def advance(self, delta: timedelta) -> int:
        """Move the clock, then run one delivery round."""
        self.clock.advance(delta)
        return await self.round()

    async def emitted(self, event_type: str) -> list[Any]:
        """Payloads of the events of ``event_type`` written to the outbox, oldest first."""
        rows = await self.pool.fetch(
            "SELECT payload, event_key FROM kit_outbox WHERE event_type = $1 ORDER BY seq",
            f"upward.{event_type}",
        )
        return [decode(r["payload"], key=r["event_key"].encode()).data for r in rows]

    async def deliveries(self, **where: str) -> list[asyncpg.Record]:
        """Delivery rows, optionally filtered by column equality."""
        clauses = " AND ".join(f"{column} = ${i}" for i, column in enumerate(where, 1))
        sql = "SELECT * FROM deliveries" + (f" WHERE {clauses}" if clauses else "")
        return await self.pool.fetch(sql + " ORDER BY due_at, delivery_id", *where.values())

    async def set_preferences(self, person_id: str, **prefs: Any) -> None:
        """Store a person's preferences directly."""
        async with self.pool.acquire() as conn:
            await PostgresNotificationsRepository(conn).save_preferences(
                person_id=person_id, preferences=Preferences(**prefs), now=self.clock.now()
            )

    async def cast(self) -> None:
        """The program and both people of the schema examples."""
        await self.apply(ProgramCreated.example())
        await self.apply(participant(MENTOR, "Aisha Rahman", "Europe/London"))
        await self.apply(participant(MENTEE, "Helen Park", "Asia/Hong_Kong"))


def participant(person_id: str, name: str, timezone: str) -> ParticipantJoined:
    """A ParticipantJoined like the schema example, for another person."""
    return ParticipantJoined.model_validate(
        ParticipantJoined.example().model_dump()
        | {
            "participant_id": person_id,
            "display_name": name,
            "email": f"{person_id}@example.com",
            "timezone": timezone,
        }
    )
