"""The session infrastructure works: Kafka metadata + round trip, databases, CLI status."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from typer.testing import CliRunner

from tests.fixtures.infra import InfraProvider, PostgresServerInfo
from upward.cli import app
from upward.stack import SERVICES

pytestmark = pytest.mark.integration

_EXTERNAL_VARS = (
    "UPWARD_KAFKA_BOOTSTRAP_SERVERS",
    "UPWARD_DATABASE_URL",
    *(f"UPWARD_{s.upper()}_DATABASE_URL" for s in SERVICES),
)


async def test_kafka_answers_a_metadata_request(kafka_bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    assert len(cluster["brokers"]) >= 1
    assert cluster["cluster_id"]


async def test_kafka_produce_consume_round_trip(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_group: Callable[..., str],
) -> None:
    topic = unique_topic("roundtrip")
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for i in range(3):  # first send auto-creates the topic
            await producer.send_and_wait(topic, f"value-{i}".encode(), key=b"pair-1")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_group("roundtrip"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        while len(received) < 3:
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, "no records within 10 s"
            received += [r.value for records in batch.values() for r in records if r.value]
        await consumer.commit()
    finally:
        await consumer.stop()
    assert received == [b"value-0", b"value-1", b"value-2"]  # same key: same partition, ordered


async def test_the_four_service_databases_exist(postgres: PostgresServerInfo) -> None:
    conn = await asyncpg.connect(postgres.admin_url)
    try:
        names = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
    finally:
        await conn.close()
    assert {f"upward_{s}" for s in SERVICES} <= names
    for service, url in postgres.service_databases.items():
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT current_database()") == f"upward_{service}"
        finally:
            await conn.close()


async def test_fresh_database_is_empty_and_usable(fresh_database_url: str) -> None:
    conn = await asyncpg.connect(fresh_database_url)
    try:
        tables = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        assert tables == 0
        await conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        await conn.execute("INSERT INTO t VALUES (1)")
        assert await conn.fetchval("SELECT count(*) FROM t") == 1
    finally:
        await conn.close()


def test_cli_status_reports_the_test_stack_ready(
    upward_infra: InfraProvider, kafka_bootstrap: str, postgres: PostgresServerInfo
) -> None:
    stack = upward_infra.local_stack
    if stack is None:
        pytest.skip("the session does not run on the local stack")
    env: dict[str, str | None] = dict.fromkeys(_EXTERNAL_VARS)
    env["COLUMNS"] = "200"
    result = CliRunner().invoke(app, ["stack", "status", "--home", str(stack.home)], env=env)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "Kafka" in line or "PostgreSQL" in line]
    assert len(lines) == 2 and all("ready" in line for line in lines), result.output
    assert kafka_bootstrap in result.output

    result = CliRunner().invoke(app, ["stack", "env", "--home", str(stack.home)], env=env)
    assert result.exit_code == 0, result.output
    assert f"export UPWARD_KAFKA_BOOTSTRAP_SERVERS={kafka_bootstrap}" in result.output
    assert "export UPWARD_MATCHING_DATABASE_URL=postgresql://" in result.output
