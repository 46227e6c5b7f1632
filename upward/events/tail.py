"""``upward events tail``: follow the catalogue topics, decoded, with filters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

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
    rescan_s: float = 5.0
    """While following, how often to look again for topics that did not exist yet."""


@dataclass
class _Tailed:
    """The partitions tailed so far and the topics still awaited (follow mode)."""

    bootstrap: str
    partitions: list[TopicPartition]
    missing: list[str]
    notice: Callable[[str], None]
    rescan_s: float
    next_scan: float = field(default_factory=time.monotonic)

    async def discover(self, consumer: AIOKafkaConsumer) -> None:
        """Add the awaited topics that now exist, read from their beginning (all new)."""
        if not self.missing or time.monotonic() < self.next_scan:
            return
        self.next_scan = time.monotonic() + self.rescan_s
        found = await existing_partitions(self.bootstrap, self.missing)
        if not found:
            return
        positions = {tp: await consumer.position(tp) for tp in self.partitions}
        added = [tp for tps in found.values() for tp in tps]
        self.partitions = self.partitions + added
        self.missing = [name for name in self.missing if name not in found]
        consumer.assign(self.partitions)
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        await consumer.seek_to_beginning(*added)
        for name in found:
            self.notice(f"topic {name} now exists; tailing it")


async def tail(
    bootstrap: str,
    prefix: str,
    request: TailRequest,
    *,
    notice: Callable[[str], None] = lambda _: None,
) -> AsyncIterator[SeenRecord]:
    """Yield the records of ``request`` as they come, decoded; ``notice`` hears of missing topics
    (followed, a missing topic is tailed from its beginning once it is created).

    With ``follow=False`` it stops at the end offsets seen at the start; with ``limit`` after
    that many records were yielded. Records of different partitions are yielded in timestamp
    order within each fetched batch.
    """
    logical = {physical(prefix, topic): topic for topic in request.topics}
    by_topic = await existing_partitions(bootstrap, logical)
    missing = [name for name in logical if name not in by_topic]
    for name in missing:
        then = "tailed once it is created" if request.follow else "not tailed"
        notice(f"topic {name} does not exist (yet); {then}")
    partitions = [tp for tps in by_topic.values() for tp in tps]
    if not partitions and not request.follow:
        return
    tailed = _Tailed(bootstrap, partitions, missing, notice, request.rescan_s)
    async with open_reader(bootstrap) as consumer:
        ends = await _start(consumer, partitions, from_beginning=request.from_beginning)
        shown = 0
        follow = tailed if request.follow else None
        async for record in _records(consumer, partitions, None if follow else ends, follow):
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
    if not partitions:
        return {}
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
    follow: _Tailed | None = None,
) -> AsyncIterator[Record]:
    """Fetched records, forever (``follow`` adding topics as they are created), or (with
    ``ends``) until every partition reached its end."""
    while True:
        pending = partitions
        if follow is not None:
            await follow.discover(consumer)
            pending = follow.partitions
        if ends is not None:
            pending = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
            if not pending:
                return
        if not pending:
            await asyncio.sleep(0.5)
            continue
        batch = await consumer.getmany(*pending, timeout_ms=500)
        fetched = [record for records in batch.values() for record in records]
        for record in sorted(fetched, key=lambda r: (r.timestamp, r.partition, r.offset)):
            tp = TopicPartition(record.topic, record.partition)
            if ends is None or record.offset < ends[tp]:
                yield record
