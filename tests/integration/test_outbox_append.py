"""The outbox write and the relay's wake-up travel in one statement and commit together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from schemas.codec import decode, new_event
from schemas.pairs import PairFormed
from servicekit import db, outbox

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(fresh_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(fresh_database_url)
    await db.apply_migrations(pool, "servicekit", db.KIT_MIGRATIONS)
    yield pool
    await pool.close()


async def _listen(url: str) -> tuple[asyncpg.Connection, asyncio.Queue[str]]:
    """A connection listening on the relay's channel; the queue gets each payload."""
    received: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(url)
    await conn.add_listener(outbox.NOTIFY_CHANNEL, lambda *args: received.put_nowait(args[3]))
    return conn, received


async def test_rows_and_notification_arrive_only_at_commit(
    pool: asyncpg.Pool, fresh_database_url: str
) -> None:
    listener, received = await _listen(fresh_database_url)
    events = [("upward.pairs", new_event(PairFormed.example(), source="/t")) for _ in range(3)]
    try:
        async with pool.acquire() as conn, conn.transaction():
            await outbox.append(conn, events, max_bytes=1_048_576)
            await asyncio.sleep(0.2)
            assert received.empty()  # NOTIFY is delivered at commit, not before
        assert await asyncio.wait_for(received.get(), 10) == ""
        rows = await pool.fetch("SELECT event_id, topic, payload FROM kit_outbox ORDER BY seq")
        assert [r["event_id"] for r in rows] == [e.id for _, e in events]
        assert {r["topic"] for r in rows} == {"upward.pairs"}
        assert (
            decode(rows[0]["payload"], key=events[0][1].subject.encode()).envelope == events[0][1]
        )
    finally:
        await listener.close()


async def test_a_rolled_back_append_leaves_no_row_and_wakes_nobody(
    pool: asyncpg.Pool, fresh_database_url: str
) -> None:
    listener, received = await _listen(fresh_database_url)
    event = new_event(PairFormed.example(), source="/t")
    try:
        with pytest.raises(RuntimeError):
            async with pool.acquire() as conn, conn.transaction():
                await outbox.append(conn, [("upward.pairs", event)], max_bytes=1_048_576)
                raise RuntimeError("handler failed after emitting")
        async with pool.acquire() as conn, conn.transaction():  # a later commit, for order
            await outbox.append(conn, [], max_bytes=1_048_576)
            await conn.execute("SELECT pg_notify($1, 'marker')", outbox.NOTIFY_CHANNEL)
        assert await asyncio.wait_for(received.get(), 10) == "marker"
        assert await pool.fetchval("SELECT count(*) FROM kit_outbox") == 0
    finally:
        await listener.close()
