"""The kit over SASL_SSL + SCRAM-SHA-512 with ACLs, on a broker this module starts.

A throwaway CA (trustme) signs the broker's certificate; the broker formats its storage
with SCRAM users for two services and enforces ACLs on its SASL_SSL listener. The example
service runs end to end (consumer, store, outbox relay) as ``welcome`` with its own
credentials; a wrong password is refused with a clear error; a service without an ACL
on a topic is denied it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import trustme
from aiokafka.errors import KafkaError
from cryptography.hazmat.primitives import serialization
from kafka_io import eventually
from pydantic import SecretStr

from examples import welcome_service
from schemas.codec import decode, encode, new_event
from schemas.participants import ParticipantJoined
from servicekit.kafka import (
    KafkaSecurityError,
    check_kafka_login,
    ensure_topics,
    make_consumer,
    make_producer,
)
from servicekit.logs import configure_logging, get_logger
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings, settings_for
from tests.fixtures.infra import PostgresServerInfo
from upward.events.census import topic_census
from upward.identity import PLATFORM_ADMIN, auth_headers
from upward.stack import StackSettings, free_ports
from upward.stack import kafka as stack_kafka
from upward.stack.process import run_sync

pytestmark = pytest.mark.integration

PARTICIPANTS = "upward.participants"
NOTIFICATIONS = "upward.notifications"
PASSWORDS = {"welcome": "welcome-scram-5e1f", "sessions": "sessions-scram-9a2b"}


@dataclass(frozen=True)
class SecureBroker:
    """The SASL_SSL address of the module's broker, its CA file and the topic prefix."""

    bootstrap: str
    cafile: Path
    prefix: str


def _acls(prefix: str) -> list[stack_kafka.AclGrant]:
    """welcome: everything under the prefix; sessions: only its own ``sessions.`` topics."""
    grants = [
        stack_kafka.AclGrant(f"User:{user}", kind, name, pattern_type="prefixed")
        for user, name in (("welcome", prefix), ("sessions", f"{prefix}sessions."))
        for kind in ("topic", "group")
    ]
    return grants


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    home = tmp_path_factory.mktemp("sasl-kafka")
    ca = trustme.CA()
    keystore, cafile = home / "broker.pem", home / "ca.pem"
    keystore.write_bytes(_pem_keystore(ca.issue_cert("127.0.0.1")))
    ca.cert_pem.write_to_path(str(cafile))
    stack = StackSettings()
    plain, controller, secure = free_ports(3)
    cfg = stack_kafka.KafkaConfig(
        version=stack.kafka_version,
        libs_dir=stack.kafka_libs_dir,
        home=home,
        port=plain,
        controller_port=controller,
        heap_max="384m",
        sasl_ssl=stack_kafka.SaslSslListener(secure, keystore, PASSWORDS),
    )
    stack_kafka.fetch_jars(cfg)
    stack_kafka.write_config(cfg)
    stack_kafka.format_storage(cfg)
    pid = stack_kafka.start_broker(cfg)
    try:
        stack_kafka.wait_ready(cfg, pid, timeout=90.0)
        prefix = f"t{uuid.uuid4().hex[:8]}."
        run_sync(lambda: stack_kafka.grant_acls(cfg.bootstrap_servers, _acls(prefix)))
        yield SecureBroker(f"127.0.0.1:{secure}", cafile, prefix)
    finally:
        stack_kafka.stop_broker(cfg)


