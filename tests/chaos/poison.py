"""Poison records of every kind, the four services that must set them aside, and what to
look at afterwards: the dead letters, the inbox rows and the committed offsets.

A *poison record* is one a consumer can never process. :data:`KINDS` builds one of each
kind from a valid event of the topic (so it looks like what a real producer would send)
and names the ``dlq.reason`` the kit must give it (``schemas/errors.py``).

:class:`PoisonPlatform` runs the four services in-process on the real broker and
PostgreSQL, sharing one topic prefix, with two things ``tests/e2e/four_services.py`` does
not do: a service may be started with a different handler table (a build with a bug), and
a service may be restarted (a new build deployed) on the same database and consumer group.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from typer.testing import CliRunner, Result

from schemas.base import EventData
from schemas.codec import encode, new_event
from servicekit.clock import ManualClock
from servicekit.runtime import ServiceDefinition, ServiceRuntime
from servicekit.settings import ServiceSettings, settings_for
from servicekit.unit_of_work import HandlerTable
from services.feedback.bootstrap import DEFINITION as FEEDBACK
from services.feedback.bootstrap import FeedbackServiceSettings
from services.matching.bootstrap import DEFINITION as MATCHING
from services.matching.settings import MatchingSettings
from services.notifications.bootstrap import definition as notifications_definition
from services.sessions.bootstrap import build_definition as sessions_definition
from services.sessions.settings import SessionsSettings
from tests.e2e.four_services import RunningService
from tests.fixtures.infra import PostgresServerInfo
from tests.integration.kafka_io import eventually
from tests.notifications.receivers import RunningSmtp, notifications_settings
from upward.cli import app
from upward.events.broker import read_all
from upward.events.dead_letters import DeadLetter, read_dead_letters
from upward.stack import free_ports

SERVICES = ("matching", "sessions", "feedback", "notifications")
MAX_EVENT_BYTES = 64 * 1024
"""The services' ``max_event_bytes`` here: an oversized record still fits the broker."""
_QUICK: dict[str, Any] = {
    "commit_interval_s": 0.2,
    "relay_poll_interval_s": 0.2,
    "retry_initial_backoff_s": 0.05,
    "retry_max_backoff_s": 0.2,
    "max_event_bytes": MAX_EVENT_BYTES,
}
Header = tuple[str, bytes | None]


# --- the records ---------------------------------------------------------------------


@dataclass(frozen=True)
class Wire:
    """A record as it is published: key, value, headers; its event id and type if valid."""

    key: bytes | None
    value: bytes
    headers: tuple[Header, ...] = ()
    event_id: str = ""
    event_type: str = ""


def wire_of(data: EventData, *, version: int | None = None) -> Wire:
    """A valid event carrying ``data``, keyed by its subject, with an ``origin`` header.

    ``version`` stamps another ``schemaversion`` on the envelope (a newer producer).
    """
    event = new_event(data, source="/tests/poison")
    if version is not None:
        event = event.model_copy(update={"schemaversion": version})
    headers = (("origin", b"hr-feed"),)
    return Wire(data.subject().encode(), encode(event), headers, event.id, data.event_type)


def good(cls: type[EventData], *, version: int | None = None, **changes: Any) -> Wire:
    """A valid event: ``cls.example()`` with ``changes`` (see :func:`wire_of`)."""
    data = cls.model_validate({**cls.example().model_dump(mode="json"), **changes})
    return wire_of(data, version=version)


def _document(template: Wire) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(template.value)
    document["id"] = str(uuid.uuid4())  # every poison record is a distinct record
    return document


