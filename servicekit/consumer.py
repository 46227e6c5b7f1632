"""The consumer loop: decode, deduplicate, handle, dead-letter, commit.

:class:`RecordProcessor` applies one Kafka record: a record that cannot be
decoded, or that a handler rejects, goes to the dead-letter topic; a valid
event runs its handler in one transaction with its inbox row; a transient
failure (database or broker down) is retried with backoff, holding the record,
so its offset is not committed. :class:`EventConsumer` drives the processor
from an aiokafka consumer that commits only offsets of records whose effect is
committed, at ``commit_interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from enum import StrEnum

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from schemas.codec import DecodedEvent, EventDecodeError, decode
from servicekit import inbox, metrics
from servicekit.dead_letters import RawRecord, send_to_dead_letters
from servicekit.kafka import make_consumer
from servicekit.logs import bound, get_logger
from servicekit.retry import Backoff, is_transient
from servicekit.settings import ServiceSettings
from servicekit.unit_of_work import HandlerTable, Rejected, UnitOfWork

_log = get_logger(__name__)


class Outcome(StrEnum):
    """What became of one record."""

    HANDLED = "handled"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    DEAD_LETTERED = "dead_lettered"


class Stopping(Exception):
    """The service is stopping while a record waits for a retry."""


class RecordProcessor:
    """Applies records to the service's store, exactly once in effect."""

    def __init__(
        self,
        *,
        settings: ServiceSettings,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        handlers: HandlerTable,
        stop: asyncio.Event,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._producer = producer
        self._handlers = handlers
        self._stop = stop

    async def process(self, record: RawRecord) -> Outcome:
        """Apply ``record``; retries transient failures until done or stopping."""
        backoff = Backoff(
            self._settings.retry_initial_backoff_s, self._settings.retry_max_backoff_s
        )
        while True:
            try:
                return await self._attempt(record)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                metrics.HANDLER_RETRIES.labels(self._logical(record), type(exc).__name__).inc()
                _log.warning("transient_failure", error=repr(exc), attempt=backoff.attempts)
                await self._pause(backoff.next_delay())

    async def _attempt(self, record: RawRecord) -> Outcome:
        try:
            event = decode(record.value, key=record.key, max_bytes=self._settings.max_event_bytes)
        except EventDecodeError as exc:
            return await self._dead_letter(record, str(exc.reason), exc.detail, "EventDecodeError")
        handler = self._handlers.get(type(event.data))
        if handler is None:
            self._count(record, event, Outcome.IGNORED)
            return Outcome.IGNORED
        with bound(
            event_id=event.envelope.id,
            event_type=event.data.event_type,
            correlation_id=event.envelope.correlationid,
        ):
            return await self._handle(record, event, handler)

    async def _handle(self, record: RawRecord, event: DecodedEvent, handler: object) -> Outcome:
        started = time.perf_counter()
        try:
            outcome = await self._transaction(record, event)
        except Rejected as exc:
            return await self._dead_letter(record, "rejected", str(exc), "Rejected")
        except Exception as exc:
            if is_transient(exc):
                raise
            _log.exception("handler_failed")
            return await self._dead_letter(record, "unprocessable", repr(exc), type(exc).__name__)
        metrics.HANDLER_LATENCY.labels(event.data.event_type).observe(time.perf_counter() - started)
        self._count(record, event, outcome)
        return outcome

    async def _transaction(self, record: RawRecord, event: DecodedEvent) -> Outcome:
        delivery = inbox.Delivery(
            event.envelope.id, event.data.event_type, record.topic, record.partition, record.offset
        )
        async with self._pool.acquire() as conn, conn.transaction():
            if not await inbox.claim(conn, group=self._settings.group_id, delivery=delivery):
                return Outcome.DUPLICATE
            uow = UnitOfWork(
                conn,
                source=f"/upward/{self._settings.service_name}",
                region=self._settings.region,
                cause=event.envelope,
            )
            await self._handlers[type(event.data)](event.data, uow)
        return Outcome.HANDLED

    async def _dead_letter(
        self, record: RawRecord, reason: str, detail: str, error: str
    ) -> Outcome:
        _log.warning("dead_lettered", reason=reason, detail=detail[:500], offset=record.offset)
        await send_to_dead_letters(
            self._producer,
            record,
            reason=reason,
            detail=detail,
            group=self._settings.group_id,
            logical_topic=self._logical(record),
            error=error,
        )
        metrics.EVENTS_CONSUMED.labels(self._logical(record), "", Outcome.DEAD_LETTERED).inc()
        return Outcome.DEAD_LETTERED

    def _count(self, record: RawRecord, event: DecodedEvent, outcome: Outcome) -> None:
        metrics.EVENTS_CONSUMED.labels(self._logical(record), event.data.event_type, outcome).inc()

    def _logical(self, record: RawRecord) -> str:
        return self._settings.logical_topic(record.topic)

    async def _pause(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), delay)
        if self._stop.is_set():
            raise Stopping


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: EventConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._owner.commit()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None


class EventConsumer:
    """Reads the service's topics and feeds a :class:`RecordProcessor`."""

    def __init__(
        self, *, settings: ServiceSettings, processor: RecordProcessor, topics: list[str]
    ) -> None:
        self._settings = settings
        self._processor = processor
        self._topics = [settings.physical_topic(t) for t in topics]
        self._consumer: AIOKafkaConsumer | None = None
        self._pending: dict[TopicPartition, int] = {}
        self._positions: dict[TopicPartition, int] = {}
        self._last_commit = time.monotonic()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then commit what was processed."""
        consumer = make_consumer(self._settings, [])
        consumer.subscribe(self._topics, listener=_CommitOnRevoke(self))
        self._consumer = consumer
        await consumer.start()
        try:
            await self._loop(consumer, stop)
        finally:
            with contextlib.suppress(Exception):
                await self.commit()
            await consumer.stop()

    async def _loop(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await consumer.getmany(
                timeout_ms=200, max_records=self._settings.poll_batch_max
            )
            try:
                for tp, records in batches.items():
                    await self._process_partition(tp, records, stop)
            except Stopping:
                return
            await self._maybe_commit()
            self._update_lag(consumer)

    async def _process_partition(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]], stop: asyncio.Event
    ) -> None:
        for message in records:
            if stop.is_set():
                raise Stopping
            record = _raw(message)
            await self._processor.process(record)
            self._pending[tp] = self._positions[tp] = record.offset + 1

    async def _maybe_commit(self) -> None:
        if time.monotonic() - self._last_commit >= self._settings.commit_interval_s:
            await self.commit()

    async def commit(self) -> None:
        """Commit the offsets of every record whose effect is committed.

        A failed commit is not an error: the offsets stay pending and are tried
        again; records redelivered meanwhile are recognised by the inbox.
        """
        if self._consumer is None or not self._pending:
            return
        offsets, self._pending = self._pending, {}
        try:
            await self._consumer.commit(offsets)
        except Exception as exc:
            _log.warning("offset_commit_failed", error=repr(exc))
            self._pending = {**offsets, **self._pending}
            return
        self._last_commit = time.monotonic()

    def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            position = self._positions.get(tp)
            if high is not None and position is not None:
                topic = self._settings.logical_topic(tp.topic)
                metrics.CONSUMER_LAG.labels(topic, tp.partition).set(max(high - position, 0))


def _raw(message: ConsumerRecord[bytes, bytes]) -> RawRecord:
    return RawRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=tuple((k, bytes(v)) for k, v in (message.headers or ())),
    )
