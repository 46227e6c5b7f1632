"""The matching engine's public functions: plan a cohort, check a pair, score a pair.

Pure and deterministic: the same participants (in any order), exclusions and instant give
the same plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime

import numpy as np

from schemas.programs import MatchingObjective
from services.matching.domain.constraints import (
    mentee_side_violations,
    mentor_side_violations,
    pair_violations,
    relation_violations,
    timezone_gap_minutes,
)
from services.matching.domain.model import (
    Candidate,
    MatchPlan,
    PlannedPair,
    ProgramRules,
    Unmatched,
)
from services.matching.domain.scoring import (
    UNITS_PER_TOTAL_WEIGHT,
    explanation,
    factor_weights,
    pair_values,
    score_units,
    shared_topics,
    units_scale,
    weighted_score,
)
from services.matching.domain.solver import Arcs, solve


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
    score = weighted_score(factor_weights(rules), pair_values(mentor, mentee, gap_minutes=gap))
    return score_units(score, units_scale(rules))


def plan_matching(
    *,
    rules: ProgramRules,
    participants: Sequence[Candidate],
    excluded: AbstractSet[tuple[str, str]],
    at: datetime,
) -> MatchPlan:
    """Optimal plan for ``rules.objective``; deterministic (first version: all pairs)."""
    people = sorted(participants, key=lambda c: c.participant_id)
    mentors = [c for c in people if not mentor_side_violations(rules, c)]
    mentees = [c for c in people if not mentee_side_violations(c)]
    rows: list[tuple[int, int, int]] = []
    for i, mentor in enumerate(mentors):
        for j, mentee in enumerate(mentees):
            if not relation_violations(
                rules=rules, mentor=mentor, mentee=mentee, excluded=excluded, at=at
            ):
                rows.append((i, j, pair_units(rules=rules, mentor=mentor, mentee=mentee, at=at)))
    capacities = np.array([c.mentor_slots for c in mentors], dtype=np.int64)
    units = np.array([r[2] for r in rows], dtype=np.int64)
    bonus = 0
    if rules.objective == MatchingObjective.MAX_MATCHED_THEN_SCORE:
        bonus = UNITS_PER_TOTAL_WEIGHT * max(1, min(int(capacities.sum()), len(mentees))) + 1
    arcs = Arcs(
        mentor=np.array([r[0] for r in rows], dtype=np.int64),
        mentee=np.array([r[1] for r in rows], dtype=np.int64),
        weight=units + bonus,
    )
    chosen = (
        solve(capacities=capacities, n_mentees=len(mentees), arcs=arcs)
        if rows
        else np.zeros(0, bool)
    )
    pairs = tuple(
        score_pair(
            rules=rules,
            mentor=mentors[int(arcs.mentor[a])],
            mentee=mentees[int(arcs.mentee[a])],
            at=at,
        )
        for a in np.flatnonzero(chosen)
    )
    paired = {p.mentor_id for p in pairs} | {p.mentee_id for p in pairs}
    open_ids = {c.participant_id for c in mentors} | {c.participant_id for c in mentees}
    unmatched = tuple(
        Unmatched(participant_id=pid, reason="capacity_taken_by_better_plan")
        for pid in sorted(open_ids - paired)
    )
    totals: dict[str, float | int] = {
        "matched": len(pairs),
        "mentors": len(mentors),
        "mentees": len(mentees),
        "total_score": round(sum(p.score for p in pairs), 6),
        "objective_units": int(units[chosen].sum()) if rows else 0,
        "candidate_arcs": len(rows),
    }
    return MatchPlan(pairs=pairs, unmatched=unmatched, totals=totals)
