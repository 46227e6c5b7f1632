"""The matching engine's public functions: plan a cohort, check a pair, score a pair.

Pure and deterministic: the same participants (in any order), exclusions and instant give
the same plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from functools import lru_cache

from services.matching.domain.allocator import reusing_freed_memory
from services.matching.domain.arrays import IntArray
from services.matching.domain.candidates import PairEvaluator
from services.matching.domain.cohort import NO_ELIGIBLE, Cohort, Side, encode_cohort
from services.matching.domain.constraints import pair_violations, timezone_gap_minutes
from services.matching.domain.explain import explain_pairs
from services.matching.domain.model import (
    Candidate,
    MatchPlan,
    PlannedPair,
    ProgramRules,
    Unmatched,
)
from services.matching.domain.planner import CertifiedPlan, certified_plan
from services.matching.domain.scoring import (
    explanation,
    factor_weights,
    pair_values,
    score_units,
    shared_topics,
    units_scale,
    weighted_score,
)

CAPACITY_TAKEN = "capacity_taken_by_better_plan"
"""A mentee with eligible mentors whose slots the optimal plan gave to others."""
NOT_NEEDED = "not_needed_by_plan"
"""A mentor with eligible mentees that the optimal plan paired with others."""


def check_pair(
    *,
    rules: ProgramRules,
    mentor: Candidate,
    mentee: Candidate,
    excluded: AbstractSet[tuple[str, str]],
    at: datetime,
) -> list[str]:
    """Hard-constraint violations of this pair (empty = allowed)."""
    return pair_violations(rules=rules, mentor=mentor, mentee=mentee, excluded=excluded, at=at)


def score_pair(
    *, rules: ProgramRules, mentor: Candidate, mentee: Candidate, at: datetime
) -> PlannedPair:
    """Score and explanation of one pair (constraints are not checked)."""
    gap = timezone_gap_minutes(mentor.timezone, mentee.timezone, at)
    values = pair_values(mentor, mentee, gap_minutes=gap)
    weights = factor_weights(rules)
    return PlannedPair(
        mentor_id=mentor.participant_id,
        mentee_id=mentee.participant_id,
        score=round(weighted_score(weights, values), 6),
        explanation=explanation(weights, values),
        topics=shared_topics(mentor.offers, mentee.wants),
    )


def pair_units(*, rules: ProgramRules, mentor: Candidate, mentee: Candidate, at: datetime) -> int:
    """The integer score units the solver optimises for this pair."""
    gap = timezone_gap_minutes(mentor.timezone, mentee.timezone, at)
    values = pair_values(mentor, mentee, gap_minutes=gap)
    return score_units(factor_weights(rules), values, units_scale(rules))


def plan_matching(
    *,
    rules: ProgramRules,
    participants: Sequence[Candidate],
    excluded: AbstractSet[tuple[str, str]],
    at: datetime,
) -> MatchPlan:
    """Optimal plan for ``rules.objective``; deterministic; sparse candidates, certified."""
    with reusing_freed_memory():
        cohort = encode_cohort(rules=rules, participants=participants, excluded=excluded, at=at)
        evaluator = PairEvaluator(rules=rules, cohort=cohort)
        certified = certified_plan(evaluator, objective=rules.objective)
        chosen = certified.chosen
        pairs = explain_pairs(rules, cohort, mentees=chosen.mentee, mentors=chosen.mentor)
        return MatchPlan(
            pairs=pairs,
            unmatched=unmatched_people(cohort, certified),
            totals=plan_totals(cohort, certified, pairs),
        )


def unmatched_people(cohort: Cohort, certified: CertifiedPlan) -> tuple[Unmatched, ...]:
    """Everyone open for matching who got no pair, with the reason, sorted by id.

    People left out before the solve keep that reason (not screened, no shared topic, no
    eligible candidate); the others were passed over by the optimal plan, or had no
    allowed partner at all.
    """
    mentee_degree, mentor_degree = certified.store.degrees()
    reasons = {**cohort.closed, **cohort.left_out}
    for side, degree, passed_over in (
        (cohort.mentors, mentor_degree, NOT_NEEDED),
        (cohort.mentees, mentee_degree, CAPACITY_TAKEN),
    ):
        reasons.update(
            (person.participant_id, passed_over if eligible else NO_ELIGIBLE)
            for person, eligible in zip(side.people, degree.tolist(), strict=True)
        )
    for person in _people(cohort.mentees, certified.chosen.mentee):
        reasons.pop(person.participant_id, None)
    for person in _people(cohort.mentors, certified.chosen.mentor):
        reasons.pop(person.participant_id, None)
    return tuple(_unmatched(pid, reasons[pid]) for pid in sorted(reasons))


@lru_cache(maxsize=1 << 17)
def _unmatched(participant_id: str, reason: str) -> Unmatched:
    """Shared immutable entries: a continuous run lists the same idle mentors each time."""
    return Unmatched(participant_id=participant_id, reason=reason)


def _people(side: Side, indices: IntArray) -> list[Candidate]:
    return [side.people[k] for k in indices.tolist()]


def plan_totals(
    cohort: Cohort, certified: CertifiedPlan, pairs: tuple[PlannedPair, ...]
) -> dict[str, float | int]:
    """Counts and figures of a plan (all numbers, for MatchRunCompleted and the CLI)."""
    return {
        "matched": len(pairs),
        "mentors": cohort.open_mentors,
        "mentees": cohort.open_mentees,
        "unmatched_mentees": cohort.open_mentees - len(pairs),
        "total_score": round(sum(p.score for p in pairs), 6),
        "objective_units": int(certified.chosen.units.sum()),
        "pairs_evaluated": len(cohort.mentees) * len(cohort.mentors),
        "eligible_arcs": len(certified.store),
        "candidate_arcs": certified.candidate_arcs,
        "solved_arcs": certified.solved_arcs,
        "certificate_rounds": certified.rounds,
        "optimal": True,
    }
