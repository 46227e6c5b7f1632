"""Turn Kafka records into validated events and back.

``decode`` is the single entry point consumers use: it checks, in this order, the record
size, the JSON, the CloudEvents envelope, the event type, the schema version, the payload
(upcast to the current version, then validated) and finally the Kafka key. Any failure
raises :class:`EventDecodeError` whose ``reason`` becomes the ``dlq.reason`` header.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from schemas.base import EventData
from schemas.envelope import TYPE_PREFIX, CloudEvent
from schemas.errors import DecodeFailure, EventDecodeError, UnknownEventType, UnknownSchemaVersion
from schemas.registry import event_class

__all__ = [
    "DecodeFailure",
    "DecodedEvent",
    "EventDecodeError",
    "UnknownEventType",
    "UnknownSchemaVersion",
    "decode",
    "encode",
    "new_event",
]

DEFAULT_MAX_BYTES = 1_048_576
_OPTIONAL_ATTRIBUTES = tuple(
    name for name, field in CloudEvent.model_fields.items() if not field.is_required()
)


@dataclass(frozen=True)
class DecodedEvent:
    """An envelope as received, and its payload upcast to the current version."""

    envelope: CloudEvent
    data: EventData


def decode(
    raw: bytes | None,
    *,
    key: bytes | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    check_key: bool = True,
) -> DecodedEvent:
    """Decode and validate one Kafka record value (and its key, unless ``check_key=False``).

    Raises ``EventDecodeError`` (or a subclass) with the reason of the first check failed.
    """
    envelope = _parse_envelope(_checked_bytes(raw, max_bytes=max_bytes))
    data = _parse_data(envelope)
    if check_key:
        _check_key(key, envelope.subject)
    return DecodedEvent(envelope=envelope, data=data)


def encode(envelope: CloudEvent) -> bytes:
    """Serialise an envelope as compact UTF-8 JSON (absent extensions are omitted).

    pydantic-core writes the JSON in one pass (no intermediate dict); ``None`` is dropped
    at the envelope's top level only, never inside ``data``.
    """
    absent = {name for name in _OPTIONAL_ATTRIBUTES if getattr(envelope, name) is None}
    for name, value in (envelope.model_extra or {}).items():
        if value is None:
            absent.add(name)
    return envelope.model_dump_json(exclude=absent or None).encode("utf-8")


def new_event(
    data: EventData,
    *,
    source: str,
    region: str | None = None,
    correlationid: str | None = None,
    causationid: str | None = None,
    traceparent: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> CloudEvent:
    """Wrap a payload in a new envelope (id, time, subject and version filled in).

    ``correlationid`` defaults to the new event's own id: it starts a new flow.
    """
    identifier = event_id or str(uuid.uuid4())
    return CloudEvent(
        specversion="1.0",
        id=identifier,
        source=source,
        type=f"{TYPE_PREFIX}{data.event_type}",
        time=time or datetime.now(UTC),
        subject=data.subject(),
        data=data.model_dump(mode="json"),
        schemaversion=data.schema_version,
        region=region,
        correlationid=correlationid or identifier,
        causationid=causationid,
        traceparent=traceparent,
    )


def _checked_bytes(raw: bytes | None, *, max_bytes: int) -> bytes:
    if raw is not None and len(raw) > max_bytes:
        raise EventDecodeError(
            DecodeFailure.OVERSIZED, f"{len(raw)} bytes exceeds the limit of {max_bytes}"
        )
    if not raw:
        raise EventDecodeError(DecodeFailure.INVALID_JSON, "empty record value (tombstone?)")
    return raw


def _parse_envelope(raw: bytes) -> CloudEvent:
    """Parse and validate in one pass (pydantic-core's JSON parser, no Python dict first)."""
    try:
        return CloudEvent.model_validate_json(raw)
    except ValidationError as error:
        if any(item["type"] == "json_invalid" for item in error.errors()):
            raise EventDecodeError(DecodeFailure.INVALID_JSON, _summary(error)) from error
        raise EventDecodeError(DecodeFailure.INVALID_ENVELOPE, _summary(error)) from error


def _parse_data(envelope: CloudEvent) -> EventData:
    cls = event_class(envelope.event_name)
    current = cls.upcast(envelope.schemaversion, envelope.data)
    try:
        data = cls.model_validate(current)
    except ValidationError as error:
        raise EventDecodeError(DecodeFailure.INVALID_DATA, _summary(error)) from error
    if data.subject() != envelope.subject:
        raise EventDecodeError(
            DecodeFailure.INVALID_DATA,
            f"subject {envelope.subject!r} differs from data.{cls.subject_field} "
            f"{data.subject()!r}",
        )
    return data


def _check_key(key: bytes | None, subject: str) -> None:
    if not key:
        raise EventDecodeError(DecodeFailure.MISSING_KEY, "record has no key")
    if key != subject.encode("utf-8"):
        shown = key.decode("utf-8", errors="replace")
        raise EventDecodeError(
            DecodeFailure.WRONG_KEY, f"key {shown!r} differs from subject {subject!r}"
        )


def _summary(error: ValidationError, limit: int = 5) -> str:
    """Condense a validation error into one line: ``loc: message; ...``."""
    parts = [
        f"{'.'.join(str(part) for part in item['loc']) or '<root>'}: {item['msg']}"
        for item in error.errors()[:limit]
    ]
    more = error.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
