"""Partitions applied concurrently (``partition_concurrency`` > 1) keep each key's order.

The consumer applies the batches of several partitions at once, each in its own
transactions on its own connection; records of one partition (so of one key) are still
applied one batch after the other, in offset order, and every effect happens once.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest
from kafka_io import eventually, publish

from examples import welcome_service
from schemas.codec import encode, new_event
from schemas.participants import ParticipantJoined
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings, settings_for
from servicekit.unit_of_work import UnitOfWork

pytestmark = pytest.mark.integration

KEYS = [f"key-{i}" for i in range(6)]
PER_KEY = 15


async def record_order(data: ParticipantJoined, uow: UnitOfWork) -> None:
    """Append (key, n, backend) to ``applied``: the order in which effects commit."""
    await uow.conn.execute(
        "INSERT INTO applied (participant_id, n, backend) VALUES ($1, $2, pg_backend_pid())",
        data.participant_id,
        int(data.display_name),
    )


@pytest.fixture
def settings(kafka_bootstrap: str, fresh_database_url: str) -> ServiceSettings:
    return settings_for("welcome")(
        service_name="welcome",
        database_url=fresh_database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        http_port=0,
        commit_interval_s=0.2,
        partition_concurrency=3,
        transaction_batch_max=4,
        relay_poll_interval_s=0.2,
    )


@pytest.fixture
async def service(settings: ServiceSettings) -> AsyncIterator[ServiceRuntime]:
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    await conn.execute(
        "CREATE TABLE applied (seq bigserial PRIMARY KEY, participant_id text, n int, backend int)"
    )
    await conn.close()
    definition = replace(
        welcome_service.DEFINITION,
        handlers={ParticipantJoined: record_order},
        streams=None,
        routers=lambda context: (),
    )
    runtime = ServiceRuntime(definition, settings)
    await runtime.start()
    yield runtime
    runtime.stop.set()
    await runtime.wait()


def _event(key: str, n: int) -> tuple[bytes, bytes]:
    template = ParticipantJoined.example().model_dump(mode="json")
    data = ParticipantJoined.model_validate(
        {**template, "participant_id": key, "display_name": str(n)}
    )
    return key.encode(), encode(new_event(data, source="/test"))


async def test_each_key_is_applied_in_order_and_once(
    settings: ServiceSettings, service: ServiceRuntime
) -> None:
    # Interleaved across keys, in order within each key (so within each partition).
    items = [_event(key, n) for n in range(PER_KEY) for key in KEYS]
    await publish(
        settings.kafka_bootstrap_servers, settings.physical_topic("upward.participants"), items
    )
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        total = len(items)
        count = await eventually(
            lambda: conn.fetchval("SELECT count(*) FROM applied"), lambda n: n >= total
        )
        assert count == total
        rows = await conn.fetch("SELECT participant_id, n, backend FROM applied ORDER BY seq")
        partitions = await conn.fetchval("SELECT count(DISTINCT kafka_partition) FROM kit_inbox")
    finally:
        await conn.close()
    for key in KEYS:
        assert [r["n"] for r in rows if r["participant_id"] == key] == list(range(PER_KEY))
    assert partitions > 1  # the keys were spread over several partitions
    assert len({r["backend"] for r in rows}) > 1  # applied on more than one connection
