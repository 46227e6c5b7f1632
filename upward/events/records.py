"""One Kafka record seen by the tools: decoded with the project's codec, or why not."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas.codec import DecodedEvent, EventDecodeError, decode
from schemas.envelope import TYPE_PREFIX
from upward.events.broker import Record

KEY_FIELDS = ("kind", "mode", "side", "reason", "outcome", "health", "channel", "sequence")
"""Data fields shown beside the ``*_id`` fields in the pretty view (never personal data)."""


@dataclass(frozen=True)
class SeenRecord:
    """A record of a catalogue topic: its position, and its event or its decode error."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: bytes | None
    value: bytes | None
    event: DecodedEvent | None
    error: EventDecodeError | None

    @property
    def event_type(self) -> str | None:
        """The event type, also for an undecodable record whose envelope names one."""
        if self.event is not None:
            return self.event.envelope.event_name
        return _raw_type(self.value)

    def key_fields(self) -> dict[str, Any]:
        """The identifying fields of the event's data (``*_id`` and a few categorical ones),
        without the subject field (shown as the subject)."""
        if self.event is None:
            return {}
        data = self.event.data
        return {
            name: value
            for name, value in data.model_dump(mode="json").items()
            if (name.endswith("_id") or name in KEY_FIELDS)
            and name != data.subject_field
            and not isinstance(value, dict | list)
        }

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready document: position, and the envelope or the decode error."""
        document: dict[str, Any] = {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp.isoformat(),
            "key": _text(self.key),
        }
        if self.event is not None:
            document["event"] = self.event.envelope.model_dump(mode="json", exclude_none=True)
        else:
            reason = self.error.reason.value if self.error else "unknown"
            document["error"] = {
                "reason": reason,
                "detail": self.error.detail if self.error else "",
            }
            document["value"] = _text(self.value)
        return document


def see(record: Record, *, topic: str) -> SeenRecord:
    """Decode ``record`` (read from logical ``topic``); a decode failure is kept, not raised."""
    event: DecodedEvent | None = None
    error: EventDecodeError | None = None
    try:
        event = decode(record.value, key=record.key)
    except EventDecodeError as failure:
        error = failure
    return SeenRecord(
        topic=topic,
        partition=record.partition,
        offset=record.offset,
        timestamp=datetime.fromtimestamp(record.timestamp / 1000, tz=UTC),
        key=record.key,
        value=record.value,
        event=event,
        error=error,
    )


def _raw_type(value: bytes | None) -> str | None:
    """The ``type`` an undecodable value claims, if it is JSON with a string ``type``."""
    try:
        document = json.loads(value or b"")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    claimed = document.get("type") if isinstance(document, dict) else None
    return claimed.removeprefix(TYPE_PREFIX) if isinstance(claimed, str) else None


def _text(raw: bytes | None) -> str | None:
    """Bytes as text (invalid UTF-8 replaced), ``None`` kept."""
    return None if raw is None else raw.decode("utf-8", errors="replace")
