"""``upward events tail``: follow the catalogue topics, decoded, with filters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from upward.events.broker import Record, existing_partitions, open_reader
from upward.events.catalogue import physical
from upward.events.records import SeenRecord, see


@dataclass(frozen=True)
class TailRequest:
    """What to tail: logical ``topics``, event ``types`` (empty: all), where and how long."""

    topics: tuple[str, ...]
    types: frozenset[str] = frozenset()
    from_beginning: bool = False
    follow: bool = True
    limit: int | None = None


async def tail(
    bootstrap: str,
    prefix: str,
    request: TailRequest,
    *,
    notice: Callable[[str], None] = lambda _: None,
) -> AsyncIterator[SeenRecord]:
    """Yield the records of ``request`` as they come, decoded; ``notice`` hears of missing topics.

    With ``follow=False`` it stops at the end offsets seen at the start; with ``limit`` after
    that many records were yielded. Records of different partitions are yielded in timestamp
    order within each fetched batch.
    """
    logical = {physical(prefix, topic): topic for topic in request.topics}
    by_topic = await existing_partitions(bootstrap, logical)
    for name in logical:
        if name not in by_topic:
            notice(f"topic {name} does not exist (yet); not tailed")
    partitions = [tp for tps in by_topic.values() for tp in tps]
    if not partitions:
        return
    async with open_reader(bootstrap) as consumer:
        ends = await _start(consumer, partitions, from_beginning=request.from_beginning)
        shown = 0
        async for record in _records(consumer, partitions, ends if not request.follow else None):
            seen = see(record, topic=logical[record.topic])
            if request.types and seen.event_type not in request.types:
                continue
            yield seen
            shown += 1
            if request.limit is not None and shown >= request.limit:
                return


async def _start(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], *, from_beginning: bool
) -> dict[TopicPartition, int]:
    """Assign ``partitions``, seek to their beginning or end; return the current end offsets."""
    consumer.assign(partitions)
    if from_beginning:
        await consumer.seek_to_beginning(*partitions)
    else:
        await consumer.seek_to_end(*partitions)
    ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    return ends


async def _records(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    ends: dict[TopicPartition, int] | None,
) -> AsyncIterator[Record]:
    """Fetched records, forever, or (with ``ends``) until every partition reached its end."""
    while True:
        pending = partitions
        if ends is not None:
            pending = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
            if not pending:
                return
        batch = await consumer.getmany(*pending, timeout_ms=500)
        fetched = [record for records in batch.values() for record in records]
        for record in sorted(fetched, key=lambda r: (r.timestamp, r.partition, r.offset)):
            tp = TopicPartition(record.topic, record.partition)
            if ends is None or record.offset < ends[tp]:
                yield record
