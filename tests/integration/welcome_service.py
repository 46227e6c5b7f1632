"""A minimal service built on the runtime kit, used by the proof-slice tests.

It has the shape of a real service: a handler table, a repository function on
the transaction's connection, its own migrations, and an entry point. On
ParticipantJoined it records a welcome and emits NotificationSent through the
outbox. ``applied`` counts how often the effect ran, so a doubled effect shows.
Run as a process: ``python tests/integration/welcome_service.py`` with
``UPWARD_WELCOME_DATABASE_URL`` and ``UPWARD_KAFKA_BOOTSTRAP_SERVERS`` set.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from schemas.notifications import NotificationSent
from schemas.participants import ParticipantJoined
from servicekit.runtime import ServiceDefinition, run_service
from servicekit.settings import load_settings
from servicekit.unit_of_work import HandlerTable, UnitOfWork

FAIL_FIRST_ATTEMPTS: dict[str, int] = {}
"""participant_id -> transient failures to simulate before succeeding (in-process tests)."""


async def save_welcome(conn: asyncpg.Connection, *, data: ParticipantJoined) -> None:
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
    remaining = FAIL_FIRST_ATTEMPTS.get(data.participant_id, 0)
    if remaining:
        FAIL_FIRST_ATTEMPTS[data.participant_id] = remaining - 1
        raise ConnectionResetError("simulated: database connection lost")
    await save_welcome(uow.conn, data=data)
    await uow.emit(welcome_sent(data, cause_id=uow.cause.id if uow.cause else "none"))


def welcome_sent(data: ParticipantJoined, *, cause_id: str) -> NotificationSent:
    """The NotificationSent that a welcome produces."""
    return NotificationSent.model_validate(
        {
            **NotificationSent.example().model_dump(mode="json"),
            "notification_id": f"welcome-{cause_id}",
            "recipient_id": data.participant_id,
            "reference_id": data.program_id,
        }
    )


HANDLERS: HandlerTable = {ParticipantJoined: welcome_participant}

DEFINITION = ServiceDefinition(
    name="welcome",
    version="0.1.0",
    subscribes=("upward.participants",),
    publishes=("upward.notifications",),
    handlers=HANDLERS,
    migrations=Path(__file__).parent / "welcome_migrations",
)

if __name__ == "__main__":
    asyncio.run(run_service(DEFINITION, load_settings("welcome")))
