"""Fuzzing ``schemas.codec.decode``: whatever arrives, a decoded event or a dead-letter reason.

Any other exception would crash a consumer instead of dead-lettering the record, so the
property is: ``decode`` returns a :class:`DecodedEvent` or raises
:class:`EventDecodeError` with a known reason and a non-empty detail, on arbitrary bytes,
on valid envelopes of every catalogue event with keys removed or values replaced
(envelope and payload), on wrong types, versions and record keys.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import DecodedEvent, DecodeFailure, EventDecodeError, decode, encode, new_event
from schemas.registry import EVENTS

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def valid_document(event_name: str) -> dict[str, Any]:
    """A valid envelope (as JSON) of the catalogue event ``event_name``."""
    event = new_event(EVENTS[event_name].example(), source="/fuzz")
    document: dict[str, Any] = json.loads(encode(event))
    return document


def decode_outcome(raw: bytes | None, key: bytes | None) -> DecodedEvent | EventDecodeError:
    """``decode``'s answer; any exception other than EventDecodeError fails the test."""
    try:
        return decode(raw, key=key)
    except EventDecodeError as error:
        assert isinstance(error.reason, DecodeFailure)
        assert error.detail, error.reason
        return error


@st.composite
def mutated_records(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    """A valid record of some event with one to three mutations of envelope or payload."""
    document = valid_document(draw(st.sampled_from(sorted(EVENTS))))
    key: bytes | None = str(document["subject"]).encode()
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(["envelope", "data", "key"]))
        if target == "key":
            key = draw(st.none() | st.binary(max_size=40))
            continue
        where = document if target == "envelope" else document.get("data")
        if not isinstance(where, dict) or not where:
            continue
        name = draw(st.sampled_from(sorted(where)))
        if draw(st.booleans()):
            del where[name]
        else:
            where[name] = draw(JSON_VALUES)
    return json.dumps(document).encode(), key


@FUZZ
@given(raw=st.none() | st.binary(max_size=300), key=st.none() | st.binary(max_size=20))
def test_arbitrary_bytes_never_escape_as_another_exception(
    raw: bytes | None, key: bytes | None
) -> None:
    outcome = decode_outcome(raw, key)
    assert isinstance(outcome, EventDecodeError)  # random bytes are never a valid event


@FUZZ
@given(document=JSON_VALUES, key=st.none() | st.binary(max_size=20))
def test_arbitrary_json_is_refused_as_an_envelope(document: Any, key: bytes | None) -> None:
    outcome = decode_outcome(json.dumps(document).encode(), key)
    assert isinstance(outcome, EventDecodeError)


@FUZZ
@given(record=mutated_records())
def test_mutated_envelopes_decode_or_carry_a_reason(record: tuple[bytes, bytes | None]) -> None:
    raw, key = record
    outcome = decode_outcome(raw, key)
    if isinstance(outcome, DecodedEvent):  # a mutation the contract tolerates (e.g. an extra)
        assert key == outcome.envelope.subject.encode()


@FUZZ
@given(
    event_name=st.sampled_from(sorted(EVENTS)),
    event_type=st.text(max_size=60) | st.sampled_from([f"upward.{n}" for n in EVENTS]),
    version=JSON_VALUES,
)
def test_wrong_types_and_versions_carry_a_reason(
    event_name: str, event_type: str, version: Any
) -> None:
    document = {**valid_document(event_name), "type": event_type, "schemaversion": version}
    outcome = decode_outcome(json.dumps(document).encode(), str(document["subject"]).encode())
    if isinstance(outcome, DecodedEvent):
        assert outcome.envelope.type == event_type


def test_every_catalogue_example_still_decodes() -> None:
    """The fuzzing starts from valid records: each catalogue example decodes as such."""
    for name in EVENTS:
        document = valid_document(name)
        outcome = decode_outcome(json.dumps(document).encode(), str(document["subject"]).encode())
        assert isinstance(outcome, DecodedEvent), (name, outcome)
