"""The topic census (library and ``upward events census``) against the real broker."""

from __future__ import annotations

from typing import Any

import pytest
from events_io import (
    create_topics,
    dead_letter,
    encoded,
    invoke,
    new_prefix,
    publish,
)

from schemas.pairs import PairFormed, PairProposed
from schemas.registry import TOPIC_NAMES
from schemas.sessions import SessionScheduled
from servicekit.dead_letters import RawRecord
from upward.events.census import Census, topic_census
from upward.events.dead_letters import plan_replay, read_dead_letters, replay

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def world(kafka_bootstrap: str) -> dict[str, Any]:
    """Pairs and sessions events (one published twice, one undecodable) and dead letters of
    upward.pairs, one of which was replayed (its marker must not count as a dead letter)."""
    prefix = new_prefix()
    pairs, sessions = f"{prefix}upward.pairs", f"{prefix}upward.sessions"
    proposed_a = encoded(PairProposed, pair_id="pair-a")
    formed = {name: encoded(PairFormed, pair_id=name) for name in ("pair-a", "pair-b", "pair-c")}
    late = encoded(PairFormed, pair_id="pair-d")
    scheduled = encoded(SessionScheduled, pair_id="pair-a")
    await create_topics(kafka_bootstrap, [pairs, sessions])
    await publish(
        kafka_bootstrap,
        pairs,
        [(e.key, e.value) for e in (proposed_a, formed["pair-a"], formed["pair-b"])]
        + [
            (formed["pair-b"].key, formed["pair-b"].value),
            (formed["pair-c"].key, formed["pair-c"].value),
        ],
    )
    await publish(
        kafka_bootstrap, sessions, [(scheduled.key, scheduled.value), (b"pair-x", b"nope")]
    )
    await dead_letter(
        kafka_bootstrap, [RawRecord(pairs, 1, 40, b"pair-z", b"[")], reason="invalid_json"
    )
    await dead_letter(
        kafka_bootstrap, [RawRecord(pairs, 0, 41, late.key, late.value)], reason="rejected"
    )
    plan = plan_replay(
        await read_dead_letters(kafka_bootstrap, prefix, ["upward.pairs"]),
        reasons=frozenset({"rejected"}),
    )
    assert await replay(kafka_bootstrap, plan) == 1
    census = await topic_census(bootstrap=kafka_bootstrap, prefix=prefix)
    return {"prefix": prefix, "census": census, "duplicate": formed["pair-b"].event_id}


async def test_counts_per_topic_and_type(world: dict[str, Any]) -> None:
    census: Census = world["census"]

    assert census.counts == {
        ("upward.pairs", "PairProposed"): 1,
        ("upward.pairs", "PairFormed"): 5,  # a, b twice, c, and d replayed from the dlq
        ("upward.sessions", "SessionScheduled"): 1,
    }
    assert census.count("PairFormed") == 5
    assert set(census.events) == set(TOPIC_NAMES)  # topics that do not exist are empty


async def test_duplicates_undecodable_and_dead_letters(world: dict[str, Any]) -> None:
    census: Census = world["census"]

    assert census.duplicates["upward.pairs"] == {world["duplicate"]: 2}
    assert census.duplicates["upward.sessions"] == {}
    assert census.undecodable == {topic: int(topic == "upward.sessions") for topic in TOPIC_NAMES}
    assert census.undecodable_reasons["upward.sessions"] == {"invalid_json": 1}
    assert census.dead_letters == {topic: 2 * (topic == "upward.pairs") for topic in TOPIC_NAMES}
    assert census.dead_letter_reasons["upward.pairs"] == {"invalid_json": 1, "rejected": 1}


async def test_events_are_in_offset_order_per_partition_and_per_key(world: dict[str, Any]) -> None:
    census: Census = world["census"]

    pairs = census.events["upward.pairs"]
    assert sum(len(events) for events in pairs.values()) == 6
    for partition, events in pairs.items():
        assert all(logged.partition == partition for logged in events)
        offsets = [logged.offset for logged in events]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    pair_a = census.by_key("upward.pairs")[b"pair-a"]
    assert [e.envelope.event_name for e in pair_a] == ["PairProposed", "PairFormed"]
    assert [e.data.subject() for e in census.of_type("SessionScheduled")] == ["pair-a"]
    about_a = [e.envelope.event_name for e in census.about("pair-a")]
    assert about_a == ["PairProposed", "PairFormed", "SessionScheduled"]  # by event time


def test_census_command_prints_counts_and_problems(
    kafka_bootstrap: str, world: dict[str, Any]
) -> None:
    result = invoke(["events", "census"], bootstrap=kafka_bootstrap, prefix=world["prefix"])

    assert result.exit_code == 0, result.output
    rows = [
        [c.strip() for c in line.split("│") if c.strip()] for line in result.stdout.splitlines()
    ]
    assert ["upward.pairs", "PairFormed", "5"] in rows
    assert ["upward.pairs", "all", "6"] in rows
    assert ["upward.pairs", "1", "0", "2 (invalid_json 1, rejected 1)"] in rows
    assert ["upward.sessions", "0", "1 (invalid_json 1)", "0"] in rows
    assert ["upward.programs", "all", "0"] in rows
