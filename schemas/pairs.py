"""Events of topic ``upward.pairs``: proposals, acceptance and the life of a pair.

Published by the matching service, except PairEnded with reason ``completed``, which the
sessions service publishes when the program's duration is over for the pair. Key:
``pair_id`` (``run_id`` for MatchRunCompleted).
A pair is *proposed*, both people *accept* (voluntary participation) and it is *formed*;
either may decline, and a formed pair *ends* with a reason. Declined and ended pairs are
never proposed again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.base import EventData, PairKeyedEvent
from schemas.primitives import (
    EXTERNAL,
    FEEDBACK,
    MATCHING,
    NOTIFICATIONS,
    SESSIONS,
    Identifier,
    PairingMode,
    PairSide,
    ShortText,
    TopicKey,
)
from schemas.programs import MatchingObjective

TOPIC = "upward.pairs"
_PAIR = "pair-7f3a9c"
_PROGRAM = "prg-2025-digital"
_MENTOR = "emp-10442"
_MENTEE = "emp-00231"


class ScoreFactorName(StrEnum):
    """A factor of the transparent matching score."""

    SKILL_COVERAGE = "skill_coverage"
    DIVERSITY = "diversity"
    TIMEZONE_CLOSENESS = "timezone_closeness"
    PREFERENCE = "preference"


class DeclineReason(StrEnum):
    """Why a proposal did not become a pair."""

    DECLINED = "declined"
    EXPIRED = "expired"
    VETOED = "vetoed"
    PROGRAM_CLOSED = "program_closed"


class PairEndReason(StrEnum):
    """Why a formed pair ended."""

    COMPLETED = "completed"
    NO_FAULT_EXIT = "no_fault_exit"
    AT_RISK_REMATCH = "at_risk_rematch"
    ADMIN_ENDED = "admin_ended"
    PARTICIPANT_LEFT = "participant_left"
    PARTICIPANT_FORGOTTEN = "participant_forgotten"
    PROGRAM_CLOSED = "program_closed"
    STALLED = "stalled"


class ScoreFactor(BaseModel):
    """One line of a pair's score explanation: contribution = weight x value."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    factor: ScoreFactorName = Field(description="Which factor.")
    weight: float = Field(ge=0, description="The program's weight for this factor.")
    value: float = Field(ge=0, le=1, description="The factor's value for this pair, 0..1.")
    contribution: float = Field(ge=0, description="weight x value, added to the score.")


def _factor(factor: ScoreFactorName, weight: float, value: float) -> ScoreFactor:
    return ScoreFactor(
        factor=factor, weight=weight, value=value, contribution=round(weight * value, 6)
    )


class _PairEvent(PairKeyedEvent):
    topic: ClassVar[str] = TOPIC
    publishers: ClassVar[tuple[str, ...]] = (MATCHING,)


class PairProposed(_PairEvent):
    """The matcher, an admin or a participant proposed a pair; both must accept."""

    mentor_id: Identifier = Field(description="Proposed mentor.")
    mentee_id: Identifier = Field(description="Proposed mentee.")
    score: float = Field(ge=0, description="Total score: the sum of the contributions.")
    explanation: list[ScoreFactor] = Field(description="Per-factor explanation of the score.")
    topics: list[TopicKey] = Field(
        min_length=1, description="Topics the mentor offers that the mentee wants, best first."
    )
    run_id: Identifier | None = Field(
        default=None, description="Match run that proposed it; absent for manual/self-match."
    )
    mode: PairingMode = Field(description="batch, continuous, self_match or manual.")
    proposed_by: Identifier | None = Field(
        default=None, description="Admin (manual) or participant (self_match) who proposed."
    )
    expires_at: AwareDatetime = Field(description="Declined as `expired` if not accepted.")

    event_type: ClassVar[str] = "PairProposed"
    subscribers: ClassVar[tuple[str, ...]] = (NOTIFICATIONS,)

    @classmethod
    def example(cls) -> Self:
        """Return a batch proposal with its score explanation."""
        return cls(
            pair_id=_PAIR,
            program_id=_PROGRAM,
            mentor_id=_MENTOR,
            mentee_id=_MENTEE,
            score=0.795,
            explanation=[
                _factor(ScoreFactorName.SKILL_COVERAGE, 0.4, 0.9),
                _factor(ScoreFactorName.DIVERSITY, 0.3, 1.0),
                _factor(ScoreFactorName.TIMEZONE_CLOSENESS, 0.15, 0.9),
                _factor(ScoreFactorName.PREFERENCE, 0.15, 0.0),
            ],
            topics=["social-media", "genai-tools"],
            run_id="run-2025-03-01-batch",
            mode=PairingMode.BATCH,
            expires_at=datetime(2025, 3, 4, 9, 0, tzinfo=UTC),
        )


class PairAccepted(_PairEvent):
    """One side accepted a proposal (the pair forms when both have)."""

    participant_id: Identifier = Field(description="Who accepted.")
    side: PairSide = Field(description="Whether they are the mentor or the mentee.")

    event_type: ClassVar[str] = "PairAccepted"
    publishers: ClassVar[tuple[str, ...]] = (MATCHING, EXTERNAL)
    subscribers: ClassVar[tuple[str, ...]] = (MATCHING,)

    @classmethod
    def example(cls) -> Self:
        """Return the mentee accepting."""
        return cls(pair_id=_PAIR, program_id=_PROGRAM, participant_id=_MENTEE, side=PairSide.MENTEE)


