"""Events of topic ``upward.programs``: a program's definition and lifecycle.

Programs are owned by the matching service (admins create and edit them through its API
or the ``upward`` CLI). ProgramCreated and ProgramUpdated carry the *whole* definition
(event-carried state transfer), so a subscriber keeps its projection by replacing it.
Key: ``program_id``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import ClassVar, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.base import EventData
from schemas.primitives import (
    EXTERNAL,
    FEEDBACK,
    MATCHING,
    NOTIFICATIONS,
    SESSIONS,
    Identifier,
    Level,
    PairingMode,
    ShortText,
    TopicKey,
)

TOPIC = "upward.programs"


class ProgramType(StrEnum):
    """Direction of mentoring in a program."""

    REVERSE = "reverse"
    TRADITIONAL = "traditional"
    MUTUAL = "mutual"


class MatchingObjective(StrEnum):
    """What the optimiser maximises: matched people first, or total score only."""

    MAX_MATCHED_THEN_SCORE = "max_matched_then_score"
    MAX_SCORE = "max_score"


class ProgramClosedReason(StrEnum):
    """Why a program ended."""

    COMPLETED = "completed"
    CANCELLED = "cancelled"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ScoreWeights(_Frozen):
    """Weights of the transparent matching score (a weighted sum of factors in 0..1)."""

    skill_coverage: float = Field(
        default=0.4, ge=0, description="How well the mentor's offers cover the mentee's wants."
    )
    diversity: float = Field(
        default=0.3, ge=0, description="Different department / consented background attributes."
    )
    timezone_closeness: float = Field(
        default=0.15, ge=0, description="Closer time zones make sessions easier to schedule."
    )
    preference: float = Field(
        default=0.15, ge=0, description="Stated `prefer` lists of the two participants."
    )


class CatalogueTopic(_Frozen):
    """One topic of the program's catalogue, with its difficulty for agenda progression."""

    key: TopicKey = Field(description="Stable topic key used in offers, wants and agendas.")
    title: ShortText = Field(description="Human-readable title, e.g. 'Posting on LinkedIn'.")
    difficulty: Level = Field(
        description="1 = comfortable first-session topic ... 5 = hard (strategy, culture)."
    )
    confidential: bool = Field(
        default=False,
        description="Firm-confidential topic: never exported outside the firm's systems.",
    )


class StallRules(_Frozen):
    """When a pair counts as stalled (the sessions service emits PairStalled)."""

    max_missed_sessions: int = Field(
        default=2, ge=1, le=20, description="Stalled after N consecutive missed sessions."
    )
    max_days_without_session: int = Field(
        default=35, ge=1, le=365, description="Stalled after X days without a held session."
    )


class FeedbackSettings(_Frozen):
    """When feedback is requested and when a pair counts as at risk."""

    after_each_session: bool = Field(
        default=True, description="Request feedback from both sides after every held session."
    )
    milestone_weeks: list[int] | None = Field(
        default=None,
        description="Weeks (from the pair's kickoff) at which milestone feedback is due. "
        "Absent: kickoff + 2 weeks, the program's midpoint and its close, from duration_weeks. "
        "A milestone past the program's end is due at the end.",
    )
    response_days: int = Field(
        default=7, ge=1, le=60, description="Days a respondent has to answer a request."
    )
    at_risk_threshold: float = Field(
        default=0.4,
        ge=0,
        le=1,
        description="A pair whose health score falls below this is flagged (PairAtRisk).",
    )


