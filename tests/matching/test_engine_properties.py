"""Property tests: every plan respects every hard constraint and is optimal.

Optimality is checked two ways: against a brute force over every assignment on tiny
random cohorts (hypothesis), and against scipy's dense ``linear_sum_assignment`` on
synthetic cohorts big enough for the engine to need several certificate rounds.
"""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from services.matching.domain.candidates import PairEvaluator
from services.matching.domain.cohort import encode_cohort
from services.matching.domain.engine import check_pair, plan_matching, score_pair
from services.matching.domain.model import Candidate, ProgramRules
from services.matching.domain.synthetic import CohortShape, synthetic_cohort
from tests.matching.engine_strategies import (
    AT,
    allowed_units,
    brute_force_best,
    cohorts,
    exclusions,
    program_rules,
    rules,
)

_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def instances(
    draw: st.DrawFn, max_side: int = 5
) -> tuple[ProgramRules, list[Candidate], set[tuple[str, str]]]:
    """A program, a tiny cohort and some past exclusions."""
    people = draw(cohorts(max_side=max_side))
    return draw(program_rules()), people, draw(exclusions(people))


@_SETTINGS
@given(instances())
def test_every_planned_pair_respects_every_hard_constraint(
    instance: tuple[ProgramRules, list[Candidate], set[tuple[str, str]]],
) -> None:
    program, people, excluded = instance
    by_id = {p.participant_id: p for p in people}
    plan = plan_matching(rules=program, participants=people, excluded=excluded, at=AT)
    for pair in plan.pairs:
        mentor, mentee = by_id[pair.mentor_id], by_id[pair.mentee_id]
        assert (
            check_pair(rules=program, mentor=mentor, mentee=mentee, excluded=excluded, at=AT) == []
        )
        assert pair == score_pair(rules=program, mentor=mentor, mentee=mentee, at=AT)
    mentor_load = Counter(p.mentor_id for p in plan.pairs)
    assert all(mentor_load[pid] <= by_id[pid].mentor_slots for pid in mentor_load)
    assert max(Counter(p.mentee_id for p in plan.pairs).values(), default=0) <= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_plan_objective_equals_the_brute_force_optimum(
    instance: tuple[ProgramRules, list[Candidate], set[tuple[str, str]]],
) -> None:
    program, people, excluded = instance
    allowed = allowed_units(program, people, excluded)
    slots = {p.participant_id: p.mentor_slots for p in people}
    most_pairs_first = program.objective == "max_matched_then_score"
    best_pairs, best_units = brute_force_best(allowed, slots, most_pairs_first=most_pairs_first)
    plan = plan_matching(rules=program, participants=people, excluded=excluded, at=AT)
    plan_units = sum(allowed[(p.mentor_id, p.mentee_id)] for p in plan.pairs)
    assert plan_units == best_units == plan.totals["objective_units"]
    if most_pairs_first:
        assert len(plan.pairs) == best_pairs


@_SETTINGS
@given(instances(), st.randoms(use_true_random=False))
def test_plan_does_not_depend_on_input_order(
    instance: tuple[ProgramRules, list[Candidate], set[tuple[str, str]]], shuffler: random.Random
) -> None:
    program, people, excluded = instance
    shuffled = list(people)
    shuffler.shuffle(shuffled)
    first = plan_matching(rules=program, participants=people, excluded=excluded, at=AT)
    second = plan_matching(rules=program, participants=shuffled, excluded=excluded, at=AT)
    assert first == second


@_SETTINGS
@given(instances())
def test_every_open_person_is_paired_or_listed_unmatched_once(
    instance: tuple[ProgramRules, list[Candidate], set[tuple[str, str]]],
) -> None:
    program, people, excluded = instance
    plan = plan_matching(rules=program, participants=people, excluded=excluded, at=AT)
    paired = {p.mentor_id for p in plan.pairs} | {p.mentee_id for p in plan.pairs}
    listed = [u.participant_id for u in plan.unmatched]
    assert len(listed) == len(set(listed))
    assert paired.isdisjoint(listed)
    open_mentees = {
        p.participant_id for p in people if p.active and p.can_be_mentored and p.needs_mentor
    }
    assert open_mentees <= paired | set(listed)


@settings(max_examples=100, deadline=None)
@given(instances(max_side=9))
def test_block_evaluation_agrees_with_the_scalar_rules(
    instance: tuple[ProgramRules, list[Candidate], set[tuple[str, str]]],
) -> None:
    program, people, excluded = instance
    cohort = encode_cohort(rules=program, participants=people, excluded=excluded, at=AT)
    block = PairEvaluator(rules=program, cohort=cohort).block(
        np.arange(len(cohort.mentees)), np.arange(len(cohort.mentors))
    )
    mentors, mentees = cohort.mentors.people, cohort.mentees.people
    vectorised = {
        (mentors[i].participant_id, mentees[j].participant_id): u
        for j, i, u in zip(
            block.mentee.tolist(), block.mentor.tolist(), block.units.tolist(), strict=True
        )
    }
    scalar = allowed_units(program, people, excluded)
    assert vectorised == scalar


@pytest.mark.parametrize(
    ("mentors", "mentees", "seed", "objective"),
    [
        (300, 300, 1, "max_matched_then_score"),
        (250, 400, 2, "max_matched_then_score"),
        (400, 220, 3, "max_matched_then_score"),
        (300, 300, 4, "max_score"),
    ],
)
def test_synthetic_plan_equals_the_dense_reference_optimum(
    mentors: int, mentees: int, seed: int, objective: str
) -> None:
    program = rules(min_grade_gap=1, objective=objective)
    people = synthetic_cohort(CohortShape(mentors=mentors, mentees=mentees, seed=seed))
    plan = plan_matching(rules=program, participants=people, excluded=set(), at=AT)
    pairs, units = _dense_optimum(program, people)
    assert plan.totals["objective_units"] == units
    if objective == "max_matched_then_score":
        assert len(plan.pairs) == pairs


def _dense_optimum(program: ProgramRules, people: list[Candidate]) -> tuple[int, int]:
    """(pairs, units) by scipy on the dense slot-expanded matrix of the same instance."""
    allowed = allowed_units(program, people, set())
    mentor_ids = sorted({m for m, _ in allowed})
    mentee_ids = sorted({e for _, e in allowed})
    slots = [
        m
        for m in mentor_ids
        for _ in range(next(p.mentor_slots for p in people if p.participant_id == m))
    ]
    bonus = 2**20 * (len(mentee_ids) + 1) if program.objective == "max_matched_then_score" else 0
    weight = np.zeros((len(mentee_ids), len(slots)), dtype=np.float64)
    for col, mentor in enumerate(slots):
        for row, mentee in enumerate(mentee_ids):
            if (mentor, mentee) in allowed:
                weight[row, col] = bonus + allowed[(mentor, mentee)]
    rows, cols = linear_sum_assignment(weight, maximize=True)
    used = weight[rows, cols] > 0
    units = sum(
        allowed[(slots[c], mentee_ids[r])] for r, c in zip(rows[used], cols[used], strict=True)
    )
    return int(used.sum()), int(units)
