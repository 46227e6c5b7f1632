"""What ``encode`` writes: compact UTF-8 JSON, absent extensions left out, ``data`` as is."""

from __future__ import annotations

import json
from typing import Any

from schemas.codec import decode, encode, new_event
from schemas.envelope import CloudEvent
from schemas.participants import ParticipantJoined


def _joined(**changes: Any) -> ParticipantJoined:
    return ParticipantJoined.model_validate(
        {**ParticipantJoined.example().model_dump(mode="json"), **changes}
    )


def test_absent_extensions_are_left_out_but_nulls_inside_data_are_kept() -> None:
    event = new_event(_joined(working_hours=None), source="/upward/test")
    document = json.loads(encode(event))
    assert "region" not in document and "causationid" not in document
    assert "traceparent" not in document
    assert document["data"]["working_hours"] is None


def test_same_document_as_the_model_dump_with_absent_extensions_dropped() -> None:
    event = new_event(
        _joined(display_name="Zoë Åkesson 王"), source="/upward/test", region="eu-west"
    )
    expected = {k: v for k, v in event.model_dump(mode="json").items() if v is not None}
    raw = encode(event)
    assert json.loads(raw) == expected
    assert "Zoë Åkesson 王".encode() in raw  # UTF-8, not \\u escapes
    assert b": " not in raw and b", " not in raw  # compact separators
    assert expected["time"].endswith("Z")


def test_unknown_extension_is_kept_unless_it_is_null() -> None:
    event = new_event(_joined(), source="/upward/test")
    document = json.loads(encode(event)) | {"tenant": "acme", "partner": None}
    received = CloudEvent.model_validate(document)
    again = json.loads(encode(received))
    assert again["tenant"] == "acme" and "partner" not in again


def test_encoded_event_decodes_to_the_same_envelope_and_data() -> None:
    event = new_event(
        _joined(), source="/upward/test", traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    )
    decoded = decode(encode(event), key=event.subject.encode())
    assert decoded.envelope == event
    assert decoded.data == _joined()
