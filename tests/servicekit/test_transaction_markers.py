"""Offsets committed past transaction markers (real broker, fake processor).

A transactional producer (e.g. ``upward dlq replay``) writes a commit marker after its
records; the marker takes an offset but is never delivered. The consumer must commit past
it, so the group's lag reads 0, not 1, once everything is applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from servicekit import metrics
from servicekit.consumer import EventConsumer, Outcome, RecordProcessor
from servicekit.dead_letters import RawRecord
from servicekit.kafka import ensure_topics
from servicekit.settings import ServiceSettings, settings_for

pytestmark = pytest.mark.integration


class CountingProcessor(RecordProcessor):
    """Handles every record, remembering its offset; ``seen`` is set at ``expected``."""

    def __init__(self, expected: int) -> None:
        self.offsets: list[int] = []
        self.seen = asyncio.Event()
        self._expected = expected

    async def process_batch(self, records: Sequence[RawRecord]) -> list[Outcome]:
        self.offsets += [r.offset for r in records]
        if len(self.offsets) >= self._expected:
            self.seen.set()
        return [Outcome.HANDLED for _ in records]


async def _publish_in_a_transaction(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"tx-{topic}")
    await producer.start()
    try:
        async with producer.transaction():
            for _ in range(count):
                await producer.send(topic, value=b"v", key=b"k", partition=0)
    finally:
        await producer.stop()


async def _committed(settings: ServiceSettings, tp: TopicPartition) -> tuple[int | None, int]:
    probe = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=settings.group_id
    )
    await probe.start()
    try:
        end = (await probe.end_offsets([tp]))[tp]
        return await probe.committed(tp), end
    finally:
        await probe.stop()


async def test_the_offset_committed_after_a_transaction_is_past_its_marker(
    kafka_bootstrap: str, unique_topic: Callable[..., str]
) -> None:
    prefix = unique_topic("markers") + "."
    settings = settings_for("welcome")(
        service_name="welcome",
        database_url="postgresql://unused",
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        commit_interval_s=0.0,
    )
    await ensure_topics(settings, ["upward.replays"], partitions=1)
    physical = settings.physical_topic("upward.replays")
    await _publish_in_a_transaction(kafka_bootstrap, physical, 3)
    processor = CountingProcessor(3)
    consumer = EventConsumer(settings=settings, processor=processor, topics=["upward.replays"])
    stop = asyncio.Event()
    running = asyncio.create_task(consumer.run(stop))
    async with asyncio.timeout(60):
        await processor.seen.wait()
    await asyncio.sleep(0.5)  # a few more polls, then stop (the last commit runs then)
    stop.set()
    await running
    tp = TopicPartition(physical, 0)
    committed, end = await _committed(settings, tp)
    assert processor.offsets == [0, 1, 2]
    assert end == 4  # three records and the transaction's commit marker
    assert committed == end
    lag = metrics.CONSUMER_LAG.labels("upward.replays", 0)._value.get()
    assert lag == 0
