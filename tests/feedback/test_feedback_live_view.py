"""The live view (faust GlobalTable of requests and answers per program), counted in batches.

Unit tests for what a batch adds; then the service on the real broker: a batch counts
once per event, an undecodable record is skipped, a stop while a batch is being gathered
does not hang, and after a restart the counts go on from the changelog with the events
that were not counted before the stop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

from schemas.codec import encode, new_event
from schemas.feedback import FeedbackRequested, FeedbackSubmitted
from schemas.sessions import SessionHeld
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings, settings_for
from services.feedback.bootstrap import DEFINITION, FeedbackServiceSettings
from services.feedback.entrypoints.streams import (
    REQUESTED,
    SUBMITTED,
    decoded,
    live_counts,
    live_key,
)
from tests.fixtures.infra import PostgresServerInfo
from tests.integration.kafka_io import eventually, publish
from upward.stack import free_ports

DUE = datetime(2025, 3, 10, 9, tzinfo=UTC)


def requested(program_id: str, n: int) -> FeedbackRequested:
    return FeedbackRequested.model_validate(
        FeedbackRequested.example().model_dump(mode="json")
        | {"program_id": program_id, "request_id": f"fbr-{program_id}-{n}", "due_at": DUE}
    )


def submitted(program_id: str) -> FeedbackSubmitted:
    data = FeedbackSubmitted.example().model_dump(mode="json") | {"program_id": program_id}
    return FeedbackSubmitted.model_validate(data)


def record(value: bytes, key: bytes | None = b"pair-1") -> SimpleNamespace:
    """A faust event as the agent sees it (only its message is read)."""
    return SimpleNamespace(message=SimpleNamespace(value=value, key=key, topic="t.feedback"))


def encoded(data: FeedbackRequested | FeedbackSubmitted | SessionHeld) -> SimpleNamespace:
    event = new_event(data, source="/upward/feedback")
    return record(encode(event), event.subject.encode())


def test_a_batch_adds_its_requests_and_answers_per_program() -> None:
    batch = [
        encoded(requested("prg-a", 1)),
        encoded(requested("prg-a", 2)),
        encoded(requested("prg-b", 1)),
        encoded(submitted("prg-a")),
        encoded(SessionHeld.example()),  # another type: counts nothing
    ]
    grown = live_counts(decoded(batch, max_bytes=1_048_576))
    assert grown == {
        live_key("prg-a", REQUESTED): 2,
        live_key("prg-b", REQUESTED): 1,
        live_key("prg-a", SUBMITTED): 1,
    }


def test_undecodable_records_are_skipped_and_counted() -> None:
    def skipped() -> float:
        labels = {"topic": "t.feedback", "reason": "invalid_json"}
        return REGISTRY.get_sample_value("upward_stream_skipped_total", labels) or 0.0

    before = skipped()
    batch = [record(b"{not json"), encoded(requested("prg-a", 1))]
    events = list(decoded(batch, max_bytes=1_048_576))
    assert [type(e.data) for e in events] == [FeedbackRequested]
    assert skipped() == before + 1


@pytest.fixture
async def settings(request: pytest.FixtureRequest) -> AsyncIterator[ServiceSettings]:
    postgres: PostgresServerInfo = request.getfixturevalue("postgres")
    kafka: str = request.getfixturevalue("kafka_bootstrap")
    name = f"test_feedback_live_{uuid.uuid4().hex[:12]}"
    yield settings_for("feedback", FeedbackServiceSettings)(
        service_name="feedback",
        database_url=await postgres.create_database(name),
        kafka_bootstrap_servers=kafka,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        http_port=free_ports(1)[0],
        commit_interval_s=0.2,
        relay_poll_interval_s=0.2,
    )
    await postgres.drop_database(name)


async def _publish(settings: ServiceSettings, events: list[FeedbackRequested]) -> None:
    envelopes = [new_event(e, source="/upward/feedback") for e in events]
    topic = settings.physical_topic("upward.feedback")
    await publish(
        settings.kafka_bootstrap_servers,
        topic,
        [(e.subject.encode(), encode(e)) for e in envelopes],
    )


async def _count(runtime: ServiceRuntime, key: str) -> int:
    return int(runtime.views[key])


async def _stop(runtime: ServiceRuntime) -> None:
    runtime.stop.set()
    await asyncio.wait_for(runtime.wait(), 120)  # a hang fails here instead of stalling the run


@pytest.mark.integration
async def test_counts_survive_a_stop_during_a_batch_and_go_on_after_a_restart(
    settings: ServiceSettings,
) -> None:
    key = live_key("prg-live", REQUESTED)
    first = [requested("prg-live", n) for n in range(40)]
    second = [requested("prg-live", n) for n in range(40, 100)]
    runtime = ServiceRuntime(DEFINITION, settings)
    await runtime.start()
    try:
        await _publish(settings, first)
        assert await eventually(lambda: _count(runtime, key), lambda n: n >= 40, timeout=90) == 40
        await _publish(settings, second)  # stopped at once: a batch is being gathered
    finally:
        await _stop(runtime)

    again = ServiceRuntime(DEFINITION, settings)
    await again.start()
    try:
        counted = await eventually(lambda: _count(again, key), lambda n: n >= 100, timeout=90)
        assert counted == 100
    finally:
        await _stop(again)
