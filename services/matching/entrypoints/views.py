"""Request and response bodies of the matching HTTP API (they make its OpenAPI document)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from schemas.pairs import PairEndReason, ScoreFactor
from schemas.participants import LeaveReason, ParticipantProfile, ScreeningOutcome
from schemas.primitives import Identifier, PairingMode, ShortText
from schemas.programs import ProgramClosedReason, ProgramDefinition
from services.matching.domain.audit import AdminActionKind
from services.matching.domain.model import PlannedPair
from services.matching.domain.pairs import PairStatus
from services.matching.domain.participants import ParticipantStatus
from services.matching.domain.programs import ProgramStatus
from services.matching.domain.staging import (
    MatchRun,
    RunStatus,
    is_optimal,
    solver_of,
    total_score,
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MatchRunRequest(_Body):
    """Start a batch run: a dry run stages the plan for review; otherwise it is published."""

    dry_run: bool = Field(default=True, description="Stage the plan only; publish it later.")


class SelfMatchRequest(_Body):
    """A mentee asks a named mentor."""

    mentor_id: Identifier = Field(description="The mentor asked for.")


class ManualPairRequest(_Body):
    """An admin proposes a pair by hand (both people must still accept)."""

    mentor_id: Identifier
    mentee_id: Identifier
    reason: ShortText = Field(description="Why (kept in the audit trail).")


class VetoRequest(_Body):
    """An admin forbids a (mentor, mentee) combination for good."""

    mentor_id: Identifier
    mentee_id: Identifier
    reason: ShortText = Field(description="Why (kept in the audit trail).")


class PairVetoRequest(_Body):
    """An admin vetoes a proposal."""

    reason: ShortText = Field(description="Why (kept in the audit trail).")


class EndPairRequest(_Body):
    """End a formed pair; participants always end with ``no_fault_exit``."""

    reason: PairEndReason | None = Field(
        default=None, description="Admins only; default admin_ended."
    )


class CloseProgramRequest(_Body):
    """Close a program."""

    reason: ProgramClosedReason = ProgramClosedReason.CANCELLED


class LeaveRequest(_Body):
    """Leave a program (no-fault)."""

    reason: LeaveReason = LeaveReason.VOLUNTARY


class ScreeningRequest(_Body):
    """Record a mentor's screening."""

    outcome: ScreeningOutcome


class TrainingRequest(_Body):
    """Record a completed mentor training."""

    course_id: Identifier


class EventAccepted(BaseModel):
    """The command was accepted: its event is on its way (the consumer applies it).

    Both fields are null when the command changed nothing (an update equal to the profile).
    """

    event_id: str | None = None
    event_type: str | None = None


class _View(BaseModel):
    """A response body read from a domain object's attributes (``model_validate(obj)``)."""

    model_config = ConfigDict(from_attributes=True)


class ProgramView(_View):
    """A program with its revision and status."""

    definition: ProgramDefinition
    revision: int
    status: ProgramStatus
    closed_at: datetime | None


class ParticipantView(_View):
    """A participant of one program."""

    profile: ParticipantProfile
    status: ParticipantStatus
    screening: ScreeningOutcome | None
    trained: bool


class PairView(_View):
    """A proposal or a pair."""

    pair_id: str
    program_id: str
    mentor_id: str
    mentee_id: str
    status: PairStatus
    mode: PairingMode
    score: float
    topics: list[str]
    run_id: str | None
    proposed_by: str | None
    proposed_at: datetime
    expires_at: datetime
    mentor_accepted_at: datetime | None
    mentee_accepted_at: datetime | None
    formed_at: datetime | None
    closed_at: datetime | None
    close_reason: str | None
    closed_by: str | None
    at_risk_at: datetime | None


class ExplanationView(_View):
    """Why a pair was proposed: its score and the contribution of each factor."""

    pair_id: str
    mentor_id: str
    mentee_id: str
    score: float
    explanation: list[ScoreFactor]
    topics: list[str]


class ProposalView(_View):
    """A planned pair of a run."""

    mentor_id: str
    mentee_id: str
    score: float
    explanation: list[ScoreFactor]
    topics: list[str]


class DroppedView(ProposalView):
    """A planned pair that publishing dropped, with the constraints it now breaks."""

    reasons: list[str]


class UnmatchedView(_View):
    """Someone the plan left without a pair."""

    participant_id: str
    reason: str


class RunView(BaseModel):
    """A match run: its plan and, once published, what it proposed."""

    run_id: str
    program_id: str
    mode: PairingMode
    status: RunStatus
    created_at: datetime
    created_by: str | None
    duration_ms: int
    solver: str
    optimal: bool
    totals: dict[str, float | int]
    total_score: float
    proposals: list[ProposalView]
    unmatched: list[UnmatchedView]
    published_at: datetime | None
    published_by: str | None
    proposed_pair_ids: list[str]
    dropped: list[DroppedView]


class AuditEntry(_View):
    """One admin action: who, what, to whom, why, when."""

    action: AdminActionKind
    actor_id: str
    at: datetime
    reason: str | None
    pair_id: str | None
    run_id: str | None
    mentor_id: str | None
    mentee_id: str | None


def _view(proposal: PlannedPair) -> ProposalView:
    return ProposalView.model_validate(proposal)


def run_view(run: MatchRun) -> RunView:
    """The HTTP view of a run, with its plan and its outcome."""
    outcome = run.outcome
    return RunView(
        run_id=run.run_id,
        program_id=run.program_id,
        mode=run.mode,
        status=run.status,
        created_at=run.created_at,
        created_by=run.created_by,
        duration_ms=run.duration_ms,
        solver=solver_of(run.plan),
        optimal=is_optimal(run.plan),
        totals=dict(run.plan.totals),
        total_score=total_score(run.plan),
        proposals=[_view(p) for p in run.plan.pairs],
        unmatched=[UnmatchedView.model_validate(u) for u in run.plan.unmatched],
        published_at=run.published_at,
        published_by=run.published_by,
        proposed_pair_ids=[] if outcome is None else list(outcome.proposed),
        dropped=[]
        if outcome is None
        else [
            DroppedView(**_view(d.proposal).model_dump(), reasons=list(d.reasons))
            for d in outcome.dropped
        ],
    )