class ProgramDefinition(EventData):
    """Full definition of a program, shared by ProgramCreated and ProgramUpdated."""

    program_id: Identifier = Field(description="Program id (the Kafka key).")
    name: ShortText = Field(description="Program name shown to participants.")
    program_type: ProgramType = Field(description="reverse, traditional or mutual mentoring.")
    goals: list[ShortText] = Field(min_length=1, description="Goals and objectives.")
    ground_rules: list[ShortText] = Field(
        default_factory=list, description="Ground rules every participant agrees to."
    )
    starts_on: date = Field(description="First day of the program.")
    duration_weeks: int = Field(ge=1, le=260, description="Program length, e.g. 26 weeks.")
    cadence_days: int = Field(ge=1, le=90, description="Meeting cadence, e.g. every 14 days.")
    session_minutes: int = Field(default=60, ge=15, le=240, description="Session length.")
    min_grade_gap: int = Field(
        default=1,
        ge=0,
        description="Reverse: mentor at least this many grades below mentee; "
        "traditional: above. Ignored for mutual programs.",
    )
    max_timezone_gap_hours: int = Field(
        default=6, ge=0, le=24, description="Largest UTC-offset gap allowed within a pair."
    )
    requires_screening: bool = Field(
        default=True, description="Mentors must pass screening before being matched."
    )
    requires_training: bool = Field(
        default=True, description="Mentors must complete training before being matched."
    )
    objective: MatchingObjective = Field(
        default=MatchingObjective.MAX_MATCHED_THEN_SCORE,
        description="Optimisation objective of the matcher for this program.",
    )
    weights: ScoreWeights = Field(
        default_factory=ScoreWeights, description="Weights of the matching score factors."
    )
    k_anonymity: int = Field(
        default=5, ge=2, description="Smallest group size any admin aggregate may show."
    )
    topics: list[CatalogueTopic] = Field(min_length=1, description="The topic catalogue.")
    pairing_modes: list[PairingMode] = Field(
        min_length=1, description="How pairs may be made in this program."
    )
    acceptance_timeout_hours: int = Field(
        default=72, ge=1, le=720, description="A proposal not accepted in time is declined."
    )
    stall_rules: StallRules = Field(
        default_factory=StallRules, description="When a pair counts as stalled."
    )
    feedback: FeedbackSettings = Field(
        default_factory=FeedbackSettings, description="Feedback requests and at-risk threshold."
    )
    reminder_offsets_minutes: list[int] = Field(
        default_factory=lambda: [1440, 60],
        description="Reminders are sent this many minutes before each session.",
    )
    admin_ids: list[Identifier] = Field(min_length=1, description="Program administrators.")

    topic: ClassVar[str] = TOPIC
    subject_field: ClassVar[str] = "program_id"
    publishers: ClassVar[tuple[str, ...]] = (MATCHING,)
    subscribers: ClassVar[tuple[str, ...]] = (SESSIONS, FEEDBACK, NOTIFICATIONS, EXTERNAL)
    schema_version: ClassVar[int] = 1


def _sample_definition() -> dict[str, object]:
    return {
        "program_id": "prg-2025-digital",
        "name": "Digital Fluency Reverse Mentoring 2025",
        "program_type": ProgramType.REVERSE,
        "goals": ["Leaders use social media confidently", "Retain junior talent"],
        "ground_rules": ["What is said in the pair stays in the pair", "No-fault exit"],
        "starts_on": date(2025, 3, 3),
        "duration_weeks": 26,
        "cadence_days": 14,
        "min_grade_gap": 2,
        "topics": [
            CatalogueTopic(key="social-media", title="Posting on social media", difficulty=1),
            CatalogueTopic(key="genai-tools", title="Generative AI at work", difficulty=2),
            CatalogueTopic(key="gen-z-culture", title="Gen Z workplace culture", difficulty=4),
            CatalogueTopic(
                key="digital-strategy", title="Digital strategy", difficulty=5, confidential=True
            ),
        ],
        "pairing_modes": [PairingMode.BATCH, PairingMode.CONTINUOUS, PairingMode.MANUAL],
        "admin_ids": ["emp-00017"],
    }


class ProgramCreated(ProgramDefinition):
    """An admin created a program; carries its whole definition."""

    event_type: ClassVar[str] = "ProgramCreated"

    @classmethod
    def example(cls) -> Self:
        """Return a reverse-mentoring program of 26 weeks."""
        return cls.model_validate(_sample_definition())


class ProgramUpdated(ProgramDefinition):
    """An admin changed a program; carries the whole new definition and what changed."""

    revision: int = Field(ge=2, description="Increases by one per update (created = 1).")
    changed_fields: list[str] = Field(
        min_length=1, description="Names of the top-level fields that changed."
    )

    event_type: ClassVar[str] = "ProgramUpdated"

    @classmethod
    def example(cls) -> Self:
        """Return an update that moves the cadence to weekly."""
        data = _sample_definition() | {
            "cadence_days": 7,
            "revision": 2,
            "changed_fields": ["cadence_days"],
        }
        return cls.model_validate(data)


class ProgramClosed(EventData):
    """A program ended: no new pairs; open pairs end with reason `program_closed`."""

    program_id: Identifier = Field(description="Program id (the Kafka key).")
    reason: ProgramClosedReason = Field(description="Completed on schedule or cancelled.")
    closed_at: AwareDatetime = Field(description="When the program closed.")
    closed_by: Identifier | None = Field(
        default=None, description="Admin who closed it; absent when closed on schedule."
    )

    event_type: ClassVar[str] = "ProgramClosed"
    topic: ClassVar[str] = TOPIC
    subject_field: ClassVar[str] = "program_id"
    publishers: ClassVar[tuple[str, ...]] = (MATCHING,)
    subscribers: ClassVar[tuple[str, ...]] = (SESSIONS, FEEDBACK, EXTERNAL)
    schema_version: ClassVar[int] = 1

    @classmethod
    def example(cls) -> Self:
        """Return a program that completed on schedule."""
        return cls(
            program_id="prg-2025-digital",
            reason=ProgramClosedReason.COMPLETED,
            closed_at=datetime(2025, 9, 1, 0, 0, tzinfo=UTC),
        )