def _dumped(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _invalid_json(template: Wire) -> tuple[bytes | None, bytes]:
    return template.key, _dumped(_document(template))[:-7]  # cut short


def _nested_json(template: Wire) -> tuple[bytes | None, bytes]:
    return template.key, b"[" * 5000 + b"]" * 5000  # deeper than the parser's recursion


def _invalid_envelope(template: Wire) -> tuple[bytes | None, bytes]:
    document = _document(template)
    del document["specversion"]
    document["time"] = "last Tuesday"
    return template.key, _dumped(document)


def _invalid_data(template: Wire) -> tuple[bytes | None, bytes]:
    document = _document(template)
    del document["data"]["program_id"]  # every event of every topic has one
    return template.key, _dumped(document)


def _unknown_type(template: Wire) -> tuple[bytes | None, bytes]:
    document = _document(template)
    document["type"] = "upward.MentoringHolidayGranted"
    return template.key, _dumped(document)


def _unknown_version(template: Wire) -> tuple[bytes | None, bytes]:
    document = _document(template)
    document["schemaversion"] = 99
    return template.key, _dumped(document)


def _oversized(template: Wire) -> tuple[bytes | None, bytes]:
    document = _document(template)
    document["padding"] = "x" * (MAX_EVENT_BYTES + 1)  # an unknown extension: valid otherwise
    return template.key, _dumped(document)


def _missing_key(template: Wire) -> tuple[bytes | None, bytes]:
    return None, _dumped(_document(template))


def _wrong_key(template: Wire) -> tuple[bytes | None, bytes]:
    return b"someone-else", _dumped(_document(template))


@dataclass(frozen=True)
class Kind:
    """One kind of poison record and the ``dlq.reason`` it must be dead-lettered with."""

    name: str
    reason: str
    build: Callable[[Wire], tuple[bytes | None, bytes]]


KINDS: tuple[Kind, ...] = (
    Kind("invalid JSON", "invalid_json", _invalid_json),
    Kind("JSON nested too deeply", "invalid_json", _nested_json),
    Kind("envelope breaks the schema", "invalid_envelope", _invalid_envelope),
    Kind("data breaks the schema", "invalid_data", _invalid_data),
    Kind("unknown event type", "unknown_type", _unknown_type),
    Kind("newer schema version", "unknown_schema_version", _unknown_version),
    Kind("oversized record", "oversized", _oversized),
    Kind("missing key", "missing_key", _missing_key),
    Kind("key differs from the subject", "wrong_key", _wrong_key),
)


@dataclass(frozen=True)
class Poison:
    """A poison record built from a template, with the reason expected for it."""

    kind: str
    reason: str
    wire: Wire


def poison_of_every_kind(template: Wire) -> list[Poison]:
    """One poison record of each of :data:`KINDS`, made from ``template``."""
    found = []
    for kind in KINDS:
        key, value = kind.build(template)
        headers = (("origin", b"hr-feed"), ("poison.kind", kind.name.encode()))
        found.append(Poison(kind.name, kind.reason, Wire(key, value, headers)))
    return found


def interleaved(goods: list[Wire], bad: list[Wire]) -> list[Wire]:
    """``goods`` and ``bad`` mixed: a good record first, last, and between every few bad."""
    assert len(goods) >= 2, "need good records before and after the bad ones"
    gaps = len(goods) - 1
    out: list[Wire] = [goods[0]]
    for index, good_record in enumerate(goods[1:]):
        out += bad[index * len(bad) // gaps : (index + 1) * len(bad) // gaps]
        out.append(good_record)
    return out


@dataclass(frozen=True)
class Published:
    """Where a record landed."""

    wire: Wire
    topic: str
    partition: int
    offset: int


async def publish(bootstrap: str, topic: str, records: list[Wire]) -> list[Published]:
    """Publish ``records`` in order, all to partition 0 of ``topic``; wait for every ack."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        max_request_size=4 * MAX_EVENT_BYTES,
    )
    await producer.start()
    try:
        sent = []
        for wire in records:
            meta = await producer.send_and_wait(
                topic, value=wire.value, key=wire.key, headers=list(wire.headers), partition=0
            )
            sent.append(Published(wire, topic, meta.partition, meta.offset))
        return sent
    finally:
        await producer.stop()


# --- the services --------------------------------------------------------------------


def _settings(base: type[ServiceSettings], name: str, **values: Any) -> Any:
    built = settings_for(name, base)(service_name=name, http_port=free_ports(1)[0], **values)
    assert isinstance(built, base)
    return built


def _all_settings(
    urls: dict[str, str], kafka: str, prefix: str, smtp: RunningSmtp
) -> dict[str, ServiceSettings]:
    common = {"kafka_bootstrap_servers": kafka, "topic_prefix": prefix, **_QUICK}
    return {
        "matching": _settings(
            MatchingSettings,
            "matching",
            database_url=urls["matching"],
            continuous_interval_s=3600,
            expiry_interval_s=3600,
            **common,
        ),
        "sessions": _settings(
            SessionsSettings,
            "sessions",
            database_url=urls["sessions"],
            timer_interval_s=3600,
            calendar_feed_secret="feed-secret",
            **common,
        ),
        "feedback": _settings(
            FeedbackServiceSettings,
            "feedback",
            database_url=urls["feedback"],
            milestone_interval_s=3600,
            overdue_interval_s=3600,
            health_gauge_interval_s=3600,
            **common,
        ),
        "notifications": notifications_settings(
            database_url=urls["notifications"],
            smtp_port=smtp.port,
            http_port=free_ports(1)[0],
            **common,
        ),
    }


def definition_of(name: str, settings: ServiceSettings) -> ServiceDefinition:
    """The service's real definition (as its ``bootstrap`` builds it)."""
    if name == "matching":
        return MATCHING
    if name == "feedback":
        return FEEDBACK
    if name == "sessions":
        assert isinstance(settings, SessionsSettings)
        return sessions_definition(settings)
    from services.notifications.settings import NotificationsSettings

    assert isinstance(settings, NotificationsSettings)
    return notifications_definition(settings)


HandlerChange = Callable[[HandlerTable], HandlerTable]


@dataclass
class PoisonPlatform:
    """The four services on fresh databases and one topic prefix, restartable one by one."""

    postgres: PostgresServerInfo
    kafka: str
    prefix: str
    start_at: datetime
    settings: dict[str, ServiceSettings]
    databases: dict[str, str]
    services: dict[str, RunningService] = dataclasses.field(default_factory=dict)

    def __getitem__(self, name: str) -> RunningService:
        return self.services[name]

    def topic(self, logical: str) -> str:
        """The physical name of ``logical`` under this platform's prefix."""
        return f"{self.prefix}{logical}"

    def group(self, name: str) -> str:
        """The consumer group of service ``name``."""
        return self.settings[name].group_id

    def subscribers(self, logical: str) -> list[str]:
        """The services that read ``logical``."""
        return [
            name
            for name in SERVICES
            if logical in definition_of(name, self.settings[name]).subscribes
        ]

    async def start(self, name: str, change: HandlerChange | None = None) -> None:
        """Start service ``name``; ``change`` alters its handler table (a build with a bug)."""
        settings = self.settings[name]
        definition = definition_of(name, settings)
        if change is not None:
            definition = dataclasses.replace(definition, handlers=change(definition.handlers))
        runtime = ServiceRuntime(definition, settings, clock=ManualClock(self.start_at))
        await runtime.start()
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=30)
        self.services[name] = RunningService(name, runtime, http)
        assert await eventually(partial(_alive, http), bool), f"{name} did not start"

    async def stop(self, name: str) -> None:
        """Stop service ``name`` (it commits what it processed)."""
        service = self.services.pop(name)
        await service.http.aclose()
        service.runtime.stop.set()
        await service.runtime.wait()

    async def restart(self, name: str, change: HandlerChange | None = None) -> None:
        """Deploy a new build of ``name``: stop it, start it again on the same store and group."""
        await self.stop(name)
        self.settings[name] = self.settings[name].model_copy(update={"http_port": free_ports(1)[0]})
        await self.start(name, change)

    async def close(self) -> None:
        """Stop every service and drop the databases."""
        for name in list(self.services):
            await self.stop(name)
        for database in self.databases.values():
            await self.postgres.drop_database(database)


async def start_platform(
    *,
    postgres: PostgresServerInfo,
    kafka: str,
    smtp: RunningSmtp,
    start_at: datetime,
    changes: dict[str, HandlerChange] | None = None,
) -> PoisonPlatform:
    """The four services running, each on a fresh database, under a new topic prefix."""
    prefix = f"poison{uuid.uuid4().hex[:8]}."
    databases = {s: f"test_poison_{s}_{uuid.uuid4().hex[:8]}" for s in SERVICES}
    urls = {s: await postgres.create_database(n) for s, n in databases.items()}
    platform = PoisonPlatform(
        postgres=postgres,
        kafka=kafka,
        prefix=prefix,
        start_at=start_at,
        settings=_all_settings(urls, kafka, prefix, smtp),
        databases=databases,
    )
    try:
        for name in SERVICES:
            await platform.start(name, (changes or {}).get(name))
    except BaseException:
        await platform.close()
        raise
    return platform


async def _alive(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/healthz")).status_code == 200
    except httpx.TransportError:
        return False


# --- what to look at -----------------------------------------------------------------


async def dead_letters(platform: PoisonPlatform, topics: Iterable[str]) -> list[DeadLetter]:
    """Every dead letter (not the replay markers) of the logical ``topics``."""
    found = await read_dead_letters(platform.kafka, platform.prefix, topics)
    return [letter for topic in found for letter in topic.letters]


async def unprocessed(platform: PoisonPlatform, topics: Iterable[str]) -> dict[str, int]:
    """Per consumer group: records of its topics not yet behind its committed offset.

    A partition's last record is found by reading it (``read_committed``): the marker a
    replay's Kafka transaction ends with takes an offset but is no record to process.
    """
    topics = list(topics)
    physical = [platform.topic(t) for t in topics]
    records = await read_all(platform.kafka, physical)
    ends: dict[TopicPartition, int] = {}
    for topic, found in records.items():
        for record in found:
            tp = TopicPartition(topic, record.partition)
            ends[tp] = max(ends.get(tp, 0), record.offset + 1)
    admin = AIOKafkaAdminClient(bootstrap_servers=platform.kafka)
    await admin.start()
    try:
        behind: dict[str, int] = {}
        for name in SERVICES:
            committed = await admin.list_consumer_group_offsets(platform.group(name))
            mine = {platform.topic(t) for t in topics if name in platform.subscribers(t)}
            behind[name] = sum(
                max(end - (committed[tp].offset if tp in committed else 0), 0)
                for tp, end in ends.items()
                if tp.topic in mine
            )
        return behind
    finally:
        await admin.close()


def invoke(args: list[str], *, bootstrap: str, prefix: str) -> Result:
    """Run the real ``upward ARGS`` against ``bootstrap`` under ``prefix``, plain output."""
    env = {
        "UPWARD_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "UPWARD_TOPIC_PREFIX": prefix,
        "COLUMNS": "250",
        "NO_COLOR": "1",
        "TERM": "dumb",
    }
    return CliRunner().invoke(app, args, env=env)


async def replay(platform: PoisonPlatform, *options: str) -> tuple[int, int]:
    """``upward dlq replay --yes [OPTIONS]``; return (replayed, skipped) from its summary."""
    result = await asyncio.to_thread(
        invoke,
        ["dlq", "replay", "--yes", *options],
        bootstrap=platform.kafka,
        prefix=platform.prefix,
    )
    assert result.exit_code == 0, result.output
    found = re.search(r"Dead letters: (\d+) replayed, (\d+) skipped", result.stdout)
    assert found, result.stdout
    return int(found.group(1)), int(found.group(2))
