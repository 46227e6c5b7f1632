"""A synthetic enterprise, deterministic for a seed, and the requests a demo makes from it.

:func:`generate_enterprise` builds an org chart that looks like a real firm: a CEO,
executives heading departments, directors, managers and staff, with a realistic span of
control (3-5 directors per executive, about 5 managers per director, 5-10 reports per
manager). Grades rise strictly along every reporting line (staff 1-4, managers 5-7,
directors 8-9, executives 10-11, CEO 12). People work in three regions (EMEA, Americas,
APAC) with their IANA time zones; most speak English, some only their local language.
Juniors offer technology, social media and trends and want strategy and leadership; seniors
the other way round; topic popularity falls off steeply, so skills and goals overlap
sparsely. Some consented to share background attributes; a few have prefer/avoid lists.

From an enterprise come the matching API bodies of a demo: :func:`demo_program`
(``POST /programs``), :func:`cohort_requests` (``POST /programs/{id}/participants``) and
:func:`hr_export_rows` / :func:`write_hr_export` (the HR CSV ``upward import participants``
reads).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from upward.identity import PLATFORM_ADMIN

T = TypeVar("T")


class Level(StrEnum):
    """A person's place in the org chart, from the top."""

    CEO = "ceo"
    EXECUTIVE = "executive"
    DIRECTOR = "director"
    MANAGER = "manager"
    STAFF = "staff"


GRADES: Mapping[Level, tuple[int, int]] = {
    Level.CEO: (12, 12),
    Level.EXECUTIVE: (10, 11),
    Level.DIRECTOR: (8, 9),
    Level.MANAGER: (5, 7),
    Level.STAFF: (1, 4),
}
"""Inclusive grade range per level: every manager is graded above all their reports."""


@dataclass(frozen=True, slots=True)
class Topic:
    """A topic of the program catalogue and who typically teaches it."""

    key: str
    title: str
    difficulty: int
    taught_by_juniors: bool
    confidential: bool = False


TOPICS: tuple[Topic, ...] = (
    Topic("social-media", "Posting on social media", 1, True),
    Topic("genai-tools", "Generative AI at work", 2, True),
    Topic("gen-z-culture", "Gen Z workplace culture", 3, True),
    Topic("digital-trends", "Digital and consumer trends", 2, True),
    Topic("remote-collaboration", "Remote collaboration tools", 1, True),
    Topic("data-literacy", "Reading data and dashboards", 3, True),
    Topic("personal-branding", "Personal branding online", 2, True),
    Topic("no-code-automation", "No-code automation", 3, True),
    Topic("cyber-hygiene", "Everyday cyber hygiene", 1, True),
    Topic("inclusive-language", "Inclusive language", 2, True),
    Topic("strategy", "Business strategy", 5, False, confidential=True),
    Topic("leadership", "Leading a team", 4, False),
    Topic("stakeholder-management", "Stakeholder management", 4, False),
    Topic("career-navigation", "Navigating a career", 2, False),
    Topic("negotiation", "Negotiation", 4, False),
    Topic("executive-presence", "Executive presence", 3, False),
    Topic("finance-basics", "Finance for non-specialists", 3, False),
    Topic("public-speaking", "Public speaking", 2, False),
)
"""The topic catalogue, most popular first within each half (juniors', seniors')."""

