"""The catalogue of every Upward event, by name and by topic.

``EVENTS`` and ``TOPICS`` are built once at import time and checked for consistency
(every class declares its topic, key field, version and parties), so a mis-declared event
fails on import instead of on the wire.
"""

from __future__ import annotations

from schemas import feedback, notifications, pairs, participants, programs, sessions
from schemas.base import EventData
from schemas.errors import UnknownEventType
from schemas.primitives import PARTIES

_CATALOGUE: tuple[type[EventData], ...] = (
    programs.ProgramCreated,
    programs.ProgramUpdated,
    programs.ProgramClosed,
    participants.ParticipantJoined,
    participants.ParticipantUpdated,
    participants.ParticipantScreened,
    participants.TrainingCompleted,
    participants.ParticipantLeft,
    participants.ParticipantForgotten,
    participants.ErasureCompleted,
    pairs.PairProposed,
    pairs.PairAccepted,
    pairs.PairDeclined,
    pairs.PairFormed,
    pairs.PairEnded,
    pairs.MatchRunCompleted,
    sessions.SessionScheduled,
    sessions.SessionRescheduled,
    sessions.SessionCancelled,
    sessions.SessionHeld,
    sessions.SessionMissed,
    sessions.PairStalled,
    feedback.FeedbackRequested,
    feedback.FeedbackSubmitted,
    feedback.PairHealthChanged,
    feedback.PairAtRisk,
    notifications.NotificationSent,
    notifications.NotificationFailed,
)

TOPIC_NAMES: tuple[str, ...] = (
    programs.TOPIC,
    participants.TOPIC,
    pairs.TOPIC,
    sessions.TOPIC,
    feedback.TOPIC,
    notifications.TOPIC,
)


def _check_declaration(cls: type[EventData]) -> None:
    """Fail fast when an event class misses or misstates one of its class variables."""
    problems: list[str] = []
    if cls.__dict__.get("event_type") != cls.__name__:
        problems.append("event_type must equal the class name and be set on the class")
    if cls.topic not in TOPIC_NAMES:
        problems.append(f"unknown topic {cls.topic!r}")
    if cls.subject_field not in cls.model_fields:
        problems.append(f"subject_field {cls.subject_field!r} is not a field")
    if cls.schema_version < 1:
        problems.append("schema_version must be >= 1")
    if not cls.publishers or not set(cls.publishers + cls.subscribers) <= set(PARTIES):
        problems.append(f"publishers/subscribers must be among {PARTIES}")
    if problems:
        raise TypeError(f"{cls.__name__}: " + "; ".join(problems))


def _build_events() -> dict[str, type[EventData]]:
    for cls in _CATALOGUE:
        _check_declaration(cls)
    return {cls.event_type: cls for cls in _CATALOGUE}


EVENTS: dict[str, type[EventData]] = _build_events()
"""Event name (e.g. ``PairFormed``) -> payload class."""

TOPICS: dict[str, tuple[type[EventData], ...]] = {
    topic: tuple(cls for cls in _CATALOGUE if cls.topic == topic) for topic in TOPIC_NAMES
}
"""Topic (e.g. ``upward.pairs``) -> the events that travel on it, in catalogue order."""


def dlq_topic(topic: str) -> str:
    """Return the dead-letter topic of ``topic``: ``<topic>.dlq``."""
    return f"{topic}.dlq"


def event_class(event_name: str) -> type[EventData]:
    """Return the payload class of ``event_name``; raise ``UnknownEventType`` if unknown."""
    try:
        return EVENTS[event_name]
    except KeyError:
        raise UnknownEventType(f"unknown event type {event_name!r}") from None