class PairDeclined(_PairEvent):
    """A proposal was declined, expired, vetoed or withdrawn; the two are never proposed again."""

    reason: DeclineReason = Field(
        description="declined, expired, vetoed (by an admin) or program_closed (withdrawn)."
    )
    declined_by: Identifier | None = Field(
        default=None, description="Participant or admin who declined; absent when expired."
    )

    event_type: ClassVar[str] = "PairDeclined"
    publishers: ClassVar[tuple[str, ...]] = (MATCHING, EXTERNAL)
    subscribers: ClassVar[tuple[str, ...]] = (MATCHING,)

    @classmethod
    def example(cls) -> Self:
        """Return a proposal that expired unanswered."""
        return cls(pair_id=_PAIR, program_id=_PROGRAM, reason=DeclineReason.EXPIRED)


class PairFormed(_PairEvent):
    """Both accepted (or an admin assigned them): the pair starts meeting."""

    mentor_id: Identifier = Field(description="The mentor.")
    mentee_id: Identifier = Field(description="The mentee.")
    topics: list[TopicKey] = Field(
        min_length=1, description="Topics the pair works on (mentee's goals), best first."
    )
    mode: PairingMode = Field(description="How the pair was made.")
    score: float | None = Field(
        default=None, ge=0, description="Matching score; absent for manual pairs."
    )

    event_type: ClassVar[str] = "PairFormed"
    subscribers: ClassVar[tuple[str, ...]] = (SESSIONS, FEEDBACK, NOTIFICATIONS, EXTERNAL)

    @classmethod
    def example(cls) -> Self:
        """Return a pair formed from a batch proposal."""
        return cls(
            pair_id=_PAIR,
            program_id=_PROGRAM,
            mentor_id=_MENTOR,
            mentee_id=_MENTEE,
            topics=["social-media", "genai-tools"],
            mode=PairingMode.BATCH,
            score=0.795,
        )


class PairEnded(_PairEvent):
    """A formed pair ended; its future sessions are cancelled."""

    mentor_id: Identifier = Field(description="The mentor.")
    mentee_id: Identifier = Field(description="The mentee.")
    reason: PairEndReason = Field(description="Why the pair ended.")
    ended_by: Identifier | None = Field(
        default=None, description="Participant or admin who ended it, when one did."
    )

    event_type: ClassVar[str] = "PairEnded"
    publishers: ClassVar[tuple[str, ...]] = (MATCHING, SESSIONS)
    subscribers: ClassVar[tuple[str, ...]] = (
        MATCHING,
        SESSIONS,
        FEEDBACK,
        NOTIFICATIONS,
        EXTERNAL,
    )

    @classmethod
    def example(cls) -> Self:
        """Return a pair rematched after being flagged at risk."""
        return cls(
            pair_id=_PAIR,
            program_id=_PROGRAM,
            mentor_id=_MENTOR,
            mentee_id=_MENTEE,
            reason=PairEndReason.AT_RISK_REMATCH,
            ended_by="emp-00017",
        )


class MatchRunCompleted(EventData):
    """Summary of one matching run (batch, continuous, or a dry run)."""

    run_id: Identifier = Field(description="Match run id (the Kafka key).")
    program_id: Identifier = Field(description="Program matched.")
    mode: PairingMode = Field(description="batch or continuous.")
    objective: MatchingObjective = Field(description="Objective the run optimised.")
    dry_run: bool = Field(default=False, description="True when nothing was proposed.")
    mentors_considered: int = Field(ge=0, description="Eligible mentors in the run.")
    mentees_considered: int = Field(ge=0, description="Eligible mentees in the run.")
    pairs_proposed: int = Field(ge=0, description="Pairs proposed (or that would be).")
    unmatched_mentees: int = Field(ge=0, description="Eligible mentees left without a pair.")
    total_score: float = Field(ge=0, description="Sum of the proposed pairs' scores.")
    optimal: bool = Field(description="True when the solver proved optimality.")
    solver: ShortText = Field(description="Solver used, e.g. `ortools-min-cost-flow`.")
    duration_ms: int = Field(ge=0, description="Wall-clock time of the run.")

    event_type: ClassVar[str] = "MatchRunCompleted"
    topic: ClassVar[str] = TOPIC
    subject_field: ClassVar[str] = "run_id"
    publishers: ClassVar[tuple[str, ...]] = (MATCHING,)
    subscribers: ClassVar[tuple[str, ...]] = (EXTERNAL,)
    schema_version: ClassVar[int] = 1

    @classmethod
    def example(cls) -> Self:
        """Return the summary of a cohort launch."""
        return cls(
            run_id="run-2025-03-01-batch",
            program_id=_PROGRAM,
            mode=PairingMode.BATCH,
            objective=MatchingObjective.MAX_MATCHED_THEN_SCORE,
            mentors_considered=212,
            mentees_considered=180,
            pairs_proposed=176,
            unmatched_mentees=4,
            total_score=121.37,
            optimal=True,
            solver="ortools-min-cost-flow",
            duration_ms=840,
        )
