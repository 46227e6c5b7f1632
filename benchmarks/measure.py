"""What the benchmark suites share: figures and their rounds, the stack, the raw ceiling.

* :class:`Figure` / :class:`Series`: one measurement, and the same one per round;
  :func:`paired_ratios` divides a figure by the raw passthrough of the same round;
* :func:`running_stack`: a throwaway Kafka + PostgreSQL on free ports;
* :func:`preload` publishes events before anything consumes them;
* :func:`bench_raw`: an aiokafka consume -> produce passthrough with no decoding and no
  database, committing offsets like the kit does: the ceiling for Python on this machine.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.codec import encode
from schemas.envelope import CloudEvent
from servicekit.kafka import ensure_topics
from servicekit.settings import settings_for
from upward.stack import LocalStack, StackInfo, StackSettings, free_ports

RAW = "raw aiokafka passthrough"


@dataclass(frozen=True)
class Figure:
    """One measured figure."""

    name: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        """Events per second."""
        return self.events / self.seconds


@dataclass(frozen=True)
class Series:
    """The same figure measured once per round."""

    name: str
    figures: list[Figure]

    @property
    def median_rate(self) -> float:
        """Median events per second over the rounds."""
        return statistics.median(f.rate for f in self.figures)

    def row(self, ratios: list[float] | None) -> str:
        """A Markdown table row."""
        rates = [f.rate for f in self.figures]
        ratio = f"{statistics.median(ratios):.2f}" if ratios else "—"
        return (
            f"| {self.name} | {self.figures[0].events} | {self.median_rate:,.0f} |"
            f" {min(rates):,.0f} to {max(rates):,.0f} | {ratio} |"
        )


def paired_ratios(series: Series, raw: Series) -> list[float]:
    """Per round, this figure's rate over the raw passthrough's (same round, same load)."""
    return [f.rate / r.rate for f, r in zip(series.figures, raw.figures, strict=True)]


def short_version(version: str | None) -> str:
    """'PostgreSQL 18.6 on x86_64-pc-linux-gnu, ...' -> 'PostgreSQL 18.6'."""
    return (version or "PostgreSQL ?").split(" on ")[0]


@contextmanager
def running_stack() -> Iterator[StackInfo]:
    """A throwaway local Kafka + PostgreSQL on free ports, deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="upward-bench-") as home:
        kafka_port, controller_port, pg_port = free_ports(3)
        stack = LocalStack(
            StackSettings(
                home=Path(home), kafka_port=kafka_port,
                kafka_controller_port=controller_port, postgres_port=pg_port,
            )
        )  # fmt: skip
        info = stack.up(step=lambda text: print(f"  stack: {text}", flush=True))
        try:
            yield info
        finally:
            stack.down(purge=True)


async def create_topics(bootstrap: str, topics: list[str]) -> None:
    """Create ``topics`` (3 partitions, like the services' own) if they do not exist."""
    settings = settings_for("bench")(
        service_name="bench", database_url="postgresql://unused", kafka_bootstrap_servers=bootstrap
    )
    await ensure_topics(settings, topics)


async def preload(
    bootstrap: str, topic: str, events: Sequence[CloudEvent]
) -> list[tuple[str, float]]:
    """Publish ``events`` to ``topic``; return each event id with its record timestamp (s)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = [await producer.send(topic, value=encode(e), key=e.subject.encode()) for e in events]
        metadata = await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return [(e.id, m.timestamp / 1000) for e, m in zip(events, metadata, strict=True)]


async def bench_raw(
    bootstrap: str, events: Sequence[CloudEvent], *, from_first_record: bool = False
) -> Figure:
    """aiokafka consume -> produce, committing offsets like the kit does.

    The clock starts before the consumer joins its group, or with ``from_first_record``
    when the first records arrive (the group join left out, like a drain of a backlog).
    """
    source, sink = f"bench-raw-{uuid.uuid4().hex[:8]}", f"bench-raw-out-{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, [source, sink])
    await preload(bootstrap, source, events)
    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=bootstrap, group_id=f"g-{source}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    try:
        started, moved = time.perf_counter(), 0
        while moved < len(events):
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            if from_first_record and moved == 0:
                started = time.perf_counter() if batches else started
            sends = [
                await producer.send(sink, value=r.value, key=r.key)
                for records in batches.values()
                for r in records
            ]
            await asyncio.gather(*sends)
            await consumer.commit()
            moved += len(sends)
        return Figure(RAW, moved, time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()
