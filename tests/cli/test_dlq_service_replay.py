"""A service dead-letters an event it refuses; after the fix, a replay is applied once.

The kit's example service (examples/welcome_service.py) processes the records through the
kit's real record processor, on the real broker and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from events_io import encoded, invoke, publish, records_of

from examples import welcome_service
from schemas.participants import ParticipantJoined
from servicekit import db
from servicekit.consumer import Outcome, RecordProcessor
from servicekit.dead_letters import RawRecord
from servicekit.kafka import ensure_topics, make_producer
from servicekit.settings import ServiceSettings, settings_for
from servicekit.unit_of_work import HandlerTable, Rejected, UnitOfWork

pytestmark = pytest.mark.integration


async def refusing(data: ParticipantJoined, uow: UnitOfWork) -> None:
    """The bug: participants of one program are refused."""
    if data.program_id == "prg-refused":
        raise Rejected("program not configured")
    await welcome_service.welcome_participant(data, uow)


FIXED: HandlerTable = {ParticipantJoined: welcome_service.welcome_participant}
BROKEN: HandlerTable = {ParticipantJoined: refusing}


@pytest.fixture
async def service(
    kafka_bootstrap: str, fresh_database_url: str
) -> AsyncIterator[tuple[ServiceSettings, asyncpg.Pool, AIOKafkaProducer]]:
    settings = settings_for("welcome")(
        service_name="welcome",
        database_url=fresh_database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"cli{uuid.uuid4().hex[:10]}.",
    )
    pool = await db.create_pool(fresh_database_url)
    await db.apply_migrations(pool, "servicekit", db.KIT_MIGRATIONS)
    await db.apply_migrations(pool, "welcome", welcome_service.DEFINITION.migrations)
    await ensure_topics(settings, [settings.physical_topic("upward.participants")])
    producer = make_producer(settings)
    await producer.start()
    yield settings, pool, producer
    await producer.stop()
    await pool.close()


def raw(record: ConsumerRecord[bytes, bytes]) -> RawRecord:
    return RawRecord(record.topic, record.partition, record.offset, record.key, record.value)


async def test_a_dead_letter_replayed_twice_after_the_fix_is_applied_once(
    service: tuple[ServiceSettings, asyncpg.Pool, AIOKafkaProducer],
) -> None:
    settings, pool, producer = service
    topic = settings.physical_topic("upward.participants")
    event = encoded(ParticipantJoined, participant_id="emp-replay", program_id="prg-refused")
    await publish(settings.kafka_bootstrap_servers, topic, [(event.key, event.value)])
    (original,) = await records_of(settings.kafka_bootstrap_servers, topic)

    def processor(handlers: HandlerTable) -> RecordProcessor:
        stop = asyncio.Event()
        return RecordProcessor(
            settings=settings, pool=pool, producer=producer, handlers=handlers, stop=stop
        )

    assert await processor(BROKEN).process(raw(original)) == Outcome.DEAD_LETTERED
    where = {"bootstrap": settings.kafka_bootstrap_servers, "prefix": settings.topic_prefix}
    for _ in range(2):  # the operator runs the replay twice
        result = await asyncio.to_thread(invoke, ["dlq", "replay", "--yes"], **where)
        assert result.exit_code == 0, result.output

    on_topic = await records_of(settings.kafka_bootstrap_servers, topic)
    replayed = [
        r for r in on_topic if r.offset != original.offset or r.partition != original.partition
    ]
    assert [(r.key, r.value) for r in replayed] == [(event.key, event.value)]
    fixed = processor(FIXED)
    assert await fixed.process(raw(replayed[0])) == Outcome.HANDLED
    assert await fixed.process(raw(replayed[0])) == Outcome.DUPLICATE  # a redelivery
    applied = await pool.fetchval(
        "SELECT applied FROM welcomes WHERE participant_id = $1", "emp-replay"
    )
    assert applied == 1