DEPARTMENTS: tuple[str, ...] = (
    "Marketing", "Sales", "Finance", "HR", "Legal", "IT", "Operations", "Risk",
    "Product", "Customer Support",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Region:
    """A business region: its share of the workforce and its offices' time zones."""

    name: str
    share: float
    timezones: tuple[tuple[str, str], ...]
    """(IANA time zone, local language ISO 639-1) of each office."""


REGIONS: tuple[Region, ...] = (
    Region("emea", 0.45, (("Europe/London", "en"), ("Europe/Paris", "fr"),
                          ("Europe/Berlin", "de"), ("Europe/Madrid", "es"))),
    Region("amer", 0.35, (("America/New_York", "en"), ("America/Chicago", "en"),
                          ("America/Sao_Paulo", "pt"), ("America/Mexico_City", "es"))),
    Region("apac", 0.20, (("Asia/Singapore", "en"), ("Asia/Tokyo", "ja"),
                          ("Asia/Kolkata", "hi"), ("Australia/Sydney", "en"))),
)  # fmt: skip

_FIRST_NAMES: Mapping[str, tuple[str, ...]] = {
    "en": ("Olivia", "James", "Amelia", "Noah", "Aisha", "Liam", "Grace", "Ethan", "Maya", "Ryan"),
    "fr": ("Camille", "Louis", "Chloé", "Hugo", "Léa", "Jules", "Inès", "Lucas"),
    "de": ("Lena", "Jonas", "Mia", "Felix", "Hannah", "Paul", "Emma", "Lukas"),
    "es": ("Lucía", "Mateo", "Sofía", "Diego", "Valeria", "Javier", "Carmen", "Pablo"),
    "pt": ("Ana", "João", "Beatriz", "Gabriel", "Mariana", "Rafael", "Júlia", "Pedro"),
    "ja": ("Yui", "Haruto", "Sakura", "Ren", "Aoi", "Sota", "Hina", "Yuto"),
    "hi": ("Priya", "Arjun", "Ananya", "Rohan", "Diya", "Vikram", "Kavya", "Aditya"),
}
_LAST_NAMES: Mapping[str, tuple[str, ...]] = {
    "en": ("Smith", "Johnson", "Brown", "Rahman", "Taylor", "Walker", "Chen", "Okafor", "Lee"),
    "fr": ("Martin", "Bernard", "Dubois", "Moreau", "Laurent", "Girard", "Roux"),
    "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Wagner", "Becker"),
    "es": ("García", "Martínez", "López", "Sánchez", "Pérez", "Gómez", "Ruiz"),
    "pt": ("Silva", "Santos", "Oliveira", "Souza", "Costa", "Ferreira", "Almeida"),
    "ja": ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto"),
    "hi": ("Sharma", "Patel", "Singh", "Gupta", "Iyer", "Reddy", "Nair"),
}
_GENERATIONS: Mapping[Level, tuple[str, ...]] = {
    Level.STAFF: ("gen-z", "gen-z", "millennial"),
    Level.MANAGER: ("millennial", "millennial", "gen-x"),
    Level.DIRECTOR: ("millennial", "gen-x", "gen-x"),
    Level.EXECUTIVE: ("gen-x", "gen-x", "boomer"),
    Level.CEO: ("gen-x", "boomer"),
}
_EMAIL_DOMAIN = "example.com"


@dataclass(frozen=True, slots=True)
class Employee:
    """One person of the enterprise, as HR knows them."""

    employee_id: str
    display_name: str
    email: str
    level: Level
    title: str
    grade: int
    department: str
    region: str
    timezone: str
    languages: tuple[str, ...]
    """ISO 639-1 codes, most fluent first."""
    manager_id: str | None
    offers: tuple[tuple[str, int], ...]
    """(topic, level 1-5) the person can teach."""
    wants: tuple[tuple[str, int], ...]
    """(topic, priority 1-5) the person wants to learn."""
    background: tuple[tuple[str, str], ...] = ()
    """Only attributes the person consented to share."""
    prefer: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()

    @property
    def is_senior(self) -> bool:
        """Managers and above: the mentees of a reverse program."""
        return self.level is not Level.STAFF


@dataclass(frozen=True)
class Enterprise:
    """A whole firm: its employees (the CEO first) and the seed that made it."""

    employees: list[Employee]
    seed: int = 7
    topics: tuple[Topic, ...] = field(default=TOPICS)

    @cached_property
    def by_id(self) -> dict[str, Employee]:
        """Employees by id."""
        return {person.employee_id: person for person in self.employees}

    def manager_chain(self, employee_id: str) -> list[str]:
        """Ids of the managers above ``employee_id``, nearest first (the CEO last)."""
        chain: list[str] = []
        manager = self.by_id[employee_id].manager_id
        while manager is not None:
            chain.append(manager)
            manager = self.by_id[manager].manager_id
        return chain

    def reports(self, employee_id: str) -> list[Employee]:
        """Direct reports of ``employee_id``."""
        return [person for person in self.employees if person.manager_id == employee_id]