def _pem_keystore(cert: trustme.LeafCert) -> bytes:
    """The broker's PEM keystore: its key as unencrypted PKCS#8 (Kafka's format), then the chain."""
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), password=None)
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pkcs8 + b"".join(blob.bytes() for blob in cert.cert_chain_pems)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_settings(
    broker: SecureBroker,
    monkeypatch: pytest.MonkeyPatch,
    *,
    service: str,
    password: str,
    database_url: str = "postgresql://unused@127.0.0.1:1/unused",
) -> ServiceSettings:
    """Settings read from the environment as a deployed service would read them.

    The shared ``UPWARD_KAFKA_SASL_*`` names hold another user: the service's own
    ``UPWARD_<SERVICE>_KAFKA_SASL_*`` must win.
    """
    env = {
        "UPWARD_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "UPWARD_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "UPWARD_KAFKA_SSL_CAFILE": str(broker.cafile),
        "UPWARD_KAFKA_SASL_USERNAME": "nobody",
        "UPWARD_KAFKA_SASL_PASSWORD": "not-this-one",
        f"UPWARD_{service.upper()}_KAFKA_SASL_USERNAME": service,
        f"UPWARD_{service.upper()}_KAFKA_SASL_PASSWORD": password,
        "UPWARD_TOPIC_PREFIX": broker.prefix,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings_for(service)(
        service_name=service,
        database_url=database_url,
        http_port=_free_port(),
        commit_interval_s=0.2,
        relay_poll_interval_s=0.2,
        startup_timeout_s=20.0,
    )


@pytest.fixture
async def welcome(
    secure_broker: SecureBroker, monkeypatch: pytest.MonkeyPatch, fresh_database_url: str
) -> AsyncIterator[ServiceRuntime]:
    settings = service_settings(
        secure_broker,
        monkeypatch,
        service="welcome",
        password=PASSWORDS["welcome"],
        database_url=fresh_database_url,
    )
    runtime = ServiceRuntime(welcome_service.DEFINITION, settings)
    await runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop.set()
        await runtime.wait()


async def test_service_runs_end_to_end_over_sasl_ssl_with_its_own_credentials(
    welcome: ServiceRuntime,
) -> None:
    settings = welcome.settings
    assert settings.kafka_sasl_username == "welcome"
    data = ParticipantJoined.model_validate(
        {**ParticipantJoined.example().model_dump(mode="json"), "participant_id": "emp-sasl"}
    )
    event = new_event(data, source="/hr-feed")
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.physical_topic(PARTICIPANTS), encode(event), key=event.subject.encode()
        )
    finally:
        await producer.stop()

    async def applied() -> int | None:
        conn = await asyncpg.connect(settings.database_url.get_secret_value())
        try:
            value = await conn.fetchval(
                "SELECT applied FROM welcomes WHERE participant_id = 'emp-sasl'"
            )
            return int(value) if value is not None else None
        finally:
            await conn.close()

    assert await eventually(applied, lambda v: v is not None) == 1
    reader = make_consumer(
        settings.model_copy(update={"consumer_group": f"{settings.topic_prefix}reader"}),
        [settings.physical_topic(NOTIFICATIONS)],
    )
    await reader.start()
    try:
        record = await asyncio.wait_for(reader.getone(), 30)
    finally:
        await reader.stop()
    assert decode(record.value, key=record.key).envelope.causationid == event.id
    # faust's stream worker (the live count) runs over SASL_SSL too
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{settings.http_port}", headers=auth_headers(PLATFORM_ADMIN)
    ) as client:

        async def live_count() -> int:
            try:
                answer = await client.get(f"/programs/{data.program_id}/joined")
            except httpx.ConnectError:  # uvicorn is not listening yet
                return 0
            return int(answer.json()["joined"]) if answer.status_code == 200 else 0

        assert await eventually(live_count, lambda n: n >= 1) == 1


