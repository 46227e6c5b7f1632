"""Helpers for the event tools' tests: topics under a unique prefix, events, dead letters.

Every test gets its own topic prefix, so it sees only what it published on the shared broker.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord
from typer.testing import CliRunner, Result

from schemas.base import EventData
from schemas.codec import encode, new_event
from schemas.registry import dlq_topic
from servicekit.dead_letters import RawRecord, send_to_dead_letters
from upward.cli import app


def new_prefix() -> str:
    """A topic prefix no other test uses."""
    return f"cli{uuid.uuid4().hex[:10]}."


@dataclass(frozen=True)
class Encoded:
    """An event as it goes on the wire: key, value, and its CloudEvents id."""

    key: bytes
    value: bytes
    event_id: str


def encoded(cls: type[EventData], **changes: Any) -> Encoded:
    """``cls.example()`` with ``changes``, encoded with the project's codec."""
    data = cls.model_validate({**cls.example().model_dump(mode="json"), **changes})
    event = new_event(data, source="/tests/cli")
    return Encoded(data.subject().encode(), encode(event), event.id)


def bad_value(event_type: str, subject: str) -> bytes:
    """A CloudEvents envelope naming ``event_type`` whose data fails validation."""
    document = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/tests/cli",
        "type": f"upward.{event_type}",
        "time": "2026-01-05T10:00:00Z",
        "subject": subject,
        "datacontenttype": "application/json",
        "data": {"pair_id": subject},
        "schemaversion": 1,
    }
    return json.dumps(document).encode()


async def create_topics(bootstrap: str, names: list[str], *, partitions: int = 3) -> None:
    """Create ``names`` and their ``.dlq`` twins with ``partitions`` partitions each."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        wanted = [NewTopic(n, partitions, 1) for name in names for n in (name, dlq_topic(name))]
        await admin.create_topics(wanted)
    finally:
        await admin.close()


async def publish(
    bootstrap: str,
    topic: str,
    items: list[tuple[bytes | None, bytes | None]],
    *,
    partition: int | None = None,
) -> list[int]:
    """Publish (key, value) pairs to ``topic`` in order; return their partitions."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = []
        for key, value in items:
            meta = await producer.send_and_wait(topic, value=value, key=key, partition=partition)
            sent.append(meta.partition)
        return sent
    finally:
        await producer.stop()


async def dead_letter(
    bootstrap: str,
    records: list[RawRecord],
    *,
    reason: str,
    detail: str = "",
    max_bytes: int = 1_048_576,
) -> None:
    """Dead-letter ``records`` with the kit's own writer, as a service would."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for record in records:
            await send_to_dead_letters(
                producer,
                record,
                reason=reason,
                detail=detail or f"{reason} detail",
                group="upward-welcome",
                logical_topic="upward.participants",
                max_bytes=max_bytes,
            )
    finally:
        await producer.stop()


async def records_of(
    bootstrap: str, topic: str, *, partitions: int = 3
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record of ``topic`` (made by :func:`create_topics`), in order, no group."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        found: list[ConsumerRecord[bytes, bytes]] = []
        while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            found.extend(r for rs in batch.values() for r in rs)
        return sorted(found, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


def run(*coroutines: Any) -> None:
    """Run setup coroutines (for the synchronous CLI tests)."""

    async def all_of() -> None:
        for coroutine in coroutines:
            await coroutine

    asyncio.run(all_of())


def invoke(args: list[str], *, bootstrap: str, prefix: str, stdin: str | None = None) -> Result:
    """Run ``upward ARGS`` against ``bootstrap`` under ``prefix``, wide output, no colour."""
    env = {
        "UPWARD_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "UPWARD_TOPIC_PREFIX": prefix,
        "COLUMNS": "250",
        "NO_COLOR": "1",
        "TERM": "dumb",
    }
    return CliRunner().invoke(app, args, env=env, input=stdin)