@dataclass(frozen=True, slots=True)
class _Seat:
    """A place in the org chart before a person is drawn for it."""

    level: Level
    manager: int | None
    department: str
    office: tuple[str, str, str]
    """(region, time zone, local language)."""


def generate_enterprise(employees: int = 2000, *, seed: int = 7) -> Enterprise:
    """A synthetic enterprise of ``employees`` people (at least 10), deterministic for ``seed``."""
    if employees < 10:
        raise ValueError("an enterprise needs at least 10 employees")
    rng = random.Random(seed)
    seats = _org_chart(rng, employees)
    ids = [f"emp-{number:05d}" for number in range(1, len(seats) + 1)]
    people = [_employee(rng, seats, ids, index) for index in range(len(seats))]
    return Enterprise(employees=_with_preferences(rng, people), seed=seed)


def _level_counts(employees: int) -> dict[Level, int]:
    managers = max(1, round(employees * 0.12))
    directors = max(1, round(managers / 5))
    executives = max(1, min(len(DEPARTMENTS), round(directors / 4)))
    staff = employees - 1 - executives - directors - managers
    return {
        Level.EXECUTIVE: executives,
        Level.DIRECTOR: directors,
        Level.MANAGER: managers,
        Level.STAFF: staff,
    }


def _org_chart(rng: random.Random, employees: int) -> list[_Seat]:
    """Seats top-down: each level's seats spread evenly over the level above."""
    counts = _level_counts(employees)
    seats = [_Seat(Level.CEO, None, "Executive Office", _office(rng, REGIONS[0]))]
    above = [0]
    for level in (Level.EXECUTIVE, Level.DIRECTOR, Level.MANAGER, Level.STAFF):
        first = len(seats)
        for number, boss in enumerate(_bosses(rng, above, counts[level])):
            seats.append(_seat_under(rng, seats, boss, level, number))
        above = list(range(first, len(seats)))
    return seats


def _bosses(rng: random.Random, above: list[int], count: int) -> list[int]:
    """Whom each of ``count`` seats reports to: everyone above gets one, the rest unevenly."""
    weights = [rng.uniform(0.5, 1.5) for _ in above]
    extra = rng.choices(above, weights=weights, k=max(0, count - len(above)))
    return sorted(above[:count] + extra)


def _seat_under(
    rng: random.Random, seats: list[_Seat], boss: int, level: Level, number: int
) -> _Seat:
    """A seat reporting to ``boss``: same department (an executive heads one), often same office."""
    if level is Level.EXECUTIVE:
        return _Seat(level, boss, DEPARTMENTS[number], _office(rng, _draw_region(rng)))
    parent = seats[boss]
    stays = rng.random() < (0.5 if level is Level.DIRECTOR else 0.85)
    office = parent.office if stays else _office(rng, _draw_region(rng))
    return _Seat(level, boss, parent.department, office)


def _draw_region(rng: random.Random) -> Region:
    return rng.choices(REGIONS, weights=[region.share for region in REGIONS])[0]


def _office(rng: random.Random, region: Region) -> tuple[str, str, str]:
    timezone, language = rng.choice(region.timezones)
    return region.name, timezone, language


def _employee(rng: random.Random, seats: list[_Seat], ids: list[str], index: int) -> Employee:
    seat = seats[index]
    region, timezone, local = seat.office
    languages = _languages(rng, local)
    name = _name(rng, languages[0])
    return Employee(
        employee_id=ids[index],
        display_name=name,
        email=_email(name, ids[index]),
        level=seat.level,
        title=_title(seat),
        grade=rng.randint(*GRADES[seat.level]),
        department=seat.department,
        region=region,
        timezone=timezone,
        languages=languages,
        manager_id=None if seat.manager is None else ids[seat.manager],
        offers=_skills(rng, junior_topics=seat.level is Level.STAFF, teaching=True),
        wants=_skills(rng, junior_topics=seat.level is not Level.STAFF, teaching=False),
        background=_background(rng, seat.level),
    )


