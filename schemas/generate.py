"""Generate the checked-in JSON Schemas and the AsyncAPI document from the models.

Usage::

    python -m schemas.generate           # write schemas/jsonschema/*.json, schemas/asyncapi.yaml
    python -m schemas.generate --check   # write nothing; exit 1 if a file is stale

One JSON Schema (draft 2020-12) is written per event at its *current* version, as
``jsonschema/<Event>.v<N>.json``, describing the whole CloudEvents envelope. Files of
older versions are frozen history: never regenerated, never deleted, and required to
exist. Before overwriting a current-version file, the checked-in copy is compared with
the new one (``schemas.compat``); a breaking change is refused: bump ``schema_version``
and add an upcaster instead. Output is deterministic (sorted keys) so ``--check`` in CI
fails exactly when someone changed a model without regenerating.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from schemas.base import EventData
from schemas.codec import encode, new_event
from schemas.compat import breaking_changes
from schemas.envelope import TYPE_PREFIX, CloudEvent
from schemas.errors import DecodeFailure
from schemas.primitives import EXTERNAL, PARTIES
from schemas.registry import EVENTS, TOPICS, dlq_topic

PACKAGE_DIR = Path(__file__).resolve().parent
JSONSCHEMA_DIR = "jsonschema"
ASYNCAPI_FILE = "asyncapi.yaml"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
API_VERSION = "1.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
EXAMPLE_TIME = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
EXAMPLE_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
_FILE_NAME = re.compile(r"^(?P<event>[A-Za-z0-9]+)\.v(?P<version>[0-9]+)\.json$")


class BreakingChangeError(Exception):
    """Regenerating would silently break a published contract."""


@dataclass
class GenerationReport:
    """What ``check`` found in an output directory; empty lists mean up to date."""

    stale: list[str] = field(default_factory=list)
    breaking: list[str] = field(default_factory=list)
    missing_history: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        """True when nothing is stale, breaking, missing or unexpected."""
        return not (self.stale or self.breaking or self.missing_history or self.unexpected)

    def lines(self) -> list[str]:
        """Human-readable lines describing every problem."""
        return (
            [f"stale: {path}" for path in self.stale]
            + [f"breaking change: {message}" for message in self.breaking]
            + [f"missing frozen schema: {path}" for path in self.missing_history]
            + [f"unexpected file (renamed or removed event?): {path}" for path in self.unexpected]
        )


# --- JSON Schema per event -------------------------------------------------------------


def schema_path(event_name: str, version: int) -> str:
    """Relative path of the JSON Schema of one event version, e.g. ``jsonschema/X.v1.json``."""
    return f"{JSONSCHEMA_DIR}/{event_name}.v{version}.json"


def example_envelope(cls: type[EventData], data: EventData | None = None) -> CloudEvent:
    """Return the deterministic example envelope of an event (docs, tests, AsyncAPI)."""
    payload = data if data is not None else cls.example()
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:upward:example:{cls.event_type}"))
    return new_event(
        payload,
        source=f"/upward/{cls.publishers[0]}",
        region="eu-west",
        traceparent=EXAMPLE_TRACEPARENT,
        event_id=event_id,
        time=EXAMPLE_TIME,
    )


def envelope_schema(cls: type[EventData], example: dict[str, Any] | None = None) -> dict[str, Any]:
    """JSON Schema (2020-12) of the whole CloudEvents envelope carrying ``cls``."""
    name, version = cls.event_type, cls.schema_version
    payload = cls.model_json_schema(mode="validation")
    definitions = payload.pop("$defs", {})
    envelope = CloudEvent.model_json_schema(mode="validation")
    envelope["properties"].update(_specific_properties(cls, payload))
    envelope["required"] = sorted(set(envelope.get("required", [])) | {"type", "subject"})
    if example is None:
        example = json.loads(encode(example_envelope(cls)))
    return envelope | {
        "$schema": DRAFT_2020_12,
        "$id": f"urn:upward:schema:{name}:v{version}",
        "title": f"{name} v{version}",
        "description": _envelope_description(cls),
        "$defs": definitions,
        "examples": [example],
        "x-upward": _party_info(cls),
    }


def _specific_properties(cls: type[EventData], payload: dict[str, Any]) -> dict[str, Any]:
    name, version = cls.event_type, cls.schema_version
    return {
        "type": {"const": f"{TYPE_PREFIX}{name}", "type": "string", "description": "Event type."},
        "schemaversion": {
            "const": version,
            "type": "integer",
            "description": "Version of the `data` schema.",
        },
        "subject": {
            "type": "string",
            "minLength": 1,
            "description": f"Equals `data.{cls.subject_field}`; also the Kafka record key.",
        },
        "data": payload,
    }


def _envelope_description(cls: type[EventData]) -> str:
    return (
        f"CloudEvents 1.0 envelope of `{TYPE_PREFIX}{cls.event_type}`, data schema version "
        f"{cls.schema_version}. Topic `{cls.topic}`; Kafka key = `subject` = "
        f"`data.{cls.subject_field}`. {_summary(cls)}"
    )


def _party_info(cls: type[EventData]) -> dict[str, Any]:
    return {
        "topic": cls.topic,
        "key": f"data.{cls.subject_field}",
        "publishers": list(cls.publishers),
        "subscribers": list(cls.subscribers),
    }


def _summary(cls: type[EventData]) -> str:
    return (cls.__doc__ or cls.event_type).strip().splitlines()[0]


# --- AsyncAPI 3.0 ----------------------------------------------------------------------


def channel_id(topic: str) -> str:
    """AsyncAPI channel id of a Kafka topic: dots become underscores."""
    return topic.replace(".", "_")


def asyncapi_document() -> dict[str, Any]:
    """Build the AsyncAPI 3.0.0 document of every topic, DLQ and event."""
    shared_schemas: dict[str, Any] = {}
    messages = {name: _message(cls, shared_schemas) for name, cls in EVENTS.items()}
    messages["DeadLetter"] = _dead_letter_message()
    return {
        "asyncapi": "3.0.0",
        "info": _info(),
        "defaultContentType": "application/cloudevents+json",
        "servers": {
            "local": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "Single-node KRaft broker of the local stack (`make demo`).",
            }
        },
        "channels": _channels(),
        "operations": _operations(),
        "components": {"messages": messages, "schemas": shared_schemas},
    }


def _info() -> dict[str, Any]:
    return {
        "title": "Upward",
        "version": API_VERSION,
        "description": (
            "Events of Upward, the reverse-mentoring platform. Every record value is a "
            "CloudEvents 1.0 envelope in structured mode (compact UTF-8 JSON) whose `type` is "
            "`upward.<EventName>` and whose `schemaversion` extension gives the version of "
            "`data`. The Kafka key is the envelope `subject`, the aggregate id, so all events "
            "of one aggregate are ordered. Delivery is at-least-once: consumers de-duplicate "
            "on `id`. A record that cannot be decoded or processed goes to `<topic>.dlq`, "
            "unchanged, with `dlq.*` headers. Each message below is the current version; "
            "older versions are in `schemas/jsonschema/` and are upcast on decode. "
            "See docs/events.md."
        ),
    }


def _channels() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    for topic, classes in TOPICS.items():
        channels[channel_id(topic)] = {
            "address": topic,
            "title": topic,
            "description": f"Events about {_aggregate_words(classes)}.",
            "messages": {cls.event_type: _message_ref(cls.event_type) for cls in classes},
            "bindings": {"kafka": {"topic": topic, "bindingVersion": KAFKA_BINDING_VERSION}},
        }
        dead = dlq_topic(topic)
        channels[channel_id(dead)] = {
            "address": dead,
            "title": dead,
            "description": f"Dead letters of {topic}: original record plus `dlq.*` headers.",
            "messages": {"DeadLetter": _message_ref("DeadLetter")},
            "bindings": {"kafka": {"topic": dead, "bindingVersion": KAFKA_BINDING_VERSION}},
        }
    return channels


def _aggregate_words(classes: Sequence[type[EventData]]) -> str:
    keys = sorted({cls.subject_field for cls in classes})
    return f"{classes[0].topic.removeprefix(TYPE_PREFIX)}, keyed by {' or '.join(keys)}"


def _message_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/messages/{name}"}


def _operations() -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for topic, classes in TOPICS.items():
        for party in PARTIES:
            sent = [cls for cls in classes if party in cls.publishers]
            received = [cls for cls in classes if party in cls.subscribers]
            if sent:
                operations[f"{party}_sends_{channel_id(topic)}"] = _operation("send", topic, sent)
            if received:
                operation = _operation("receive", topic, received)
                operations[f"{party}_receives_{channel_id(topic)}"] = operation
            if received and party != EXTERNAL:
                operations[f"{party}_sends_{channel_id(dlq_topic(topic))}"] = _dlq_operation(topic)
    return operations


def _operation(action: str, topic: str, classes: Sequence[type[EventData]]) -> dict[str, Any]:
    channel = channel_id(topic)
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [
            {"$ref": f"#/channels/{channel}/messages/{cls.event_type}"} for cls in classes
        ],
    }


def _dlq_operation(topic: str) -> dict[str, Any]:
    channel = channel_id(dlq_topic(topic))
    return {
        "action": "send",
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/DeadLetter"}],
        "summary": f"Dead-letters records of {topic} that this consumer cannot process.",
    }


def _message(cls: type[EventData], shared_schemas: dict[str, Any]) -> dict[str, Any]:
    name = cls.event_type
    payload = cls.model_json_schema(mode="validation", ref_template="#/components/schemas/{model}")
    for def_name, definition in payload.pop("$defs", {}).items():
        _add_shared_schema(shared_schemas, def_name, definition)
    _add_shared_schema(shared_schemas, name, payload)
    envelope = CloudEvent.model_json_schema(mode="validation")
    envelope["properties"].update(
        _specific_properties(cls, {"$ref": f"#/components/schemas/{name}"})
    )
    envelope["required"] = sorted(set(envelope.get("required", [])) | {"type", "subject"})
    envelope["title"] = f"{name} envelope"
    return {
        "name": name,
        "title": name,
        "summary": _summary(cls),
        "description": _envelope_description(cls)
        + f" JSON Schema: `schemas/{schema_path(name, cls.schema_version)}`.",
        "contentType": "application/cloudevents+json",
        "payload": envelope,
        "headers": _event_headers(),
        "correlationId": {"location": "$message.payload#/correlationid"},
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": f"`data.{cls.subject_field}` (= envelope `subject`).",
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "examples": [
            {"name": f"{name}Example", "payload": json.loads(encode(example_envelope(cls)))}
        ],
        "x-upward": _party_info(cls) | {"schemaversion": cls.schema_version},
    }


def _add_shared_schema(shared: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    if name in shared and shared[name] != schema:
        raise ValueError(f"two different schemas are both named {name!r}: rename one model")
    shared[name] = schema


def _event_headers() -> dict[str, Any]:
    """Informational headers set by Upward producers; consumers never depend on them."""
    return {
        "type": "object",
        "properties": {
            "content-type": {
                "type": "string",
                "description": "Structured-mode CloudEvent.",
                "examples": [CLOUDEVENTS_CONTENT_TYPE],
            },
            "ce_id": {"type": "string", "description": "Copy of the envelope `id`."},
            "ce_type": {"type": "string", "description": "Copy of the envelope `type`."},
        },
    }


def _dead_letter_message() -> dict[str, Any]:
    header = {"type": "string"}
    return {
        "name": "DeadLetter",
        "title": "Dead letter",
        "summary": "A record a consumer could not process, copied unchanged.",
        "description": (
            "Value and key are the original record's bytes, unchanged (they may be invalid "
            "JSON). Why and where it failed is in the `dlq.*` headers. `dlq.reason` is one of "
            f"the decode failures ({', '.join(DecodeFailure)}) or a reason of the runtime kit "
            "for a record that decoded but could not be handled."
        ),
        "payload": {"description": "The original record value, byte for byte."},
        "headers": {
            "type": "object",
            "required": sorted(_DLQ_HEADERS),
            "properties": {
                name: header | {"description": text}
                for name, text in (_DLQ_HEADERS | _OPTIONAL_DLQ_HEADERS).items()
            },
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original record key, unchanged."},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


_DLQ_HEADERS = {
    "dlq.reason": "Machine-readable reason, e.g. `invalid_data`.",
    "dlq.detail": "Human-readable detail (validation errors, exception message).",
    "dlq.original.topic": "Topic the record was read from.",
    "dlq.original.partition": "Its partition, in decimal.",
    "dlq.original.offset": "Its offset, in decimal.",
    "dlq.consumer.group": "Consumer group that gave up on it.",
    "dlq.failed.at": "When it was dead-lettered, RFC 3339 UTC.",
}
_OPTIONAL_DLQ_HEADERS = {
    "dlq.error": "Class name of the exception that caused it, when there was one.",
}


# --- Catalogue table of docs/events.md -------------------------------------------------


def catalogue_markdown() -> str:
    """The per-topic event tables of docs/events.md (a test keeps the doc in sync)."""
    sections = [_topic_table(topic, classes) for topic, classes in TOPICS.items()]
    return "\n".join(sections)


def _topic_table(topic: str, classes: Sequence[type[EventData]]) -> str:
    rows = [
        f"### `{topic}` (dead letters: `{dlq_topic(topic)}`)",
        "",
        "| Event | v | Key | Published by | Subscribed by | Meaning |",
        "|---|---|---|---|---|---|",
    ]
    rows += [
        f"| {cls.event_type} | {cls.schema_version} | `{cls.subject_field}` | "
        f"{', '.join(cls.publishers)} | {', '.join(cls.subscribers)} | {_summary(cls)} |"
        for cls in classes
    ]
    return "\n".join(rows) + "\n"


# --- Rendering, checking, writing -------------------------------------------------------


def render_json(document: dict[str, Any]) -> str:
    """Deterministic JSON text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_yaml(document: dict[str, Any]) -> str:
    """Deterministic YAML text: sorted keys, block style."""
    return yaml.safe_dump(document, sort_keys=True, allow_unicode=True, width=100)


