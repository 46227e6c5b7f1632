"""Pair health: the documented formula, its bands and the at-risk crossing."""

from __future__ import annotations

import pytest

from schemas.feedback import HealthSignal, PairHealth, RiskAction
from services.feedback.domain.health import (
    HealthAssessment,
    HealthInputs,
    RatedAnswer,
    assess,
    band_for,
    change_between,
    rating_level,
    recommended_action,
)

THRESHOLD = 0.4


def answers(*levels: int) -> list[RatedAnswer]:
    return [RatedAnswer(level, level, level, level) for level in levels]


@pytest.mark.parametrize(
    ("score", "threshold", "band"),
    [
        (1.0, 0.4, PairHealth.HEALTHY),
        (0.7, 0.4, PairHealth.HEALTHY),
        (0.699, 0.4, PairHealth.WATCH),
        (0.4, 0.4, PairHealth.WATCH),
        (0.399, 0.4, PairHealth.AT_RISK),
        (0.0, 0.4, PairHealth.AT_RISK),
        (0.75, 0.8, PairHealth.AT_RISK),
        (0.8, 0.8, PairHealth.HEALTHY),
    ],
)
def test_bands(score: float, threshold: float, band: PairHealth) -> None:
    assert band_for(score, threshold) is band


def test_a_new_pair_is_healthy() -> None:
    assessment = assess(HealthInputs(), threshold=THRESHOLD)
    assert assessment == HealthAssessment(score=1.0, band=PairHealth.HEALTHY, signals=())


def test_rating_level_weights_recent_answers_more() -> None:
    assert rating_level(answers(5)) == 1.0
    assert rating_level(answers(1)) == 0.0
    # weights 1 and 2: (1 * 0.0 + 2 * 1.0) / 3
    assert rating_level(answers(1, 5)) == pytest.approx(2 / 3)
    assert rating_level(answers(5, 1)) == pytest.approx(1 / 3)


def test_poor_ratings_put_a_pair_at_risk_with_low_satisfaction() -> None:
    assessment = assess(HealthInputs(answers=answers(2, 1)), threshold=THRESHOLD)
    assert assessment.band is PairHealth.AT_RISK
    assert assessment.score == pytest.approx(round((0.25 + 2 * 0.0) / 3, 3))
    assert HealthSignal.LOW_SATISFACTION in assessment.signals
    assert HealthSignal.LOW_SAFETY in assessment.signals


def test_low_progress_alone_still_names_a_signal_when_at_risk() -> None:
    low = [RatedAnswer(satisfaction=3, usefulness=3, comfort=3, progress=1)] * 2
    assessment = assess(HealthInputs(answers=low), threshold=THRESHOLD)
    assert assessment.band is PairHealth.AT_RISK
    assert assessment.signals == (HealthSignal.LOW_SATISFACTION,)


def test_only_the_last_six_answers_count() -> None:
    old_bad_then_good = answers(1, 1, 1, 5, 5, 5, 5, 5, 5)
    assert assess(HealthInputs(answers=old_bad_then_good), threshold=THRESHOLD).score == 1.0


def test_missed_sessions_cost_per_session_up_to_a_cap() -> None:
    one = assess(HealthInputs(consecutive_missed=1), threshold=THRESHOLD)
    five = assess(HealthInputs(consecutive_missed=5), threshold=THRESHOLD)
    assert one.score == 0.85 and one.signals == (HealthSignal.MISSED_SESSIONS,)
    assert five.score == 0.55 and five.band is PairHealth.WATCH


def test_a_stalled_pair_with_misses_is_at_risk() -> None:
    inputs = HealthInputs(answers=answers(4), consecutive_missed=2, stalled=True)
    assessment = assess(inputs, threshold=THRESHOLD)
    assert assessment.score == pytest.approx(0.75 - 0.3 - 0.3)
    assert assessment.band is PairHealth.AT_RISK
    assert set(assessment.signals) == {HealthSignal.MISSED_SESSIONS, HealthSignal.STALLED}


def test_a_declining_trend_is_penalised() -> None:
    declining = assess(HealthInputs(answers=answers(5, 5, 4, 3)), threshold=THRESHOLD)
    steady = assess(HealthInputs(answers=answers(4, 4, 4, 4)), threshold=THRESHOLD)
    assert HealthSignal.DECLINING_TREND in declining.signals
    assert HealthSignal.DECLINING_TREND not in steady.signals
    expected = rating_level(answers(5, 5, 4, 3)) - 0.1
    assert declining.score == pytest.approx(round(expected, 3))


def test_unanswered_requests_lower_the_score() -> None:
    two_missing = HealthInputs(closed_requests_missing=[True, False, True, False])
    one_missing = HealthInputs(closed_requests_missing=[True, True, False, False, False, True])
    assessment = assess(two_missing, threshold=THRESHOLD)
    assert assessment.score == 0.9 and assessment.signals == (HealthSignal.NO_FEEDBACK,)
    # only the last four closed requests count: one of them is missing
    assert assess(one_missing, threshold=THRESHOLD).score == 1.0


def test_at_risk_is_reported_once_per_crossing() -> None:
    at_risk = assess(HealthInputs(answers=answers(1)), threshold=THRESHOLD)
    first = change_between(PairHealth.HEALTHY, at_risk)
    assert first is not None and first.now_at_risk
    assert change_between(PairHealth.AT_RISK, at_risk) is None
    recovered = assess(HealthInputs(answers=answers(1, 5, 5)), threshold=THRESHOLD)
    back = change_between(PairHealth.AT_RISK, recovered)
    assert back is not None and not back.now_at_risk


def test_recommended_action() -> None:
    mild = HealthAssessment(0.35, PairHealth.AT_RISK, (HealthSignal.LOW_USEFULNESS,))
    severe = HealthAssessment(0.1, PairHealth.AT_RISK, (HealthSignal.LOW_USEFULNESS,))
    unsafe = HealthAssessment(0.35, PairHealth.AT_RISK, (HealthSignal.LOW_SAFETY,))
    stalled = HealthAssessment(0.35, PairHealth.AT_RISK, (HealthSignal.STALLED,))
    assert recommended_action(mild, threshold=THRESHOLD) is RiskAction.CHECK_IN
    assert recommended_action(severe, threshold=THRESHOLD) is RiskAction.REMATCH
    assert recommended_action(unsafe, threshold=THRESHOLD) is RiskAction.REMATCH
    assert recommended_action(stalled, threshold=THRESHOLD) is RiskAction.REMATCH
