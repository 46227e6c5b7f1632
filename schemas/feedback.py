"""Events of topic ``upward.feedback``: feedback requests, ratings and pair health.

Published by the feedback service. Key: ``pair_id`` for every event of this topic.
Confidentiality: feedback never carries free text or individual ratings on the wire.
FeedbackSubmitted names the respondent's *side*, not their id, but pair_id + side identify
the person to a reader of PairFormed, so it says only that a request was answered.
Individual ratings are for the feedback service's health model; anything shown to admins
is aggregated over at least the program's ``k_anonymity`` people, by the feedback service,
never by a subscriber.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.base import PairKeyedEvent
from schemas.primitives import (
    EXTERNAL,
    FEEDBACK,
    MATCHING,
    NOTIFICATIONS,
    Identifier,
    Level,
    PairSide,
)

TOPIC = "upward.feedback"
_PAIR = "pair-7f3a9c"
_PROGRAM = "prg-2025-digital"


class FeedbackKind(StrEnum):
    """After a session, or at a program milestone."""

    SESSION = "session"
    MILESTONE = "milestone"


class PairHealth(StrEnum):
    """Health band of a pair, from its feedback and attendance signals."""

    HEALTHY = "healthy"
    WATCH = "watch"
    AT_RISK = "at_risk"


class HealthSignal(StrEnum):
    """A signal that lowered a pair's health score."""

    LOW_SATISFACTION = "low_satisfaction"
    LOW_SAFETY = "low_safety"
    LOW_USEFULNESS = "low_usefulness"
    MISSED_SESSIONS = "missed_sessions"
    STALLED = "stalled"
    NO_FEEDBACK = "no_feedback"
    DECLINING_TREND = "declining_trend"


class RiskAction(StrEnum):
    """What the feedback service recommends for an at-risk pair."""

    CHECK_IN = "check_in"
    REMATCH = "rematch"


class Ratings(BaseModel):
    """Ratings of one feedback response: 1 (poor) to 5 (excellent). No free text."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    satisfaction: Level = Field(description="Overall satisfaction with the pair.")
    usefulness: Level = Field(description="How useful the session or period was.")
    psychological_safety: Level = Field(description="How safe they felt to speak openly.")
    skills_gained: Level | None = Field(
        default=None, description="Skills gained so far (milestone feedback)."
    )
    would_continue: bool | None = Field(
        default=None, description="Would continue with this partner (milestone feedback)."
    )


class _FeedbackEvent(PairKeyedEvent):
    topic: ClassVar[str] = TOPIC
    publishers: ClassVar[tuple[str, ...]] = (FEEDBACK,)


class _KindOfFeedback(_FeedbackEvent):
    request_id: Identifier = Field(description="Feedback request id.")
    kind: FeedbackKind = Field(description="session or milestone feedback.")
    session_id: Identifier | None = Field(
        default=None, description="Session concerned (kind = session)."
    )
    milestone_week: int | None = Field(
        default=None, ge=1, description="Program week of the milestone (kind = milestone)."
    )

    @model_validator(mode="after")
    def _kind_has_its_reference(self) -> Self:
        if self.kind is FeedbackKind.SESSION and self.session_id is None:
            raise ValueError("session feedback needs session_id")
        if self.kind is FeedbackKind.MILESTONE and self.milestone_week is None:
            raise ValueError("milestone feedback needs milestone_week")
        return self


class FeedbackRequested(_KindOfFeedback):
    """One side of a pair is asked for feedback (after a session or at a milestone)."""

    participant_id: Identifier = Field(description="Who is asked (notification recipient).")
    side: PairSide = Field(description="mentor or mentee.")
    due_at: AwareDatetime = Field(description="Answer expected before this time.")

    event_type: ClassVar[str] = "FeedbackRequested"
    subscribers: ClassVar[tuple[str, ...]] = (NOTIFICATIONS,)

    @classmethod
    def example(cls) -> Self:
        """Return a request to the mentee after the first session."""
        return cls(
            pair_id=_PAIR,
            program_id=_PROGRAM,
            request_id="fbr-7f3a9c-01-mentee",
            kind=FeedbackKind.SESSION,
            session_id="ses-7f3a9c-01",
            participant_id="emp-00231",
            side=PairSide.MENTEE,
            due_at=datetime(2025, 3, 18, 16, 0, tzinfo=UTC),
        )


class FeedbackSubmitted(_KindOfFeedback):
    """A request was answered. Ratings and comments stay in the feedback service.

    ``pair_id`` and ``side`` name the respondent to anyone who also reads PairFormed, so
    the feedback service does not publish the ratings (``ratings`` stays absent); it
    publishes only that the request was answered, and whether late.
    """

    side: PairSide = Field(description="Side of the respondent: mentor or mentee.")
    ratings: Ratings | None = Field(
        default=None,
        description="Not published (always absent): with pair_id and side the ratings would "
        "identify the respondent. Kept for readers of older events.",
    )
    late: bool = Field(default=False, description="Answered after the request's due time.")

    event_type: ClassVar[str] = "FeedbackSubmitted"
    subscribers: ClassVar[tuple[str, ...]] = (NOTIFICATIONS,)

    @classmethod
    def example(cls) -> Self:
        """Return the notice that the mentee answered about the first session."""
        return cls(
            pair_id=_PAIR,
            program_id=_PROGRAM,
            request_id="fbr-7f3a9c-01-mentee",
            kind=FeedbackKind.SESSION,
            session_id="ses-7f3a9c-01",
            side=PairSide.MENTEE,
        )


class PairHealthChanged(_FeedbackEvent):
    """A pair moved to another health band."""

    health: PairHealth = Field(description="New health band.")
    previous_health: PairHealth | None = Field(
        default=None, description="Band before; absent for the first assessment."
    )
    score: float = Field(ge=0, le=1, description="Health score, 0 (bad) to 1 (good).")
    signals: list[HealthSignal] = Field(
        default_factory=list, description="Signals that lowered the score."
    )

    event_type: ClassVar[str] = "PairHealthChanged"
    subscribers: ClassVar[tuple[str, ...]] = (EXTERNAL,)

    @classmethod
    def example(cls) -> Self:
        """Return a pair moving from healthy to watch."""
        return cls(
            pair_id=_PAIR,
            program_id=_PROGRAM,
            health=PairHealth.WATCH,
            previous_health=PairHealth.HEALTHY,
            score=0.55,
            signals=[HealthSignal.MISSED_SESSIONS],
        )


class PairAtRisk(_FeedbackEvent):
    """A pair's health fell below the program's at-risk threshold: act on it."""

    mentor_id: Identifier = Field(description="The mentor.")
    mentee_id: Identifier = Field(description="The mentee.")
    score: float = Field(ge=0, le=1, description="Health score, 0 (bad) to 1 (good).")
    threshold: float = Field(ge=0, le=1, description="The program's at-risk threshold.")
    signals: list[HealthSignal] = Field(min_length=1, description="Why it is at risk.")
    recommended_action: RiskAction = Field(description="check_in or rematch.")

    event_type: ClassVar[str] = "PairAtRisk"
    subscribers: ClassVar[tuple[str, ...]] = (MATCHING, NOTIFICATIONS)

    @classmethod
    def example(cls) -> Self:
        """Return a stalled pair with low satisfaction, recommended for rematch."""
        return cls(
            pair_id=_PAIR,
            program_id=_PROGRAM,
            mentor_id="emp-10442",
            mentee_id="emp-00231",
            score=0.31,
            threshold=0.4,
            signals=[HealthSignal.STALLED, HealthSignal.LOW_SATISFACTION],
            recommended_action=RiskAction.REMATCH,
        )
