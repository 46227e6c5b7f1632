"""Fuzzed records through the kit's consumer: the bad ones land in the dead-letter topic
with their reason, the good ones between them are applied once each."""

from __future__ import annotations

import json
import random
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from kafka_io import eventually, publish, read_topic

from examples import welcome_service
from schemas.codec import DecodeFailure, EventDecodeError, decode, encode, new_event
from schemas.participants import ParticipantJoined
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings, settings_for

pytestmark = pytest.mark.integration

PARTICIPANTS = "upward.participants"
Record = tuple[bytes | None, bytes | None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def joined(participant_id: str) -> tuple[bytes, bytes]:
    data = ParticipantJoined.model_validate(
        {**ParticipantJoined.example().model_dump(mode="json"), "participant_id": participant_id}
    )
    event = new_event(data, source="/hr-feed")
    return event.subject.encode(), encode(event)


def fuzzed_bad_records(rng: random.Random, count: int) -> list[Record]:
    """Random bytes and randomly mutated valid records that ``decode`` refuses."""
    bad: list[Record] = []
    while len(bad) < count:
        key, value = joined(f"emp-bad-{len(bad)}")
        document: dict[str, Any] = json.loads(value)
        choice = rng.randrange(5)
        if choice == 0:
            value = rng.randbytes(rng.randrange(1, 80))
        elif choice == 1:
            value = value[: rng.randrange(1, len(value))]
        elif choice == 2:
            document[rng.choice(sorted(document))] = rng.choice([None, 7, "x", [], {"a": 1}])
            value = json.dumps(document).encode()
        elif choice == 3:
            field = rng.choice(sorted(document["data"]))
            document["data"][field] = rng.choice([None, -1, "", [1], {"b": 2}])
            value = json.dumps(document).encode()
        else:
            key = rng.choice([None, b"", b"someone-else"])
        try:
            decode(value, key=key)
        except EventDecodeError:
            bad.append((key, value))
    return bad


@pytest.fixture
async def service(kafka_bootstrap: str, fresh_database_url: str) -> AsyncIterator[ServiceRuntime]:
    settings = settings_for("welcome")(
        service_name="welcome",
        database_url=fresh_database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        http_port=_free_port(),
        commit_interval_s=0.2,
        relay_poll_interval_s=0.2,
    )
    runtime = ServiceRuntime(welcome_service.DEFINITION, settings)
    await runtime.start()
    yield runtime
    runtime.stop.set()
    await runtime.wait()


async def applied_count(settings: ServiceSettings) -> int:
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        return int(await conn.fetchval("SELECT count(*) FROM welcomes WHERE applied = 1"))
    finally:
        await conn.close()


async def test_fuzzed_bad_records_are_dead_lettered_and_good_ones_applied(
    service: ServiceRuntime,
) -> None:
    settings = service.settings
    bad = fuzzed_bad_records(random.Random(20261123), 12)
    good = [joined(f"emp-good-{i}") for i in range(6)]
    mixed: list[Record] = [
        record for pair in zip(bad[::2], bad[1::2], strict=True) for record in pair
    ]
    for index, record in enumerate(good):  # interleave: bad, bad, good, ...
        mixed.insert(3 * index + 2, record)
    topic = settings.physical_topic(PARTICIPANTS)
    await publish(settings.kafka_bootstrap_servers, topic, mixed)
    assert await eventually(lambda: applied_count(settings), lambda n: n == len(good)) == len(good)
    dead = await read_topic(settings.kafka_bootstrap_servers, f"{topic}.dlq", at_least=len(bad))
    assert sorted(r.value or b"" for r in dead) == sorted(v or b"" for _, v in bad)
    reasons = {dict(r.headers)["dlq.reason"].decode() for r in dead}
    assert reasons <= {str(reason) for reason in DecodeFailure}
    assert len(reasons) >= 3  # the fuzzing reached several checks
