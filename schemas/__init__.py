"""Upward's event contracts: the platform's public API.

* ``schemas.envelope`` - the CloudEvents 1.0 envelope (:class:`CloudEvent`).
* ``schemas.base`` - :class:`EventData`, the base of every payload, and upcasting.
* ``schemas.programs`` ... ``schemas.notifications`` - one module per Kafka topic.
* ``schemas.registry`` - ``EVENTS``, ``TOPICS``, ``event_class``, ``dlq_topic``.
* ``schemas.codec`` - ``decode``, ``encode``, ``new_event`` and the decode errors.
* ``schemas.compat`` - ``breaking_changes`` between two JSON Schemas.
* ``schemas.generate`` - writes ``jsonschema/*.json`` and ``asyncapi.yaml``.

See docs/events.md for the conventions and the versioning policy.
"""

from schemas.base import EventData
from schemas.codec import DecodedEvent, decode, encode, new_event
from schemas.envelope import CloudEvent
from schemas.errors import DecodeFailure, EventDecodeError, UnknownEventType, UnknownSchemaVersion
from schemas.registry import EVENTS, TOPICS, dlq_topic, event_class

__all__ = [
    "EVENTS",
    "TOPICS",
    "CloudEvent",
    "DecodeFailure",
    "DecodedEvent",
    "EventData",
    "EventDecodeError",
    "UnknownEventType",
    "UnknownSchemaVersion",
    "decode",
    "dlq_topic",
    "encode",
    "event_class",
    "new_event",
]
