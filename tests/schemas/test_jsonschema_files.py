"""The checked-in JSON Schemas are valid draft 2020-12 and match real events."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from schemas.codec import encode, new_event
from schemas.generate import PACKAGE_DIR, schema_path
from schemas.registry import EVENTS

SCHEMA_FILES = sorted((PACKAGE_DIR / "jsonschema").glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def _sample_for(path: Path, participant_joined_v1: dict[str, Any]) -> dict[str, Any]:
    if path.name == "ParticipantJoined.v1.json":
        return participant_joined_v1
    event_name = path.name.split(".")[0]
    data = EVENTS[event_name].example()
    event = new_event(data, source="/upward/test", region="eu-west", causationid="cmd-1")
    document: dict[str, Any] = json.loads(encode(event))
    return document


def test_every_event_has_its_current_schema_file() -> None:
    for name, cls in EVENTS.items():
        assert (PACKAGE_DIR / schema_path(name, cls.schema_version)).is_file()
    assert (PACKAGE_DIR / schema_path("ParticipantJoined", 1)).is_file()


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda path: path.name)
def test_schema_is_valid_draft_2020_12(path: Path) -> None:
    schema = _load(path)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(path.name.removesuffix(".json").replace(".v", ":v"))
    assert schema["title"] and schema["description"]


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda path: path.name)
def test_schema_accepts_a_sample_event(path: Path, participant_joined_v1: dict[str, Any]) -> None:
    validator = Draft202012Validator(_load(path))
    validator.validate(_sample_for(path, participant_joined_v1))
    for example in _load(path)["examples"]:
        validator.validate(example)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda path: path.name)
def test_schema_rejects_wrong_samples(path: Path, participant_joined_v1: dict[str, Any]) -> None:
    validator = Draft202012Validator(_load(path))
    sample = _sample_for(path, participant_joined_v1)
    wrong_type = sample | {"type": "upward.SomethingElse"}
    wrong_version = sample | {"schemaversion": sample["schemaversion"] + 1}
    missing_data_field = copy.deepcopy(sample)
    missing_data_field["data"].pop(_first_required_data_field(path))
    wrong_data_type = copy.deepcopy(sample)
    wrong_data_type["data"][_first_required_data_field(path)] = {"not": "a scalar"}
    for wrong in (wrong_type, wrong_version, missing_data_field, wrong_data_type):
        assert not validator.is_valid(wrong)


def _first_required_data_field(path: Path) -> str:
    required: list[str] = _load(path)["properties"]["data"]["required"]
    return required[0]


def test_frozen_v1_and_current_v2_disagree_on_language(
    participant_joined_v1: dict[str, Any],
) -> None:
    v1 = Draft202012Validator(_load(PACKAGE_DIR / schema_path("ParticipantJoined", 1)))
    v2 = Draft202012Validator(_load(PACKAGE_DIR / schema_path("ParticipantJoined", 2)))
    assert v1.is_valid(participant_joined_v1)
    as_v2 = participant_joined_v1 | {"schemaversion": 2}
    assert not v2.is_valid(as_v2)
