"""Realistic synthetic cohorts, shared by the tests, the benchmark and demos.

A cohort looks like a real enterprise program: people spread over regions and time zones
and speak English and/or a local language; 40 topics whose popularity falls off (a few are
hot, most are niche), so skills and goals overlap sparsely; departments with an org chart
whose senior people (the mentees of a reverse program) sit in the juniors' reporting lines;
background attributes shared only by those who consented; a few ``prefer`` and ``avoid``
lists; mentors mostly screened and trained, some with room for two mentees. Generation is
deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schemas.primitives import Role
from services.matching.domain.model import Candidate

TOPICS: tuple[str, ...] = tuple(f"topic-{k:02d}" for k in range(40))
DEPARTMENTS: tuple[str, ...] = (
    "Marketing", "Sales", "Finance", "HR", "Legal", "IT", "Operations", "Risk",
    "Research", "Product", "Design", "Support", "Procurement", "Strategy", "Data",
)  # fmt: skip
REGIONS: tuple[tuple[str, float, tuple[str, ...], str], ...] = (
    ("emea", 0.40, ("Europe/London", "Europe/Paris", "Europe/Berlin", "Africa/Johannesburg"), "fr"),
    ("amer", 0.30, ("America/New_York", "America/Chicago", "America/Los_Angeles",
              "America/Sao_Paulo"), "es"),
    ("apac", 0.30, ("Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney"), "zh"),
)  # fmt: skip
GENERATIONS: tuple[str, ...] = ("gen-z", "millennial", "gen-x", "boomer")
COMMUNITIES: tuple[str, ...] = ("community-a", "community-b", "community-c")


@dataclass(frozen=True, slots=True)
class CohortShape:
    """Knobs of a synthetic cohort (defaults: a reverse program, sparse overlap)."""

    mentors: int
    mentees: int
    seed: int = 7
    mentor_grades: tuple[int, int] = (1, 5)
    """Inclusive range of mentor grades (juniors in a reverse program)."""
    mentee_grades: tuple[int, int] = (4, 9)
    offers_per_mentor: tuple[int, int] = (2, 5)
    wants_per_mentee: tuple[int, int] = (1, 3)
    topic_skew: float = 0.9
    """Zipf exponent of topic popularity: higher = a few hot topics."""
    english_share: float = 0.85
    two_slot_share: float = 0.15
    eligible_share: float = 0.95
    """Mentors screened and trained."""


def synthetic_cohort(shape: CohortShape) -> list[Candidate]:
    """Mentors then mentees of a synthetic cohort; ids ``m-00001`` and ``e-00001``."""
    rng = np.random.default_rng(shape.seed)
    org = _OrgChart.build(rng, shape)
    ranking = _topic_ranking(rng, shape, shape.mentees)
    mentees = [_person(rng, shape, org, k, Role.MENTEE, ranking[k]) for k in range(shape.mentees)]
    ranking = _topic_ranking(rng, shape, shape.mentors)
    mentors = [_person(rng, shape, org, k, Role.MENTOR, ranking[k]) for k in range(shape.mentors)]
    return mentors + mentees


@dataclass(frozen=True, slots=True)
class _OrgChart:
    """Seniors (the mentees) per department, each reporting to a more senior one."""

    senior_ids: list[str]
    senior_department: list[int]
    senior_grade: list[int]
    chains: list[tuple[str, ...]]
    by_department: dict[int, list[int]]

    @classmethod
    def build(cls, rng: np.random.Generator, shape: CohortShape) -> _OrgChart:
        ids = [f"e-{k:05d}" for k in range(1, shape.mentees + 1)]
        departments = [int(d) for d in rng.integers(len(DEPARTMENTS), size=shape.mentees)]
        low, high = shape.mentee_grades
        grades = [int(g) for g in rng.integers(low, high + 1, size=shape.mentees)]
        by_department: dict[int, list[int]] = {}
        for k in sorted(range(shape.mentees), key=lambda k: (-grades[k], k)):
            by_department.setdefault(departments[k], []).append(k)
        chains: list[tuple[str, ...]] = [()] * shape.mentees
        for members in by_department.values():
            for position, k in enumerate(members):
                boss = members[int(rng.integers(position))] if position else None
                chains[k] = () if boss is None else (ids[boss], *chains[boss])
        return cls(ids, departments, grades, chains, by_department)

    def chain_for_junior(self, rng: np.random.Generator, department: int) -> tuple[str, ...]:
        """A team lead outside the cohort, then a senior of the department and their line."""
        lead = f"lead-{int(rng.integers(1, 2000)):04d}"
        members = self.by_department.get(department, [])
        if not members:
            return (lead,)
        boss = members[int(rng.integers(len(members)))]
        return (lead, self.senior_ids[boss], *self.chains[boss])


def _topic_ranking(rng: np.random.Generator, shape: CohortShape, people: int) -> np.ndarray:
    """Per person, all topics in a popularity-weighted random order (Gumbel top-k trick)."""
    log_weights = -shape.topic_skew * np.log(np.arange(1, len(TOPICS) + 1, dtype=np.float64))
    keys = log_weights + rng.gumbel(size=(people, len(TOPICS)))
    return np.argsort(-keys, axis=1)


def _person(
    rng: np.random.Generator,
    shape: CohortShape,
    org: _OrgChart,
    k: int,
    role: Role,
    topics: np.ndarray,
) -> Candidate:
    region = REGIONS[_region_index(float(rng.random()))]
    is_mentor = role == Role.MENTOR
    if is_mentor:
        department = int(rng.integers(len(DEPARTMENTS)))
        grade = int(rng.integers(shape.mentor_grades[0], shape.mentor_grades[1] + 1))
        chain = org.chain_for_junior(rng, department)
    else:
        department, grade, chain = org.senior_department[k], org.senior_grade[k], org.chains[k]
    eligible = not is_mentor or rng.random() < shape.eligible_share
    return Candidate(
        participant_id=f"m-{k + 1:05d}" if is_mentor else org.senior_ids[k],
        role=role,
        grade=grade,
        department=DEPARTMENTS[department],
        timezone=region[2][int(rng.integers(len(region[2])))],
        languages=_languages(rng, shape, region[3]),
        manager_chain=chain,
        offers=_levels(rng, topics, shape.offers_per_mentor, 2) if is_mentor else {},
        wants={} if is_mentor else _levels(rng, topics, shape.wants_per_mentee, 1),
        background=_background(rng),
        prefer=_someone(rng, org, 0.02),
        avoid=_someone(rng, org, 0.01),
        mentor_slots=2 if is_mentor and rng.random() < shape.two_slot_share else 1,
        screened=eligible,
        trained=eligible,
    )


def _region_index(draw: float) -> int:
    total = 0.0
    for index, region in enumerate(REGIONS):
        total += region[1]
        if draw < total:
            return index
    return len(REGIONS) - 1


def _levels(
    rng: np.random.Generator, ranking: np.ndarray, count_range: tuple[int, int], lowest: int
) -> dict[str, int]:
    """The first few topics of this person's ranking, each with a level or priority."""
    count = int(rng.integers(count_range[0], count_range[1] + 1))
    return {TOPICS[int(t)]: int(rng.integers(lowest, 6)) for t in ranking[:count]}


def _someone(rng: np.random.Generator, org: _OrgChart, share: float) -> frozenset[str]:
    """Occasionally one senior of the cohort (for prefer / avoid lists)."""
    if not org.senior_ids or rng.random() >= share:
        return frozenset()
    return frozenset([org.senior_ids[int(rng.integers(len(org.senior_ids)))]])


def _languages(rng: np.random.Generator, shape: CohortShape, local: str) -> frozenset[str]:
    speaks_english = rng.random() < shape.english_share
    speaks_local = not speaks_english or rng.random() < 0.4
    return frozenset(
        code for code, speaks in (("en", speaks_english), (local, speaks_local)) if speaks
    )


def _background(rng: np.random.Generator) -> dict[str, str]:
    shared: dict[str, str] = {}
    if rng.random() < 0.6:
        shared["generation"] = GENERATIONS[int(rng.integers(len(GENERATIONS)))]
    if rng.random() < 0.3:
        shared["community"] = COMMUNITIES[int(rng.integers(len(COMMUNITIES)))]
    return shared
