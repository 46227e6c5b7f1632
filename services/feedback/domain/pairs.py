"""What the feedback service keeps of a pair: its people, attendance, sessions and health."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from schemas.feedback import HealthSignal, PairHealth
from schemas.pairs import PairEndReason
from services.feedback.domain.health import HealthAssessment, HealthInputs, RatedAnswer
from services.feedback.domain.programs import ProgramSettings, unknown_program
from services.feedback.domain.requests import PairMembers


@dataclass(frozen=True)
class PairRecord:
    """A formed pair as stored: who, since when, attendance and the last health band."""

    members: PairMembers
    formed_at: datetime
    ended_at: datetime | None = None
    end_reason: PairEndReason | None = None
    consecutive_missed: int = 0
    stalled: bool = False
    health_band: PairHealth = PairHealth.HEALTHY
    health_score: float = 1.0
    health_signals: tuple[HealthSignal, ...] = ()

    @property
    def pair_id(self) -> str:
        """The pair id."""
        return self.members.pair_id

    @property
    def open(self) -> bool:
        """True until the pair ends."""
        return self.ended_at is None

    def holds(self, assessment: HealthAssessment) -> bool:
        """True when ``assessment`` is the health already stored for the pair."""
        stored = (self.health_band, self.health_score, self.health_signals)
        return stored == (assessment.band, assessment.score, assessment.signals)

    def assessed(self, assessment: HealthAssessment) -> PairRecord:
        """The record with ``assessment`` as its stored health."""
        return replace(
            self,
            health_band=assessment.band,
            health_score=assessment.score,
            health_signals=assessment.signals,
        )


@dataclass(frozen=True)
class HeldSession:
    """A session a pair held, as the feedback service stores it (once per pair and id)."""

    pair_id: str
    program_id: str
    session_id: str
    held_at: datetime


@dataclass(frozen=True)
class PairContext:
    """A pair with what its handlers need next to it: its program and recent history.

    Read in one go when a handler starts, so that a held session, a miss or an answer
    costs one read of the store rather than one per fact.
    """

    record: PairRecord
    program: ProgramSettings | None
    """The pair's program, if its definition arrived."""
    recent_answers: tuple[RatedAnswer, ...] = ()
    """The ratings of the pair's last answers, oldest first."""
    closed_requests_missing: tuple[bool, ...] = ()
    """For the pair's last answered or missing requests, oldest first: True if missing."""

    def program_or_defaults(self, today: date) -> ProgramSettings:
        """The program, or the defaults of one whose definition has not arrived (yet)."""
        return self.program or unknown_program(self.record.members.program_id, today)

    def health_inputs(self) -> HealthInputs:
        """What the pair's health score is computed from."""
        return HealthInputs(
            answers=self.recent_answers,
            consecutive_missed=self.record.consecutive_missed,
            stalled=self.record.stalled,
            closed_requests_missing=self.closed_requests_missing,
        )
