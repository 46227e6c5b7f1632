"""The running platform as the demo and the end-to-end tests see it.

:class:`Platform` calls the four services' HTTP APIs (headers from
:func:`upward.identity.auth_headers`), reads their stores (read-only queries) and watches
Kafka: :meth:`Platform.settle` waits until every outbox is published, every consumer group
has caught up and every due notification went out, so a simulated step is complete before
the next one; :meth:`Platform.move_clock` moves the four manual clocks together.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.registry import EVENTS, TOPIC_NAMES
from upward.events.broker import connection_options
from upward.identity import PLATFORM_ADMIN, Identity, auth_headers
from upward.stack import SERVICES


def _subscriptions() -> dict[str, tuple[str, ...]]:
    """Topics each service reads, derived from the catalogue's ``subscribers``."""
    return {
        service: tuple(
            topic
            for topic in TOPIC_NAMES
            if any(service in cls.subscribers for cls in EVENTS.values() if cls.topic == topic)
        )
        for service in SERVICES
    }


#: Topics each service's consumer group reads (its ``ServiceDefinition.subscribes``), from
#: the event catalogue so :meth:`Platform.settle` waits on exactly the groups' topics.
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = _subscriptions()
#: Every platform topic, in the catalogue's order.
TOPICS: tuple[str, ...] = TOPIC_NAMES


RETRIES_503 = 8
"""How often a call answered 503 (transient, retry) is tried again."""


class ScenarioError(RuntimeError):
    """Something the scenario expected did not happen (names what, and where)."""


@dataclass(frozen=True)
class PlatformAddress:
    """Where the running services, their stores and the broker are."""

    urls: dict[str, str]
    database_urls: dict[str, str]
    bootstrap_servers: str
    topic_prefix: str = ""


async def topic_partitions(admin: AIOKafkaAdminClient, topics: list[str]) -> list[TopicPartition]:
    """The partitions of the *topics* that exist (missing ones are skipped, not created)."""
    described = await admin.describe_topics(topics)
    return [
        TopicPartition(str(topic["topic"]), int(partition["partition"]))
        for topic in described
        if topic["error_code"] == 0
        for partition in topic["partitions"]
    ]


