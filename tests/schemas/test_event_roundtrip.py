"""Every registered event: example, encode/decode round trip, key, registry wiring."""

from __future__ import annotations

import pytest

from schemas.base import EventData
from schemas.codec import DecodeFailure, EventDecodeError, decode, encode, new_event
from schemas.errors import UnknownEventType
from schemas.pairs import PairFormed
from schemas.primitives import PARTIES
from schemas.registry import EVENTS, TOPICS, dlq_topic, event_class

ALL_EVENTS = sorted(EVENTS.values(), key=lambda cls: cls.event_type)
EXPECTED_TOPICS = {
    "upward.programs",
    "upward.participants",
    "upward.pairs",
    "upward.sessions",
    "upward.feedback",
    "upward.notifications",
}
BRIEF_CATALOGUE = {
    "ProgramCreated", "ProgramUpdated", "ProgramClosed",
    "ParticipantJoined", "ParticipantUpdated", "ParticipantScreened", "TrainingCompleted",
    "ParticipantLeft", "ParticipantForgotten", "ErasureCompleted",
    "PairProposed", "PairAccepted", "PairDeclined", "PairFormed", "PairEnded",
    "MatchRunCompleted",
    "SessionScheduled", "SessionRescheduled", "SessionCancelled", "SessionHeld",
    "SessionMissed", "PairStalled",
    "FeedbackRequested", "FeedbackSubmitted", "PairHealthChanged", "PairAtRisk",
    "NotificationSent", "NotificationFailed",
}  # fmt: skip


def _ids(cls: type[EventData]) -> str:
    return cls.event_type


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=_ids)
def test_example_round_trips_through_the_wire(cls: type[EventData]) -> None:
    data = cls.example()
    envelope = new_event(data, source="/upward/test")
    decoded = decode(encode(envelope), key=data.subject().encode())
    assert decoded.data == data
    assert type(decoded.data) is cls
    assert decoded.envelope == envelope
    assert decoded.envelope.subject == data.subject()
    assert decoded.envelope.type == f"upward.{cls.event_type}"
    assert decoded.envelope.schemaversion == cls.schema_version


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=_ids)
def test_key_is_checked(cls: type[EventData]) -> None:
    raw = encode(new_event(cls.example(), source="/upward/test"))
    for key in (None, b""):
        with pytest.raises(EventDecodeError) as missing:
            decode(raw, key=key)
        assert missing.value.reason is DecodeFailure.MISSING_KEY
    with pytest.raises(EventDecodeError) as wrong:
        decode(raw, key=b"someone-else")
    assert wrong.value.reason is DecodeFailure.WRONG_KEY
    assert decode(raw, check_key=False).data == cls.example()


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=_ids)
def test_payload_is_documented(cls: type[EventData]) -> None:
    assert cls.__doc__ and cls.__doc__.strip()
    undocumented = [name for name, info in cls.model_fields.items() if not info.description]
    assert undocumented == []


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=_ids)
def test_declaration_is_consistent(cls: type[EventData]) -> None:
    assert cls.subject_field in cls.model_fields
    assert cls.topic in TOPICS and cls in TOPICS[cls.topic]
    assert set(cls.publishers) | set(cls.subscribers) <= set(PARTIES)
    assert cls.schema_version >= 1
    assert sorted(cls.upcasters) == list(range(1, cls.schema_version))
    assert cls.example().model_config.get("frozen") is True


def test_catalogue_covers_the_brief() -> None:
    assert set(EVENTS) == BRIEF_CATALOGUE
    assert set(TOPICS) == EXPECTED_TOPICS
    assert sum(len(classes) for classes in TOPICS.values()) == len(EVENTS)


def test_registry_lookups() -> None:
    assert event_class("PairFormed").topic == "upward.pairs"
    assert dlq_topic("upward.pairs") == "upward.pairs.dlq"
    with pytest.raises(UnknownEventType) as error:
        event_class("PairMarried")
    assert error.value.reason is DecodeFailure.UNKNOWN_TYPE


def test_examples_are_immutable() -> None:
    example = PairFormed.example()
    with pytest.raises(ValueError, match="frozen"):
        example.pair_id = "other"  # type: ignore[misc]
