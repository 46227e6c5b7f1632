"""The demo's cohort: the program body and the join requests the scenario sends.

The people come from the synthetic enterprise (:mod:`upward.demo.enterprise`); the program
is its reverse mentoring program, set to the demo's start, length and weekly cadence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from upward.demo import enterprise
from upward.identity import PLATFORM_ADMIN


@dataclass(frozen=True)
class Cohort:
    """What the scenario sends: the program and the people who join it."""

    program: dict[str, Any]
    members: list[dict[str, Any]]


def program_body(
    program_id: str, *, starts_on: date, weeks: int, base: dict[str, Any]
) -> dict[str, Any]:
    """``base`` (a ``POST /programs`` body) running *weeks* weeks from *starts_on*, weekly.

    The platform admin (the ``upward`` tool's identity) administers it, so the demo can
    read the outcomes; mentors must be screened and trained, as the program requires.
    """
    return base | {
        "program_id": program_id,
        "name": "Upward demo: reverse mentoring",
        "starts_on": starts_on.isoformat(),
        "duration_weeks": weeks,
        "cadence_days": 7,
        "max_timezone_gap_hours": 12,
        "requires_screening": True,
        "requires_training": True,
        "pairing_modes": ["batch", "continuous", "manual"],
        "admin_ids": [PLATFORM_ADMIN.subject],
    }


def load_cohort(
    employees: int, *, seed: int, program_id: str, starts_on: date, weeks: int
) -> Cohort:
    """The synthetic enterprise of *employees* people and the reverse program's cohort."""
    company = enterprise.generate_enterprise(employees, seed=seed)
    base = enterprise.demo_program(program_id=program_id, starts_on=starts_on)
    program = program_body(program_id, starts_on=starts_on, weeks=weeks, base=base)
    members = enterprise.cohort_requests(company, program_id=program_id, kind="reverse")
    return Cohort(program, list(members))
