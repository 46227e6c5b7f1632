"""Each DecodeFailure reason is produced by the bad input it names; envelope defaults."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from schemas.codec import (
    DecodeFailure,
    EventDecodeError,
    UnknownEventType,
    UnknownSchemaVersion,
    decode,
    encode,
    new_event,
)
from schemas.pairs import PairFormed

KEY = PairFormed.example().subject().encode()


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        encode(new_event(PairFormed.example(), source="/upward/matching"))
    )
    return document


def _raw(document: Any) -> bytes:
    return json.dumps(document).encode()


def _reason(raw: bytes | None, *, key: bytes | None = KEY, **options: Any) -> DecodeFailure:
    with pytest.raises(EventDecodeError) as error:
        decode(raw, key=key, **options)
    assert error.value.detail
    return error.value.reason


def _with(**changes: Any) -> bytes:
    return _raw(_document() | changes)


def _without(name: str) -> bytes:
    document = _document()
    del document[name]
    return _raw(document)


def _with_data(**changes: Any) -> bytes:
    document = _document()
    document["data"] |= changes
    return _raw(document)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", DecodeFailure.INVALID_JSON),
        (b"\xff\xfe\x00garbage", DecodeFailure.INVALID_JSON),
        (b"", DecodeFailure.INVALID_JSON),
        (None, DecodeFailure.INVALID_JSON),
        (b"[" * 5000 + b"]" * 5000, DecodeFailure.INVALID_JSON),  # deeper than the parser
        (b"[1, 2, 3]", DecodeFailure.INVALID_ENVELOPE),
        (_without("type"), DecodeFailure.INVALID_ENVELOPE),
        (_with(specversion="0.3"), DecodeFailure.INVALID_ENVELOPE),
        (_with(time="2025-03-03T09:00:00"), DecodeFailure.INVALID_ENVELOPE),
        (_with(traceparent="not-a-trace"), DecodeFailure.INVALID_ENVELOPE),
        (_with(type="com.example.Other"), DecodeFailure.INVALID_ENVELOPE),
        (_with(type="upward.PairMarried"), DecodeFailure.UNKNOWN_TYPE),
        (_with(schemaversion=99), DecodeFailure.UNKNOWN_SCHEMA_VERSION),
        (_with_data(score=-1), DecodeFailure.INVALID_DATA),
        (_with_data(mode="telepathy"), DecodeFailure.INVALID_DATA),
        (_with_data(topics=[]), DecodeFailure.INVALID_DATA),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_input_gives_its_reason(raw: bytes | None, reason: DecodeFailure) -> None:
    assert _reason(raw) is reason


def test_subject_must_match_the_key_field_of_data() -> None:
    raw = _with(subject="pair-other")
    assert _reason(raw, key=b"pair-other") is DecodeFailure.INVALID_DATA


def test_oversized_is_checked_before_parsing() -> None:
    raw = encode(new_event(PairFormed.example(), source="/upward/matching"))
    assert _reason(raw, max_bytes=len(raw) - 1) is DecodeFailure.OVERSIZED
    assert _reason(b"x" * 2_000_000) is DecodeFailure.OVERSIZED
    assert decode(raw, key=KEY, max_bytes=len(raw)).data == PairFormed.example()


def test_key_failures() -> None:
    raw = encode(new_event(PairFormed.example(), source="/upward/matching"))
    assert _reason(raw, key=None) is DecodeFailure.MISSING_KEY
    assert _reason(raw, key=b"pair-other") is DecodeFailure.WRONG_KEY


def test_key_is_checked_last() -> None:
    assert _reason(_with(type="upward.PairMarried"), key=None) is DecodeFailure.UNKNOWN_TYPE


def test_specific_error_classes() -> None:
    with pytest.raises(UnknownEventType):
        decode(_with(type="upward.PairMarried"), key=KEY)
    with pytest.raises(UnknownSchemaVersion):
        decode(_with(schemaversion=99), key=KEY)


def test_new_event_fills_the_envelope() -> None:
    data = PairFormed.example()
    event = new_event(data, source="/upward/matching", region="eu-west")
    assert event.specversion == "1.0"
    assert event.type == "upward.PairFormed" and event.event_name == "PairFormed"
    assert event.subject == data.pair_id
    assert event.schemaversion == PairFormed.schema_version
    assert event.correlationid == event.id
    assert event.time.tzinfo is not None
    assert abs(datetime.now(UTC) - event.time) < timedelta(minutes=1)
    assert event.datacontenttype == "application/json"


def test_new_event_keeps_given_ids() -> None:
    event = new_event(
        PairFormed.example(),
        source="/upward/matching",
        event_id="evt-1",
        correlationid="corr-1",
        causationid="cause-1",
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )
    assert (event.id, event.correlationid, event.causationid) == ("evt-1", "corr-1", "cause-1")


def test_encode_is_compact_utc_and_omits_absent_extensions() -> None:
    paris = timezone(timedelta(hours=2))
    event = new_event(
        PairFormed.example(),
        source="/upward/matching",
        time=datetime(2025, 5, 1, 11, 0, tzinfo=paris),
    )
    raw = encode(event)
    document = json.loads(raw)
    assert document["time"] == "2025-05-01T09:00:00Z"
    assert b": " not in raw and b", " not in raw
    assert "region" not in document and "causationid" not in document


def test_unknown_extensions_are_kept() -> None:
    raw = _with(partitionkey="abc", comexampleextension1="value")
    decoded = decode(raw, key=KEY)
    assert decoded.envelope.model_extra == {"partitionkey": "abc", "comexampleextension1": "value"}
    assert json.loads(encode(decoded.envelope))["partitionkey"] == "abc"


def test_unknown_data_fields_are_ignored() -> None:
    decoded = decode(_with_data(future_field="new in a later minor release"), key=KEY)
    assert decoded.data == PairFormed.example()