def _languages(rng: random.Random, local: str) -> tuple[str, ...]:
    """English for most; a local language too, or only it for some outside English offices."""
    if local == "en":
        return ("en",) if rng.random() < 0.8 else ("en", rng.choice(("es", "hi", "fr", "zh")))
    draw = rng.random()
    if draw < 0.15:
        return (local,)
    return (local, "en") if draw < 0.75 else ("en", local)


def _name(rng: random.Random, language: str) -> str:
    names = language if language in _FIRST_NAMES else "en"
    return f"{rng.choice(_FIRST_NAMES[names])} {rng.choice(_LAST_NAMES[names])}"


def _email(name: str, employee_id: str) -> str:
    ascii_name = name.encode("ascii", "ignore").decode().lower().replace(" ", ".")
    return f"{ascii_name}.{employee_id.removeprefix('emp-')}@{_EMAIL_DOMAIN}"


def _title(seat: _Seat) -> str:
    if seat.level is Level.CEO:
        return "Chief Executive Officer"
    if seat.level is Level.EXECUTIVE:
        return f"Chief {seat.department} Officer"
    if seat.level is Level.STAFF:
        return f"{seat.department} Specialist"
    return f"{seat.department} {seat.level.value.title()}"


def _skills(
    rng: random.Random, *, junior_topics: bool, teaching: bool
) -> tuple[tuple[str, int], ...]:
    """1-3 topics of one half of the catalogue, popular ones far more often (sparse overlap)."""
    pool = [topic.key for topic in TOPICS if topic.taught_by_juniors == junior_topics]
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(pool))]
    chosen: dict[str, int] = {}
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        chosen.setdefault(rng.choices(pool, weights=weights)[0], rng.randint(*_levels(teaching)))
    return tuple(sorted(chosen.items()))


def _levels(teaching: bool) -> tuple[int, int]:
    return (3, 5) if teaching else (2, 5)


def _background(rng: random.Random, level: Level) -> tuple[tuple[str, str], ...]:
    """Four in ten consent to share their generation, some also a community."""
    if rng.random() >= 0.4:
        return ()
    attributes = {"generation": rng.choice(_GENERATIONS[level])}
    if rng.random() < 0.3:
        attributes["community"] = rng.choice(("parents", "lgbtq+", "veterans", "first-gen"))
    return tuple(sorted(attributes.items()))


def _with_preferences(rng: random.Random, people: list[Employee]) -> list[Employee]:
    """About 3% prefer someone in another department; about 2% avoid someone."""
    result: list[Employee] = []
    for person in people:
        prefer = _pick_other(rng, people, person, share=0.03, other_department=True)
        avoid = _pick_other(rng, people, person, share=0.02, other_department=False)
        result.append(_replace_lists(person, prefer=prefer, avoid=avoid))
    return result


def _pick_other(
    rng: random.Random, people: list[Employee], person: Employee, *, share: float,
    other_department: bool,
) -> tuple[str, ...]:  # fmt: skip
    if rng.random() >= share:
        return ()
    other = rng.choice(people)
    if other.employee_id == person.employee_id:
        return ()
    if other_department and other.department == person.department:
        return ()
    return (other.employee_id,)


def _replace_lists(
    person: Employee, *, prefer: tuple[str, ...], avoid: tuple[str, ...]
) -> Employee:
    if not prefer and not avoid:
        return person
    return replace(person, prefer=prefer, avoid=avoid)


# --- the matching API bodies of a demo -------------------------------------------------

