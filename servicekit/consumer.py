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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from schemas.codec import DecodedEvent, EventDecodeError, decode
from servicekit import inbox, metrics, outbox
from servicekit.clock import Clock, SystemClock
from servicekit.db import Connection
from servicekit.dead_letters import RawRecord, replayed_for_another_group, send_to_dead_letters
from servicekit.kafka import make_consumer
from servicekit.logs import bound, get_logger
from servicekit.retry import Backoff, is_transient, retry_transient
from servicekit.settings import ServiceSettings
from servicekit.unit_of_work import (
    HandlerTable,
    Rejected,
    TransactionScope,
    UnitOfWork,
    run_committed,
)

_log = get_logger(__name__)
T = TypeVar("T")


class Outcome(StrEnum):
    """What became of one record."""

    HANDLED = "handled"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    DEAD_LETTERED = "dead_lettered"


class Stopping(Exception):
    """The service is stopping while a record waits for a retry."""


@dataclass(frozen=True)
class Work:
    """A decoded record this service has a handler for."""

    index: int
    record: RawRecord
    event: DecodedEvent

    def delivery(self) -> inbox.Delivery:
        """Its inbox row."""
        r, e = self.record, self.event
        return inbox.Delivery(e.envelope.id, e.data.event_type, r.topic, r.partition, r.offset)


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
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._settings = settings
        self._pool = pool
        self._producer = producer
        self._handlers = handlers
        self._stop = stop

    async def process(self, record: RawRecord) -> Outcome:
        """Apply one record (see :meth:`process_batch`)."""
        return (await self.process_batch([record]))[0]

    async def process_batch(self, records: Sequence[RawRecord]) -> list[Outcome]:
        """Apply ``records`` (in order) and return what became of each.

        Undecodable records are dead-lettered; the valid ones are applied in one
        transaction with their inbox rows. Transient failures are retried until
        done or stopping (then :class:`Stopping` is raised and nothing is committed).
        """
        outcomes, work = await self._retrying(records[0], lambda: self._triage(records))
        if work:
            outcomes.update(await self._retrying(records[0], lambda: self._apply(work)))
        return [outcomes[i] for i in range(len(records))]

    async def _retrying(self, record: RawRecord, attempt: Callable[[], Awaitable[T]]) -> T:
        backoff = Backoff(
            self._settings.retry_initial_backoff_s, self._settings.retry_max_backoff_s
        )

        def count(exc: Exception) -> None:
            metrics.HANDLER_RETRIES.labels(self._logical(record), type(exc).__name__).inc()
            _log.warning("transient_failure", error=repr(exc), attempt=backoff.attempts)

        return await retry_transient(attempt, backoff=backoff, pause=self._pause, on_retry=count)

    async def _triage(self, records: Sequence[RawRecord]) -> tuple[dict[int, Outcome], list[Work]]:
        """Decode: dead-letter what is bad, skip what is not ours, return the rest.

        A dead letter replayed for another consumer group is not ours: this group
        already decided on the original record.
        """
        outcomes: dict[int, Outcome] = {}
        work: list[Work] = []
        for index, record in enumerate(records):
            if replayed_for_another_group(record, self._settings.group_id):
                metrics.EVENTS_CONSUMED.labels(self._logical(record), "", Outcome.IGNORED).inc()
                outcomes[index] = Outcome.IGNORED
                continue
            try:
                event = decode(
                    record.value, key=record.key, max_bytes=self._settings.max_event_bytes
                )
            except EventDecodeError as exc:
                outcomes[index] = await self._dead_letter(
                    record, str(exc.reason), exc.detail, "EventDecodeError"
                )
                continue
            if type(event.data) in self._handlers:
                work.append(Work(index, record, event))
            else:
                outcomes[index] = self._count(record, event, Outcome.IGNORED)
        return outcomes, work

    async def _apply(self, work: list[Work]) -> dict[int, Outcome]:
        """All of ``work`` in one transaction; one by one if a handler fails."""
        if len(work) == 1:
            return await self._apply_one(work[0])
        try:
            outcomes = await self._transaction(work)
        except Exception as exc:
            if is_transient(exc):
                raise
            _log.warning("batch_failed_applying_one_by_one", error=repr(exc), size=len(work))
            return {w.index: (await self._apply_one(w))[w.index] for w in work}
        for w in work:
            self._count(w.record, w.event, outcomes[w.index])
        return outcomes

    async def _apply_one(self, work: Work) -> dict[int, Outcome]:
        """One event in its own transaction: a failure dead-letters only this one."""
        with bound(
            event_id=work.event.envelope.id,
            event_type=work.event.data.event_type,
            correlation_id=work.event.envelope.correlationid,
        ):
            try:
                outcome = (await self._transaction([work]))[work.index]
            except Rejected as exc:
                return {
                    work.index: await self._dead_letter(
                        work.record, "rejected", str(exc), "Rejected"
                    )
                }
            except Exception as exc:
                if is_transient(exc):
                    raise
                _log.exception("handler_failed")
                return {
                    work.index: await self._dead_letter(
                        work.record, "unprocessable", repr(exc), type(exc).__name__
                    )
                }
        self._count(work.record, work.event, outcome)
        return {work.index: outcome}

    async def _transaction(self, work: list[Work]) -> dict[int, Outcome]:
        """Claim the inbox rows and run the handlers of the new events, in one transaction."""
        deliveries = [w.delivery() for w in work]
        async with self._pool.acquire() as conn, conn.transaction():
            fresh = await inbox.claim_many(
                conn, group=self._settings.group_id, deliveries=deliveries
            )
            outcomes: dict[int, Outcome] = {}
            handled: list[UnitOfWork] = []
            scope = TransactionScope()
            for w in work:
                if w.event.envelope.id not in fresh:
                    outcomes[w.index] = Outcome.DUPLICATE
                    continue
                fresh.discard(w.event.envelope.id)  # a second copy in this batch is a duplicate
                handled.append(await self._run_handler(conn, w, scope))
                outcomes[w.index] = Outcome.HANDLED
            await scope.finish()
            # Read after the held writes: they may emit for the unit of work they were held for.
            emitted = [e for uow in handled for e in uow.emitted]
            await outbox.append(conn, emitted, max_bytes=self._settings.max_event_bytes)
        run_committed([a for uow in handled for a in uow.committed_actions])
        return outcomes

    async def _run_handler(
        self, conn: Connection, work: Work, scope: TransactionScope
    ) -> UnitOfWork:
        started = time.perf_counter()
        uow = UnitOfWork(
            conn,
            scope=scope,
            source=f"/upward/{self._settings.service_name}",
            region=self._settings.region,
            cause=work.event.envelope,
            clock=self._clock,
        )
        await self._handlers[type(work.event.data)](work.event.data, uow)
        metrics.child(metrics.HANDLER_LATENCY, work.event.data.event_type).observe(
            time.perf_counter() - started
        )
        return uow

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
            max_bytes=self._settings.max_event_bytes,
        )
        metrics.EVENTS_CONSUMED.labels(self._logical(record), "", Outcome.DEAD_LETTERED).inc()
        return Outcome.DEAD_LETTERED

    def _count(self, record: RawRecord, event: DecodedEvent, outcome: Outcome) -> Outcome:
        metrics.child(
            metrics.EVENTS_CONSUMED, self._logical(record), event.data.event_type, outcome
        ).inc()
        return outcome

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
        self._slots = asyncio.Semaphore(settings.partition_concurrency)

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
        backoff = Backoff(
            self._settings.retry_initial_backoff_s, self._settings.retry_max_backoff_s
        )
        while not stop.is_set():
            try:
                batches = await consumer.getmany(
                    timeout_ms=200, max_records=self._settings.poll_batch_max
                )
                backoff.reset()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                _log.warning("fetch_failed", error=repr(exc))
                await asyncio.sleep(backoff.next_delay())
                continue
            try:
                await self._process_partitions(batches, stop)
            except Stopping:
                return
            await self._maybe_commit()
            self._update_lag(consumer)

    async def _process_partitions(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]], stop: asyncio.Event
    ) -> None:
        """Apply each partition's records in order, up to ``partition_concurrency``
        partitions at a time, each in its own transactions on its own connection.

        Every partition runs to its end (or to its own failure) before a failure is
        raised, so what the others committed is recorded for the offset commit.
        """
        if self._settings.partition_concurrency == 1 or len(batches) == 1:
            for tp, records in batches.items():
                await self._process_partition(tp, records, stop)
            return
        results = await asyncio.gather(
            *(self._process_partition(tp, records, stop) for tp, records in batches.items()),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise next((f for f in failures if not isinstance(f, Stopping)), failures[0])

    async def _process_partition(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]], stop: asyncio.Event
    ) -> None:
        size = self._settings.transaction_batch_max
        for start in range(0, len(records), size):
            if stop.is_set():
                raise Stopping
            chunk = [_raw(m) for m in records[start : start + size]]
            async with self._slots:
                await self._processor.process_batch(chunk)
            self._pending[tp] = self._positions[tp] = chunk[-1].offset + 1

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
        headers=tuple((k, b"" if v is None else bytes(v)) for k, v in (message.headers or ())),
    )