def render() -> dict[str, str]:
    """Every generated file: relative path -> content (current versions + AsyncAPI)."""
    return dict(_rendered())


@functools.cache
def _rendered() -> tuple[tuple[str, str], ...]:
    """Render once per process: the models cannot change while it runs."""
    files = [
        (schema_path(name, cls.schema_version), render_json(envelope_schema(cls)))
        for name, cls in EVENTS.items()
    ]
    return (*files, (ASYNCAPI_FILE, render_yaml(asyncapi_document())))


def frozen_history() -> list[str]:
    """Relative paths of the frozen schemas of older versions, which must exist."""
    return [
        schema_path(name, version)
        for name, cls in EVENTS.items()
        for version in range(1, cls.schema_version)
    ]


def check(out_dir: Path = PACKAGE_DIR) -> GenerationReport:
    """Compare ``out_dir`` with freshly rendered files; write nothing."""
    files = render()
    report = GenerationReport()
    for relative, content in files.items():
        target = out_dir / relative
        existing = target.read_text(encoding="utf-8") if target.exists() else None
        if existing != content:
            report.stale.append(relative)
        if existing is not None and relative.endswith(".json"):
            old, new = json.loads(existing), json.loads(content)
            report.breaking += [f"{relative}: {message}" for message in breaking_changes(old, new)]
    history = frozen_history()
    report.missing_history = [path for path in history if not (out_dir / path).exists()]
    known = set(files) | set(history)
    report.unexpected = [
        f"{JSONSCHEMA_DIR}/{path.name}"
        for path in sorted((out_dir / JSONSCHEMA_DIR).glob("*.json"))
        if f"{JSONSCHEMA_DIR}/{path.name}" not in known or not _FILE_NAME.match(path.name)
    ]
    return report


