"""Pair health: a transparent score from recent ratings, attendance and stalls.

score = clamp(rating_level - trend - missed - stalled - no_feedback, 0, 1), where

* ``rating_level``: the recency-weighted mean (weights 1..n, newest heaviest) of the last
  ``RATING_WINDOW`` answers of either side, each answer being the mean of its four
  ratings on 0..1 (1 -> 0, 5 -> 1); 1.0 while the pair has no answer yet;
* ``trend``: ``TREND_PENALTY`` when, with at least 4 answers, the newer half of the window
  averages ``TREND_DROP`` or more below the older half;
* ``missed``: ``MISSED_PENALTY`` per session missed in a row, at most ``MISSED_CAP``;
* ``stalled``: ``STALL_PENALTY`` while the pair is stalled (until a session is held);
* ``no_feedback``: ``NO_FEEDBACK_PENALTY`` when at least 2 of the last 4 closed requests
  went unanswered.

Bands: ``at_risk`` below the program's threshold, ``healthy`` from
``max(HEALTHY_FROM, threshold)``, ``watch`` in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.feedback import HealthSignal, PairHealth, RiskAction

RATING_WINDOW = 6
TREND_PENALTY = 0.1
TREND_DROP = 0.2
MISSED_PENALTY = 0.15
MISSED_CAP = 0.45
STALL_PENALTY = 0.3
NO_FEEDBACK_PENALTY = 0.1
NO_FEEDBACK_WINDOW = 4
NO_FEEDBACK_MISSING = 2
HEALTHY_FROM = 0.7
LOW_RATING = 2.5


@dataclass(frozen=True)
class RatedAnswer:
    """The four ratings (1-5) of one answer about the pair."""

    satisfaction: int
    usefulness: int
    comfort: int
    progress: int

    @property
    def score(self) -> float:
        """Mean rating on 0..1."""
        return ((self.satisfaction + self.usefulness + self.comfort + self.progress) / 4 - 1) / 4


@dataclass(frozen=True)
class HealthInputs:
    """What the score is computed from. Sequences are oldest first."""

    answers: Sequence[RatedAnswer] = ()
    consecutive_missed: int = 0
    stalled: bool = False
    closed_requests_missing: Sequence[bool] = ()


@dataclass(frozen=True)
class HealthAssessment:
    """A pair's score, its band and the signals that lowered it."""

    score: float
    band: PairHealth
    signals: tuple[HealthSignal, ...]


def assess(inputs: HealthInputs, *, threshold: float) -> HealthAssessment:
    """Score a pair and place it in a band of the program whose at-risk line is ``threshold``."""
    answers = list(inputs.answers)[-RATING_WINDOW:]
    level = rating_level(answers)
    penalties = _penalties(inputs, answers)
    signals = _rating_signals(answers, level, threshold) + tuple(s for s, _ in penalties)
    score = round(min(1.0, max(0.0, level - sum(p for _, p in penalties))), 3)
    return HealthAssessment(score=score, band=band_for(score, threshold), signals=signals)


def rating_level(answers: Sequence[RatedAnswer]) -> float:
    """Recency-weighted mean answer score (1.0 when there is none)."""
    if not answers:
        return 1.0
    weights = range(1, len(answers) + 1)
    total = sum(w * a.score for w, a in zip(weights, answers, strict=True))
    return total / sum(weights)


def band_for(score: float, threshold: float) -> PairHealth:
    """The health band of ``score`` for a program with at-risk ``threshold``."""
    if score < threshold:
        return PairHealth.AT_RISK
    if score >= max(HEALTHY_FROM, threshold):
        return PairHealth.HEALTHY
    return PairHealth.WATCH


def _penalties(
    inputs: HealthInputs, answers: Sequence[RatedAnswer]
) -> list[tuple[HealthSignal, float]]:
    penalties: list[tuple[HealthSignal, float]] = []
    if _declining(answers):
        penalties.append((HealthSignal.DECLINING_TREND, TREND_PENALTY))
    if inputs.consecutive_missed > 0:
        missed = min(MISSED_CAP, MISSED_PENALTY * inputs.consecutive_missed)
        penalties.append((HealthSignal.MISSED_SESSIONS, missed))
    if inputs.stalled:
        penalties.append((HealthSignal.STALLED, STALL_PENALTY))
    recent = list(inputs.closed_requests_missing)[-NO_FEEDBACK_WINDOW:]
    if sum(recent) >= NO_FEEDBACK_MISSING:
        penalties.append((HealthSignal.NO_FEEDBACK, NO_FEEDBACK_PENALTY))
    return penalties


def _declining(answers: Sequence[RatedAnswer]) -> bool:
    if len(answers) < 4:
        return False
    half = len(answers) // 2
    older = sum(a.score for a in answers[:half]) / half
    newer = sum(a.score for a in answers[-half:]) / half
    return older - newer >= TREND_DROP


def _rating_signals(
    answers: Sequence[RatedAnswer], level: float, threshold: float
) -> tuple[HealthSignal, ...]:
    """Low ratings, named by what was rated low (overall low ratings count as satisfaction)."""
    if not answers:
        return ()
    n = len(answers)
    signals: list[HealthSignal] = []
    if sum(a.satisfaction for a in answers) / n <= LOW_RATING or level < threshold:
        signals.append(HealthSignal.LOW_SATISFACTION)
    if sum(a.comfort for a in answers) / n <= LOW_RATING:
        signals.append(HealthSignal.LOW_SAFETY)
    if sum(a.usefulness for a in answers) / n <= LOW_RATING:
        signals.append(HealthSignal.LOW_USEFULNESS)
    return tuple(signals)


def recommended_action(assessment: HealthAssessment, *, threshold: float) -> RiskAction:
    """Rematch a stalled or unsafe pair, or one far below the line; otherwise check in."""
    severe = assessment.score < threshold / 2
    blocking = {HealthSignal.STALLED, HealthSignal.LOW_SAFETY} & set(assessment.signals)
    return RiskAction.REMATCH if severe or blocking else RiskAction.CHECK_IN


@dataclass(frozen=True)
class HealthChange:
    """A move from one band to another; ``now_at_risk`` when it crossed into at_risk."""

    previous: PairHealth
    assessment: HealthAssessment

    @property
    def now_at_risk(self) -> bool:
        """True only on the crossing into at_risk, not while the pair stays there."""
        return self.assessment.band is PairHealth.AT_RISK


def change_between(previous: PairHealth, assessment: HealthAssessment) -> HealthChange | None:
    """The band change from ``previous`` to ``assessment``, or None when the band is the same."""
    if assessment.band is previous:
        return None
    return HealthChange(previous=previous, assessment=assessment)
