"""Unit tests of schemas.compat.breaking_changes on synthetic schemas, and the real ones."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.compat import breaking_changes
from schemas.generate import PACKAGE_DIR, envelope_schema, schema_path
from schemas.registry import EVENTS


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required is not None:
        schema["required"] = required
    return schema


BASE = _object(
    {
        "name": {"type": "string"},
        "score": {"type": "number"},
        "mode": {"$ref": "#/$defs/Mode"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
    },
    required=["name", "score", "mode"],
) | {"$defs": {"Mode": {"type": "string", "enum": ["batch", "manual"]}}}


def _changed(**properties: Any) -> dict[str, Any]:
    return BASE | {"properties": BASE["properties"] | properties}


def _without(name: str) -> dict[str, Any]:
    properties = {key: value for key, value in BASE["properties"].items() if key != name}
    return BASE | {"properties": properties, "required": [r for r in BASE["required"] if r != name]}


def test_identical_schemas_are_compatible() -> None:
    assert breaking_changes(BASE, BASE) == []


def test_removed_property_is_flagged() -> None:
    assert breaking_changes(BASE, _without("note")) == ["$.note: property removed"]


def test_renamed_property_is_flagged_with_a_hint() -> None:
    renamed = _without("name")
    renamed["properties"] = renamed["properties"] | {"title": {"type": "string"}}
    messages = breaking_changes(BASE, renamed)
    assert messages == ["$.name: property removed (renamed to title?)"]


def test_number_narrowed_to_integer_is_flagged() -> None:
    messages = breaking_changes(BASE, _changed(score={"type": "integer"}))
    assert messages == ["$.score: type narrowed from number to integer"]


def test_integer_widened_to_number_is_allowed() -> None:
    old = _changed(score={"type": "integer"})
    assert breaking_changes(old, BASE) == []


def test_removed_enum_value_is_flagged_through_ref() -> None:
    new = BASE | {"$defs": {"Mode": {"type": "string", "enum": ["batch"]}}}
    assert breaking_changes(BASE, new) == ['$.mode: enum values removed: "manual"']


def test_added_enum_value_is_allowed() -> None:
    new = BASE | {"$defs": {"Mode": {"type": "string", "enum": ["batch", "manual", "self"]}}}
    assert breaking_changes(BASE, new) == []


def test_new_required_field_without_default_is_flagged() -> None:
    new = _changed(region={"type": "string"}) | {"required": [*BASE["required"], "region"]}
    assert breaking_changes(BASE, new) == ["$.region: newly required without a default"]


def test_optional_field_added_is_allowed() -> None:
    assert breaking_changes(BASE, _changed(region={"type": "string", "default": "emea"})) == []
    assert breaking_changes(BASE, _changed(region={"type": "string"})) == []


def test_union_shrunk_is_flagged() -> None:
    messages = breaking_changes(BASE, _changed(note={"type": "string"}))
    assert messages == ["$.note: type narrowed: null no longer accepted"]


@pytest.mark.parametrize(
    ("tightened", "keyword"),
    [
        ({"type": "string", "maxLength": 10}, "maxLength"),
        ({"type": "string", "minLength": 2}, "minLength"),
        ({"type": "string", "pattern": "^[a-z]+$"}, "pattern"),
    ],
)
def test_string_tightened_is_flagged(tightened: dict[str, Any], keyword: str) -> None:
    messages = breaking_changes(BASE, _changed(name=tightened))
    assert len(messages) == 1 and keyword in messages[0] and messages[0].startswith("$.name")


def test_bounds_tightened_are_flagged_and_loosened_are_not() -> None:
    old = _changed(score={"type": "number", "minimum": 0, "maximum": 10})
    tighter = _changed(score={"type": "number", "minimum": 1, "maximum": 5})
    assert len(breaking_changes(old, tighter)) == 2
    assert breaking_changes(tighter, old) == []


def test_nested_array_items_are_compared() -> None:
    messages = breaking_changes(
        BASE, _changed(tags={"type": "array", "items": {"type": "integer"}})
    )
    assert messages == ["$.tags[]: type narrowed from string to integer"]


def test_additional_properties_tightened_is_flagged() -> None:
    assert breaking_changes(BASE, BASE | {"additionalProperties": False}) == [
        "$: additionalProperties tightened to false"
    ]


def test_frozen_v1_to_v2_of_participant_joined_is_breaking() -> None:
    v1 = json.loads((PACKAGE_DIR / schema_path("ParticipantJoined", 1)).read_text())
    v2 = json.loads((PACKAGE_DIR / schema_path("ParticipantJoined", 2)).read_text())
    messages = breaking_changes(v1, v2)
    removed = [m for m in messages if m.startswith("$.data.language: property removed")]
    assert len(removed) == 1 and "languages" in removed[0]
    assert "$.data.languages: newly required without a default" in messages


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_current_models_do_not_break_the_checked_in_schemas(name: str) -> None:
    cls = EVENTS[name]
    checked_in = json.loads((PACKAGE_DIR / schema_path(name, cls.schema_version)).read_text())
    assert breaking_changes(checked_in, envelope_schema(cls)) == []
