"""Reading topics without a consumer group, and the error for an unreachable broker.

Readers use manual partition assignment and ``read_committed`` isolation: they commit
nothing and never join a group, so the services' offsets are untouched, and records of
an aborted transaction (a failed replay) are not seen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.structs import ConsumerRecord

from servicekit.kafka import kafka_client_options
from servicekit.settings import KafkaConnectionSettings

MAX_RECORD_BYTES = 1_048_576 + 64 * 1024
"""Largest record the tools read or write (an event's limit plus room for headers)."""

Record: TypeAlias = ConsumerRecord[bytes, bytes]


def connection_options(bootstrap: str) -> dict[str, Any]:
    """Keyword arguments every client of the tools connects with: ``bootstrap``, and the
    connection security the services use (``UPWARD_KAFKA_SECURITY_PROTOCOL``, the shared
    ``UPWARD_KAFKA_SASL_*`` and ``UPWARD_KAFKA_SSL_*`` settings), built by the kit's one
    builder. Raises :class:`servicekit.kafka.KafkaSecurityError` when SASL lacks a user."""
    security = KafkaConnectionSettings(kafka_bootstrap_servers=bootstrap)
    return kafka_client_options(security) | {"client_id": "upward-cli"}


class BrokerUnreachable(Exception):
    """The broker at ``bootstrap`` did not answer."""

    def __init__(self, bootstrap: str, cause: BaseException | None = None) -> None:
        self.bootstrap = bootstrap
        super().__init__(
            f"cannot reach Kafka at {bootstrap}: start the local stack with "
            "`upward stack up`, or point UPWARD_KAFKA_BOOTSTRAP_SERVERS at a running broker"
            + (f" ({cause})" if cause else "")
        )


@asynccontextmanager
async def open_reader(bootstrap: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer with no group (assign partitions yourself); stopped on exit."""
    consumer = AIOKafkaConsumer(
        **connection_options(bootstrap),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=MAX_RECORD_BYTES,
    )
    try:
        await consumer.start()
    except (KafkaConnectionError, KafkaError, OSError) as error:
        await consumer.stop()
        raise BrokerUnreachable(bootstrap) from error
    try:
        yield consumer
    finally:
        await consumer.stop()


async def start_producer(producer: AIOKafkaProducer, bootstrap: str) -> None:
    """Start ``producer``, turning a connection failure into :class:`BrokerUnreachable`."""
    try:
        await producer.start()
    except (KafkaConnectionError, KafkaError, OSError) as error:
        await producer.stop()
        raise BrokerUnreachable(bootstrap) from error


async def existing_partitions(
    bootstrap: str, topics: Iterable[str]
) -> dict[str, list[TopicPartition]]:
    """The partitions of those ``topics`` that exist (a missing topic is left out, not created)."""
    admin = AIOKafkaAdminClient(**connection_options(bootstrap))
    try:
        await admin.start()
    except (KafkaConnectionError, KafkaError, OSError) as error:
        await admin.close()
        raise BrokerUnreachable(bootstrap) from error
    try:
        described = {entry["topic"]: entry for entry in await admin.describe_topics()}
    finally:
        await admin.close()
    return {
        topic: sorted(
            TopicPartition(topic, part["partition"]) for part in described[topic]["partitions"]
        )
        for topic in topics
        if topic in described and described[topic]["error_code"] == 0
    }


async def read_to_end(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> AsyncIterator[list[Record]]:
    """Read ``partitions`` from the beginning up to their end offsets as of now.

    Yields batches; within a partition records come in offset order. Ends when every
    partition's position has reached the end offset taken at the start.
    """
    if not partitions:
        return
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    ends = await consumer.end_offsets(partitions)
    pending = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=500)
        yield [record for tp in pending for record in batch.get(tp, [])]
        pending = [tp for tp in pending if await consumer.position(tp) < ends[tp]]


async def read_all(bootstrap: str, topics: Iterable[str]) -> dict[str, list[Record]]:
    """Every record of the existing ``topics`` up to their current end, per physical topic."""
    by_topic = await existing_partitions(bootstrap, topics)
    async with open_reader(bootstrap) as consumer:
        records: dict[str, list[Record]] = {topic: [] for topic in by_topic}
        partitions = [tp for tps in by_topic.values() for tp in tps]
        async for batch in read_to_end(consumer, partitions):
            for record in batch:
                records[record.topic].append(record)
    for topic_records in records.values():
        topic_records.sort(key=lambda record: (record.partition, record.offset))
    return records
