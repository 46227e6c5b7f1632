"""Errors raised while decoding, validating and upcasting events.

Every failure a consumer can meet on the wire is an :class:`EventDecodeError` with a
machine-readable :class:`DecodeFailure` reason. The runtime kit copies that reason into the
``dlq.reason`` header when it dead-letters a message, so the values below are part of the
public contract: add new ones, never rename them.
"""

from __future__ import annotations

from enum import StrEnum


class DecodeFailure(StrEnum):
    """Why a Kafka record could not be turned into a validated event."""

    INVALID_JSON = "invalid_json"
    INVALID_ENVELOPE = "invalid_envelope"
    UNKNOWN_TYPE = "unknown_type"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    INVALID_DATA = "invalid_data"
    OVERSIZED = "oversized"
    MISSING_KEY = "missing_key"
    WRONG_KEY = "wrong_key"


class EventDecodeError(Exception):
    """A record that can never be processed: it belongs in the dead-letter topic."""

    def __init__(self, reason: DecodeFailure, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class UnknownEventType(EventDecodeError):
    """The envelope names an event type that the registry does not know."""

    def __init__(self, detail: str) -> None:
        super().__init__(DecodeFailure.UNKNOWN_TYPE, detail)


class UnknownSchemaVersion(EventDecodeError):
    """The schema version is below 1, newer than this code, or has no upcaster path."""

    def __init__(self, detail: str) -> None:
        super().__init__(DecodeFailure.UNKNOWN_SCHEMA_VERSION, detail)