async def test_the_event_tools_read_the_topics_over_sasl_ssl(
    secure_broker: SecureBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``upward events`` and ``upward dlq`` log in with the shared ``UPWARD_KAFKA_*``
    settings, as the operator's user (here welcome's, which the ACLs let read the prefix)."""
    settings = service_settings(
        secure_broker, monkeypatch, service="welcome", password=PASSWORDS["welcome"]
    )
    monkeypatch.setenv("UPWARD_KAFKA_SASL_USERNAME", "welcome")
    monkeypatch.setenv("UPWARD_KAFKA_SASL_PASSWORD", PASSWORDS["welcome"])
    data = ParticipantJoined.model_validate(
        {**ParticipantJoined.example().model_dump(mode="json"), "participant_id": "emp-census"}
    )
    event = new_event(data, source="/hr-feed")
    topic = settings.physical_topic(PARTICIPANTS)
    await ensure_topics(settings, [topic])
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic, encode(event), key=event.subject.encode())
    finally:
        await producer.stop()
    census = await topic_census(bootstrap=secure_broker.bootstrap, prefix=secure_broker.prefix)
    seen = [
        logged.event.envelope.id
        for records in census.events[PARTICIPANTS].values()
        for logged in records
    ]
    assert event.id in seen


async def test_a_wrong_password_is_refused_with_a_clear_error(
    secure_broker: SecureBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = service_settings(
        secure_broker, monkeypatch, service="welcome", password="wrong-password"
    )
    with pytest.raises(KafkaSecurityError) as refused:
        await check_kafka_login(settings)
    message = str(refused.value)
    assert "refused the SCRAM-SHA-512 login of user 'welcome'" in message
    assert "invalid credentials" in message
    assert "wrong-password" not in message
    await check_kafka_login(  # the right password passes the same check
        settings.model_copy(update={"kafka_sasl_password": SecretStr(PASSWORDS["welcome"])})
    )


async def test_acls_deny_a_service_a_topic_it_has_no_acl_for(
    secure_broker: SecureBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = service_settings(
        secure_broker, monkeypatch, service="sessions", password=PASSWORDS["sessions"]
    )
    producer = make_producer(settings)
    await producer.start()
    try:
        with pytest.raises(KafkaError) as denied:
            await producer.send_and_wait(settings.physical_topic(PARTICIPANTS), b"{}")
        allowed = settings.physical_topic("sessions.own")
        metadata = await producer.send_and_wait(allowed, b"{}")
    finally:
        await producer.stop()
    assert "authorization" in type(denied.value).__name__.lower() + str(denied.value).lower()
    assert metadata.topic == allowed


SECRETS = {
    "database password": "db-pass-7c1e-do-not-log",
    "JWT secret": "jwt-secret-2b8d-do-not-log-7c41e09a5f3d",
    "wrong database password": "wrong-db-pass-5a0f-do-not-log",
}


async def test_secrets_never_reach_the_logs(
    secure_broker: SecureBroker,
    monkeypatch: pytest.MonkeyPatch,
    postgres: PostgresServerInfo,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Startup, a request, a failed startup and shutdown at DEBUG: no secret is printed.

    Both log paths are captured: the kit's structlog lines (stderr) and every library's
    standard logging records (aiokafka, asyncpg, uvicorn) with their tracebacks.
    """
    caplog.set_level(logging.DEBUG)
    configure_logging(service="welcome", level="DEBUG")
    monkeypatch.setenv("UPWARD_AUTH_JWT_SECRET", SECRETS["JWT secret"])
    database = f"sec_{uuid.uuid4().hex[:12]}"
    await postgres.create_database(database)
    try:
        url = _with_password(postgres.database_url(database), SECRETS["database password"])
        settings = service_settings(
            secure_broker, monkeypatch, service="welcome", password=PASSWORDS["welcome"],
            database_url=url,
        )  # fmt: skip
        runtime = ServiceRuntime(welcome_service.DEFINITION, settings)
        await runtime.start()
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{settings.http_port}",
                headers=auth_headers(PLATFORM_ADMIN),
            ) as client:

                async def readiness() -> int:
                    try:
                        return (await client.get("/readyz")).status_code
                    except httpx.ConnectError:  # uvicorn is not listening yet
                        return 0

                assert await eventually(readiness, lambda status: status == 200) == 200
                joined = await client.get("/programs/p-1/joined")
                assert joined.status_code == 200
        finally:
            runtime.stop.set()
            await runtime.wait()
        failure = await _failed_startup(
            settings.model_copy(
                update={
                    "database_url": SecretStr(
                        _with_password(
                            postgres.database_url(f"{database}_missing"),
                            SECRETS["wrong database password"],
                        )
                    ),
                    "startup_timeout_s": 0.0,
                }
            )
        )
    finally:
        await postgres.drop_database(database)
    assert "does not exist" in failure  # the failure is explained ...
    logged = capsys.readouterr().err + caplog.text + failure
    assert "service_started" in logged and "service_stopped" in logged
    assert "SCRAM-SHA-512" in caplog.text or "sasl" in caplog.text.lower()
    secrets = {**SECRETS, "SASL password": PASSWORDS["welcome"]}
    leaked = [what for what, value in secrets.items() if value in logged]
    assert not leaked, f"secrets in the logs: {leaked}"  # ... without any secret


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username or 'postgres'}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def _failed_startup(settings: ServiceSettings) -> str:
    """Start a runtime that must fail; return its error with the traceback, as logged."""
    runtime = ServiceRuntime(welcome_service.DEFINITION, settings)
    try:
        await runtime.start()
    except Exception as exc:
        get_logger("test").exception("startup_failed")
        return "".join(traceback.format_exception(exc))
    finally:
        runtime.stop.set()
        await runtime.wait()
    raise AssertionError("startup should have failed")
