"""Where the event tools find the broker and the topics (environment, prefix ``UPWARD_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
"""The local stack's broker (``upward stack up``)."""


class EventToolSettings(BaseSettings):
    """The broker and topic prefix the services use, read the same way they read them."""

    model_config = SettingsConfigDict(env_prefix="UPWARD_", extra="ignore")

    kafka_bootstrap_servers: str = Field(
        default=DEFAULT_BOOTSTRAP, description="Comma-separated Kafka bootstrap servers"
    )
    topic_prefix: str = Field(default="", description="Prefix of every physical topic name")
