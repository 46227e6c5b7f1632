"""A real process killed mid-send: `python -m services.notifications`, SIGKILL, restart.

The SMTP server keeps the message and holds its "250 OK", so the service dies after
the server has the message and before it could commit ``sent``: the window the
guarantees in docs/notifications.md call "the honest window". The restarted process
sends the message again once the lease ends, with the same Message-ID, and publishes
NotificationSent once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiosmtpd.smtp import Envelope, Session
from harness import MENTEE, START, participant
from receivers import SmtpInbox, start_smtp

from schemas.base import EventData
from schemas.codec import encode, new_event
from schemas.envelope import CloudEvent
from schemas.feedback import FeedbackRequested
from schemas.notifications import Channel
from schemas.programs import ProgramCreated
from services.notifications.domain.planning import delivery_id
from tests.integration.kafka_io import eventually, publish
from upward.stack import free_ports

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
LEASE = timedelta(minutes=5)


@dataclass
class HoldingInbox(SmtpInbox):
    """Keeps each message, then holds the reply until released (while ``holding``)."""

    holding: bool = True
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if self.holding:
            self.arrived.set()
            await asyncio.to_thread(self.released.wait)
        return reply


@dataclass(frozen=True)
class Service:
    """How to start the service process, and where it listens."""

    env: dict[str, str]
    port: int
    database_url: str
    log: Path

    def start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "services.notifications"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def smtp() -> Iterator[tuple[HoldingInbox, int]]:
    inbox = HoldingInbox()
    controller, running = start_smtp(inbox=inbox)
    yield inbox, running.port
    inbox.released.set()
    controller.stop()


@pytest.fixture
def service(
    kafka_bootstrap: str,
    fresh_database_url: str,
    smtp: tuple[HoldingInbox, int],
    tmp_path: Path,
) -> Service:
    port = free_ports(1)[0]
    env = {
        **os.environ,
        "UPWARD_NOTIFICATIONS_DATABASE_URL": fresh_database_url,
        "UPWARD_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "UPWARD_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:10]}.",
        "UPWARD_NOTIFICATIONS_HTTP_PORT": str(port),
        "UPWARD_NOTIFICATIONS_SMTP_PORT": str(smtp[1]),
        "UPWARD_NOTIFICATIONS_SMTP_TLS": "none",
        "UPWARD_NOTIFICATIONS_DELIVERY_INTERVAL_S": "0.2",
        "UPWARD_NOTIFICATIONS_DELIVERY_LEASE_S": str(LEASE.total_seconds()),
        "UPWARD_NOTIFICATIONS_COMMIT_INTERVAL_S": "0.2",
        "UPWARD_CLOCK": "manual",
        "UPWARD_CLOCK_START": START.isoformat(),
    }
    return Service(env, port, fresh_database_url, tmp_path / "service.log")


async def ready(service: Service, process: subprocess.Popen[bytes]) -> bool:
    async def probe() -> bool:
        if process.poll() is not None:
            return True  # exited: stop waiting, the assertion below says so
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"{service.base}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    return await eventually(probe, bool, timeout=90) and process.poll() is None


async def publish_events(service: Service, *items: EventData) -> list[CloudEvent]:
    prefix = service.env["UPWARD_TOPIC_PREFIX"]
    bootstrap = service.env["UPWARD_KAFKA_BOOTSTRAP_SERVERS"]
    events = []
    for item in items:
        event = new_event(item, source="/test")
        await publish(bootstrap, prefix + item.topic, [(event.subject.encode(), encode(event))])
        events.append(event)
    return events


async def lock_holder_states(conn: asyncpg.Connection) -> list[str]:
    """State of the sessions holding a kit timer's lock (the two-key advisory locks)."""
    rows = await conn.fetch(
        "SELECT a.state FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.granted"
        " AND a.datname = current_database()"
    )
    return [r["state"] for r in rows]


async def test_killed_after_the_smtp_accept_the_restart_resends_with_the_same_message_id(
    service: Service, smtp: tuple[HoldingInbox, int]
) -> None:
    inbox = smtp[0]
    db = await asyncpg.connect(service.database_url)
    first = service.start()
    try:
        assert await ready(service, first), service.log.read_text()[-3000:]
        await publish_events(
            service,
            ProgramCreated.example(),
            participant(MENTEE, "Helen Park", "Asia/Hong_Kong"),
        )
        known = await eventually(lambda: db.fetchval("SELECT count(*) FROM contacts"), bool)
        assert known == 1, "the mentee's contact never arrived"
        (request,) = await publish_events(service, FeedbackRequested.example())  # to the mentee
        expected_id = delivery_id(request.id, MENTEE, Channel.EMAIL)
        assert await asyncio.to_thread(inbox.arrived.wait, 90), "nothing reached the SMTP server"
        # The server has the message and holds its reply: the worker waits on the network
        # with its claim committed and no transaction open.
        row = await db.fetchrow(
            "SELECT status, attempts FROM deliveries WHERE delivery_id = $1", expected_id
        )
        assert row is not None and (row["status"], row["attempts"]) == ("sending", 1)
        assert await lock_holder_states(db) == ["idle"]
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=30)
        inbox.holding = False
        inbox.released.set()

    second = service.start()
    try:
        assert await ready(service, second), service.log.read_text()[-3000:]
        async with httpx.AsyncClient(base_url=service.base, timeout=60) as client:
            early = await client.post("/ops/clock", json={"advance_s": 60})
            assert early.json()["timers"] == {"deliveries": "ran"}
            assert len(inbox.messages) == 1  # the lease of the dead round still holds
            moved = await client.post("/ops/clock", json={"advance_s": LEASE.total_seconds()})
            assert moved.json()["timers"] == {"deliveries": "ran"}
        copies = inbox.by_message_id()
        assert list(copies) == [f"<{expected_id}@upward.example>"]  # the same Message-ID
        first_copy, second_copy = copies[f"<{expected_id}@upward.example>"]
        assert str(first_copy["Subject"]) == str(second_copy["Subject"])
        row = await db.fetchrow(
            "SELECT status, attempts FROM deliveries WHERE delivery_id = $1", expected_id
        )
        assert row is not None and (row["status"], row["attempts"]) == ("sent", 2)
        sent = await db.fetchval(
            "SELECT count(*) FROM kit_outbox WHERE event_type = 'upward.NotificationSent'"
        )
        assert sent == 1  # NotificationSent once, for the delivery, not per copy
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
        await db.close()
