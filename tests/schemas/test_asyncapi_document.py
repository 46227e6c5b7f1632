"""asyncapi.yaml is a valid AsyncAPI 3.0.0 document covering every topic and event.

Validated offline against the official JSON Schema of AsyncAPI 3.0.0, vendored from the
npm package @asyncapi/specs (see tests/data/asyncapi/README.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from schemas.generate import PACKAGE_DIR, channel_id
from schemas.registry import EVENTS, TOPICS, dlq_topic

SPEC_FILE = PACKAGE_DIR.parent / "tests" / "data" / "asyncapi" / "3.0.0.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((PACKAGE_DIR / "asyncapi.yaml").read_text("utf-8"))
    return loaded


@pytest.fixture(scope="module")
def spec_validator() -> Draft7Validator:
    spec = json.loads(SPEC_FILE.read_text(encoding="utf-8"))
    resource = Resource.from_contents(spec, default_specification=DRAFT7)
    registry: Registry[Any] = Registry().with_resource(spec["$id"], resource).crawl()
    return Draft7Validator(spec, registry=registry)


def test_document_is_valid_asyncapi_3(
    document: dict[str, Any], spec_validator: Draft7Validator
) -> None:
    errors = [
        f"{list(e.absolute_path)}: {e.message[:200]}" for e in spec_validator.iter_errors(document)
    ]
    assert errors == []
    assert document["asyncapi"] == "3.0.0"


def test_the_validator_does_catch_mistakes(
    document: dict[str, Any], spec_validator: Draft7Validator
) -> None:
    broken = {**document, "channels": {"x": {"address": "x", "bogus": True}}}
    assert not spec_validator.is_valid(broken)
    assert not spec_validator.is_valid({**document, "asyncapi": "2.6.0"})


def test_every_event_is_a_message(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    assert set(EVENTS) <= set(messages)
    for name, cls in EVENTS.items():
        payload = messages[name]["payload"]
        assert payload["properties"]["type"]["const"] == f"upward.{name}"
        assert payload["properties"]["schemaversion"]["const"] == cls.schema_version
        assert messages[name]["bindings"]["kafka"]["key"]["type"] == "string"
        assert messages[name]["examples"][0]["payload"]["type"] == f"upward.{name}"


def test_every_topic_and_its_dlq_is_a_channel(document: dict[str, Any]) -> None:
    channels = document["channels"]
    for topic, classes in TOPICS.items():
        channel = channels[channel_id(topic)]
        assert channel["address"] == topic
        assert set(channel["messages"]) == {cls.event_type for cls in classes}
        assert channels[channel_id(dlq_topic(topic))]["address"] == f"{topic}.dlq"


def test_operations_follow_publishers_and_subscribers(document: dict[str, Any]) -> None:
    operations = document["operations"]
    assert operations["matching_sends_upward_pairs"]["action"] == "send"
    assert operations["sessions_receives_upward_pairs"]["action"] == "receive"
    assert operations["external_sends_upward_participants"]["action"] == "send"
    assert operations["sessions_sends_upward_pairs_dlq"]["action"] == "send"
    for cls in EVENTS.values():
        for party in cls.publishers:
            operation = operations[f"{party}_sends_{channel_id(cls.topic)}"]
            refs = {message["$ref"].rsplit("/", 1)[-1] for message in operation["messages"]}
            assert cls.event_type in refs


def test_dead_letter_message_documents_its_headers(document: dict[str, Any]) -> None:
    headers = document["components"]["messages"]["DeadLetter"]["headers"]["required"]
    assert set(headers) == {
        "dlq.reason",
        "dlq.detail",
        "dlq.original.topic",
        "dlq.original.partition",
        "dlq.original.offset",
        "dlq.consumer.group",
        "dlq.failed.at",
    }


def test_every_local_reference_resolves(document: dict[str, Any]) -> None:
    for ref in _refs(document):
        node: Any = document
        for token in ref.removeprefix("#/").split("/"):
            node = node[token]
        assert isinstance(node, dict), ref


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)
