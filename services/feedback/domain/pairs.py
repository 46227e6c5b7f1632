"""What the feedback service keeps of a pair: its people, attendance and health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.feedback import HealthSignal, PairHealth
from schemas.pairs import PairEndReason
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
