"""The four services in-process on the real broker and PostgreSQL, wired to each other.

Each service gets its own fresh database, all share one topic prefix (so they talk to each
other and to nobody else), each runs on a manual clock moved through ``POST /ops/clock``.
Notifications send mail to a real SMTP server started for the test. Every HTTP call takes
its headers from :func:`upward.identity.auth_headers`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import asyncpg
import httpx

from schemas.codec import decode
from servicekit.clock import ManualClock
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings, settings_for
from services.feedback.bootstrap import DEFINITION as FEEDBACK
from services.feedback.bootstrap import FeedbackServiceSettings
from services.matching.bootstrap import DEFINITION as MATCHING
from services.matching.settings import MatchingSettings
from services.notifications.bootstrap import definition as notifications_definition
from services.sessions.bootstrap import build_definition as sessions_definition
from services.sessions.settings import SessionsSettings
from tests.fixtures.infra import PostgresServerInfo
from tests.integration.kafka_io import eventually, read_topic
from tests.notifications.receivers import RunningSmtp, notifications_settings
from upward.identity import Identity, auth_headers
from upward.stack import free_ports

SERVICES = ("matching", "sessions", "feedback", "notifications")
_QUICK: dict[str, Any] = {
    "commit_interval_s": 0.2,
    "relay_poll_interval_s": 0.2,
    "retry_initial_backoff_s": 0.05,
    "retry_max_backoff_s": 0.2,
}


@dataclass
class RunningService:
    """One service: its runtime, settings and an HTTP client on it."""

    name: str
    runtime: ServiceRuntime
    http: httpx.AsyncClient

    @property
    def database_url(self) -> str:
        """The service's own database."""
        return self.runtime.settings.database_url.get_secret_value()

    async def call(self, method: str, path: str, who: Identity, json: Any = None) -> httpx.Response:
        """One HTTP call as ``who``."""
        return await self.http.request(method, path, json=json, headers=auth_headers(who))

    async def move_clock(self, when: datetime) -> None:
        """Set the service's manual clock and run its timers once."""
        answer = await self.http.post("/ops/clock", json={"now": when.isoformat()})
        assert answer.status_code == 200, answer.text

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Rows of a query on the service's database."""
        conn = await asyncpg.connect(self.database_url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()


@dataclass
class Platform:
    """The four running services and the topic prefix they share."""

    services: dict[str, RunningService]
    settings: ServiceSettings

    def __getitem__(self, name: str) -> RunningService:
        return self.services[name]

    async def events(self, topic: str, *, at_least: int) -> list[Any]:
        """The payloads on a logical topic, from its start."""
        records = await read_topic(
            self.settings.kafka_bootstrap_servers,
            self.settings.physical_topic(topic),
            at_least=at_least,
        )
        return [decode(r.value, key=r.key).data for r in records]

    async def text_columns(self) -> dict[str, list[tuple[str, str, str]]]:
        """Per service: every (table, column, value as text) of its database.

        Found generically through information_schema: text, varchar, json, jsonb and
        arrays as their text, bytea (the outbox's payloads) decoded as UTF-8.
        """
        return {name: await _all_text(service) for name, service in self.services.items()}


async def _all_text(service: RunningService) -> list[tuple[str, str, str]]:
    columns = await service.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'public'"
        " AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'ARRAY', 'bytea')"
        " ORDER BY table_name, column_name"
    )
    found: list[tuple[str, str, str]] = []
    for column in columns:
        table, name = column["table_name"], column["column_name"]
        value = (
            f"convert_from(\"{name}\", 'UTF8')"
            if column["data_type"] == "bytea"
            else f'"{name}"::text'
        )
        rows = await service.fetch(f'SELECT {value} AS v FROM "{table}" WHERE "{name}" IS NOT NULL')
        found.extend((table, name, row["v"]) for row in rows)
    return found


_FOLDS = re.compile(r"(\r\n|\n|\\r\\n|\\n)[ \t]")


def mentions(text: str, needle: str) -> bool:
    """True when ``text`` contains ``needle``, ignoring case and iCalendar line folding."""
    return needle.lower() in _FOLDS.sub("", text).lower()


def _settings(base: type[ServiceSettings], name: str, **values: Any) -> Any:
    built = settings_for(name, base)(
        service_name=name, http_port=free_ports(1)[0], **(_QUICK | values)
    )
    assert isinstance(built, base)
    return built


@asynccontextmanager
async def running_platform(
    *, postgres: PostgresServerInfo, kafka: str, smtp: RunningSmtp, start: datetime
) -> AsyncIterator[Platform]:
    """Start the four services on fresh databases; stop them and drop the databases after."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    names = {s: f"test_e2e_{s}_{uuid.uuid4().hex[:10]}" for s in SERVICES}
    urls = {s: await postgres.create_database(n) for s, n in names.items()}
    common = {"kafka_bootstrap_servers": kafka, "topic_prefix": prefix}
    matching = _settings(
        MatchingSettings,
        "matching",
        database_url=urls["matching"],
        continuous_interval_s=3600,
        expiry_interval_s=3600,
        **common,
    )
    sessions = _settings(
        SessionsSettings,
        "sessions",
        database_url=urls["sessions"],
        timer_interval_s=3600,
        calendar_feed_secret="feed-secret",
        **common,
    )
    feedback = _settings(
        FeedbackServiceSettings,
        "feedback",
        database_url=urls["feedback"],
        milestone_interval_s=3600,
        overdue_interval_s=3600,
        health_gauge_interval_s=3600,
        **common,
    )
    notifications = notifications_settings(
        database_url=urls["notifications"],
        smtp_port=smtp.port,
        http_port=free_ports(1)[0],
        **common,
        **_QUICK,
    )
    definitions = {
        "matching": (MATCHING, matching),
        "sessions": (sessions_definition(sessions), sessions),
        "feedback": (FEEDBACK, feedback),
        "notifications": (notifications_definition(notifications), notifications),
    }
    services: dict[str, RunningService] = {}
    try:
        for name, (definition, settings) in definitions.items():
            runtime = ServiceRuntime(definition, settings, clock=ManualClock(start))
            await runtime.start()
            http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=30)
            services[name] = RunningService(name, runtime, http)
            assert await eventually(partial(_alive, http), bool), f"{name} did not start"
        yield Platform(services, matching)
    finally:
        for service in services.values():
            await service.http.aclose()
            service.runtime.stop.set()
        for service in services.values():
            await service.runtime.wait()
        for name in names.values():
            await postgres.drop_database(name)


async def _alive(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/healthz")).status_code == 200
    except httpx.TransportError:
        return False
