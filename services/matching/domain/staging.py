"""Match runs: a plan is staged for review, then published as proposals.

A batch run stores the engine's plan (:class:`MatchPlan`) as a *staged* run (a dry
run stops there). Publishing re-checks every planned pair against the pool as it is
*now* — people may have left, been vetoed or paired since the plan was made — keeps the
pairs still allowed (using up capacity as it goes) and reports the others with their
violation codes. A continuous
micro-batch is planned and published in one go, the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from schemas.pairs import MatchRunCompleted
from schemas.primitives import PairingMode
from schemas.programs import MatchingObjective
from services.matching.domain.constraints import INACTIVE
from services.matching.domain.engine import check_pair
from services.matching.domain.model import Candidate, MatchPlan, PlannedPair, ProgramRules

DEFAULT_SOLVER = "ortools-min-cost-flow"
"""The engine's solver, reported in MatchRunCompleted (until the plan names it itself)."""


class RunStatus(StrEnum):
    """A staged run waits for review; it is then published or discarded."""

    STAGED = "staged"
    PUBLISHED = "published"
    DISCARDED = "discarded"


class RunNotStaged(Exception):
    """Only a staged run can be published or discarded."""


@dataclass(frozen=True, slots=True)
class Dropped:
    """A planned pair not published, with the constraint codes it now violates."""

    proposal: PlannedPair
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Revalidation:
    """Which planned pairs are still allowed now, and which are not."""

    kept: tuple[PlannedPair, ...]
    dropped: tuple[Dropped, ...]


@dataclass(frozen=True, slots=True)
class PublishOutcome:
    """What publishing a run did: pair ids proposed, planned pairs dropped."""

    proposed: tuple[str, ...]
    dropped: tuple[Dropped, ...]


@dataclass(frozen=True, slots=True)
class MatchRun:
    """One matching run of one program."""

    run_id: str
    program_id: str
    mode: PairingMode
    status: RunStatus
    plan: MatchPlan
    created_at: datetime
    duration_ms: int
    created_by: str | None = None
    published_at: datetime | None = None
    published_by: str | None = None
    outcome: PublishOutcome | None = None


def solver_of(plan: MatchPlan) -> str:
    """The solver that made the plan."""
    return str(getattr(plan, "solver", DEFAULT_SOLVER))


def is_optimal(plan: MatchPlan) -> bool:
    """True when the engine certified the plan optimal."""
    return bool(plan.totals.get("optimal", True))


def total_score(plan: MatchPlan) -> float:
    """Sum of the planned pairs' scores."""
    return round(sum(p.score for p in plan.pairs), 6)


def revalidate(
    proposals: Iterable[PlannedPair],
    *,
    rules: ProgramRules,
    pool: Mapping[str, Candidate],
    excluded: frozenset[tuple[str, str]],
    at: datetime,
) -> Revalidation:
    """Keep the proposals still allowed by ``pool`` now, in plan order.

    Each kept pair takes one of its mentor's free slots and its mentee's need, so two
    planned pairs that now compete for the same place cannot both be kept.
    """
    free = dict(pool)
    kept: list[PlannedPair] = []
    dropped: list[Dropped] = []
    for proposal in proposals:
        reasons = _violations(proposal, free=free, rules=rules, excluded=excluded, at=at)
        if reasons:
            dropped.append(Dropped(proposal, reasons))
            continue
        kept.append(proposal)
        mentor, mentee = free[proposal.mentor_id], free[proposal.mentee_id]
        free[mentor.participant_id] = replace(mentor, mentor_slots=mentor.mentor_slots - 1)
        free[mentee.participant_id] = replace(free[mentee.participant_id], needs_mentor=False)
    return Revalidation(tuple(kept), tuple(dropped))


def _violations(
    proposal: PlannedPair,
    *,
    free: Mapping[str, Candidate],
    rules: ProgramRules,
    excluded: frozenset[tuple[str, str]],
    at: datetime,
) -> tuple[str, ...]:
    mentor, mentee = free.get(proposal.mentor_id), free.get(proposal.mentee_id)
    if mentor is None or mentee is None:
        return (INACTIVE,)
    return tuple(check_pair(rules=rules, mentor=mentor, mentee=mentee, excluded=excluded, at=at))


def publish(run: MatchRun, *, by: str | None, at: datetime, outcome: PublishOutcome) -> MatchRun:
    """Mark a staged run published with what publishing did."""
    _require_staged(run)
    return replace(
        run, status=RunStatus.PUBLISHED, published_at=at, published_by=by, outcome=outcome
    )


def discard(run: MatchRun) -> MatchRun:
    """Drop a staged run without proposing anything."""
    _require_staged(run)
    return replace(run, status=RunStatus.DISCARDED)


def _require_staged(run: MatchRun) -> None:
    if run.status is not RunStatus.STAGED:
        raise RunNotStaged(f"run {run.run_id} is {run.status}, not staged")


def run_completed(
    run: MatchRun, *, objective: MatchingObjective, proposed: int, total_score: float
) -> MatchRunCompleted:
    """The MatchRunCompleted summarising a published run."""
    totals = run.plan.totals
    mentees = int(totals.get("mentees", 0))
    return MatchRunCompleted(
        run_id=run.run_id,
        program_id=run.program_id,
        mode=run.mode,
        objective=objective,
        dry_run=False,
        mentors_considered=int(totals.get("mentors", 0)),
        mentees_considered=mentees,
        pairs_proposed=proposed,
        unmatched_mentees=max(0, mentees - proposed),
        total_score=round(total_score, 6),
        optimal=is_optimal(run.plan),
        solver=solver_of(run.plan),
        duration_ms=run.duration_ms,
    )
