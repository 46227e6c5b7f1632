"""One test per hard constraint: check_pair reports it, and the planner never pairs it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from schemas.primitives import Role
from services.matching.domain.constraints import clock_gap_minutes, timezone_gap_minutes
from services.matching.domain.engine import check_pair, plan_matching
from services.matching.domain.model import Candidate, ProgramRules
from tests.matching.engine_strategies import AT, person, rules

MENTOR = person("m-1", Role.MENTOR)
MENTEE = person("e-1", Role.MENTEE)


def violations(
    mentor: Candidate = MENTOR,
    mentee: Candidate = MENTEE,
    program: ProgramRules | None = None,
    excluded: frozenset[tuple[str, str]] = frozenset(),
    at: datetime = AT,
) -> list[str]:
    return check_pair(
        rules=program or rules(), mentor=mentor, mentee=mentee, excluded=excluded, at=at
    )


def planned(mentor: Candidate, mentee: Candidate, program: ProgramRules | None = None) -> int:
    plan = plan_matching(
        rules=program or rules(), participants=[mentor, mentee], excluded=set(), at=AT
    )
    return len(plan.pairs)


def test_a_pair_meeting_every_rule_is_allowed_and_planned() -> None:
    assert violations() == []
    assert planned(MENTOR, MENTEE) == 1


@pytest.mark.parametrize(
    ("mentor", "mentee", "code"),
    [
        (replace(MENTOR, role=Role.MENTEE), MENTEE, "wrong_role"),
        (MENTOR, replace(MENTEE, role=Role.MENTOR), "wrong_role"),
        (replace(MENTOR, active=False), MENTEE, "inactive"),
        (MENTOR, replace(MENTEE, active=False), "inactive"),
        (replace(MENTOR, screened=False), MENTEE, "not_screened"),
        (replace(MENTOR, trained=False), MENTEE, "not_trained"),
        (replace(MENTOR, mentor_slots=0), MENTEE, "no_capacity"),
        (MENTOR, replace(MENTEE, needs_mentor=False), "already_paired"),
        (replace(MENTOR, grade=5), MENTEE, "grade_gap"),
        (replace(MENTOR, manager_chain=("lead-7", "e-1")), MENTEE, "reporting_line"),
        (MENTOR, replace(MENTEE, manager_chain=("m-1",)), "reporting_line"),
        (replace(MENTOR, languages=frozenset({"fr"})), MENTEE, "no_shared_language"),
        (replace(MENTOR, timezone="Asia/Tokyo"), MENTEE, "timezone_gap"),
        (replace(MENTOR, avoid=frozenset({"e-1"})), MENTEE, "avoided"),
        (MENTOR, replace(MENTEE, avoid=frozenset({"m-1"})), "avoided"),
        (replace(MENTOR, offers={"genai-tools": 5}), MENTEE, "no_shared_topic"),
    ],
)
def test_each_violated_rule_is_reported_and_never_planned(
    mentor: Candidate, mentee: Candidate, code: str
) -> None:
    assert violations(mentor, mentee) == [code]
    assert planned(mentor, mentee) == 0


def test_the_same_person_cannot_mentor_themselves() -> None:
    both = person("b-1", Role.BOTH, grade=4)
    assert "same_person" in violations(both, both, rules(min_grade_gap=0))
    plan = plan_matching(rules=rules(min_grade_gap=0), participants=[both], excluded=set(), at=AT)
    assert plan.pairs == ()


def test_screening_and_training_only_count_when_the_program_requires_them() -> None:
    untrained = replace(MENTOR, screened=False, trained=False)
    relaxed = rules(requires_screening=False, requires_training=False)
    assert violations(untrained, MENTEE, relaxed) == []
    assert violations(untrained) == ["not_screened", "not_trained"]


def test_a_declined_or_ended_pair_is_excluded_in_both_directions() -> None:
    assert violations(excluded=frozenset({("m-1", "e-1")})) == ["previously_excluded"]
    assert violations(excluded=frozenset({("e-1", "m-1")})) == ["previously_excluded"]
    plan = plan_matching(
        rules=rules(), participants=[MENTOR, MENTEE], excluded={("m-1", "e-1")}, at=AT
    )
    assert plan.pairs == ()


@pytest.mark.parametrize(
    ("program_type", "mentor_grade", "mentee_grade", "allowed"),
    [
        ("reverse", 2, 4, True),
        ("reverse", 3, 4, False),
        ("reverse", 6, 2, False),
        ("traditional", 6, 4, True),
        ("traditional", 5, 4, False),
        ("traditional", 2, 6, False),
        ("mutual", 6, 2, True),
        ("mutual", 2, 6, True),
    ],
)
def test_direction_and_grade_gap_follow_the_program_type(
    program_type: str, mentor_grade: int, mentee_grade: int, allowed: bool
) -> None:
    program = rules(program_type=program_type, min_grade_gap=2)
    found = violations(
        replace(MENTOR, grade=mentor_grade), replace(MENTEE, grade=mentee_grade), program
    )
    assert (found == []) is allowed
    assert found in ([], ["grade_gap"])


def test_a_reporting_line_counts_at_any_level_of_the_chain() -> None:
    skip_level = replace(MENTEE, manager_chain=("e-9", "e-8", "m-1"))
    assert violations(MENTOR, skip_level) == ["reporting_line"]
    same_boss = replace(MENTEE, manager_chain=("boss",))
    assert violations(replace(MENTOR, manager_chain=("boss",)), same_boss) == []


def test_the_timezone_gap_is_taken_at_the_instant_so_daylight_saving_counts() -> None:
    new_york = replace(MENTOR, timezone="America/New_York")
    london = replace(MENTEE, timezone="Europe/London")
    four_hours = rules(max_timezone_gap_hours=4)
    between_changes = datetime(2025, 3, 20, 12, tzinfo=UTC)
    winter = datetime(2025, 1, 15, 12, tzinfo=UTC)
    assert timezone_gap_minutes("America/New_York", "Europe/London", between_changes) == 240
    assert timezone_gap_minutes("America/New_York", "Europe/London", winter) == 300
    assert violations(new_york, london, four_hours, at=between_changes) == []
    assert violations(new_york, london, four_hours, at=winter) == ["timezone_gap"]


def test_the_timezone_gap_wraps_around_the_day() -> None:
    assert clock_gap_minutes(14 * 60, -11 * 60) == 60
    assert clock_gap_minutes(9 * 60, -3 * 60) == 720
    kiritimati = replace(MENTOR, timezone="Pacific/Kiritimati")
    pago_pago = replace(MENTEE, timezone="Pacific/Pago_Pago")
    assert violations(kiritimati, pago_pago, rules(max_timezone_gap_hours=1)) == []
    assert planned(kiritimati, pago_pago, rules(max_timezone_gap_hours=1)) == 1


def test_a_shared_language_among_several_is_enough() -> None:
    mentor = replace(MENTOR, languages=frozenset({"fr", "ur"}))
    mentee = replace(MENTEE, languages=frozenset({"en", "ur"}))
    assert violations(mentor, mentee) == []
