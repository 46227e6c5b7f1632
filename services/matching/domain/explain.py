"""Explanations of a plan's pairs, computed for all pairs at once.

The factor values are the scalar formulas of :mod:`~services.matching.domain.scoring`
evaluated on the cohort's arrays with the same float operations (integer numerators and
denominators, one division each), so every pair equals
:func:`~services.matching.domain.engine.score_pair` exactly; only the per-pair Python
work (ScoreFactor objects, topic order) is left.
"""

from __future__ import annotations

import numpy as np

from services.matching.domain.arrays import FloatArray, IntArray
from services.matching.domain.cohort import Cohort
from services.matching.domain.constraints import MINUTES_PER_DAY
from services.matching.domain.model import PlannedPair, ProgramRules
from services.matching.domain.scoring import (
    HALF_DAY_MINUTES,
    FactorValues,
    explanation,
    factor_weights,
    shared_topics,
    weighted_score,
)


def explain_pairs(
    rules: ProgramRules, cohort: Cohort, *, mentees: IntArray, mentors: IntArray
) -> tuple[PlannedPair, ...]:
    """A PlannedPair (score, explanation, topics) for each (mentee, mentor) index pair."""
    weights = factor_weights(rules)
    columns = zip(
        _skill(cohort, mentees, mentors).tolist(),
        _diversity(cohort, mentees, mentors).tolist(),
        _closeness(cohort, mentees, mentors).tolist(),
        _preference(cohort, mentees, mentors).tolist(),
        strict=True,
    )
    pairs = []
    for j, i, values in zip(mentees.tolist(), mentors.tolist(), columns, strict=True):
        mentor, mentee = cohort.mentors.people[i], cohort.mentees.people[j]
        factors = FactorValues(*values)
        pairs.append(
            PlannedPair(
                mentor_id=mentor.participant_id,
                mentee_id=mentee.participant_id,
                score=round(weighted_score(weights, factors), 6),
                explanation=explanation(weights, factors),
                topics=shared_topics(mentor.offers, mentee.wants),
            )
        )
    return tuple(pairs)


def _skill(cohort: Cohort, mentees: IntArray, mentors: IntArray) -> FloatArray:
    taught = (cohort.mentees.topics[mentees] * cohort.mentors.topics[mentors]).sum(axis=1)
    wanted = cohort.coverage_denominator[mentees].astype(np.float64)
    skill: FloatArray = taught.astype(np.int64).astype(np.float64) / wanted
    return skill


def _diversity(cohort: Cohort, mentees: IntArray, mentors: IntArray) -> FloatArray:
    mine, theirs = cohort.mentees.background[mentees], cohort.mentors.background[mentors]
    both = (mine >= 0) & (theirs >= 0)
    differing = (both & (mine != theirs)).sum(axis=1)
    department = cohort.mentees.department[mentees] != cohort.mentors.department[mentors]
    numerator = (department.astype(np.int64) + differing).astype(np.float64)
    value: FloatArray = numerator / (1 + both.sum(axis=1)).astype(np.float64)
    return value


def _closeness(cohort: Cohort, mentees: IntArray, mentors: IntArray) -> FloatArray:
    offset = cohort.mentees.offset[mentees].astype(np.int64) - cohort.mentors.offset[mentors]
    apart = np.abs(offset) % MINUTES_PER_DAY
    gap = np.minimum(apart, MINUTES_PER_DAY - apart)
    closeness: FloatArray = 1.0 - gap.astype(np.float64) / HALF_DAY_MINUTES
    return closeness


def _preference(cohort: Cohort, mentees: IntArray, mentors: IntArray) -> FloatArray:
    values = np.zeros(mentees.size, dtype=np.float64)
    keys = mentees * len(cohort.mentors) + mentors
    if cohort.preferred.size:
        where = np.clip(np.searchsorted(cohort.preferred, keys), 0, cohort.preferred.size - 1)
        hit = cohort.preferred[where] == keys
        values[hit] = (cohort.preference[where[hit]] * 2).astype(np.int64) / 2
    return values
