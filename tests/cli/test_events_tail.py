"""``upward events tail`` against the real broker: filters, undecodable records, follow."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from events_io import bad_value, create_topics, encoded, invoke, new_prefix, publish, run

from schemas.pairs import PairFormed, PairProposed
from schemas.participants import ParticipantJoined
from upward.events.tail import TailRequest, tail

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def published(kafka_bootstrap: str) -> dict[str, Any]:
    """One prefix with a participant, two pair events and two bad records on upward.pairs."""
    prefix = new_prefix()
    pairs, participants = f"{prefix}upward.pairs", f"{prefix}upward.participants"
    joined = encoded(ParticipantJoined, participant_id="emp-tail-1")
    proposed = encoded(PairProposed, pair_id="pair-tail-1")
    formed = encoded(PairFormed, pair_id="pair-tail-1")
    run(
        create_topics(kafka_bootstrap, [pairs, participants]),
        publish(kafka_bootstrap, participants, [(joined.key, joined.value)]),
        publish(
            kafka_bootstrap,
            pairs,
            [
                (proposed.key, proposed.value),
                (formed.key, formed.value),
                (b"pair-tail-1", b"{not json"),
                (b"pair-tail-2", bad_value("PairFormed", "pair-tail-2")),
            ],
        ),
    )
    return {"prefix": prefix, "formed": formed, "proposed": proposed, "joined": joined}


def tail_json(bootstrap: str, prefix: str, *args: str) -> list[dict[str, Any]]:
    result = invoke(
        ["events", "tail", "--from-beginning", "--no-follow", "--json", *args],
        bootstrap=bootstrap,
        prefix=prefix,
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_tail_of_one_topic_shows_its_events_and_its_undecodable_records(
    kafka_bootstrap: str, published: dict[str, Any]
) -> None:
    result = invoke(
        ["events", "tail", "--topic", "pairs", "--from-beginning", "--no-follow"],
        bootstrap=kafka_bootstrap,
        prefix=published["prefix"],
    )

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert sum("PairProposed pair-tail-1" in line for line in lines) == 1
    formed = next(line for line in lines if " PairFormed pair-tail-1" in line)
    assert f"id={published['formed'].event_id[:8]}" in formed
    assert "mentor_id=" in formed and "program_id=" in formed
    assert sum("UNDECODABLE invalid_json" in line for line in lines) == 1
    assert sum("UNDECODABLE invalid_data" in line for line in lines) == 1
    assert not any("ParticipantJoined" in line for line in lines)


def test_tail_filters_by_type_and_keeps_a_bad_record_claiming_that_type(
    kafka_bootstrap: str, published: dict[str, Any]
) -> None:
    documents = tail_json(kafka_bootstrap, published["prefix"], "--type", "PairFormed")

    decoded = [d for d in documents if "event" in d]
    refused = [d for d in documents if "error" in d]
    assert [d["event"]["id"] for d in decoded] == [published["formed"].event_id]
    assert decoded[0]["topic"] == "upward.pairs" and decoded[0]["key"] == "pair-tail-1"
    assert [d["error"]["reason"] for d in refused] == ["invalid_data"]
    assert refused[0]["key"] == "pair-tail-2"


def test_tail_of_all_topics_with_a_limit(kafka_bootstrap: str, published: dict[str, Any]) -> None:
    everything = tail_json(kafka_bootstrap, published["prefix"])
    limited = tail_json(kafka_bootstrap, published["prefix"], "--limit", "2")

    topics = sorted(d["topic"] for d in everything)
    assert topics == ["upward.pairs"] * 4 + ["upward.participants"]
    assert len(limited) == 2


async def test_follow_waits_for_records_published_after_it_started(
    kafka_bootstrap: str, published: dict[str, Any]
) -> None:
    prefix = published["prefix"]
    request = TailRequest(topics=("upward.participants",), from_beginning=True, limit=2)
    later = encoded(ParticipantJoined, participant_id="emp-tail-later")
    seen = []
    async for record in tail(kafka_bootstrap, prefix, request):
        seen.append(record)
        if len(seen) == 1:  # the first is the old one: now publish while tail follows
            await publish(
                kafka_bootstrap, f"{prefix}upward.participants", [(later.key, later.value)]
            )

    assert [r.event.envelope.id for r in seen if r.event] == [
        published["joined"].event_id,
        later.event_id,
    ]


async def test_follow_tails_a_topic_created_after_it_started(kafka_bootstrap: str) -> None:
    prefix = new_prefix()
    request = TailRequest(topics=("upward.feedback",), limit=1, rescan_s=0.2)
    notices: list[str] = []
    first = encoded(PairProposed, pair_id="pair-tail-new")
    topic = f"{prefix}upward.feedback"

    async def create_and_publish() -> None:
        await asyncio.sleep(1.0)  # tail is running and has found no topic
        await create_topics(kafka_bootstrap, [topic])
        await publish(kafka_bootstrap, topic, [(first.key, first.value)])

    publishing = asyncio.create_task(create_and_publish())
    async with asyncio.timeout(60):
        seen = [
            record async for record in tail(kafka_bootstrap, prefix, request, notice=notices.append)
        ]
    await publishing

    assert [r.event.envelope.id for r in seen if r.event] == [first.event_id]
    assert notices[0] == f"topic {topic} does not exist (yet); tailed once it is created"
    assert notices[1] == f"topic {topic} now exists; tailing it"
