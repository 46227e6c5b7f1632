"""Small Kafka and waiting helpers for integration tests (bounded, never sleep-and-hope)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

T = TypeVar("T")


async def publish(
    bootstrap: str, topic: str, items: list[tuple[bytes | None, bytes | None]]
) -> None:
    """Publish (key, value) pairs to ``topic`` and wait for every ack."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in items:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str, topic: str, *, at_least: int, timeout: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``topic`` from the start until ``at_least`` records are seen (or time runs out).

    After the target is met it reads one more short poll, so that extra
    (duplicated) records would be seen too.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"reader-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            records.extend(r for rs in batch.values() for r in rs)
            if len(records) >= at_least and not batch:
                break
    finally:
        await consumer.stop()
    return records


async def eventually(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], *, timeout: float = 30.0
) -> T:
    """Poll ``probe`` until ``accept`` holds; return the last value either way."""
    deadline = time.monotonic() + timeout
    value = await probe()
    while not accept(value) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        value = await probe()
    return value