_GOALS: Mapping[str, tuple[str, ...]] = {
    "reverse": ("Leaders use digital tools and social media confidently",
                "Retain and give visibility to junior talent"),
    "traditional": ("Grow the next generation of leaders", "Share institutional knowledge"),
    "mutual": ("Learn from each other across generations", "Break down department silos"),
}  # fmt: skip
_NAMES: Mapping[str, str] = {
    "reverse": "Digital Fluency Reverse Mentoring",
    "traditional": "Leadership Mentoring",
    "mutual": "Cross-Generation Mutual Mentoring",
}


def demo_program(
    *,
    program_id: str,
    kind: str = "reverse",
    name: str | None = None,
    starts_on: date = date(2026, 1, 12),
    admin_ids: Sequence[str] = (PLATFORM_ADMIN.subject,),
    pairing_modes: Sequence[str] = ("batch", "continuous", "self_match", "manual"),
    requires_screening: bool = True,
    requires_training: bool = True,
) -> dict[str, Any]:
    """The JSON body of ``POST /programs`` for a realistic program of ``kind``.

    26 weeks, an hour every 14 days, mentors at least two grades apart from their mentees
    (below them in a reverse program), at most 6 hours of time-zone gap, the default score
    weights and the whole topic catalogue.
    """
    if kind not in _NAMES:
        raise ValueError(f"unknown program kind {kind!r}: reverse, traditional or mutual")
    return {
        "program_id": program_id,
        "name": name or f"{_NAMES[kind]} {starts_on.year}",
        "program_type": kind,
        "goals": list(_GOALS[kind]),
        "ground_rules": ["What is said in the pair stays in the pair",
                         "Either side may end the pair, no fault"],
        "starts_on": starts_on.isoformat(),
        "duration_weeks": 26,
        "cadence_days": 14,
        "session_minutes": 60,
        "min_grade_gap": 0 if kind == "mutual" else 2,
        "max_timezone_gap_hours": 6,
        "requires_screening": requires_screening,
        "requires_training": requires_training,
        "objective": "max_matched_then_score",
        "weights": {"skill_coverage": 0.4, "diversity": 0.3,
                    "timezone_closeness": 0.15, "preference": 0.15},
        "k_anonymity": 5,
        "topics": [_catalogue_entry(topic) for topic in TOPICS],
        "pairing_modes": list(pairing_modes),
        "acceptance_timeout_hours": 72,
        "admin_ids": list(admin_ids),
    }  # fmt: skip


def _catalogue_entry(topic: Topic) -> dict[str, Any]:
    return {
        "key": topic.key,
        "title": topic.title,
        "difficulty": topic.difficulty,
        "confidential": topic.confidential,
    }


def cohort_requests(
    enterprise: Enterprise, *, program_id: str, kind: str = "reverse", share: float = 0.15
) -> list[dict[str, Any]]:
    """Bodies of ``POST /programs/{program_id}/participants`` for those who join.

    About ``share`` of the workforce joins, deterministic for the enterprise's seed and the
    program. Reverse: staff mentor managers and above (55% / 45% of the joiners); traditional
    the other way round; mutual: everyone is both. Mentors take one mentee, 15% two (seniors
    mentoring juniors up to three).
    """
    if not 0 < share <= 1:
        raise ValueError("share must be in (0, 1]")
    rng = random.Random(f"{enterprise.seed}:{program_id}:{kind}")
    joiners = _joiners(rng, enterprise, kind=kind, count=round(len(enterprise.employees) * share))
    return [
        _join_body(enterprise, person, program_id=program_id, role=role, rng=rng)
        for person, role in joiners
    ]


def _joiners(
    rng: random.Random, enterprise: Enterprise, *, kind: str, count: int
) -> list[tuple[Employee, str]]:
    juniors = [p for p in enterprise.employees if not p.is_senior]
    seniors = [p for p in enterprise.employees if p.is_senior]
    if kind == "mutual":
        return [(p, "both") for p in _sample(rng, enterprise.employees, count)]
    senior_count = min(len(seniors), round(count * 0.45))
    chosen_seniors = _sample(rng, seniors, senior_count)
    chosen_juniors = _sample(rng, juniors, min(len(juniors), count - senior_count))
    senior_role, junior_role = ("mentee", "mentor") if kind == "reverse" else ("mentor", "mentee")
    people = [(p, junior_role) for p in chosen_juniors] + [(p, senior_role) for p in chosen_seniors]
    return sorted(people, key=lambda item: item[0].employee_id)


