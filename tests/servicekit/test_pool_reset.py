"""The kit's pool resets a released connection only when it kept session state."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from servicekit import db

pytestmark = pytest.mark.integration
LOCK = 0x6A6F_696E


@pytest.fixture
async def pool(fresh_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    one = await db.create_pool(fresh_database_url, min_size=1, max_size=1)  # one connection
    try:
        yield one
    finally:
        await one.close()


async def _lock_is_free(url: str) -> bool:
    other = await asyncpg.connect(url)
    try:
        taken = bool(await other.fetchval("SELECT pg_try_advisory_lock($1)", LOCK))
        if taken:
            await other.execute("SELECT pg_advisory_unlock($1)", LOCK)
        return taken
    finally:
        await other.close()


async def test_a_released_connection_skips_the_reset_query(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE t (n int)")
        await conn.execute("SET application_name = 'kept'")  # session state, on purpose
        pid = conn.get_server_pid()
    async with pool.acquire() as conn:
        assert conn.get_server_pid() == pid
        assert await conn.fetchval("SHOW application_name") == "kept"  # no RESET ALL ran
        await conn.execute("BEGIN")
        await conn.execute("INSERT INTO t VALUES (1)")  # left open on release
    async with pool.acquire() as conn:
        assert conn.get_server_pid() == pid
        assert not conn.is_in_transaction()  # asyncpg still rolls an open one back
        assert await conn.fetchval("SELECT count(*) FROM t") == 0


async def test_a_connection_that_kept_a_session_lock_is_reset_on_release(
    pool: asyncpg.Pool, fresh_database_url: str
) -> None:
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK)  # not marked: it leaks
    assert not await _lock_is_free(fresh_database_url)
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK)
    assert await _lock_is_free(fresh_database_url)

    async with pool.acquire() as conn:
        db.keeps_session_state(conn)
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK)  # never unlocked here
        await conn.execute("SET application_name = 'locked'")
    assert await _lock_is_free(fresh_database_url)  # the reset released it
    async with pool.acquire() as conn:
        assert await conn.fetchval("SHOW application_name") != "locked"
        await conn.execute("SET application_name = 'later'")
    async with pool.acquire() as conn:  # the mark lasts one release
        assert await conn.fetchval("SHOW application_name") == "later"


async def test_migrations_leave_no_lock_behind(pool: asyncpg.Pool, fresh_database_url: str) -> None:
    assert await db.apply_migrations(pool, "servicekit", db.KIT_MIGRATIONS)
    async with pool.acquire() as conn:
        held = await conn.fetchval(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND d.datname = current_database()"
        )
    assert held == 0
