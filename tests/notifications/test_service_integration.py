"""The notifications service end to end: real Kafka, real PostgreSQL, real SMTP.

The service runs in-process on unique topics with a manual clock; events are published
to Kafka, time moves through ``POST /ops/clock`` (which runs the delivery timer), and
the results are read from the SMTP server and the ``upward.notifications`` topic. The
process entry point is started once as a subprocess.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from harness import ADMIN, MENTEE, MENTOR, START, participant
from receivers import RunningSmtp, notifications_settings

from schemas.base import EventData
from schemas.codec import decode, encode, new_event
from schemas.envelope import CloudEvent
from schemas.feedback import PairAtRisk
from schemas.pairs import PairFormed
from schemas.programs import ProgramCreated
from schemas.sessions import SessionScheduled
from servicekit.clock import ManualClock
from servicekit.runtime import ServiceRuntime
from services.notifications.bootstrap import definition
from services.notifications.settings import NotificationsSettings
from tests.fixtures import tokens
from tests.integration.kafka_io import eventually, publish, read_topic
from upward.stack import free_ports

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(
    kafka_bootstrap: str, fresh_database_url: str, smtp_server: RunningSmtp
) -> NotificationsSettings:
    return notifications_settings(
        database_url=fresh_database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        http_port=free_ports(1)[0],
        smtp_port=smtp_server.port,
        commit_interval_s=0.2,
        relay_poll_interval_s=0.2,
        retry_initial_backoff_s=0.05,
        retry_max_backoff_s=0.2,
    )


@pytest.fixture
async def service(settings: NotificationsSettings) -> AsyncIterator[ServiceRuntime]:
    runtime = ServiceRuntime(definition(settings), settings, clock=ManualClock(START))
    await runtime.start()
    assert await eventually(lambda: http_up(settings), bool), "the HTTP server did not start"
    yield runtime
    runtime.stop.set()
    await runtime.wait()


async def send(settings: NotificationsSettings, *items: EventData) -> None:
    for item in items:
        await send_envelope(settings, item.topic, new_event(item, source="/test"))


async def send_envelope(settings: NotificationsSettings, topic: str, event: CloudEvent) -> None:
    await publish(
        settings.kafka_bootstrap_servers,
        settings.physical_topic(topic),
        [(event.subject.encode(), encode(event))],
    )


async def http_up(settings: NotificationsSettings) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{settings.http_port}/healthz")
    except httpx.HTTPError:
        return False
    return response.status_code == 200


async def count(settings: NotificationsSettings, sql: str, *args: object) -> int:
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


async def notifications_on_kafka(settings: NotificationsSettings, at_least: int) -> list[EventData]:
    records = await read_topic(
        settings.kafka_bootstrap_servers,
        settings.physical_topic("upward.notifications"),
        at_least=at_least,
    )
    return [decode(r.value, key=r.key).data for r in records]


async def move_clock(settings: NotificationsSettings, **move: object) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}") as client:
        response = await client.post("/ops/clock", json=move)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


async def known_contacts(settings: NotificationsSettings, n: int) -> int:
    return await eventually(
        lambda: count(settings, "SELECT count(*) FROM contacts"), lambda c: c >= n
    )


async def test_events_through_kafka_become_emails_and_notification_events(
    service: ServiceRuntime, settings: NotificationsSettings, smtp_server: RunningSmtp
) -> None:
    await send(
        settings,
        ProgramCreated.example(),
        participant(MENTOR, "Aisha Rahman", "Europe/London"),
        participant(MENTEE, "Helen Park", "Asia/Hong_Kong"),
    )
    assert await known_contacts(settings, 2) == 2
    programs = "SELECT count(*) FROM programs"
    assert await eventually(lambda: count(settings, programs), lambda c: c == 1) == 1
    scheduled = new_event(SessionScheduled.example(), source="/test")
    for _ in range(2):  # the second copy is a redelivery
        await send_envelope(settings, SessionScheduled.topic, scheduled)
    planned = "SELECT count(*) FROM deliveries"
    assert await eventually(lambda: count(settings, planned), lambda c: c == 6) == 6
    redelivered = "SELECT redeliveries FROM kit_inbox WHERE event_id = $1"
    assert (
        await eventually(lambda: count(settings, redelivered, scheduled.id), lambda c: c == 1) == 1
    )

    moved = await move_clock(settings, advance_s=1)
    assert moved["timers"] == {"deliveries": "ran"}
    assert len(smtp_server.inbox.messages) == 2
    assert {str(m["X-Upward-Notification-Kind"]) for m in smtp_server.inbox.messages} == {
        "session_invite"
    }
    await move_clock(
        settings, now=(SessionScheduled.example().starts_at - timedelta(hours=1)).isoformat()
    )
    assert len(smtp_server.inbox.messages) == 6  # + 24 h and 1 h reminders for both
    sent = await notifications_on_kafka(settings, at_least=6)
    assert len(sent) == 6 and {type(e).__name__ for e in sent} == {"NotificationSent"}
    assert len({e.notification_id for e in sent}) == 6  # type: ignore[attr-defined]


async def test_admin_notice_and_a_refused_address_through_kafka(
    service: ServiceRuntime, settings: NotificationsSettings, smtp_server: RunningSmtp
) -> None:
    base = f"http://127.0.0.1:{settings.http_port}"
    admin = tokens.admin(ADMIN)
    body = {"display_name": "Sam Admin", "email": "sam@example.com"}
    async with httpx.AsyncClient(base_url=base) as client:
        assert (await client.put(f"/contacts/{ADMIN}", json=body, headers=admin)).status_code == 200
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/preferences/{person_id}" in paths and "/ops/clock" in paths
    await send(settings, ProgramCreated.example())
    programs = "SELECT count(*) FROM programs"
    assert await eventually(lambda: count(settings, programs), lambda c: c == 1) == 1
    await send(settings, PairAtRisk.example())
    admin_rows = "SELECT count(*) FROM deliveries WHERE recipient_id = $1"
    assert await eventually(lambda: count(settings, admin_rows, ADMIN), lambda c: c == 1) == 1
    await move_clock(settings, advance_s=1)
    (notice,) = smtp_server.inbox.messages
    assert str(notice["To"]) == "Sam Admin <sam@example.com>"
    assert "may need your attention" in str(notice["Subject"])

    await send(
        settings,
        participant(MENTOR, "Aisha Rahman", "Europe/London"),
        participant(MENTEE, "Helen Park", "Asia/Hong_Kong"),
    )
    await known_contacts(settings, 3)
    smtp_server.inbox.reply = "550 5.1.1 mailbox unavailable"
    await send(settings, PairFormed.example())
    formed = "SELECT count(*) FROM deliveries WHERE kind = 'pair_formed'"
    assert await eventually(lambda: count(settings, formed), lambda c: c == 2) == 2
    await move_clock(settings, advance_s=1)
    events = await notifications_on_kafka(settings, at_least=3)
    failed = [e for e in events if type(e).__name__ == "NotificationFailed"]
    assert {(e.recipient_id, e.error_code, e.final) for e in failed} == {  # type: ignore[attr-defined]
        (MENTOR, "smtp_550", True),
        (MENTEE, "smtp_550", True),
    }


def test_the_process_entry_point_serves_and_stops_cleanly(
    settings: NotificationsSettings,
) -> None:
    env = {
        **os.environ,
        "UPWARD_NOTIFICATIONS_DATABASE_URL": settings.database_url.get_secret_value(),
        "UPWARD_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "UPWARD_TOPIC_PREFIX": settings.topic_prefix,
        "UPWARD_NOTIFICATIONS_HTTP_PORT": str(settings.http_port),
        "UPWARD_NOTIFICATIONS_SMTP_TLS": "none",
        "UPWARD_CLOCK": "manual",
    }
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen([sys.executable, "-m", "services.notifications"], env=env, cwd=root)
    try:
        ready = _wait_ready(settings.http_port, process)
        assert ready, "the service never became ready"
        clock = httpx.get(f"http://127.0.0.1:{settings.http_port}/ops/clock", timeout=5).json()
        assert "now" in clock
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False
