"""Transactional outbox and the relay that publishes it.

Handlers never talk to Kafka: the events they emit are rows written in the same
PostgreSQL transaction as the state change (:func:`append`). The
:class:`OutboxRelay` publishes committed rows in order with the idempotent
producer, keyed by the CloudEvents ``subject``, then marks them published. One
relay per service database publishes at a time (an advisory lock), which keeps
per-key order when several replicas run. A crash between publish and mark
publishes again: delivery is at-least-once and consumers deduplicate by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer

from schemas.codec import encode
from schemas.envelope import CloudEvent
from servicekit import metrics
from servicekit.db import Connection
from servicekit.logs import get_logger
from servicekit.retry import Backoff, is_transient
from servicekit.settings import ServiceSettings

NOTIFY_CHANNEL = "kit_outbox"
CLEANUP_INTERVAL_S = 60.0
_RELAY_LOCK = 0x5550_5752  # "UPWR"
_log = get_logger(__name__)

# The rows and the relay's wake-up in one round trip: a data-modifying CTE always runs,
# and the notification is delivered when (and only if) the transaction commits.
_INSERT = """
WITH appended AS (
    INSERT INTO kit_outbox (event_id, topic, event_key, event_type, payload)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[])
)
SELECT pg_notify($6, '')
"""
BACKLOG_INTERVAL_S = 1.0


@dataclass(frozen=True)
class OutboxRow:
    """One event waiting in the outbox."""

    seq: int
    topic: str
    key: str
    event_type: str
    event_id: str
    payload: bytes


class EventTooLarge(ValueError):
    """An emitted event is larger than a Kafka record may be: the handler fails."""


async def emitted(conn: Connection, event_id: str) -> CloudEvent | None:
    """The event with ``event_id`` if this service's outbox still holds it (published or
    not, until ``outbox_retention_s``), else ``None``: how a command made idempotent by a
    deterministic event id finds its earlier answer."""
    payload = await conn.fetchval("SELECT payload FROM kit_outbox WHERE event_id = $1", event_id)
    return None if payload is None else CloudEvent.model_validate_json(payload)


async def append(
    conn: Connection, events: Sequence[tuple[str, CloudEvent]], *, max_bytes: int
) -> None:
    """Write ``(logical topic, event)`` pairs in the caller's transaction, in one statement."""
    if not events:
        return
    payloads = [encode(e) for _, e in events]
    for (_, event), payload in zip(events, payloads, strict=True):
        if len(payload) > max_bytes:
            raise EventTooLarge(f"{event.type} {event.id} is {len(payload)} bytes (> {max_bytes})")
    await conn.execute(
        _INSERT,
        [e.id for _, e in events],
        [topic for topic, _ in events],
        [e.subject for _, e in events],
        [e.type for _, e in events],
        payloads,
        NOTIFY_CHANNEL,
    )


def kafka_headers(row: OutboxRow) -> list[tuple[str, bytes]]:
    """Headers published with an event, so tools can filter without decoding."""
    return [
        ("content-type", b"application/cloudevents+json"),
        ("ce_id", row.event_id.encode()),
        ("ce_type", row.event_type.encode()),
    ]


class OutboxRelay:
    """Publishes committed outbox rows to Kafka, oldest first."""

    def __init__(
        self, *, pool: asyncpg.Pool, producer: AIOKafkaProducer, settings: ServiceSettings
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._settings = settings
        self._wake = asyncio.Event()
        self._next_cleanup = 0.0
        self._next_backlog = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set; transient failures back off and retry."""
        backoff = Backoff(
            self._settings.retry_initial_backoff_s, self._settings.retry_max_backoff_s
        )
        listener = await self._listen()
        try:
            while not stop.is_set():
                try:
                    published = await self.publish_batch()
                    if published == 0 or time.monotonic() >= self._next_backlog:
                        await self.refresh_backlog()
                    backoff.reset()
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    _log.warning("outbox_relay_retry", error=repr(exc))
                    await _sleep_or_stop(stop, backoff.next_delay())
                    continue
                if listener is None or listener.is_closed():
                    listener = await self._listen()
                if published < self._settings.relay_batch_max:
                    await self._wait_for_work(stop)
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close()

    async def publish_batch(self) -> int:
        """Publish one batch of pending rows; return how many were published."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _RELAY_LOCK):
                return 0
            rows = await conn.fetch(
                "SELECT seq, topic, event_key, event_type, event_id, payload FROM kit_outbox"
                " WHERE published_at IS NULL ORDER BY seq LIMIT $1",
                self._settings.relay_batch_max,
            )
            if not rows:
                return 0
            batch = [OutboxRow(*r) for r in rows]
            await self._send_all(batch)
            await conn.execute(
                "UPDATE kit_outbox SET published_at = now() WHERE seq = ANY($1::bigint[])",
                [r.seq for r in batch],
            )
        return len(batch)

    async def _send_all(self, batch: list[OutboxRow]) -> None:
        futures = [
            await self._producer.send(
                self._settings.physical_topic(row.topic),
                value=row.payload,
                key=row.key.encode(),
                headers=kafka_headers(row),
            )
            for row in batch
        ]
        await asyncio.gather(*futures)
        for (topic, event_type), count in Counter((r.topic, r.event_type) for r in batch).items():
            metrics.child(metrics.EVENTS_PRODUCED, topic, event_type).inc(count)

    async def refresh_backlog(self) -> None:
        """Update the backlog gauges; at most once a minute, drop rows past retention.

        The relay calls it when it runs out of work, and at most once a second while busy.
        """
        self._next_backlog = time.monotonic() + BACKLOG_INTERVAL_S
        async with self._pool.acquire() as conn:
            backlog = await conn.fetchrow(
                "SELECT count(*) AS n,"
                " coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age"
                " FROM kit_outbox WHERE published_at IS NULL"
            )
            if time.monotonic() >= self._next_cleanup:
                self._next_cleanup = time.monotonic() + CLEANUP_INTERVAL_S
                await conn.execute(
                    "DELETE FROM kit_outbox WHERE published_at < now() - make_interval(secs => $1)",
                    self._settings.outbox_retention_s,
                )
        assert backlog is not None
        metrics.OUTBOX_BACKLOG.set(backlog["n"])
        metrics.OUTBOX_OLDEST_AGE.set(float(backlog["age"]))

    async def _listen(self) -> asyncpg.Connection | None:
        try:
            conn = await asyncpg.connect(self._settings.database_url.get_secret_value())
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
            return conn
        except Exception as exc:
            _log.warning("outbox_listen_failed", error=repr(exc))
            return None

    async def _wait_for_work(self, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._settings.relay_poll_interval_s)
        self._wake.clear()
        if stop.is_set():
            return


async def _sleep_or_stop(stop: asyncio.Event, delay: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)