async def eventually(
    what: str, check: Callable[[], Awaitable[bool]], *, timeout_s: float, every_s: float = 0.2
) -> None:
    """Poll *check* until it is true; :class:`ScenarioError` naming *what* after the timeout."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise ScenarioError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(every_s)


class Platform:
    """HTTP clients, store pools and a Kafka view of one running platform."""

    def __init__(self, address: PlatformAddress, *, wait_timeout_s: float = 120.0) -> None:
        """Nothing connects until :meth:`open`."""
        self.address = address
        self.wait_timeout_s = wait_timeout_s
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=10.0))
        self.pools: dict[str, asyncpg.Pool] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.admin: AIOKafkaAdminClient | None = None
        self.now: datetime | None = None

    async def open(self) -> None:
        """Connect to the stores and the broker."""
        for name in SERVICES:
            url = self.address.database_urls[name]
            self.pools[name] = await asyncpg.create_pool(url, min_size=1, max_size=4)
        bootstrap = self.address.bootstrap_servers
        self.consumer = AIOKafkaConsumer(**connection_options(bootstrap), enable_auto_commit=False)
        await self.consumer.start()
        self.admin = AIOKafkaAdminClient(**connection_options(bootstrap))
        await self.admin.start()

    async def close(self) -> None:
        """Close every connection."""
        await self.http.aclose()
        for pool in self.pools.values():
            await pool.close()
        if self.consumer is not None:
            await self.consumer.stop()
        if self.admin is not None:
            await self.admin.close()

    async def __aenter__(self) -> Platform:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----------------------------------------------------------------- HTTP

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        identity: Identity = PLATFORM_ADMIN,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        ok: tuple[int, ...] = (200, 201, 202),
    ) -> Any:
        """One API call; :class:`ScenarioError` with the service's answer when not *ok*.

        A 503 (a transient failure the service asks to retry, e.g. a deadlock between two
        answers of one program) is tried again, up to :data:`RETRIES_503` times.
        """
        for attempt in range(RETRIES_503 + 1):
            response = await self.http.request(
                method,
                self.address.urls[service] + path,
                json=body,
                params=params,
                headers=auth_headers(identity),
            )
            if response.status_code != 503:
                break
            await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
        if response.status_code not in ok:
            raise ScenarioError(
                f"{service}: {method} {path} answered {response.status_code}: {response.text}"
            )
        return response.json() if response.content else None

    async def move_clock(self, to: datetime) -> None:
        """Move every service's clock to *to* (each runs its timers once)."""
        self.now = to
        await asyncio.gather(
            *(
                self.call(name, "POST", "/ops/clock", body={"now": to.isoformat()})
                for name in SERVICES
            )
        )

    # --------------------------------------------------------------- stores

    async def fetch(self, service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Rows of a read-only query on *service*'s store."""
        async with self.pools[service].acquire() as conn:
            return list(await conn.fetch(sql, *args))

    async def value(self, service: str, sql: str, *args: Any) -> Any:
        """The single value of a read-only query on *service*'s store."""
        async with self.pools[service].acquire() as conn:
            return await conn.fetchval(sql, *args)

    # ---------------------------------------------------------------- Kafka

    def physical(self, topic: str) -> str:
        """The broker-side name of a logical topic."""
        return self.address.topic_prefix + topic

    async def end_offsets(self, topics: tuple[str, ...]) -> dict[TopicPartition, int]:
        """The end offset of every partition of the (logical) *topics* that exist."""
        assert self.consumer is not None and self.admin is not None
        names = [self.physical(topic) for topic in topics]
        partitions = await topic_partitions(self.admin, names)
        if not partitions:
            return {}
        return dict(await self.consumer.end_offsets(partitions))

    async def consumer_lag(self) -> dict[str, int]:
        """Events each service's consumer group has not committed yet."""
        assert self.admin is not None
        lags: dict[str, int] = {}
        for service, topics in SUBSCRIPTIONS.items():
            ends = await self.end_offsets(topics)
            group = f"{self.address.topic_prefix}upward-{service}"
            committed = await self.admin.list_consumer_group_offsets(group)
            done = {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}
            lags[service] = sum(max(0, end - done.get(tp, 0)) for tp, end in ends.items())
        return lags

    async def unpublished(self) -> dict[str, int]:
        """Events still in each service's outbox."""
        sql = "SELECT count(*) FROM kit_outbox WHERE published_at IS NULL"
        return {name: int(await self.value(name, sql)) for name in SERVICES}

    async def due_deliveries(self) -> int:
        """Notifications due by the clock and not sent or failed yet."""
        sql = (
            "SELECT count(*) FROM deliveries WHERE status IN ('pending', 'sending')"
            " AND due_at <= $1"
        )
        assert self.now is not None
        return int(await self.value("notifications", sql, self.now))

    async def _quiet(self) -> bool:
        if any((await self.unpublished()).values()):
            return False
        if any((await self.consumer_lag()).values()):
            return False
        return self.now is None or await self.due_deliveries() == 0

    async def settle(self, what: str = "the platform to settle") -> None:
        """Wait until outboxes, consumer groups and due notifications are all done (twice
        in a row, so an event in flight between two checks is not missed)."""

        async def twice() -> bool:
            if not await self._quiet():
                return False
            await asyncio.sleep(0.3)
            return await self._quiet()

        lags: dict[str, int] = {}

        async def check() -> bool:
            nonlocal lags
            lags = await self.consumer_lag()
            return await twice()

        try:
            await eventually(what, check, timeout_s=self.wait_timeout_s, every_s=0.1)
        except ScenarioError as exc:
            outbox = await self.unpublished()
            raise ScenarioError(f"{exc} (consumer lag {lags}, unpublished {outbox})") from exc