def _sample(rng: random.Random, people: Sequence[T], count: int) -> list[T]:
    return rng.sample(list(people), max(0, min(count, len(people))))


def _join_body(
    enterprise: Enterprise, person: Employee, *, program_id: str, role: str, rng: random.Random
) -> dict[str, Any]:
    return {
        "participant_id": person.employee_id,
        "program_id": program_id,
        "role": role,
        "display_name": person.display_name,
        "email": person.email,
        "grade": person.grade,
        "department": person.department,
        "region": person.region,
        "timezone": person.timezone,
        "languages": list(person.languages),
        "manager_chain": enterprise.manager_chain(person.employee_id),
        "offers": dict(person.offers),
        "wants": dict(person.wants),
        "capacity": _capacity(rng, person, role),
        "background": dict(person.background),
        "preferences": {"prefer": list(person.prefer), "avoid": list(person.avoid)},
    }


def _capacity(rng: random.Random, person: Employee, role: str) -> int:
    if role == "mentee":
        return 1
    if person.is_senior:
        return rng.choice((1, 2, 2, 3))
    return 2 if rng.random() < 0.15 else 1


# --- the HR export ---------------------------------------------------------------------

HR_EXPORT_COLUMNS: tuple[str, ...] = (
    "employee_id", "display_name", "email", "job_title", "grade", "department", "region",
    "timezone", "languages", "manager_id", "skills", "learning_goals", "generation",
    "community", "prefer", "avoid", "mentoring_role", "mentor_capacity",
)  # fmt: skip
"""Columns of the HR export, in the shape a typical HRIS report has (see docs/operations.md)."""


def hr_export_rows(
    enterprise: Enterprise, *, cohort: Sequence[Mapping[str, Any]] | None = None
) -> list[dict[str, str]]:
    """The enterprise as an HRIS export: one row per employee, every value a string.

    ``mentoring_role`` and ``mentor_capacity`` are filled for the people of ``cohort``
    (join bodies from :func:`cohort_requests`; by default the reverse cohort of a program
    ``hr-export``) and empty for everyone else, who is in the file for the reporting lines.
    """
    enrolled = {
        body["participant_id"]: body
        for body in (
            cohort if cohort is not None else cohort_requests(enterprise, program_id="hr-export")
        )
    }
    return [_hr_row(person, enrolled.get(person.employee_id)) for person in enterprise.employees]


def _hr_row(person: Employee, joins: Mapping[str, Any] | None) -> dict[str, str]:
    background = dict(person.background)
    return {
        "employee_id": person.employee_id,
        "display_name": person.display_name,
        "email": person.email,
        "job_title": person.title,
        "grade": str(person.grade),
        "department": person.department,
        "region": person.region,
        "timezone": person.timezone,
        "languages": ";".join(person.languages),
        "manager_id": person.manager_id or "",
        "skills": _levels_text(person.offers),
        "learning_goals": _levels_text(person.wants),
        "generation": background.get("generation", ""),
        "community": background.get("community", ""),
        "prefer": ";".join(person.prefer),
        "avoid": ";".join(person.avoid),
        "mentoring_role": "" if joins is None else str(joins["role"]),
        "mentor_capacity": "" if joins is None else str(joins["capacity"]),
    }


def _levels_text(items: tuple[tuple[str, int], ...]) -> str:
    return ";".join(f"{topic}:{level}" for topic, level in items)


def write_hr_export(rows: Sequence[Mapping[str, str]], path: Path) -> None:
    """Write HR export rows as a UTF-8 CSV file with a header line."""
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]) if rows else HR_EXPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
