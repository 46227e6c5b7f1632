"""Configuration of the local development stack.

Two groups of settings:

* :class:`StackSettings` (env prefix ``UPWARD_STACK_``) says where and how the local
  stack runs: home (data) directory, ports, Kafka heap, jar cache, timeouts.
* :class:`ExternalAddresses` reads the *application* variables
  (``UPWARD_KAFKA_BOOTSTRAP_SERVERS``, ``UPWARD_DATABASE_URL``,
  ``UPWARD_<SERVICE>_DATABASE_URL``). When they are set, the stack does not start the
  corresponding component and uses (and checks) the configured one instead.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from upward.stack.kafka import KAFKA_VERSION

#: The services that own a database, in a stable order.
SERVICES: tuple[str, ...] = ("matching", "sessions", "feedback", "notifications")


def service_database_name(service: str) -> str:
    """Return the database name of *service* (``upward_<service>``)."""
    return f"upward_{service}"


def database_url(server_url: str, database: str) -> str:
    """Return *server_url* pointing at *database* (path replaced, query kept)."""
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def server_url(url: str) -> str:
    """Return *url* without its database path (a server-level URL)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", parts.query, parts.fragment))


def _default_home() -> Path:
    return Path.home() / ".local" / "share" / "upward" / "stack"


def _default_cache() -> Path:
    return Path.home() / ".cache" / "upward"


class StackSettings(BaseSettings):
    """Where and how the local stack runs (env prefix ``UPWARD_STACK_``)."""

    model_config = SettingsConfigDict(env_prefix="UPWARD_STACK_", extra="ignore")

    home: Path = Field(
        default_factory=_default_home,
        description="Data directory: Kafka log dirs, PostgreSQL cluster, logs, pid files.",
    )
    cache_dir: Path = Field(
        default_factory=_default_cache,
        description="Jar cache root; Kafka jars go to <cache_dir>/kafka-<version>/libs.",
    )
    kafka_version: str = Field(default=KAFKA_VERSION, description="Apache Kafka version.")
    kafka_port: int = Field(default=19092, ge=1, le=65535)
    kafka_controller_port: int = Field(default=19093, ge=1, le=65535)
    postgres_port: int = Field(default=15432, ge=1, le=65535)
    kafka_heap_min: str = Field(default="256m", description="JVM -Xms of the broker.")
    kafka_heap_max: str = Field(default="512m", description="JVM -Xmx of the broker.")
    java: str = Field(default="java", description="Java 17+ executable.")
    maven: str = Field(default="mvn", description="Maven executable used to fetch the jars.")
    maven_timeout: float = Field(default=900.0, gt=0, description="Seconds for the jar fetch.")
    kafka_start_timeout: float = Field(default=90.0, gt=0, description="Seconds to readiness.")
    kafka_stop_timeout: float = Field(default=30.0, gt=0, description="Seconds before SIGKILL.")
    postgres_start_timeout: float = Field(default=60.0, gt=0, description="Seconds to ready.")

    @field_validator("home", "cache_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        """Expand ``~`` and make paths absolute (they end up in command lines)."""
        return value.expanduser().absolute()

    @property
    def kafka_dir(self) -> Path:
        """Kafka's part of the home directory."""
        return self.home / "kafka"

    @property
    def postgres_dir(self) -> Path:
        """PostgreSQL's part of the home directory."""
        return self.home / "postgres"

    @property
    def kafka_libs_dir(self) -> Path:
        """Where the Kafka jars of :attr:`kafka_version` are cached."""
        return self.cache_dir / f"kafka-{self.kafka_version}" / "libs"


class ExternalAddresses(BaseSettings):
    """Externally provided Kafka / PostgreSQL addresses (env prefix ``UPWARD_``)."""

    model_config = SettingsConfigDict(env_prefix="UPWARD_", extra="ignore")

    kafka_bootstrap_servers: str | None = None
    database_url: str | None = Field(
        default=None, description="Server-level URL; service DBs are <url>/upward_<service>."
    )
    matching_database_url: str | None = None
    sessions_database_url: str | None = None
    feedback_database_url: str | None = None
    notifications_database_url: str | None = None

    @classmethod
    def none(cls) -> ExternalAddresses:
        """No external address, whatever the environment says (start everything)."""
        return cls(
            kafka_bootstrap_servers=None,
            database_url=None,
            matching_database_url=None,
            sessions_database_url=None,
            feedback_database_url=None,
            notifications_database_url=None,
        )

    def per_service_urls(self) -> dict[str, str | None]:
        """Return the explicitly configured URL of each service (``None`` if unset)."""
        return {
            "matching": self.matching_database_url,
            "sessions": self.sessions_database_url,
            "feedback": self.feedback_database_url,
            "notifications": self.notifications_database_url,
        }

    @property
    def kafka_is_external(self) -> bool:
        """True when Kafka must not be started locally."""
        return bool(self.kafka_bootstrap_servers)

    @property
    def postgres_is_external(self) -> bool:
        """True when PostgreSQL must not be started locally.

        That is the case when ``UPWARD_DATABASE_URL`` is set, or when all four
        ``UPWARD_<SERVICE>_DATABASE_URL`` are.
        """
        return bool(self.database_url) or all(self.per_service_urls().values())

    def service_database_urls(self) -> dict[str, str]:
        """Return the database URL of every service in external mode.

        Explicit per-service URLs win over the derived ``<UPWARD_DATABASE_URL>/upward_<svc>``.
        """
        urls: dict[str, str] = {}
        for service, url in self.per_service_urls().items():
            if url:
                urls[service] = url
            elif self.database_url:
                urls[service] = database_url(self.database_url, service_database_name(service))
        return urls
