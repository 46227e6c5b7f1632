"""Staged runs: publishing re-checks the plan against the pool as it is now."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from matching_service_fixtures import mentee, mentor, program_definition

from schemas.participants import ParticipantJoined
from schemas.primitives import PairingMode
from schemas.programs import MatchingObjective
from services.matching.domain import staging
from services.matching.domain.engine import plan_matching
from services.matching.domain.model import Candidate, MatchPlan, PlannedPair, ProgramRules
from services.matching.domain.participants import to_candidate

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
RULES = ProgramRules.from_definition(program_definition())


def candidate(profile: ParticipantJoined, *, open_as_mentor: int = 0) -> Candidate:
    return to_candidate(
        profile.model_dump(mode="json"),
        screening=None,
        trained=False,
        open_as_mentor=open_as_mentor,
        open_as_mentee=False,
    )


def pool(*people: Candidate) -> dict[str, Candidate]:
    return {c.participant_id: c for c in people}


def proposal(mentor_id: str, mentee_id: str) -> PlannedPair:
    return PlannedPair(mentor_id, mentee_id, 0.5, (), ("social-media",))


def test_a_plan_still_valid_is_kept_whole() -> None:
    people = pool(candidate(mentor("m-1")), candidate(mentee("e-1")))
    checked = staging.revalidate(
        [proposal("m-1", "e-1")], rules=RULES, pool=people, excluded=frozenset(), at=T0
    )
    assert checked.kept == (proposal("m-1", "e-1"),) and checked.dropped == ()


def test_someone_who_left_since_drops_their_pair() -> None:
    checked = staging.revalidate(
        [proposal("m-1", "e-1")],
        rules=RULES,
        pool=pool(candidate(mentor("m-1"))),
        excluded=frozenset(),
        at=T0,
    )
    assert checked.kept == () and checked.dropped[0].reasons == ("inactive",)


def test_a_veto_since_planning_drops_the_pair() -> None:
    people = pool(candidate(mentor("m-1")), candidate(mentee("e-1")))
    checked = staging.revalidate(
        [proposal("m-1", "e-1")],
        rules=RULES,
        pool=people,
        excluded=frozenset({("m-1", "e-1")}),
        at=T0,
    )
    assert "previously_excluded" in checked.dropped[0].reasons


def test_kept_pairs_use_up_capacity_so_competing_pairs_drop() -> None:
    people = pool(
        candidate(mentor("m-1", capacity=2), open_as_mentor=1),
        candidate(mentee("e-1")),
        candidate(mentee("e-2")),
    )
    checked = staging.revalidate(
        [proposal("m-1", "e-1"), proposal("m-1", "e-2"), proposal("m-1", "e-1")],
        rules=RULES,
        pool=people,
        excluded=frozenset(),
        at=T0,
    )
    assert [p.mentee_id for p in checked.kept] == ["e-1"]
    assert [d.reasons for d in checked.dropped] == [
        ("no_capacity",),
        ("no_capacity", "already_paired"),
    ]


def run(plan: MatchPlan) -> staging.MatchRun:
    return staging.MatchRun(
        run_id="run-1",
        program_id="prg-1",
        mode=PairingMode.BATCH,
        status=staging.RunStatus.STAGED,
        plan=plan,
        created_at=T0,
        duration_ms=12,
    )


def test_an_engine_plan_is_staged_and_summarised_when_published() -> None:
    people = [candidate(mentor("m-1")), candidate(mentee("e-1")), candidate(mentee("e-2"))]
    plan = plan_matching(rules=RULES, participants=people, excluded=frozenset(), at=T0)
    assert len(plan.pairs) == 1 and plan.pairs[0].mentor_id == "m-1"
    unmatched = {"e-1", "e-2"} - {plan.pairs[0].mentee_id}
    assert unmatched <= {u.participant_id for u in plan.unmatched}
    outcome = staging.PublishOutcome(proposed=("pair-1",), dropped=())
    published = staging.publish(run(plan), by="admin-1", at=T0, outcome=outcome)
    assert published.status is staging.RunStatus.PUBLISHED and published.outcome == outcome
    summary = staging.run_completed(
        published,
        objective=MatchingObjective.MAX_MATCHED_THEN_SCORE,
        proposed=1,
        total_score=staging.total_score(plan),
    )
    assert summary.pairs_proposed == 1 and summary.mentees_considered == 2
    assert summary.unmatched_mentees == 1 and summary.duration_ms == 12
    assert summary.total_score == staging.total_score(plan) > 0
    assert summary.optimal and summary.solver == staging.DEFAULT_SOLVER


def test_only_a_staged_run_is_published_or_discarded() -> None:
    empty = MatchPlan((), (), {})
    discarded = staging.discard(run(empty))
    assert discarded.status is staging.RunStatus.DISCARDED
    with pytest.raises(staging.RunNotStaged):
        staging.publish(
            discarded, by="a", at=T0, outcome=staging.PublishOutcome(proposed=(), dropped=())
        )
    with pytest.raises(staging.RunNotStaged):
        staging.discard(discarded)
