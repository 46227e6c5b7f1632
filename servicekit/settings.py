"""Service settings, read from the environment with pydantic-settings.

Shared infrastructure settings have fixed names (``UPWARD_KAFKA_BOOTSTRAP_SERVERS``,
``UPWARD_REGION`` ...); settings owned by one service carry its prefix, e.g.
``UPWARD_MATCHING_DATABASE_URL``. :func:`settings_for` builds the class for a service.

The Kafka security settings (:data:`PER_SERVICE_KAFKA_FIELDS`) are read both ways: the
service's own name wins (``UPWARD_MATCHING_KAFKA_SASL_USERNAME``), the shared name
(``UPWARD_KAFKA_SASL_USERNAME``) is the fallback, so each service can log in to the broker
as itself while a single-credential deployment sets one variable.
"""

from __future__ import annotations

import copy
import os
from datetime import datetime
from typing import Any, Literal, cast

from pydantic import AliasChoices, Field, SecretStr, create_model, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from servicekit.production import UnsafeProductionSettings, production_problems


def _shared(name: str) -> AliasChoices:
    return AliasChoices(f"UPWARD_{name}")


KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]

#: Kafka security fields a service may set under its own prefix (which wins over the shared name).
PER_SERVICE_KAFKA_FIELDS = (
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_sasl_password",
    "kafka_ssl_cafile",
    "kafka_ssl_certfile",
    "kafka_ssl_keyfile",
    "kafka_ssl_check_hostname",
)


class KafkaConnectionSettings(BaseSettings):
    """How a client reaches Kafka: the brokers and the connection's security.

    The services read them as part of :class:`ServiceSettings`; the ``upward`` tool's event
    and dead-letter commands read them alone, under the same shared names.
    """

    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:19092",
        validation_alias=_shared("KAFKA_BOOTSTRAP_SERVERS"),
        description="Comma-separated Kafka bootstrap servers",
    )
    kafka_security_protocol: KafkaSecurityProtocol = Field(
        default="PLAINTEXT",
        validation_alias=_shared("KAFKA_SECURITY_PROTOCOL"),
        description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        default="SCRAM-SHA-512",
        validation_alias=_shared("KAFKA_SASL_MECHANISM"),
        description="SASL mechanism: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN",
    )
    kafka_sasl_username: str | None = Field(
        default=None, validation_alias=_shared("KAFKA_SASL_USERNAME"), description="SASL user"
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None,
        validation_alias=_shared("KAFKA_SASL_PASSWORD"),
        description="SASL password",
    )
    kafka_ssl_cafile: str | None = Field(
        default=None,
        validation_alias=_shared("KAFKA_SSL_CAFILE"),
        description="PEM file of the CA certificates that sign the brokers' certificates",
    )
    kafka_ssl_certfile: str | None = Field(
        default=None,
        validation_alias=_shared("KAFKA_SSL_CERTFILE"),
        description="PEM client certificate (mutual TLS)",
    )
    kafka_ssl_keyfile: str | None = Field(
        default=None,
        validation_alias=_shared("KAFKA_SSL_KEYFILE"),
        description="PEM private key of the client certificate",
    )
    kafka_ssl_check_hostname: bool = Field(
        default=True,
        validation_alias=_shared("KAFKA_SSL_CHECK_HOSTNAME"),
        description="Check that the broker certificate names the broker host",
    )

    @property
    def sasl_variables(self) -> str:
        """The variables that give the SASL user and password (for error messages)."""
        return "UPWARD_KAFKA_SASL_USERNAME and UPWARD_KAFKA_SASL_PASSWORD"


