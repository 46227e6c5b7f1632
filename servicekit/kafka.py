"""Kafka clients configured the one way every service uses them.

Producers are idempotent with ``acks=all``; consumers never auto-commit (the
consumer loop commits offsets of events whose effect is already committed in
PostgreSQL). Topics, with their dead-letter twins, are created at start.
"""

from __future__ import annotations

import contextlib

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from servicekit.settings import ServiceSettings

DLQ_SUFFIX = ".dlq"


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of ``topic``."""
    return f"{topic}{DLQ_SUFFIX}"


def make_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    """An idempotent producer with ``acks=all``."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=f"upward-{settings.service_name}",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_request_size=settings.max_event_bytes + 64 * 1024,
    )


def make_consumer(settings: ServiceSettings, topics: list[str]) -> AIOKafkaConsumer:
    """A consumer of the service's group that never commits by itself."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.group_id,
        client_id=f"upward-{settings.service_name}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=settings.max_event_bytes + 64 * 1024,
    )


async def ensure_topics(
    settings: ServiceSettings,
    topics: list[str],
    *,
    partitions: int = 3,
    replication_factor: int = 1,
) -> None:
    """Create ``topics`` and their dead-letter topics when they do not exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = sorted({name for t in topics for name in (t, dlq_topic(t))} - existing)
        for name in wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # a replica was faster
                await admin.create_topics(
                    [NewTopic(name, partitions, replication_factor)], validate_only=False
                )
    finally:
        await admin.close()
