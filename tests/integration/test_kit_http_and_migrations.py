"""The kit's HTTP probes and metrics, and its migrations, on the real stack."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from kafka_io import eventually, publish

from examples import welcome_service
from schemas.codec import encode, new_event
from schemas.participants import ParticipantJoined
from servicekit import db
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings, settings_for
from upward.stack import free_ports

pytestmark = pytest.mark.integration


@pytest.fixture
async def running(kafka_bootstrap: str, fresh_database_url: str) -> AsyncIterator[ServiceRuntime]:
    settings: ServiceSettings = settings_for("welcome")(
        service_name="welcome",
        database_url=fresh_database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        http_port=free_ports(1)[0],
        relay_poll_interval_s=0.2,
    )
    runtime = ServiceRuntime(welcome_service.DEFINITION, settings)
    await runtime.start()
    yield runtime
    runtime.stop.set()
    await runtime.wait()


async def _get(runtime: ServiceRuntime, path: str) -> httpx.Response:
    base = f"http://127.0.0.1:{runtime.settings.http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        return await client.get(path)


async def _up(runtime: ServiceRuntime) -> httpx.Response | None:
    try:
        return await _get(runtime, "/readyz")
    except httpx.TransportError:
        return None


async def test_probes_and_metrics(running: ServiceRuntime) -> None:
    ready = await eventually(lambda: _up(running), lambda r: r is not None)
    assert ready is not None and ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "kafka": "ok"}}
    assert (await _get(running, "/healthz")).json() == {"status": "ok"}

    data = ParticipantJoined.model_validate(
        {**ParticipantJoined.example().model_dump(mode="json"), "participant_id": "emp-m"}
    )
    event = new_event(data, source="/test")
    topic = running.settings.physical_topic("upward.participants")
    await publish(running.settings.kafka_bootstrap_servers, topic, [(b"emp-m", encode(event))])

    def handled(text: str) -> bool:
        return (
            'upward_events_consumed_total{outcome="handled",topic="upward.participants",'
            'type="ParticipantJoined"}' in text
        )

    text = await eventually(lambda: _metrics(running), handled)
    assert handled(text)
    for family in (
        "upward_handler_latency_seconds_bucket",
        "upward_outbox_backlog",
        "upward_events_produced_total",
        "upward_consumer_lag_messages",
    ):
        assert family in text, family


async def _metrics(runtime: ServiceRuntime) -> str:
    return (await _get(runtime, "/metrics")).text


async def test_readiness_fails_when_the_database_is_gone(running: ServiceRuntime) -> None:
    await eventually(lambda: _up(running), lambda r: r is not None)
    assert running.pool is not None
    await running.pool.close()  # the service's store becomes unreachable
    response = await _get(running, "/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "failed"


async def test_migrations_apply_once_and_refuse_edited_history(
    fresh_database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_create.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    pool = await db.create_pool(fresh_database_url)
    try:
        assert await db.apply_migrations(pool, "svc", tmp_path) == ["0001_create.sql"]
        assert await db.apply_migrations(pool, "svc", tmp_path) == []
        (tmp_path / "0002_more.sql").write_text("ALTER TABLE things ADD COLUMN name text;")
        assert await db.apply_migrations(pool, "svc", tmp_path) == ["0002_more.sql"]
        (tmp_path / "0001_create.sql").write_text("CREATE TABLE things (id bigint);")
        with pytest.raises(db.MigrationError, match="changed after it was applied"):
            await db.apply_migrations(pool, "svc", tmp_path)
        (tmp_path / "0001_create.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
        (tmp_path / "0003_broken.sql").write_text("ALTER TABLE nowhere ADD COLUMN x int;")
        with pytest.raises(asyncpg.UndefinedTableError):
            await db.apply_migrations(pool, "svc", tmp_path)
        applied = await pool.fetchval("SELECT count(*) FROM kit_schema_migrations")
        assert applied == 2  # the broken file rolled back, nothing half-applied
    finally:
        await pool.close()


async def _joined(runtime: ServiceRuntime, program_id: str) -> int:
    try:
        response = await _get(runtime, f"/programs/{program_id}/joined")
    except httpx.TransportError:
        return -1
    return int(response.json()["joined"])


async def test_faust_stream_table_counts_live(running: ServiceRuntime) -> None:
    template = ParticipantJoined.example().model_dump(mode="json")
    people = [("emp-s1", "prg-a"), ("emp-s2", "prg-a"), ("emp-s3", "prg-a"), ("emp-s4", "prg-b")]
    events = [
        new_event(
            ParticipantJoined.model_validate({**template, "participant_id": p, "program_id": g}),
            source="/test",
        )
        for p, g in people
    ]
    topic = running.settings.physical_topic("upward.participants")
    await publish(
        running.settings.kafka_bootstrap_servers,
        topic,
        [(e.subject.encode(), encode(e)) for e in events] + [(b"junk", b"not json")],
    )
    assert await eventually(lambda: _joined(running, "prg-a"), lambda n: n == 3, timeout=60) == 3
    assert await _joined(running, "prg-b") == 1
    assert await _joined(running, "prg-none") == 0
