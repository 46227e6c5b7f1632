"""The smallest service built on the runtime kit: the kit's reference example.

It has the shape of a real service — a handler table, a repository function on
the transaction's connection, its own migrations, an entry point — and is what
the kit's proof-slice tests and pipeline benchmark run. On ParticipantJoined it
records a welcome and emits NotificationSent through the outbox. ``applied``
counts how often the effect ran, so a doubled effect would show. It also keeps
a live faust table of participants joined per program, served over HTTP.

Run as a process: ``python -m examples.welcome_service`` with
``UPWARD_WELCOME_DATABASE_URL`` and ``UPWARD_KAFKA_BOOTSTRAP_SERVERS`` set.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from schemas.notifications import Channel, NotificationKind, NotificationSent
from schemas.participants import ParticipantJoined
from servicekit.db import Connection
from servicekit.runtime import ServiceContext, ServiceDefinition, run_service
from servicekit.settings import ServiceSettings, load_settings
from servicekit.streams import decoded_events, source_topic
from servicekit.unit_of_work import HandlerTable, UnitOfWork


async def save_welcome(conn: Connection, *, data: ParticipantJoined) -> None:
    """Insert the welcome, or count a second application of the same effect."""
    await conn.execute(
        "INSERT INTO welcomes (participant_id, program_id, display_name, applied)"
        " VALUES ($1, $2, $3, 1) ON CONFLICT (participant_id)"
        " DO UPDATE SET applied = welcomes.applied + 1",
        data.participant_id,
        data.program_id,
        data.display_name,
    )


async def welcome_participant(data: ParticipantJoined, uow: UnitOfWork) -> None:
    """Record the welcome and announce it."""
    await save_welcome(uow.conn, data=data)
    await uow.emit(welcome_sent(data, cause_id=uow.cause.id if uow.cause else "none"))


def welcome_sent(data: ParticipantJoined, *, cause_id: str) -> NotificationSent:
    """The NotificationSent that a welcome produces."""
    return NotificationSent(
        notification_id=f"welcome-{cause_id}",
        recipient_id=data.participant_id,
        channel=Channel.EMAIL,
        kind=NotificationKind.ELIGIBILITY,
        reference_id=data.program_id,
        sent_at=datetime.now(UTC),
    )


HANDLERS: HandlerTable = {ParticipantJoined: welcome_participant}


def declare_streams(app: Any, settings: ServiceSettings) -> Any:
    """A live stream table: participants joined per program (a faust GlobalTable)."""
    joined = app.GlobalTable("joined-per-program", default=int, partitions=3)

    @app.agent(source_topic(app, settings, "upward.participants"))
    async def count_joined(stream: Any) -> None:
        async for event in decoded_events(stream, max_bytes=settings.max_event_bytes):
            if isinstance(event.data, ParticipantJoined):
                joined[event.data.program_id] += 1

    return joined


def routes(context: ServiceContext) -> list[APIRouter]:
    """``GET /programs/{program_id}/joined``: the live count from the stream table."""
    router = APIRouter(tags=["welcome"])
    joined = context.views

    @router.get("/programs/{program_id}/joined", summary="Participants joined (live)")
    async def joined_count(program_id: str) -> dict[str, str | int]:
        return {"program_id": program_id, "joined": int(joined[program_id])}

    return [router]


DEFINITION = ServiceDefinition(
    name="welcome",
    version="0.1.0",
    subscribes=("upward.participants",),
    publishes=("upward.notifications",),
    handlers=HANDLERS,
    migrations=Path(__file__).parent / "welcome_migrations",
    routers=routes,
    streams=declare_streams,
)

if __name__ == "__main__":
    asyncio.run(run_service(DEFINITION, load_settings("welcome")))
