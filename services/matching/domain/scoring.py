"""The transparent matching score: a weighted sum of four factors, each in 0..1.

* ``skill_coverage`` = sum over topics t the mentee wants and the mentor offers of
  ``priority(t) x level(t)``, divided by ``5 x`` the sum of the priorities of everything the
  mentee wants. 1 = the mentor teaches every wanted topic at level 5; a topic the mentor
  does not offer counts 0, so high-priority wants weigh most.
* ``diversity`` = (1 if the departments differ) + (number of background attributes both
  consented to share whose values differ), divided by 1 + the number of such shared
  attributes. Only consented attributes take part.
* ``timezone_closeness`` = 1 - clock gap / 12 hours (1 = same local time, 0 = opposite).
* ``preference`` = 0.5 if the mentor listed the mentee in ``prefer`` + 0.5 if the mentee
  listed the mentor.

``score = w_skill x skill_coverage + w_diversity x diversity + w_tz x timezone_closeness +
w_pref x preference``. The solver optimises integer *score units*: each contribution is
quantised to millionths of the total weight, ``floor(w x value x 10^6 / sum(weights) +
0.5)``, and the four are added. Integers make the objective exact and deterministic, and
the vectorised generator reads the same per-factor units from tables computed with these
very functions, so the two paths cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from schemas.pairs import ScoreFactor, ScoreFactorName
from services.matching.domain.model import Candidate, ProgramRules

FACTORS: tuple[ScoreFactorName, ...] = (
    ScoreFactorName.SKILL_COVERAGE,
    ScoreFactorName.DIVERSITY,
    ScoreFactorName.TIMEZONE_CLOSENESS,
    ScoreFactorName.PREFERENCE,
)
MAX_LEVEL = 5
HALF_DAY_MINUTES = 12 * 60
UNITS_PER_TOTAL_WEIGHT = 1_000_000
"""A pair scoring every factor at 1 is worth this many score units."""


@dataclass(frozen=True, slots=True)
class FactorValues:
    """The four factor values of one pair, each in 0..1."""

    skill_coverage: float
    diversity: float
    timezone_closeness: float
    preference: float

    def as_tuple(self) -> tuple[float, float, float, float]:
        """The values in :data:`FACTORS` order."""
        return (self.skill_coverage, self.diversity, self.timezone_closeness, self.preference)


def factor_weights(rules: ProgramRules) -> tuple[float, float, float, float]:
    """The program's weights in :data:`FACTORS` order (a missing weight counts 0)."""
    return tuple(float(rules.weights.get(name.value, 0.0)) for name in FACTORS)  # type: ignore[return-value]


def units_scale(rules: ProgramRules) -> float:
    """Score units per score point: 10^6 / sum of the weights (0 when all weights are 0)."""
    total = sum(factor_weights(rules))
    return UNITS_PER_TOTAL_WEIGHT / total if total > 0 else 0.0


def skill_coverage(offers: Mapping[str, int], wants: Mapping[str, int]) -> float:
    """Priority-weighted share of the mentee's wants the mentor teaches, scaled by level."""
    wanted = sum(wants.values())
    if wanted <= 0:
        return 0.0
    taught = sum(priority * offers.get(topic, 0) for topic, priority in wants.items())
    return taught / (MAX_LEVEL * wanted)


def diversity(mentor: Candidate, mentee: Candidate) -> float:
    """Share of differing dimensions among department and the mutually consented attributes."""
    shared = mentor.background.keys() & mentee.background.keys()
    differing = sum(1 for key in shared if mentor.background[key] != mentee.background[key])
    department_differs = 1 if mentor.department != mentee.department else 0
    return (department_differs + differing) / (1 + len(shared))


def timezone_closeness(gap_minutes: int) -> float:
    """1 for the same local clock, falling linearly to 0 at a 12-hour gap."""
    return 1.0 - gap_minutes / HALF_DAY_MINUTES


def preference(mentor: Candidate, mentee: Candidate) -> float:
    """Half a point for each side that listed the other in ``prefer``."""
    return (
        int(mentee.participant_id in mentor.prefer) + int(mentor.participant_id in mentee.prefer)
    ) / 2


def weighted_score(weights: tuple[float, float, float, float], values: FactorValues) -> float:
    """The weighted sum of the factor values (the score shown to people)."""
    skill, div, tz, pref = values.as_tuple()
    return weights[0] * skill + weights[1] * div + weights[2] * tz + weights[3] * pref


def factor_units(weight: float, value: float, scale: float) -> int:
    """One factor's contribution in integer score units."""
    return math.floor(weight * value * scale + 0.5)


def score_units(
    weights: tuple[float, float, float, float], values: FactorValues, scale: float
) -> int:
    """The integer the solver optimises for a pair: the sum of its factors' units."""
    return sum(
        factor_units(weight, value, scale)
        for weight, value in zip(weights, values.as_tuple(), strict=True)
    )


def shared_topics(offers: Mapping[str, int], wants: Mapping[str, int]) -> tuple[str, ...]:
    """Topics offered and wanted, best first: priority x level, then priority, then key."""
    common = offers.keys() & wants.keys()
    return tuple(sorted(common, key=lambda t: (-wants[t] * offers[t], -wants[t], t)))


def explanation(
    weights: tuple[float, float, float, float], values: FactorValues
) -> tuple[ScoreFactor, ...]:
    """One ScoreFactor per factor: weight, value and contribution = weight x value."""
    return _explanation(weights, values.as_tuple())


@lru_cache(maxsize=1 << 16)
def _explanation(
    weights: tuple[float, float, float, float], values: tuple[float, float, float, float]
) -> tuple[ScoreFactor, ...]:
    """Shared immutable lines: factor values take few distinct values in a cohort.

    Built without re-validation (``model_construct``): weights are >= 0 and every value
    is in 0..1 by construction.
    """
    return tuple(
        ScoreFactor.model_construct(
            factor=name, weight=weight, value=value, contribution=round(weight * value, 6)
        )
        for name, weight, value in zip(FACTORS, weights, values, strict=True)
    )


def pair_values(mentor: Candidate, mentee: Candidate, *, gap_minutes: int) -> FactorValues:
    """The four factor values of ``mentor`` mentoring ``mentee``."""
    return FactorValues(
        skill_coverage=skill_coverage(mentor.offers, mentee.wants),
        diversity=diversity(mentor, mentee),
        timezone_closeness=timezone_closeness(gap_minutes),
        preference=preference(mentor, mentee),
    )
