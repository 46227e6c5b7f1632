"""The CloudEvents 1.0 envelope every Upward event travels in.

Structured content mode: the whole envelope below, serialised as compact UTF-8 JSON, is the
Kafka record value, and the Kafka key is the envelope's ``subject`` (the aggregate id).
Upward adds the extension attributes ``schemaversion``, ``region``, ``correlationid``,
``causationid`` and ``traceparent``. Unknown extensions are kept (``extra="allow"``) so
that a newer producer adding one does not break an older consumer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer

TYPE_PREFIX = "upward."
TRACEPARENT_PATTERN = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope carrying one Upward event in ``data``."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"] = Field(description="CloudEvents specification version.")
    id: str = Field(
        min_length=1,
        description="Unique id of this event; consumers de-duplicate on it (inbox table).",
    )
    source: str = Field(
        min_length=1,
        pattern=r"^\S+$",
        description="URI-reference of the producer, e.g. `/upward/matching`.",
    )
    type: str = Field(
        pattern=r"^upward\.[A-Z][A-Za-z0-9]*$",
        description="`upward.<EventName>`, e.g. `upward.PairFormed`.",
    )
    time: AwareDatetime = Field(description="When the fact happened (RFC 3339).")
    subject: str = Field(
        min_length=1,
        description="Aggregate id the event is about; also the Kafka record key.",
    )
    datacontenttype: Literal["application/json"] = Field(
        default="application/json", description="Media type of `data`."
    )
    data: dict[str, Any] = Field(description="The event payload, at `schemaversion`.")
    schemaversion: int = Field(ge=1, description="Version of the `data` schema.")
    region: str | None = Field(
        default=None, description="Deployment region that produced the event, e.g. `eu-west`."
    )
    correlationid: str | None = Field(
        default=None,
        description="Id shared by every event of one business flow (the first event's id).",
    )
    causationid: str | None = Field(
        default=None, description="Id of the event or command that directly caused this one."
    )
    traceparent: str | None = Field(
        default=None,
        pattern=TRACEPARENT_PATTERN,
        description="W3C Trace Context `traceparent` of the producing span.",
    )

    @property
    def event_name(self) -> str:
        """Return the event name, e.g. ``PairFormed`` for type ``upward.PairFormed``."""
        return self.type.removeprefix(TYPE_PREFIX)

    @field_serializer("time", when_used="json")
    def _time_in_utc(self, value: datetime) -> str:
        """Serialise ``time`` as RFC 3339 in UTC with a ``Z`` suffix."""
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
