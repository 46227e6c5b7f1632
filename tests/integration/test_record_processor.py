"""The record processor on a real PostgreSQL and broker, driven record by record.

These tests call :class:`RecordProcessor` directly with hand-made records, so a
batch's exact content is known: the consumer loop around it is covered by
test_proof_slice.py.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from kafka_io import eventually, read_topic
from prometheus_client import REGISTRY

from examples import welcome_service
from schemas.codec import encode, new_event
from schemas.participants import ParticipantJoined
from servicekit import db
from servicekit.consumer import Outcome, RecordProcessor, Stopping
from servicekit.dead_letters import RawRecord
from servicekit.kafka import ensure_topics, make_producer
from servicekit.settings import ServiceSettings, settings_for
from servicekit.unit_of_work import HandlerTable, Rejected, UnitOfWork

pytestmark = pytest.mark.integration


def joined_record(participant_id: str, offset: int, *, topic: str) -> tuple[RawRecord, str]:
    data = ParticipantJoined.model_validate(
        {**ParticipantJoined.example().model_dump(mode="json"), "participant_id": participant_id}
    )
    event = new_event(data, source="/test")
    return RawRecord(topic, 0, offset, participant_id.encode(), encode(event)), event.id


async def refusing_or_welcoming(data: ParticipantJoined, uow: UnitOfWork) -> None:
    if data.participant_id.startswith("refuse"):
        raise Rejected("participant refused by policy")
    if data.participant_id.startswith("down"):
        raise ConnectionRefusedError("simulated: database down")
    await welcome_service.welcome_participant(data, uow)


async def _value(sample: float | None) -> float:
    return sample or 0.0


HANDLERS: HandlerTable = {ParticipantJoined: refusing_or_welcoming}


@pytest.fixture
async def parts(
    kafka_bootstrap: str, fresh_database_url: str
) -> AsyncIterator[tuple[ServiceSettings, asyncpg.Pool, AIOKafkaProducer]]:
    settings = settings_for("welcome")(
        service_name="welcome",
        database_url=fresh_database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        retry_initial_backoff_s=0.05,
        retry_max_backoff_s=0.1,
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


async def test_one_transaction_per_batch_and_a_bad_event_only_costs_itself(
    parts: tuple[ServiceSettings, asyncpg.Pool, AIOKafkaProducer],
) -> None:
    settings, pool, producer = parts
    topic = settings.physical_topic("upward.participants")
    good1, good1_id = joined_record("emp-a", 0, topic=topic)
    refused, refused_id = joined_record("refuse-b", 2, topic=topic)
    good2, _ = joined_record("emp-c", 4, topic=topic)
    junk = RawRecord(topic, 0, 1, b"k", b"[1, 2]")
    again = RawRecord(topic, 0, 3, good1.key, good1.value)
    processor = RecordProcessor(
        settings=settings, pool=pool, producer=producer, handlers=HANDLERS, stop=asyncio.Event()
    )

    outcomes = await processor.process_batch([good1, junk, refused, again, good2])

    assert outcomes == [
        Outcome.HANDLED,
        Outcome.DEAD_LETTERED,
        Outcome.DEAD_LETTERED,
        Outcome.DUPLICATE,
        Outcome.HANDLED,
    ]
    applied = dict(await pool.fetch("SELECT participant_id, applied FROM welcomes"))
    assert applied == {"emp-a": 1, "emp-c": 1}
    assert await pool.fetchval("SELECT count(*) FROM kit_outbox") == 2
    assert (
        await pool.fetchval("SELECT redeliveries FROM kit_inbox WHERE event_id = $1", good1_id) == 1
    )
    # the refused event left no inbox row: replayed after a fix, it will be applied
    assert (
        await pool.fetchval("SELECT count(*) FROM kit_inbox WHERE event_id = $1", refused_id) == 0
    )


async def test_replaying_a_processed_batch_changes_nothing(
    parts: tuple[ServiceSettings, asyncpg.Pool, AIOKafkaProducer],
) -> None:
    settings, pool, producer = parts
    topic = settings.physical_topic("upward.participants")
    batch = [joined_record(f"emp-{i}", i, topic=topic)[0] for i in range(20)]
    processor = RecordProcessor(
        settings=settings, pool=pool, producer=producer, handlers=HANDLERS, stop=asyncio.Event()
    )
    assert set(await processor.process_batch(batch)) == {Outcome.HANDLED}
    assert set(await processor.process_batch(batch)) == {Outcome.DUPLICATE}
    assert await pool.fetchval("SELECT sum(applied) FROM welcomes") == 20
    assert await pool.fetchval("SELECT count(*) FROM kit_outbox") == 20


async def test_stopping_while_a_transient_failure_lasts_commits_nothing(
    parts: tuple[ServiceSettings, asyncpg.Pool, AIOKafkaProducer],
) -> None:
    settings, pool, producer = parts
    record, _ = joined_record("down-d", 0, topic=settings.physical_topic("upward.participants"))
    stop = asyncio.Event()
    processor = RecordProcessor(
        settings=settings, pool=pool, producer=producer, handlers=HANDLERS, stop=stop
    )
    labels = {"topic": "upward.participants", "error": "ConnectionRefusedError"}
    before = REGISTRY.get_sample_value("upward_handler_retries_total", labels) or 0
    task = asyncio.create_task(processor.process(record))
    retries = await eventually(
        lambda: _value(REGISTRY.get_sample_value("upward_handler_retries_total", labels)),
        lambda n: n >= before + 3,
    )
    assert retries >= before + 3 and not task.done(), "transient failures must be retried"
    stop.set()
    with pytest.raises(Stopping):
        await task
    assert await pool.fetchval("SELECT count(*) FROM kit_inbox") == 0


async def test_oversized_record_is_dead_lettered_truncated(
    parts: tuple[ServiceSettings, asyncpg.Pool, AIOKafkaProducer],
) -> None:
    settings, pool, producer = parts
    small = settings.model_copy(update={"max_event_bytes": 2048})
    topic = settings.physical_topic("upward.participants")
    huge = RawRecord(topic, 0, 7, b"emp-big", b'{"padding": "' + b"x" * 5000 + b'"}')
    processor = RecordProcessor(
        settings=small, pool=pool, producer=producer, handlers=HANDLERS, stop=asyncio.Event()
    )
    assert await processor.process(huge) == Outcome.DEAD_LETTERED
    dead = await read_topic(settings.kafka_bootstrap_servers, f"{topic}.dlq", at_least=1)
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["dlq.reason"] == "oversized"
    assert headers["dlq.truncated"] == str(len(huge.value or b""))
    assert dead[0].value == (huge.value or b"")[:2048]


async def test_after_commit_actions_run_once_per_committed_effect(
    parts: tuple[ServiceSettings, asyncpg.Pool, AIOKafkaProducer],
) -> None:
    settings, pool, producer = parts
    topic = settings.physical_topic("upward.participants")
    counted: list[str] = []

    async def counting(data: ParticipantJoined, uow: UnitOfWork) -> None:
        uow.after_commit(lambda: counted.append(data.participant_id))
        await refusing_or_welcoming(data, uow)

    processor = RecordProcessor(
        settings=settings,
        pool=pool,
        producer=producer,
        handlers={ParticipantJoined: counting},
        stop=asyncio.Event(),
    )
    # the refused event rolls the whole batch back; it is then applied one by one
    batch = [
        joined_record("emp-a", 0, topic=topic)[0],
        joined_record("refuse-b", 1, topic=topic)[0],
        joined_record("emp-c", 2, topic=topic)[0],
    ]
    await processor.process_batch(batch)
    await processor.process_batch(batch)  # redelivered: nothing new commits
    assert counted == ["emp-a", "emp-c"]


@dataclass
class _HeldWelcomes:
    """Welcomes held back by the handlers of one transaction and sent before it commits."""

    counted: list[str]
    units: list[tuple[ParticipantJoined, UnitOfWork]] = field(default_factory=list)

    async def write(self) -> None:
        for data, uow in self.units:
            await welcome_service.welcome_participant(data, uow)
            uow.after_commit(partial(self.counted.append, f"held {data.participant_id}"))


async def test_held_writes_emit_events_and_after_commit_actions_in_unit_order(
    parts: tuple[ServiceSettings, asyncpg.Pool, AIOKafkaProducer],
) -> None:
    settings, pool, producer = parts
    topic = settings.physical_topic("upward.participants")
    counted: list[str] = []

    async def holding(data: ParticipantJoined, uow: UnitOfWork) -> None:
        uow.scope.held("welcomes", lambda: _HeldWelcomes(counted)).units.append((data, uow))
        uow.after_commit(partial(counted.append, data.participant_id))

    processor = RecordProcessor(
        settings=settings,
        pool=pool,
        producer=producer,
        handlers={ParticipantJoined: holding},
        stop=asyncio.Event(),
    )
    records = [joined_record(f"emp-{i}", i, topic=topic) for i in range(3)]
    await processor.process_batch([r for r, _ in records])

    rows = await pool.fetch("SELECT payload FROM kit_outbox ORDER BY seq")
    causes = [json.loads(r["payload"])["causationid"] for r in rows]
    assert causes == [event_id for _, event_id in records]
    assert counted == [f"{held}emp-{i}" for i in range(3) for held in ("", "held ")]


class _HeldOrNow:
    """Welcomes held for the transaction; their events are emitted when written."""

    def __init__(self) -> None:
        self.held: list[tuple[ParticipantJoined, UnitOfWork]] = []

    async def write(self) -> None:
        for data, uow in self.held:
            await welcome_service.welcome_participant(data, uow)


async def test_events_emitted_by_held_writes_go_out_with_their_cause_in_handler_order(
    parts: tuple[ServiceSettings, asyncpg.Pool, AIOKafkaProducer],
) -> None:
    settings, pool, producer = parts
    topic = settings.physical_topic("upward.participants")

    async def holding_or_welcoming(data: ParticipantJoined, uow: UnitOfWork) -> None:
        if data.participant_id.startswith("held"):
            uow.scope.held("welcomes", _HeldOrNow).held.append((data, uow))
        else:
            await uow.scope.write_held("welcomes")  # what is held goes first, in order
            await welcome_service.welcome_participant(data, uow)

    processor = RecordProcessor(
        settings=settings,
        pool=pool,
        producer=producer,
        handlers={ParticipantJoined: holding_or_welcoming},
        stop=asyncio.Event(),
    )
    people = ["held-a", "now-b", "held-c", "held-d"]
    records = [joined_record(p, i, topic=topic) for i, p in enumerate(people)]
    outcomes = await processor.process_batch([r for r, _ in records])

    assert outcomes == [Outcome.HANDLED] * 4
    rows = await pool.fetch("SELECT payload FROM kit_outbox ORDER BY seq")
    causes = [json.loads(r["payload"])["causationid"] for r in rows]
    assert causes == [event_id for _, event_id in records]
