"""Where the event tools find the broker and the topics: the services' own settings names."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from servicekit.settings import KafkaConnectionSettings


class EventToolSettings(KafkaConnectionSettings):
    """The brokers, the connection security and the topic prefix the services use, read
    from the same variables (``UPWARD_KAFKA_*``, ``UPWARD_TOPIC_PREFIX``)."""

    topic_prefix: str = Field(
        default="",
        validation_alias=AliasChoices("UPWARD_TOPIC_PREFIX"),
        description="Prefix of every physical topic name",
    )
