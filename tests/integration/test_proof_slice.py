"""Proof slice: the runtime kit on a real Kafka broker and a real PostgreSQL.

An event is consumed, changes state and emits an event through the outbox; a
duplicate changes nothing; a malformed message is dead-lettered while the next
one is processed; a transient failure is retried; and a process SIGKILLed
after its database commit but before its offset commit does not double the effect.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from kafka_io import eventually, publish, read_topic

from examples import welcome_service
from schemas.codec import decode, encode, new_event
from schemas.envelope import CloudEvent
from schemas.participants import ParticipantJoined
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings, settings_for
from servicekit.tracing import parse_traceparent
from servicekit.unit_of_work import UnitOfWork

pytestmark = pytest.mark.integration

PARTICIPANTS = "upward.participants"
NOTIFICATIONS = "upward.notifications"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def joined(participant_id: str) -> CloudEvent:
    data = ParticipantJoined.model_validate(
        {**ParticipantJoined.example().model_dump(mode="json"), "participant_id": participant_id}
    )
    return new_event(
        data,
        source="/hr-feed",
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )


@pytest.fixture
def settings(kafka_bootstrap: str, fresh_database_url: str) -> ServiceSettings:
    return settings_for("welcome")(
        service_name="welcome",
        database_url=fresh_database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        http_port=free_port(),
        commit_interval_s=0.2,
        retry_initial_backoff_s=0.05,
        retry_max_backoff_s=0.2,
        relay_poll_interval_s=0.2,
    )


FAIL_FIRST_ATTEMPTS: dict[str, int] = {}
"""participant_id -> transient failures to raise before the real handler runs."""


async def flaky_welcome(data: ParticipantJoined, uow: UnitOfWork) -> None:
    """The welcome handler behind a database that drops the first connections."""
    remaining = FAIL_FIRST_ATTEMPTS.get(data.participant_id, 0)
    if remaining:
        FAIL_FIRST_ATTEMPTS[data.participant_id] = remaining - 1
        raise ConnectionResetError("simulated: database connection lost")
    await welcome_service.welcome_participant(data, uow)


@pytest.fixture
async def service(settings: ServiceSettings) -> AsyncIterator[ServiceRuntime]:
    definition = replace(welcome_service.DEFINITION, handlers={ParticipantJoined: flaky_welcome})
    runtime = ServiceRuntime(definition, settings)
    await runtime.start()
    yield runtime
    runtime.stop.set()
    await runtime.wait()


async def send(settings: ServiceSettings, *events: CloudEvent) -> None:
    topic = settings.physical_topic(PARTICIPANTS)
    await publish(
        settings.kafka_bootstrap_servers, topic, [(e.subject.encode(), encode(e)) for e in events]
    )


async def welcome_row(settings: ServiceSettings, participant_id: str) -> asyncpg.Record | None:
    """The welcome of ``participant_id``; None also while the service has not migrated yet."""
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        return await conn.fetchrow(
            "SELECT * FROM welcomes WHERE participant_id = $1", participant_id
        )
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()


async def inbox_row(settings: ServiceSettings, event_id: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        return await conn.fetchrow("SELECT * FROM kit_inbox WHERE event_id = $1", event_id)
    finally:
        await conn.close()


async def notifications_caused_by(settings: ServiceSettings, cause: CloudEvent) -> list[CloudEvent]:
    records = await read_topic(
        settings.kafka_bootstrap_servers, settings.physical_topic(NOTIFICATIONS), at_least=1
    )
    events = [decode(r.value, key=r.key).envelope for r in records]
    return [e for e in events if e.causationid == cause.id]


async def test_event_changes_state_and_emits_through_the_outbox(
    service: ServiceRuntime, settings: ServiceSettings
) -> None:
    event = joined("emp-1")
    await send(settings, event)
    row = await eventually(lambda: welcome_row(settings, "emp-1"), lambda r: r is not None)
    assert row is not None and row["applied"] == 1
    emitted = await notifications_caused_by(settings, event)
    assert len(emitted) == 1
    out = emitted[0]
    assert out.correlationid == event.id and out.causationid == event.id
    assert out.subject == out.data["notification_id"]
    parent, child = parse_traceparent(event.traceparent), parse_traceparent(out.traceparent)
    assert parent is not None and child is not None
    assert child.trace_id == parent.trace_id and child.span_id != parent.span_id


async def test_same_event_twice_changes_state_once(
    service: ServiceRuntime, settings: ServiceSettings
) -> None:
    event = joined("emp-2")
    await send(settings, event, event)
    inbox = await eventually(
        lambda: inbox_row(settings, event.id), lambda r: r is not None and r["redeliveries"] == 1
    )
    assert inbox is not None and inbox["redeliveries"] == 1
    row = await welcome_row(settings, "emp-2")
    assert row is not None and row["applied"] == 1
    assert len(await notifications_caused_by(settings, event)) == 1


async def test_malformed_message_is_dead_lettered_and_the_next_is_processed(
    service: ServiceRuntime, settings: ServiceSettings
) -> None:
    topic = settings.physical_topic(PARTICIPANTS)
    good = joined("emp-3")
    await publish(
        settings.kafka_bootstrap_servers,
        topic,
        [(b"emp-x", b"{not json"), (good.subject.encode(), encode(good))],
    )
    row = await eventually(lambda: welcome_row(settings, "emp-3"), lambda r: r is not None)
    assert row is not None and row["applied"] == 1
    dead = await read_topic(settings.kafka_bootstrap_servers, f"{topic}.dlq", at_least=1)
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["dlq.reason"] == "invalid_json"
    assert headers["dlq.original.topic"] == topic
    assert headers["dlq.consumer.group"] == settings.group_id
    assert dead[0].value == b"{not json" and dead[0].key == b"emp-x"


async def test_transient_failure_is_retried_not_dead_lettered(
    service: ServiceRuntime, settings: ServiceSettings
) -> None:
    FAIL_FIRST_ATTEMPTS["emp-4"] = 3
    event = joined("emp-4")
    await send(settings, event)
    row = await eventually(lambda: welcome_row(settings, "emp-4"), lambda r: r is not None)
    assert row is not None and row["applied"] == 1
    assert FAIL_FIRST_ATTEMPTS["emp-4"] == 0
    dlq = settings.physical_topic(PARTICIPANTS) + ".dlq"
    assert await read_topic(settings.kafka_bootstrap_servers, dlq, at_least=0, timeout=2) == []


def start_process(
    settings: ServiceSettings, *, commit_interval_s: float
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "UPWARD_WELCOME_DATABASE_URL": settings.database_url.get_secret_value(),
        "UPWARD_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "UPWARD_TOPIC_PREFIX": settings.topic_prefix,
        "UPWARD_WELCOME_HTTP_PORT": str(free_port()),
        "UPWARD_WELCOME_COMMIT_INTERVAL_S": str(commit_interval_s),
    }
    root = Path(welcome_service.__file__).parents[1]
    return subprocess.Popen([sys.executable, "-m", "examples.welcome_service"], env=env, cwd=root)


async def committed_offsets(settings: ServiceSettings) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.group_id)
    finally:
        await admin.close()
    topic = settings.physical_topic(PARTICIPANTS)
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def test_sigkill_after_db_commit_before_offset_commit_does_not_double(
    settings: ServiceSettings,
) -> None:
    event = joined("emp-5")
    first = start_process(settings, commit_interval_s=3600)  # offsets only at shutdown
    try:
        await send(settings, event)
        row = await eventually(lambda: welcome_row(settings, "emp-5"), lambda r: r is not None)
        assert row is not None, "the first process never applied the event"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    assert all(o <= 0 for o in (await committed_offsets(settings)).values())

    second = start_process(settings, commit_interval_s=0.2)
    try:
        inbox = await eventually(
            lambda: inbox_row(settings, event.id),
            lambda r: r is not None and r["redeliveries"] >= 1,
            timeout=60,
        )
        assert inbox is not None and inbox["redeliveries"] == 1, "the event was not redelivered"
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    row = await welcome_row(settings, "emp-5")
    assert row is not None and row["applied"] == 1
    assert len({e.id for e in await notifications_caused_by(settings, event)}) == 1
    assert sum((await committed_offsets(settings)).values()) >= 1
