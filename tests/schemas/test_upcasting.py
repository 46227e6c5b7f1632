"""ParticipantJoined v1 -> v2: the worked example of evolving a contract."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest

from schemas.base import EventData, Upcaster
from schemas.codec import DecodeFailure, EventDecodeError, decode
from schemas.errors import UnknownSchemaVersion
from schemas.participants import ParticipantJoined, upcast_participant_joined_v1


def test_v1_record_decodes_into_the_current_model(participant_joined_v1: dict[str, Any]) -> None:
    raw = json.dumps(participant_joined_v1).encode()
    decoded = decode(raw, key=b"emp-20001")
    assert isinstance(decoded.data, ParticipantJoined)
    assert decoded.data.languages == ["fr"]
    assert not hasattr(decoded.data, "language")
    assert decoded.envelope.schemaversion == 1
    assert decoded.envelope.data["language"] == "fr"


def test_upcaster_is_pure_and_total() -> None:
    v1 = {"participant_id": "p", "language": "en"}
    assert upcast_participant_joined_v1(v1) == {"participant_id": "p", "languages": ["en"]}
    assert v1 == {"participant_id": "p", "language": "en"}
    assert upcast_participant_joined_v1({"languages": ["de"]}) == {"languages": ["de"]}


def test_upcast_of_the_current_version_is_identity() -> None:
    data = ParticipantJoined.example().model_dump(mode="json")
    assert ParticipantJoined.upcast(2, data) == data


def test_v1_with_an_invalid_language_is_invalid_data(participant_joined_v1: dict[str, Any]) -> None:
    participant_joined_v1["data"]["language"] = "French"
    with pytest.raises(EventDecodeError) as error:
        decode(json.dumps(participant_joined_v1).encode(), key=b"emp-20001")
    assert error.value.reason is DecodeFailure.INVALID_DATA


@pytest.mark.parametrize("version", [0, -1, 3, 99])
def test_versions_outside_the_known_range_are_refused(version: int) -> None:
    with pytest.raises(UnknownSchemaVersion) as error:
        ParticipantJoined.upcast(version, {})
    assert error.value.reason is DecodeFailure.UNKNOWN_SCHEMA_VERSION


class _ThreeVersions(EventData):
    """Test double: v3 event whose v2 -> v3 upcaster is missing."""

    name: str

    event_type: ClassVar[str] = "ThreeVersions"
    schema_version: ClassVar[int] = 3
    upcasters: ClassVar[dict[int, Upcaster]] = {1: lambda data: data | {"step1": True}}


def test_a_missing_step_in_the_chain_is_refused() -> None:
    with pytest.raises(UnknownSchemaVersion, match="v2->v3"):
        _ThreeVersions.upcast(1, {"name": "x"})
    assert _ThreeVersions.upcast(3, {"name": "x"}) == {"name": "x"}
