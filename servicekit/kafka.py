"""Kafka clients configured the one way every service uses them.

Producers are idempotent with ``acks=all``; consumers never auto-commit (the
consumer loop commits offsets of events whose effect is already committed in
PostgreSQL). Topics, with their dead-letter twins, are created at start.
Every client (producer, consumer, admin, and faust's) takes its connection security from
:func:`kafka_client_options`: TLS and SASL (SCRAM or PLAIN) as the settings say.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    SaslAuthenticationFailed,
    TopicAlreadyExistsError,
)
from aiokafka.helpers import create_ssl_context

from servicekit.settings import KafkaConnectionSettings, ServiceSettings

DLQ_SUFFIX = ".dlq"


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of ``topic``."""
    return f"{topic}{DLQ_SUFFIX}"


class KafkaSecurityError(ValueError):
    """The Kafka security settings are incomplete (e.g. SASL without a user)."""


def kafka_ssl_context(settings: KafkaConnectionSettings) -> ssl.SSLContext | None:
    """The TLS context of the settings' protocol (``None`` for PLAINTEXT / SASL_PLAINTEXT)."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.kafka_ssl_cafile,
        certfile=settings.kafka_ssl_certfile,
        keyfile=settings.kafka_ssl_keyfile,
    )
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def kafka_client_options(settings: KafkaConnectionSettings) -> dict[str, Any]:
    """Keyword arguments every aiokafka client (a service's or the tool's) is created with.

    Bootstrap servers and the security of the connection: protocol, the TLS context and
    the SASL mechanism and credentials. Raises :class:`KafkaSecurityError` when a SASL
    protocol lacks its user or password.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    context = kafka_ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL_"):
        username, password = _sasl_credentials(settings)
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": username,
            "sasl_plain_password": password,
        }
    return options


def _sasl_credentials(settings: KafkaConnectionSettings) -> tuple[str, str]:
    password = settings.kafka_sasl_password
    if not settings.kafka_sasl_username or password is None:
        raise KafkaSecurityError(
            f"UPWARD_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs "
            f"{settings.sasl_variables}"
        )
    return settings.kafka_sasl_username, password.get_secret_value()


async def check_kafka_login(settings: ServiceSettings, *, timeout_s: float = 30.0) -> None:
    """Fail fast and clearly when the broker refuses the service's SASL login.

    aiokafka's clients only say "unable to bootstrap" and log the reason; this opens one
    connection to the first bootstrap server and raises :class:`KafkaSecurityError`
    naming the user (never the password) when authentication fails. A broker that is
    not reachable is left to the caller's retries.
    """
    if not settings.kafka_security_protocol.startswith("SASL_"):
        return
    options = kafka_client_options(settings)
    host, _, port = settings.kafka_bootstrap_servers.split(",")[0].strip().rpartition(":")
    try:
        conn = await create_conn(
            host,
            int(port),
            request_timeout_ms=int(timeout_s * 1000),
            ssl_context=options.get("ssl_context"),
            security_protocol=options["security_protocol"],
            sasl_mechanism=options["sasl_mechanism"],
            sasl_plain_username=options["sasl_plain_username"],
            sasl_plain_password=options["sasl_plain_password"],
        )
    except (SaslAuthenticationFailed, AuthenticationFailedError) as exc:
        raise KafkaSecurityError(
            f"Kafka at {host}:{port} refused the {settings.kafka_sasl_mechanism} login of "
            f"user {settings.kafka_sasl_username!r}: {exc}"
        ) from None
    conn.close()


def make_admin(settings: ServiceSettings) -> AIOKafkaAdminClient:
    """An admin client with the service's connection security."""
    return AIOKafkaAdminClient(
        client_id=f"upward-{settings.service_name}", **kafka_client_options(settings)
    )


def make_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    """An idempotent producer with ``acks=all``."""
    return AIOKafkaProducer(
        **kafka_client_options(settings),
        client_id=f"upward-{settings.service_name}",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        # Batches of up to 256 KiB per partition (aiokafka's default is 16 KiB): the relay
        # hands over hundreds of events at once, sent in a few requests instead of dozens.
        max_batch_size=256 * 1024,
        max_request_size=settings.max_event_bytes + 64 * 1024,
    )


def make_consumer(settings: ServiceSettings, topics: list[str]) -> AIOKafkaConsumer:
    """A consumer of the service's group that never commits by itself."""
    return AIOKafkaConsumer(
        *topics,
        **kafka_client_options(settings),
        group_id=settings.group_id,
        client_id=f"upward-{settings.service_name}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=settings.max_event_bytes + 64 * 1024,
    )


async def ensure_topics(
    settings: ServiceSettings,
    topics: list[str],
    *,
    partitions: int = 3,
    replication_factor: int = 1,
) -> None:
    """Create ``topics`` and their dead-letter topics when they do not exist."""
    admin = make_admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = sorted({name for t in topics for name in (t, dlq_topic(t))} - existing)
        for name in wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # a replica was faster
                await admin.create_topics(
                    [NewTopic(name, partitions, replication_factor)], validate_only=False
                )
    finally:
        await admin.close()
