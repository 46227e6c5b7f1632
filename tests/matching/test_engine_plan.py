"""plan_matching: objectives, capacity, unmatched reasons, totals; the solver's certificate."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from schemas.primitives import Role
from schemas.programs import MatchingObjective, ProgramCreated
from services.matching.domain.engine import plan_matching
from services.matching.domain.model import ProgramRules
from services.matching.domain.solver import Arcs, central_duals, optimal_duals, solve
from tests.matching.engine_strategies import AT, person, rules

SKILLS_ONLY = {
    "skill_coverage": 1.0,
    "diversity": 0.0,
    "timezone_closeness": 0.0,
    "preference": 0.0,
}


def test_rules_come_from_the_program_definition() -> None:
    program = ProgramRules.from_definition(ProgramCreated.example())
    assert (program.program_type, program.min_grade_gap, program.max_timezone_gap_hours) == (
        "reverse",
        2,
        6,
    )
    assert program.objective == MatchingObjective.MAX_MATCHED_THEN_SCORE
    assert program.weights["skill_coverage"] == pytest.approx(0.4)


def _star_and_spare() -> list:
    """Mentor 'star' is the best for both mentees; 'spare' can only teach mentee e-2."""
    return [
        person("m-star", offers={"a": 5, "b": 5}),
        person("m-spare", offers={"b": 1}),
        person("e-1", Role.MENTEE, wants={"a": 5}),
        person("e-2", Role.MENTEE, wants={"b": 5}),
    ]


def test_most_matched_first_pairs_everyone_even_at_a_lower_total_score() -> None:
    plan = plan_matching(
        rules=rules(weights=SKILLS_ONLY), participants=_star_and_spare(), excluded=set(), at=AT
    )
    assert {(p.mentor_id, p.mentee_id) for p in plan.pairs} == {
        ("m-star", "e-1"),
        ("m-spare", "e-2"),
    }
    assert plan.totals["matched"] == 2


def test_best_total_score_may_leave_people_unmatched() -> None:
    program = rules(weights=SKILLS_ONLY, objective="max_score")
    people = _star_and_spare()
    people[0] = replace(people[0], offers={"a": 1, "b": 5})
    plan = plan_matching(rules=program, participants=people, excluded=set(), at=AT)
    assert [(p.mentor_id, p.mentee_id) for p in plan.pairs] == [("m-star", "e-2")]
    reasons = {u.participant_id: u.reason for u in plan.unmatched}
    assert reasons == {"e-1": "capacity_taken_by_better_plan", "m-spare": "not_needed_by_plan"}


def test_a_mentor_with_two_free_slots_takes_two_mentees() -> None:
    people = [
        person("m-1", mentor_slots=2),
        person("e-1", Role.MENTEE),
        person("e-2", Role.MENTEE),
        person("e-3", Role.MENTEE),
    ]
    plan = plan_matching(rules=rules(), participants=people, excluded=set(), at=AT)
    assert [p.mentor_id for p in plan.pairs] == ["m-1", "m-1"]
    left = {"e-1", "e-2", "e-3"} - {p.mentee_id for p in plan.pairs}
    assert [(u.participant_id, u.reason) for u in plan.unmatched] == [
        (left.pop(), "capacity_taken_by_better_plan")
    ]


def test_someone_with_role_both_can_mentor_one_person_and_be_mentored_by_another() -> None:
    people = [
        person("b-1", Role.BOTH, grade=4, offers={"a": 5}, wants={"b": 5}),
        person("m-1", grade=2, offers={"b": 5}),
        person("e-1", Role.MENTEE, grade=6, wants={"a": 5}),
    ]
    plan = plan_matching(rules=rules(), participants=people, excluded=set(), at=AT)
    assert {(p.mentor_id, p.mentee_id) for p in plan.pairs} == {("b-1", "e-1"), ("m-1", "b-1")}


def test_unmatched_people_carry_the_reason() -> None:
    people = [
        person("m-unscreened", screened=False),
        person("m-nothing-wanted", offers={"knitting": 5}),
        person("m-ok"),
        person("e-ok", Role.MENTEE),
        person("e-boss", Role.MENTEE, wants={"social-media": 3}, grade=3),
        person("e-niche", Role.MENTEE, wants={"quantum": 4}),
        person("e-paired-already", Role.MENTEE, needs_mentor=False),
        person("m-full", mentor_slots=0),
        person("e-gone", Role.MENTEE, active=False),
    ]
    plan = plan_matching(rules=rules(), participants=people, excluded=set(), at=AT)
    assert [(p.mentor_id, p.mentee_id) for p in plan.pairs] == [("m-ok", "e-ok")]
    assert {u.participant_id: u.reason for u in plan.unmatched} == {
        "m-unscreened": "not_screened",
        "m-nothing-wanted": "no_shared_topic",
        "e-niche": "no_shared_topic",
        "e-boss": "no_eligible_candidate",
    }


def test_totals_summarise_the_plan() -> None:
    plan = plan_matching(rules=rules(), participants=_star_and_spare(), excluded=set(), at=AT)
    totals = plan.totals
    assert (
        totals["matched"],
        totals["mentors"],
        totals["mentees"],
        totals["unmatched_mentees"],
    ) == (2, 2, 2, 0)
    assert totals["total_score"] == pytest.approx(sum(p.score for p in plan.pairs))
    assert totals["optimal"] is True
    assert totals["eligible_arcs"] >= totals["matched"]


def test_an_empty_cohort_gives_an_empty_plan() -> None:
    plan = plan_matching(rules=rules(), participants=[], excluded=set(), at=AT)
    assert (plan.pairs, plan.unmatched, plan.totals["matched"]) == ((), (), 0)


def _random_graph(seed: int) -> tuple[np.ndarray, Arcs]:
    rng = np.random.default_rng(seed)
    capacities = rng.integers(1, 3, size=6)
    keys = np.unique(rng.integers(0, 6 * 7, size=25))
    return capacities, Arcs(
        mentor=keys % 6,
        mentee=keys // 6,
        weight=rng.integers(0, 50, size=keys.size).astype(np.int64),
    )


@pytest.mark.parametrize("seed", range(8))
def test_duals_are_feasible_and_their_objective_equals_the_plan(seed: int) -> None:
    capacities, arcs = _random_graph(seed)
    chosen = solve(capacities=capacities, n_mentees=7, arcs=arcs, most_pairs_first=False)
    value = int(arcs.weight[chosen].sum())
    for duals in (
        optimal_duals(
            capacities=capacities, n_mentees=7, arcs=arcs, chosen=chosen, favour="mentee"
        ),
        optimal_duals(
            capacities=capacities, n_mentees=7, arcs=arcs, chosen=chosen, favour="mentor"
        ),
        central_duals(capacities=capacities, n_mentees=7, arcs=arcs, chosen=chosen),
    ):
        assert (duals.u >= 0).all() and (duals.v >= 0).all()
        assert (duals.u[arcs.mentor] + duals.v[arcs.mentee] >= arcs.weight).all()
        assert duals.objective(capacities) == value


def test_mentee_favouring_duals_give_mentees_at_least_as_much() -> None:
    capacities, arcs = _random_graph(3)
    chosen = solve(capacities=capacities, n_mentees=7, arcs=arcs, most_pairs_first=False)
    mentee_side = optimal_duals(
        capacities=capacities, n_mentees=7, arcs=arcs, chosen=chosen, favour="mentee"
    )
    mentor_side = optimal_duals(
        capacities=capacities, n_mentees=7, arcs=arcs, chosen=chosen, favour="mentor"
    )
    assert (mentee_side.v >= mentor_side.v).all()
    assert (mentee_side.u <= mentor_side.u).all()


def test_a_participant_given_twice_counts_once_and_conflicting_copies_are_refused() -> None:
    mentor, mentee = person("m-1"), person("e-1", Role.MENTEE)
    plan = plan_matching(
        rules=rules(), participants=[mentor, mentee, mentor], excluded=set(), at=AT
    )
    assert len(plan.pairs) == 1
    with pytest.raises(ValueError, match="m-1"):
        plan_matching(
            rules=rules(), participants=[mentor, replace(mentor, grade=1)], excluded=set(), at=AT
        )
