"""The joiners benchmark's machinery at a tiny load, on the real broker and PostgreSQL.

The matching service runs as its own process, the driver publishes a small cohort and
accepts every proposal; every joiner must end in a formed pair and every leg must have
its latencies. Nothing here is timed: the figures are only checked to be consistent.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from benchmarks import joiners

pytestmark = pytest.mark.integration


def test_the_cohort_pairs_every_mentor_with_any_mentee() -> None:
    people = joiners.cohort(7, program_id="prg-x")
    mentors = [p for p in people if p.role == "mentor"]
    mentees = [p for p in people if p.role == "mentee"]
    assert len(people) == 8 and len(mentors) == len(mentees) == 4
    assert all(joiners.HOT_TOPIC in m.offers for m in mentors)
    assert all(joiners.HOT_TOPIC in e.wants for e in mentees)
    assert max(m.grade for m in mentors) + 2 <= min(e.grade for e in mentees)
    ids = {p.participant_id for p in people}
    assert not any(set(p.manager_chain) & ids for p in people)


def test_legs_are_measured_per_joiner_and_per_pair() -> None:
    observed = joiners.Observed(
        joined={"m": 10.0, "e": 10.5, "x": 11.0},
        proposed={"pair-1": 10.75},
        formed={"pair-1": 11.25},
        pair_of={"m": "pair-1", "e": "pair-1"},
    )
    legs = {leg.name: sorted(leg.seconds) for leg in joiners.legs(observed, ["m", "e", "x"])}
    assert legs == {
        "Joined -> Proposed": [0.25, 0.75],
        "Proposed -> Formed": [0.5],
        "Joined -> Formed": [0.75, 1.25],
    }
    assert not observed.done(["m", "e", "x"]) and observed.done(["m", "e"])


async def test_a_tiny_load_accounts_for_every_joiner(
    kafka_bootstrap: str, postgres: Any, tmp_path: Path
) -> None:
    name = f"test_joiners_{uuid.uuid4().hex[:10]}"
    url = await postgres.create_database(name)
    try:
        result = await joiners.measure(
            kafka_bootstrap, url, rate=20, duration_s=1.0, settle_s=60, work_dir=tmp_path
        )
    finally:
        await postgres.drop_database(name)
    assert result.joiners == 20 and result.unaccounted == ()
    assert result.pairs_formed == 10
    for leg in result.legs:
        expected = 10 if leg.name == "Proposed -> Formed" else 20
        assert len(leg.seconds) == expected, leg.name
        assert all(s >= 0 for s in leg.seconds)
        assert leg.percentile(50) <= leg.percentile(99) <= leg.worst
    assert sum(result.runs) >= 10 and result.planning_s > 0
    markdown = joiners.report([(20, result)], duration_s=1, versions="Kafka", command="x")
    assert "### 20 joiners/s offered" in markdown and "| Joined -> Formed | 20 |" in markdown
