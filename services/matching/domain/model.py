"""Data types of the matching engine: who can be matched, under which rules, and the plan.

Pure values (frozen dataclasses), no I/O. The service converts its stored profiles into
:class:`Candidate` and a program definition into :class:`ProgramRules`; the engine
(:mod:`services.matching.domain.engine`) returns a :class:`MatchPlan`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from schemas.pairs import ScoreFactor
from schemas.primitives import Role
from schemas.programs import MatchingObjective, ProgramDefinition, ProgramType

__all__ = [
    "Candidate",
    "MatchPlan",
    "PlannedPair",
    "ProgramRules",
    "Role",
    "Unmatched",
]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One participant as the matcher sees them (one program)."""

    participant_id: str
    role: Role
    grade: int
    department: str
    timezone: str
    """IANA time-zone name."""
    languages: frozenset[str]
    manager_chain: tuple[str, ...]
    """Managers above this person, nearest first (the reporting line)."""
    offers: Mapping[str, int]
    """Topic -> level 1..5 this person can teach."""
    wants: Mapping[str, int]
    """Topic -> priority 1..5 this person wants to learn."""
    background: Mapping[str, str]
    """Only the attributes the participant consented to share."""
    prefer: frozenset[str]
    avoid: frozenset[str]
    mentor_slots: int = 1
    """Free mentee slots now: capacity minus active or pending pairs as mentor."""
    needs_mentor: bool = True
    """Mentee side open: no active or pending pair as mentee."""
    screened: bool = False
    trained: bool = False
    active: bool = True
    """False once the participant left the program or was forgotten."""

    @property
    def can_mentor(self) -> bool:
        """Whether the role allows mentoring (capacity and eligibility aside)."""
        return self.role in (Role.MENTOR, Role.BOTH)

    @property
    def can_be_mentored(self) -> bool:
        """Whether the role allows being mentored (openness aside)."""
        return self.role in (Role.MENTEE, Role.BOTH)


@dataclass(frozen=True, slots=True)
class ProgramRules:
    """The part of a program definition that the matcher applies."""

    program_id: str
    program_type: str
    """reverse | traditional | mutual."""
    min_grade_gap: int
    max_timezone_gap_hours: int
    requires_screening: bool
    requires_training: bool
    objective: str
    """max_matched_then_score | max_score."""
    weights: Mapping[str, float] = field(
        default_factory=lambda: {
            "skill_coverage": 0.4,
            "diversity": 0.3,
            "timezone_closeness": 0.15,
            "preference": 0.15,
        }
    )
    """Weight per score factor: skill_coverage, diversity, timezone_closeness, preference."""

    @classmethod
    def from_definition(cls, d: ProgramDefinition) -> ProgramRules:
        """The matching rules of a ProgramCreated / ProgramUpdated definition."""
        return cls(
            program_id=d.program_id,
            program_type=ProgramType(d.program_type).value,
            min_grade_gap=d.min_grade_gap,
            max_timezone_gap_hours=d.max_timezone_gap_hours,
            requires_screening=d.requires_screening,
            requires_training=d.requires_training,
            objective=MatchingObjective(d.objective).value,
            weights=d.weights.model_dump(),
        )


@dataclass(frozen=True, slots=True)
class PlannedPair:
    """One pair of a plan (or one scored pair), with the explanation of its score."""

    mentor_id: str
    mentee_id: str
    score: float
    """Sum of the explanation's contributions, rounded to 6 decimals."""
    explanation: tuple[ScoreFactor, ...]
    """One line per factor: weight, value in 0..1, contribution = weight x value."""
    topics: tuple[str, ...]
    """Topics the mentor offers and the mentee wants, best first."""


@dataclass(frozen=True, slots=True)
class Unmatched:
    """A participant open for matching who got no pair, and why."""

    participant_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class MatchPlan:
    """The engine's answer: the optimal pairs, who is left unmatched, and totals."""

    pairs: tuple[PlannedPair, ...]
    unmatched: tuple[Unmatched, ...]
    totals: Mapping[str, float | int]
    """matched, mentors, mentees, total_score, objective_units, candidate_arcs, rounds, ..."""
