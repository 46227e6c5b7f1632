"""Base class of every event payload, and how a payload evolves between versions.

Each concrete event is an :class:`EventData` subclass that declares, as class variables,
where it lives (``topic``), which field is its Kafka key (``subject_field``), who publishes
and who subscribes, and its current ``schema_version``.

Versioning and upcasting
------------------------
A payload's shape may change compatibly (a new optional field) without a version bump:
subscribers ignore fields they do not know (``extra="ignore"``). Any change that
``schemas.compat.breaking_changes`` flags needs a new ``schema_version`` and an *upcaster*:
a pure function turning a payload dict of version ``n`` into version ``n + 1``. Consumers
always work with the current version: ``EventData.upcast`` chains the upcasters, so a
record written years ago by an old producer, or replayed from the topic, decodes into
today's model. The JSON Schema of every older version stays checked in, frozen, under
``schemas/jsonschema/<Event>.v<n>.json``.

The worked example is ``ParticipantJoined`` (see ``schemas.participants``): version 1
carried a single ``language`` string; version 2 carries ``languages``, a list, because
matching needs "a shared language" across people who speak several. Its upcaster maps
``{"language": "en"}`` to ``{"languages": ["en"]}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field

from schemas.errors import UnknownSchemaVersion
from schemas.primitives import Identifier

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class EventData(BaseModel):
    """The ``data`` of an Upward CloudEvent: an immutable, validated payload."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    topic: ClassVar[str]
    schema_version: ClassVar[int]
    subject_field: ClassVar[str]
    publishers: ClassVar[tuple[str, ...]]
    subscribers: ClassVar[tuple[str, ...]]
    upcasters: ClassVar[dict[int, Upcaster]] = {}

    def subject(self) -> str:
        """Return the aggregate id: the envelope ``subject`` and the Kafka key."""
        return str(getattr(self, self.subject_field))

    @classmethod
    def example(cls) -> Self:
        """Return a realistic sample instance (docs, tests, AsyncAPI examples)."""
        raise NotImplementedError(f"{cls.__name__} must implement example()")

    @classmethod
    def upcast(cls, version: int, data: dict[str, Any]) -> dict[str, Any]:
        """Turn a payload written at ``version`` into the current ``schema_version`` shape.

        Raises ``UnknownSchemaVersion`` when ``version`` is below 1, newer than this code
        knows, or when an upcaster of the chain is missing.
        """
        if version < 1 or version > cls.schema_version:
            raise UnknownSchemaVersion(
                f"{cls.event_type} schema version {version} is not in 1..{cls.schema_version}"
            )
        upgraded = dict(data)
        for step in range(version, cls.schema_version):
            upcaster = cls.upcasters.get(step)
            if upcaster is None:
                raise UnknownSchemaVersion(f"{cls.event_type} has no upcaster v{step}->v{step + 1}")
            upgraded = upcaster(upgraded)
        return upgraded


class PairKeyedEvent(EventData):
    """Base of the events about one pair (pairs, sessions and feedback topics).

    They are all keyed by ``pair_id``, so one pair's events stay in order.
    """

    pair_id: Identifier = Field(description="Pair id (the Kafka key).")
    program_id: Identifier = Field(description="Program of the pair.")

    subject_field: ClassVar[str] = "pair_id"
    schema_version: ClassVar[int] = 1
