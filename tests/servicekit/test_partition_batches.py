"""The consumer loop's handling of a poll spanning several partitions, with a fake processor.

When partitions are applied concurrently and one of them stops (a transient failure
during shutdown), the others still finish, and their progress is kept for the offset
commit; the stop is raised once they are done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from servicekit.consumer import EventConsumer, Outcome, RecordProcessor, Stopping
from servicekit.dead_letters import RawRecord
from servicekit.settings import ServiceSettings, settings_for


class FakeProcessor(RecordProcessor):
    """Handles every record, except that partition 1 stops at offset 2."""

    def __init__(self) -> None:
        self.applied: list[tuple[int, int]] = []

    async def process_batch(self, records: Sequence[RawRecord]) -> list[Outcome]:
        await asyncio.sleep(0)
        if any(r.partition == 1 and r.offset == 2 for r in records):
            raise Stopping
        self.applied += [(r.partition, r.offset) for r in records]
        return [Outcome.HANDLED for _ in records]


def _settings(concurrency: int) -> ServiceSettings:
    return settings_for("welcome")(
        service_name="welcome",
        database_url="postgresql://unused",
        partition_concurrency=concurrency,
        transaction_batch_max=2,
    )


def _records(partition: int, count: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord("t", partition, offset, 0, 0, b"k", b"v", None, 1, 1, ())
        for offset in range(count)
    ]


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_a_stopping_partition_does_not_lose_the_others_progress(concurrency: int) -> None:
    processor = FakeProcessor()
    consumer = EventConsumer(settings=_settings(concurrency), processor=processor, topics=["t"])
    batches = {TopicPartition("t", p): _records(p, 6) for p in (0, 1, 2)}
    with pytest.raises(Stopping):
        await consumer._process_partitions(batches, asyncio.Event())
    for partition in (0, 2) if concurrency > 1 else (0,):
        done = [o for p, o in processor.applied if p == partition]
        assert done == list(range(6))  # in order, to the end
        assert consumer._pending[TopicPartition("t", partition)] == 6
    assert [o for p, o in processor.applied if p == 1] == [0, 1]
    assert consumer._pending[TopicPartition("t", 1)] == 2  # up to the batch that stopped
