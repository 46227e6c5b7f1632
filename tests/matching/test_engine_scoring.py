"""The transparent score: each factor's formula, the weights, the explanation and units."""

from __future__ import annotations

from dataclasses import replace

import pytest

from schemas.pairs import ScoreFactorName
from schemas.primitives import Role
from schemas.programs import ProgramCreated, ScoreWeights
from services.matching.domain.engine import pair_units, score_pair
from services.matching.domain.model import ProgramRules
from services.matching.domain.scoring import (
    diversity,
    preference,
    skill_coverage,
    timezone_closeness,
)
from tests.matching.engine_strategies import AT, person, rules

MENTOR = person("m-1", Role.MENTOR)
MENTEE = person("e-1", Role.MENTEE)


def test_skill_coverage_weighs_each_wanted_topic_by_priority_and_level() -> None:
    wants = {"social-media": 3, "genai-tools": 1}
    assert skill_coverage({"social-media": 5}, wants) == pytest.approx(15 / 20)
    assert skill_coverage({"social-media": 5, "genai-tools": 5}, wants) == 1.0
    assert skill_coverage({"genai-tools": 2}, wants) == pytest.approx(2 / 20)
    assert skill_coverage({"gen-z-culture": 5}, wants) == 0.0


def test_diversity_counts_department_and_only_attributes_both_consented_to_share() -> None:
    same_department = replace(MENTEE, department=MENTOR.department)
    assert diversity(MENTOR, same_department) == 0.0
    assert diversity(MENTOR, MENTEE) == 1.0
    mentor = replace(MENTOR, background={"generation": "gen-z", "community": "a"})
    mentee = replace(MENTEE, background={"generation": "gen-z"})
    assert diversity(mentor, mentee) == pytest.approx(1 / 2)
    assert diversity(mentor, replace(mentee, background={"generation": "gen-x"})) == 1.0
    assert diversity(mentor, replace(same_department, background={"generation": "gen-x"})) == 0.5


def test_timezone_closeness_falls_linearly_to_zero_at_twelve_hours() -> None:
    assert timezone_closeness(0) == 1.0
    assert timezone_closeness(360) == 0.5
    assert timezone_closeness(720) == 0.0


def test_preference_gives_half_a_point_per_side_that_prefers_the_other() -> None:
    assert preference(MENTOR, MENTEE) == 0.0
    assert preference(replace(MENTOR, prefer=frozenset({"e-1"})), MENTEE) == 0.5
    both = preference(
        replace(MENTOR, prefer=frozenset({"e-1"})), replace(MENTEE, prefer=frozenset({"m-1"}))
    )
    assert both == 1.0


def test_the_explanation_lists_every_factor_with_weight_value_and_contribution() -> None:
    program = ProgramRules.from_definition(ProgramCreated.example())
    mentor = replace(MENTOR, timezone="Europe/Paris", prefer=frozenset({"e-1"}))
    mentee = replace(MENTEE, wants={"social-media": 3, "genai-tools": 1})
    pair = score_pair(rules=program, mentor=mentor, mentee=mentee, at=AT)
    lines = {line.factor: line for line in pair.explanation}
    assert [line.factor for line in pair.explanation] == list(ScoreFactorName)
    assert lines[ScoreFactorName.SKILL_COVERAGE].value == pytest.approx(0.75)
    assert lines[ScoreFactorName.DIVERSITY].value == 1.0
    assert lines[ScoreFactorName.TIMEZONE_CLOSENESS].value == pytest.approx(1 - 60 / 720)
    assert lines[ScoreFactorName.PREFERENCE].value == 0.5
    weights = ScoreWeights()
    assert lines[ScoreFactorName.DIVERSITY].weight == weights.diversity
    for line in pair.explanation:
        assert line.contribution == pytest.approx(line.weight * line.value)
    assert pair.score == pytest.approx(sum(line.contribution for line in pair.explanation))
    assert pair.topics == ("social-media",)


def test_per_program_weights_change_the_score() -> None:
    skills_only = rules(
        weights={
            "skill_coverage": 1.0,
            "diversity": 0.0,
            "timezone_closeness": 0.0,
            "preference": 0.0,
        }
    )
    pair = score_pair(
        rules=skills_only,
        mentor=MENTOR,
        mentee=replace(MENTEE, wants={"social-media": 3, "x": 1}),
        at=AT,
    )
    assert pair.score == pytest.approx(0.75)


def test_topics_are_ordered_by_priority_times_level_then_priority_then_key() -> None:
    mentor = replace(MENTOR, offers={"a": 5, "b": 2, "c": 3, "d": 3})
    mentee = replace(MENTEE, wants={"a": 1, "b": 5, "c": 2, "d": 2, "e": 5})
    assert score_pair(rules=rules(), mentor=mentor, mentee=mentee, at=AT).topics == (
        "b",
        "c",
        "d",
        "a",
    )


def test_score_units_are_each_contribution_in_millionths_of_the_total_weight() -> None:
    program = rules(
        weights={
            "skill_coverage": 2.0,
            "diversity": 1.0,
            "timezone_closeness": 1.0,
            "preference": 0.0,
        }
    )
    mentee = replace(MENTEE, wants={"social-media": 3, "genai-tools": 1})
    units = pair_units(rules=program, mentor=MENTOR, mentee=mentee, at=AT)
    assert units == round(2.0 * 0.75 / 4 * 1e6) + round(1.0 / 4 * 1e6) + round(1.0 / 4 * 1e6)
