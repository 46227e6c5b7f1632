"""The synthetic enterprise: a real org tree, consistent grades and reporting lines, valid
time zones and languages, API bodies the matching service accepts, and a cohort the
matching engine can mostly pair (sparse but nonzero overlap)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from statistics import mean
from zoneinfo import ZoneInfo

import pytest

from schemas.participants import ParticipantJoined
from schemas.programs import ProgramCreated, ProgramDefinition
from services.matching.domain.engine import plan_matching
from services.matching.domain.model import ProgramRules
from upward.demo.enterprise import (
    Enterprise,
    Level,
    cohort_requests,
    demo_program,
    generate_enterprise,
    hr_export_rows,
    write_hr_export,
)
from upward.importing.mapping import ColumnMapping
from upward.importing.rows import read_export
from upward.match.dry_run import candidate, reference_instant


@pytest.fixture(scope="module")
def enterprise() -> Enterprise:
    return generate_enterprise(2000, seed=7)


def test_the_same_seed_gives_the_same_enterprise_and_another_seed_another() -> None:
    assert generate_enterprise(300, seed=3) == generate_enterprise(300, seed=3)
    assert generate_enterprise(300, seed=3) != generate_enterprise(300, seed=4)


def test_the_org_chart_is_one_tree_under_the_ceo(enterprise: Enterprise) -> None:
    assert len(enterprise.employees) == 2000
    assert len(enterprise.by_id) == 2000
    roots = [p for p in enterprise.employees if p.manager_id is None]
    assert [p.level for p in roots] == [Level.CEO]
    for person in enterprise.employees:
        chain = enterprise.manager_chain(person.employee_id)
        assert len(chain) == len(set(chain))
        assert person is roots[0] or chain[-1] == roots[0].employee_id


def test_levels_and_span_of_control_look_like_a_firm(enterprise: Enterprise) -> None:
    levels = Counter(p.level for p in enterprise.employees)
    assert levels[Level.STAFF] / 2000 > 0.8
    assert 3 <= levels[Level.EXECUTIVE] <= 12
    staff_per_manager = [
        len(enterprise.reports(p.employee_id))
        for p in enterprise.employees
        if p.level is Level.MANAGER
    ]
    assert min(staff_per_manager) >= 1
    assert 5 <= mean(staff_per_manager) <= 10
    assert max(staff_per_manager) > min(staff_per_manager)


def test_grades_rise_along_every_reporting_line(enterprise: Enterprise) -> None:
    for person in enterprise.employees:
        grades = [person.grade] + [
            enterprise.by_id[m].grade for m in enterprise.manager_chain(person.employee_id)
        ]
        assert grades == sorted(grades) and len(set(grades)) == len(grades), person


def test_regions_time_zones_and_languages(enterprise: Enterprise) -> None:
    assert {p.region for p in enterprise.employees} == {"emea", "amer", "apac"}
    for zone in {p.timezone for p in enterprise.employees}:
        ZoneInfo(zone)
    speaking_english = sum("en" in p.languages for p in enterprise.employees)
    assert 0.7 < speaking_english / 2000 < 1
    assert all(
        len(code) == 2 and code.islower() for p in enterprise.employees for code in p.languages
    )


def test_emails_and_ids_are_unique(enterprise: Enterprise) -> None:
    assert len({p.email for p in enterprise.employees}) == 2000
    assert all(p.display_name for p in enterprise.employees)


def test_juniors_offer_what_seniors_want(enterprise: Enterprise) -> None:
    junior_offers = {t for p in enterprise.employees if not p.is_senior for t, _ in p.offers}
    senior_wants = {t for p in enterprise.employees if p.is_senior for t, _ in p.wants}
    senior_offers = {t for p in enterprise.employees if p.is_senior for t, _ in p.offers}
    assert senior_wants <= junior_offers
    assert junior_offers.isdisjoint(senior_offers)
    consented = sum(bool(p.background) for p in enterprise.employees)
    assert 0.2 < consented / 2000 < 0.6
    assert 0 < sum(bool(p.prefer or p.avoid) for p in enterprise.employees) < 200


@pytest.mark.parametrize("kind", ["reverse", "traditional", "mutual"])
def test_the_program_body_is_a_valid_program_definition(kind: str) -> None:
    body = demo_program(program_id=f"prg-{kind}", kind=kind)
    program = ProgramDefinition.model_validate(body)
    assert program.program_type == kind and len(program.topics) >= 10
    assert program.requires_screening and program.requires_training


def test_an_unknown_program_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown program kind"):
        demo_program(program_id="p", kind="sideways")


@pytest.mark.parametrize("kind", ["reverse", "traditional", "mutual"])
def test_every_join_body_is_valid_and_consistent_with_the_tree(
    enterprise: Enterprise, kind: str
) -> None:
    bodies = cohort_requests(enterprise, program_id="prg-1", kind=kind)
    assert len(bodies) == 300
    assert len({b["participant_id"] for b in bodies}) == 300
    for body in bodies:
        joined = ParticipantJoined.model_validate(body)
        assert joined.manager_chain == enterprise.manager_chain(joined.participant_id)
        grades = [joined.grade] + [enterprise.by_id[m].grade for m in joined.manager_chain]
        assert grades == sorted(grades)
    roles = Counter(b["role"] for b in bodies)
    if kind == "mutual":
        assert roles == {"both": 300}
    else:
        juniors = "mentor" if kind == "reverse" else "mentee"
        assert all((b["grade"] <= 4) == (b["role"] == juniors) for b in bodies)
        assert roles["mentor"] > 0 and roles["mentee"] > 0


def test_the_cohort_is_deterministic_per_program(enterprise: Enterprise) -> None:
    first = cohort_requests(enterprise, program_id="prg-1")
    assert first == cohort_requests(enterprise, program_id="prg-1")
    assert first != cohort_requests(enterprise, program_id="prg-2")


def test_most_mentees_of_a_300_person_cohort_get_a_mentor(enterprise: Enterprise) -> None:
    program = ProgramCreated.model_validate(demo_program(program_id="prg-1"))
    people = [
        ParticipantJoined.model_validate(b) for b in cohort_requests(enterprise, program_id="prg-1")
    ]
    plan = plan_matching(
        rules=ProgramRules.from_definition(program),
        participants=[candidate(p, assume_screened=True) for p in people],
        excluded=set(),
        at=reference_instant(program, None),
    )
    mentees = sum(p.role == "mentee" for p in people)
    assert plan.totals["matched"] >= 0.85 * mentees
    # sparse overlap: far from every mentor suits every mentee
    mentors = len(people) - mentees
    assert plan.totals["eligible_arcs"] < 0.5 * mentors * mentees


def test_the_hr_export_reads_back_into_the_same_join_bodies(
    enterprise: Enterprise, tmp_path: Path
) -> None:
    cohort = cohort_requests(enterprise, program_id="prg-1")
    path = tmp_path / "hr.csv"
    write_hr_export(hr_export_rows(enterprise, cohort=cohort), path)
    parsed = read_export(path, mapping=ColumnMapping(), program_id="prg-1")
    assert parsed.problems == []
    assert parsed.not_joining == 2000 - 300
    assert [j.body for j in parsed.joins] == [ParticipantJoined.model_validate(b) for b in cohort]
    line_of = {p.employee_id: line for line, p in enumerate(enterprise.employees, start=2)}
    assert [j.line for j in parsed.joins] == [line_of[b["participant_id"]] for b in cohort]
