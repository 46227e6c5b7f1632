"""The demo's cohort: the program body and the join requests the scenario sends.

SEAM: the synthetic enterprise (``upward.demo.enterprise``: ``generate_enterprise``,
``cohort_requests``, ``demo_program``) is built separately. When that module is present it
is used; until then :func:`stand_in_cohort` builds a small reverse-mentoring cohort from the
matching engine's synthetic cohorts (``services.matching.domain.synthetic``), with the same
shapes: ``POST /programs`` body and ``POST /programs/{id}/participants`` bodies.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from datetime import date
from typing import Any

from schemas.programs import ProgramCreated
from services.matching.domain.synthetic import TOPICS, CohortShape, synthetic_cohort
from upward.identity import PLATFORM_ADMIN

FIRST = [
    "Aisha",
    "Ben",
    "Chen",
    "Dana",
    "Emeka",
    "Farah",
    "Goran",
    "Hana",
    "Ivan",
    "Jia",
    "Kofi",
    "Lena",
    "Marta",
    "Nikhil",
    "Olu",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tomas",
]
LAST = [
    "Rahman",
    "Okafor",
    "Li",
    "Novak",
    "Silva",
    "Haddad",
    "Kowalski",
    "Tanaka",
    "Moreau",
    "Schmidt",
    "Mensah",
    "Garcia",
    "Iyer",
    "Andersen",
    "Costa",
    "Nguyen",
    "Weber",
]


@dataclass(frozen=True)
class Cohort:
    """What the scenario sends: the program and the people who join it."""

    program: dict[str, Any]
    members: list[dict[str, Any]]


def program_body(
    program_id: str,
    *,
    starts_on: date,
    weeks: int,
    base: dict[str, Any] | None = None,
    extra_topics: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A reverse program (batch + continuous) running *weeks* weeks from *starts_on*.

    The platform admin (the ``upward`` tool's identity) administers it, so the demo can
    read the outcomes; mentors must be screened and trained, as the program requires.
    """
    body = base or ProgramCreated.example().model_dump(mode="json")
    topics = sorted({*(t["key"] for t in body["topics"]), *extra_topics})
    catalogue = {t["key"]: t for t in body["topics"]}
    return body | {
        "program_id": program_id,
        "name": "Upward demo: reverse mentoring",
        "starts_on": starts_on.isoformat(),
        "duration_weeks": weeks,
        "cadence_days": 7,
        "max_timezone_gap_hours": 12,
        "requires_screening": True,
        "requires_training": True,
        "pairing_modes": ["batch", "continuous", "manual"],
        "topics": [catalogue.get(key, _topic(key, i)) for i, key in enumerate(topics)],
        "admin_ids": [PLATFORM_ADMIN.subject],
    }


def _topic(key: str, index: int) -> dict[str, Any]:
    """A catalogue entry for a topic the base program lacks."""
    title = key.replace("-", " ").title()
    return {"key": key, "title": title, "difficulty": 1 + index % 5, "confidential": False}


def _name(index: int) -> str:
    return f"{FIRST[index % len(FIRST)]} {LAST[(index // len(FIRST)) % len(LAST)]}"


def _region(timezone: str) -> str:
    if timezone.startswith("America"):
        return "amer"
    return "apac" if timezone.startswith(("Asia", "Australia")) else "emea"


def stand_in_cohort(employees: int, *, seed: int, program: dict[str, Any]) -> Cohort:
    """About a quarter of *employees* join: as many junior mentors as senior mentees."""
    side = max(2, employees // 8)
    people = synthetic_cohort(CohortShape(mentors=side, mentees=side, seed=seed))
    members = []
    for index, person in enumerate(people):
        members.append(
            {
                "participant_id": person.participant_id,
                "program_id": program["program_id"],
                "role": str(person.role),
                "display_name": _name(index),
                "email": f"{person.participant_id}@demo.upward.example",
                "grade": person.grade,
                "department": person.department,
                "region": _region(person.timezone),
                "timezone": person.timezone,
                "languages": sorted(person.languages),
                "manager_chain": list(person.manager_chain),
                "offers": dict(person.offers),
                "wants": dict(person.wants),
                "capacity": max(1, person.mentor_slots),
                "background": dict(person.background),
                "preferences": {"prefer": sorted(person.prefer), "avoid": sorted(person.avoid)},
            }
        )
    return Cohort(program, members)


def load_cohort(
    employees: int, *, seed: int, program_id: str, starts_on: date, weeks: int
) -> Cohort:
    """The synthetic enterprise's cohort when available, else the stand-in."""
    try:
        enterprise: Any = importlib.import_module("upward.demo.enterprise")
    except ModuleNotFoundError:
        program = program_body(program_id, starts_on=starts_on, weeks=weeks, extra_topics=TOPICS)
        return stand_in_cohort(employees, seed=seed, program=program)
    company = enterprise.generate_enterprise(employees, seed=seed)
    wanted = {"program_id": program_id, "starts_on": starts_on, "duration_weeks": weeks}
    accepted = inspect.signature(enterprise.demo_program).parameters
    base = enterprise.demo_program(**{k: v for k, v in wanted.items() if k in accepted})
    program = program_body(program_id, starts_on=starts_on, weeks=weeks, base=base)
    members = enterprise.cohort_requests(company, program_id=program_id, kind="reverse")
    return Cohort(program, list(members))
