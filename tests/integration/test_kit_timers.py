"""Kit timers and the manual clock on the real stack: one replica ticks at a time."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from kafka_io import eventually

from schemas.notifications import Channel, NotificationKind, NotificationSent
from servicekit import metrics
from servicekit.clock import ManualClock
from servicekit.runtime import ServiceContext, ServiceDefinition, ServiceRuntime
from servicekit.settings import settings_for
from servicekit.timers import AnyTimer, ExclusiveTimer, TickOutcome, Timer, Wake
from servicekit.unit_of_work import UnitOfWork
from upward.stack import free_ports

pytestmark = pytest.mark.integration
START = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)


async def record_tick(uow: UnitOfWork) -> None:
    """Store the clock time of the tick and announce it (through the outbox)."""
    await uow.conn.execute("INSERT INTO ticks (at) VALUES ($1)", uow.now)
    await uow.emit(
        NotificationSent(
            notification_id=f"tick-{uow.now.isoformat()}",
            recipient_id="ops",
            channel=Channel.EMAIL,
            kind=NotificationKind.ELIGIBILITY,
            sent_at=uow.now,
        )
    )


def timers(context: ServiceContext) -> list[Timer]:
    return [Timer(name="record", interval_s=3600, tick=record_tick)]


def _definition(migrations: Path) -> ServiceDefinition:
    return ServiceDefinition(
        name="ticker",
        version="0",
        subscribes=(),
        publishes=("upward.notifications",),
        handlers={},
        migrations=migrations,
        timers=timers,
    )


@pytest.fixture
async def runtime(
    kafka_bootstrap: str, fresh_database_url: str, tmp_path: Path
) -> AsyncIterator[ServiceRuntime]:
    (tmp_path / "0001_ticks.sql").write_text("CREATE TABLE ticks (at timestamptz NOT NULL);")
    settings = settings_for("ticker")(
        service_name="ticker",
        database_url=fresh_database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        http_port=free_ports(1)[0],
        relay_poll_interval_s=0.2,
    )
    rt = ServiceRuntime(_definition(tmp_path), settings, clock=ManualClock(START))
    await rt.start()
    yield rt
    rt.stop.set()
    await rt.wait()


async def _ticks(runtime: ServiceRuntime) -> list[datetime]:
    assert runtime.pool is not None
    return [r["at"] for r in await runtime.pool.fetch("SELECT at FROM ticks ORDER BY at")]


async def test_timer_ticks_at_start_with_the_clock_time(runtime: ServiceRuntime) -> None:
    ticks = await eventually(lambda: _ticks(runtime), lambda t: len(t) >= 1)
    assert ticks == [START]


async def test_clock_route_moves_time_and_runs_every_timer(runtime: ServiceRuntime) -> None:
    await eventually(lambda: _ticks(runtime), lambda t: len(t) >= 1)
    base = f"http://127.0.0.1:{runtime.settings.http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        moved = await client.post("/ops/clock", json={"advance_s": 7200})
        backwards = await client.post("/ops/clock", json={"now": START.isoformat()})
        both = await client.post("/ops/clock", json={"advance_s": 1, "now": START.isoformat()})
        state = await client.get("/ops/clock")
    assert moved.status_code == 200
    assert moved.json()["timers"] == {"record": "ran"}
    assert await _ticks(runtime) == [START, START + timedelta(hours=2)]
    assert backwards.status_code == 422 and "backwards" in backwards.text
    assert both.status_code == 422
    assert datetime.fromisoformat(state.json()["now"]) == START + timedelta(hours=2)


async def test_tick_is_skipped_while_another_replica_holds_the_timer(
    runtime: ServiceRuntime, fresh_database_url: str
) -> None:
    await eventually(lambda: _ticks(runtime), lambda t: len(t) >= 1)
    other = await asyncpg.connect(runtime.settings.database_url.get_secret_value())
    try:
        async with other.transaction():
            await other.execute(
                "SELECT pg_advisory_xact_lock(hashtext('upward-timer'), hashtext('ticker:record'))"
            )
            assert await runtime.run_timers() == {"record": TickOutcome.SKIPPED}
        assert await runtime.run_timers() == {"record": TickOutcome.RAN}
    finally:
        await other.close()
    assert len(await _ticks(runtime)) == 2


async def test_clock_route_refuses_a_move_past_the_calendar(runtime: ServiceRuntime) -> None:
    await eventually(lambda: _ticks(runtime), lambda t: len(t) >= 1)
    base = f"http://127.0.0.1:{runtime.settings.http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        response = await client.post("/ops/clock", json={"advance_s": 1e300})
    assert response.status_code == 422 and "cannot move that far" in response.text


async def _transaction_states(pool: asyncpg.Pool) -> list[str]:
    """State of every other session of this database holding a timer's advisory lock.

    Timer locks are the two-key ``(hashtext('upward-timer'), ...)`` ones (``objsubid`` 2,
    the first key in ``classid``); the outbox relay's single-key lock, taken while it
    publishes, is not one of them.
    """
    rows = await pool.fetch(
        "SELECT a.state FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND a.pid <> pg_backend_pid()"
        " AND a.datname = current_database() AND l.objsubid = 2"
        " AND l.classid::text::bigint = (hashtext('upward-timer')::bigint & 4294967295)"
    )
    return [r["state"] for r in rows]


async def test_exclusive_timer_runs_under_the_lock_with_no_transaction_open(
    kafka_bootstrap: str, fresh_database_url: str, tmp_path: Path
) -> None:
    seen: list[list[str]] = []
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=2)

    async def observe() -> None:
        seen.append(await _transaction_states(pool))

    timer = ExclusiveTimer(name="send", interval_s=3600, run=observe)
    rt = _one_timer_runtime("sender", timer, kafka_bootstrap, fresh_database_url, tmp_path)
    await rt.start()
    other = await asyncpg.connect(fresh_database_url)
    try:
        await eventually(lambda: _async(len(seen)), lambda n: n >= 1)
        assert await rt.run_timers() == {"send": TickOutcome.RAN}
        assert seen[-1] == ["idle"]  # the lock holder, not "idle in transaction"
        assert await _transaction_states(pool) == []  # released after the round
        async with other.transaction():
            await other.execute(
                "SELECT pg_advisory_xact_lock(hashtext('upward-timer'), hashtext('sender:send'))"
            )
            assert await rt.run_timers() == {"send": TickOutcome.SKIPPED}
        assert await rt.run_timers() == {"send": TickOutcome.RAN}
    finally:
        await other.close()
        await pool.close()
        rt.stop.set()
        await rt.wait()


async def _async(value: int) -> int:
    return value


def _one_timer_runtime(
    name: str, timer: AnyTimer, kafka_bootstrap: str, database_url: str, migrations: Path
) -> ServiceRuntime:
    """A service ``name`` that has only ``timer``, on its own topics."""
    definition = ServiceDefinition(
        name=name,
        version="0",
        subscribes=(),
        publishes=(),
        handlers={},
        migrations=migrations,
        timers=lambda context: [timer],
    )
    settings = settings_for(name)(
        service_name=name,
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        http_port=free_ports(1)[0],
    )
    return ServiceRuntime(definition, settings, clock=ManualClock(START))


async def test_failed_tick_rolls_back_and_the_service_keeps_running(
    kafka_bootstrap: str, fresh_database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_ticks.sql").write_text("CREATE TABLE ticks (at timestamptz NOT NULL);")

    async def broken(uow: UnitOfWork) -> None:
        await uow.conn.execute("INSERT INTO ticks (at) VALUES ($1)", uow.now)
        raise RuntimeError("bug in a tick")

    timer = Timer(name="broken", interval_s=3600, tick=broken)
    rt = _one_timer_runtime("broken", timer, kafka_bootstrap, fresh_database_url, tmp_path)
    await rt.start()
    try:
        assert await rt.run_timers() == {"broken": TickOutcome.FAILED}
        assert rt.pool is not None
        assert await rt.pool.fetchval("SELECT count(*) FROM ticks") == 0
        assert rt.alive()
    finally:
        rt.stop.set()
        await rt.wait()


# --- waking a timer with NOTIFY ---------------------------------------------------------

WAKE_CHANNEL = "ticker_work"


async def take_work(uow: UnitOfWork) -> None:
    """Record how many work rows this tick found, and take them."""
    found = await uow.conn.fetchval(
        "WITH taken AS (DELETE FROM work RETURNING 1) SELECT count(*) FROM taken"
    )
    await uow.conn.execute("INSERT INTO rounds (found) VALUES ($1)", found)


@pytest.fixture
async def woken_runtime(
    kafka_bootstrap: str, fresh_database_url: str, tmp_path: Path
) -> AsyncIterator[ServiceRuntime]:
    """A service whose only timer runs hourly, or 0.5 s after a NOTIFY on its channel."""
    (tmp_path / "0001_work.sql").write_text(
        "CREATE TABLE work (id serial PRIMARY KEY);"
        " CREATE TABLE rounds (round serial PRIMARY KEY, found int NOT NULL);"
    )
    timer = Timer("work", 3600, take_work, wake=Wake(WAKE_CHANNEL, debounce_s=0.5))
    rt = _one_timer_runtime("worker", timer, kafka_bootstrap, fresh_database_url, tmp_path)
    await rt.start()
    await eventually(lambda: _rounds(rt), lambda r: len(r) >= 1)  # the tick at start
    yield rt
    rt.stop.set()
    await rt.wait()


async def _rounds(runtime: ServiceRuntime) -> list[int]:
    assert runtime.pool is not None
    return [r["found"] for r in await runtime.pool.fetch("SELECT found FROM rounds ORDER BY round")]


async def _add_work(conn: asyncpg.Connection, count: int) -> None:
    """``count`` commits, each adding one work row and notifying the channel."""
    for _ in range(count):
        async with conn.transaction():
            await conn.execute("INSERT INTO work DEFAULT VALUES")
            await conn.execute("SELECT pg_notify($1, '')", WAKE_CHANNEL)


async def test_a_burst_of_notified_commits_becomes_one_tick_before_the_interval(
    woken_runtime: ServiceRuntime, fresh_database_url: str
) -> None:
    conn = await asyncpg.connect(fresh_database_url)
    try:
        await _add_work(conn, 20)
        rounds = await eventually(lambda: _rounds(woken_runtime), lambda r: len(r) >= 2)
        assert rounds[:2] == [0, 20]  # the hourly timer ticked again, once for the burst
        await _add_work(conn, 3)
        rounds = await eventually(lambda: _rounds(woken_runtime), lambda r: len(r) >= 3)
        assert rounds[2] == 3
    finally:
        await conn.close()


async def test_a_woken_tick_skipped_by_another_replica_is_tried_again(
    woken_runtime: ServiceRuntime, fresh_database_url: str
) -> None:
    skipped = metrics.TIMER_TICKS.labels("work", TickOutcome.SKIPPED)
    before = skipped._value.get()
    replica = await asyncpg.connect(fresh_database_url)
    writer = await asyncpg.connect(fresh_database_url)
    key = "hashtext('upward-timer'), hashtext('worker:work')"
    try:
        await replica.execute(f"SELECT pg_advisory_lock({key})")  # another replica ticking
        await _add_work(writer, 2)
        await eventually(lambda: _async(int(skipped._value.get())), lambda n: n > before)
        assert await _rounds(woken_runtime) == [0]
        await replica.execute(f"SELECT pg_advisory_unlock({key})")
        rounds = await eventually(lambda: _rounds(woken_runtime), lambda r: len(r) >= 2)
        assert rounds == [0, 2]
    finally:
        await replica.close()
        await writer.close()


async def test_a_lost_listener_ticks_and_listens_again(
    woken_runtime: ServiceRuntime, fresh_database_url: str
) -> None:
    conn = await asyncpg.connect(fresh_database_url)
    try:
        await conn.execute("INSERT INTO work DEFAULT VALUES")  # committed, never notified
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query = $1",
            f'LISTEN "{WAKE_CHANNEL}"',
        )
        assert killed == 1
        rounds = await eventually(lambda: _rounds(woken_runtime), lambda r: len(r) >= 2)
        assert rounds == [0, 1]
        listening = await eventually(
            lambda: conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query = $1",
                f'LISTEN "{WAKE_CHANNEL}"',
            ),
            lambda n: n == 1,
        )
        assert listening == 1
        await _add_work(conn, 2)
        rounds = await eventually(lambda: _rounds(woken_runtime), lambda r: len(r) >= 3)
        assert rounds == [0, 1, 2]
    finally:
        await conn.close()