class ServiceSettings(KafkaConnectionSettings):
    """Settings every service has. Subclassed per service by :func:`settings_for`."""

    # hide_input_in_errors: a validation error must not print the input (database URLs
    # with passwords, SASL passwords).
    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    service_name: str = Field(description="Service name, also the consumer group stem")
    database_url: SecretStr = Field(
        description="asyncpg URL of the service's own PostgreSQL database",
    )
    environment: Literal["development", "production"] = Field(
        default="development",
        validation_alias=_shared("ENVIRONMENT"),
        description="production refuses unsafe settings (see docs/security.md)",
    )
    regions: str = Field(
        default="",
        validation_alias=_shared("REGIONS"),
        description="Comma-separated regions of the deployment; more than one means "
        "traffic crosses regions (MirrorMaker), so Kafka must use TLS in production",
    )
    topic_prefix: str = Field(
        default="",
        validation_alias=_shared("TOPIC_PREFIX"),
        description="Prefix of every physical topic name (isolates tests and tenants)",
    )
    region: str = Field(default="local", validation_alias=_shared("REGION"))
    consumer_group: str | None = Field(
        default=None, description="Consumer group; defaults to 'upward-<service>'"
    )
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    commit_interval_s: float = Field(
        default=1.0, ge=0, description="How often processed offsets are committed"
    )
    poll_batch_max: int = Field(
        default=1000, ge=1, description="Records taken from Kafka per poll (all partitions)"
    )
    transaction_batch_max: int = Field(
        default=250, ge=1, description="Events of one partition applied in one transaction"
    )
    partition_concurrency: int = Field(
        default=1,
        ge=1,
        description="Partitions applied at the same time, each in its own transactions on "
        "its own connection; records of one partition always stay in order",
    )
    retry_initial_backoff_s: float = Field(default=0.2, gt=0)
    retry_max_backoff_s: float = Field(default=10.0, gt=0)
    relay_batch_max: int = Field(default=500, ge=1)
    relay_poll_interval_s: float = Field(
        default=1.0, gt=0, description="Fallback poll when no outbox notification arrives"
    )
    outbox_retention_s: float = Field(default=7 * 24 * 3600.0, ge=0)
    max_event_bytes: int = Field(default=1_048_576, ge=1024)
    startup_timeout_s: float = Field(
        default=120.0, ge=0, description="How long start waits for the database and Kafka"
    )
    db_pool_min: int = Field(default=1, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    log_level: str = Field(default="INFO", validation_alias=_shared("LOG_LEVEL"))
    clock: Literal["system", "manual"] = Field(
        default="system",
        validation_alias=_shared("CLOCK"),
        description="system, or manual: time moves only through POST /ops/clock (demo, tests)",
    )
    clock_start: datetime | None = Field(
        default=None,
        validation_alias=_shared("CLOCK_START"),
        description="Start time of a manual clock (ISO 8601 with offset); default: now",
    )

    @model_validator(mode="after")
    def _safe_in_production(self) -> ServiceSettings:
        """In production, refuse the settings :mod:`servicekit.production` calls unsafe."""
        if self.environment == "production":
            problems = production_problems(self, os.environ)
            if problems:
                raise UnsafeProductionSettings(problems)
        return self

    @property
    def sasl_variables(self) -> str:
        """The shared pair, or the service's own ``UPWARD_<SERVICE>_KAFKA_SASL_*`` pair."""
        own = f"UPWARD_{self.service_name.upper()}_KAFKA_SASL_*"
        return f"{super().sasl_variables} (or the {own} pair)"

    @property
    def group_id(self) -> str:
        """The Kafka consumer group of this service."""
        return self.consumer_group or f"{self.topic_prefix}upward-{self.service_name}"

    def physical_topic(self, topic: str) -> str:
        """The broker-side name of a logical topic such as ``upward.pairs``."""
        return f"{self.topic_prefix}{topic}"

    def logical_topic(self, physical: str) -> str:
        """Inverse of :meth:`physical_topic`."""
        return physical.removeprefix(self.topic_prefix)


def settings_for(
    service_name: str, base: type[ServiceSettings] = ServiceSettings
) -> type[ServiceSettings]:
    """Return a settings class reading ``UPWARD_<SERVICE>_*`` for service-owned fields.

    ``base`` is :class:`ServiceSettings` or a subclass adding the service's own
    fields; they are read with the same prefix.
    """
    prefix = f"UPWARD_{service_name.upper()}_"

    class _Prefixed(base):  # type: ignore[valid-type,misc]
        model_config = SettingsConfigDict(
            env_prefix=prefix, extra="ignore", populate_by_name=True, hide_input_in_errors=True
        )

    overrides: dict[str, Any] = {
        name: (info.annotation, _per_service(info, prefix, name))
        for name, info in base.model_fields.items()
        if name in PER_SERVICE_KAFKA_FIELDS
    }
    created: Any = create_model(f"{service_name.title()}Settings", __base__=_Prefixed, **overrides)
    return cast(type[ServiceSettings], created)


def _per_service(info: FieldInfo, prefix: str, name: str) -> FieldInfo:
    """``info`` read from ``<prefix><NAME>`` first, then from the shared ``UPWARD_<NAME>``."""
    field = copy.copy(info)
    field.validation_alias = AliasChoices(f"{prefix}{name.upper()}", f"UPWARD_{name.upper()}")
    return field


def load_settings(
    service_name: str, base: type[ServiceSettings] = ServiceSettings
) -> ServiceSettings:
    """Load the settings of ``service_name`` from the environment."""
    return settings_for(service_name, base)(service_name=service_name)