def write(out_dir: Path = PACKAGE_DIR) -> list[str]:
    """Write every stale file into ``out_dir`` and return their relative paths.

    Raises ``BreakingChangeError`` (writing nothing) if a current-version schema would
    change incompatibly, or if a frozen schema of an older version is missing.
    """
    report = check(out_dir)
    if report.breaking or report.missing_history:
        raise BreakingChangeError("\n".join(report.lines()))
    files = render()
    (out_dir / JSONSCHEMA_DIR).mkdir(parents=True, exist_ok=True)
    for relative in report.stale:
        (out_dir / relative).write_text(files[relative], encoding="utf-8")
    return report.stale


_REFUSAL = (
    "Refusing to regenerate: the change above would break subscribers of a published "
    "schema version. Bump `schema_version` on the event class, add an upcaster from the "
    "previous version (see schemas/base.py and docs/events.md), then run again."
)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(prog="python -m schemas.generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    parser.add_argument("--out", type=Path, default=PACKAGE_DIR, help="output directory")
    args = parser.parse_args(argv)
    if args.check:
        return _run_check(args.out)
    try:
        written = write(args.out)
    except BreakingChangeError as error:
        print(f"{error}\n{_REFUSAL}", file=sys.stderr)
        return 1
    for relative in written:
        print(f"wrote {relative}")
    for path in check(args.out).unexpected:
        print(f"warning: unexpected file {path} (an event must never be renamed or removed)")
    return 0


def _run_check(out_dir: Path) -> int:
    report = check(out_dir)
    if report.up_to_date:
        print("schemas are up to date")
        return 0
    print("\n".join(report.lines()), file=sys.stderr)
    print("Run `python -m schemas.generate` (make schemas) and commit the result.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
