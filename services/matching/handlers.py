"""Handlers of the matching service: consumed events, timers, and HTTP commands.

Who writes what (so that nothing is applied twice):

* **Participants** — the consumer of ``upward.participants`` is the only writer of the
  participant projection. Matching's HTTP commands (join, update, leave, screening,
  training) only *emit* the event; the consumer applies it like one from an HR feed.
* **Pairs, programs, runs** are matching's own aggregates: a command changes them and
  emits the event in one transaction. Matching also consumes ``upward.pairs`` (external
  systems may publish PairAccepted / PairDeclined / PairEnded); applying one of its own
  events again finds the pair already in that state and changes nothing.

Every handler takes the event (or command arguments), the unit of work and the
repository; :func:`handler_table` binds the repository at bootstrap.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from schemas.base import EventData
from schemas.envelope import CloudEvent
from schemas.feedback import PairAtRisk, RiskAction
from schemas.pairs import (
    DeclineReason,
    PairAccepted,
    PairDeclined,
    PairEnded,
    PairEndReason,
    PairFormed,
)
from schemas.participants import (
    ErasureCompleted,
    ParticipantForgotten,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantProfile,
    ParticipantScreened,
    ParticipantUpdated,
    TrainingCompleted,
)
from schemas.primitives import PairingMode, ServiceName
from schemas.programs import ProgramClosedReason, ProgramDefinition
from servicekit import outbox
from servicekit.db import Connection
from servicekit.logs import get_logger
from servicekit.retry import is_transient
from servicekit.unit_of_work import HandlerTable, Rejected, UnitOfWork
from services.matching.adapters import metrics
from services.matching.adapters.offload import BIG, off_loop
from services.matching.adapters.repository import MatchingRepository, SavedParticipant
from services.matching.domain import audit, pairs, participants, programs, staging
from services.matching.domain.audit import AdminAction, AdminActionKind
from services.matching.domain.constraints import INACTIVE, PREVIOUSLY_EXCLUDED
from services.matching.domain.engine import check_pair, plan_matching, score_pair
from services.matching.domain.model import Candidate, PlannedPair, ProgramRules
from services.matching.domain.pairs import Pair, PairStatus, Transition
from services.matching.domain.participants import Participant
from services.matching.domain.programs import Program
from services.matching.domain.staging import MatchRun, PublishOutcome

_log = get_logger(__name__)

RepositoryFactory = Callable[[Connection], MatchingRepository]
EventHandler = Callable[[Any, UnitOfWork, MatchingRepository], Awaitable[None]]
EXPIRY_BATCH = 500


class UnknownResource(LookupError):
    """A program, participant, pair or run that does not exist (HTTP 404)."""


class AlreadyExists(Exception):
    """The id is taken (HTTP 409)."""


class PairNotAllowed(Exception):
    """A manual pair or self-match request that breaks hard constraints (HTTP 422)."""

    def __init__(self, violations: Sequence[str]) -> None:
        super().__init__("the pair breaks the program's constraints: " + ", ".join(violations))
        self.violations = list(violations)


# --- consumed events: participants ------------------------------------------------------


async def record_participant_joined(
    data: ParticipantJoined, uow: UnitOfWork, repo: MatchingRepository
) -> None:
    """Add (or re-activate) the participant; the pool changed."""
    await _change_participant(uow, repo, data)


async def record_participant_updated(
    data: ParticipantUpdated, uow: UnitOfWork, repo: MatchingRepository
) -> None:
    """Replace the profile (an update of an unknown participant adds them)."""
    await _change_participant(uow, repo, data)


async def record_participant_screened(
    data: ParticipantScreened, uow: UnitOfWork, repo: MatchingRepository
) -> None:
    """Record the screening outcome (screened mentors become eligible)."""
    await _change_participant(uow, repo, data)


async def record_training_completed(
    data: TrainingCompleted, uow: UnitOfWork, repo: MatchingRepository
) -> None:
    """Record the mentor training (trained mentors become eligible)."""
    await _change_participant(uow, repo, data)


ParticipantChange = Callable[[Participant | None], Participant]


AppliedFact = ParticipantJoined | ParticipantUpdated | ParticipantScreened | TrainingCompleted
_FACTS = (ParticipantJoined, ParticipantUpdated, ParticipantScreened, TrainingCompleted)


def participant_change(fact: AppliedFact) -> ParticipantChange:
    """What ``fact`` does to the stored participant (Rejected when it cannot apply)."""
    if isinstance(fact, ParticipantJoined):
        return partial(participants.joined, data=fact)
    if isinstance(fact, ParticipantUpdated):
        return partial(participants.updated, data=fact)
    if isinstance(fact, ParticipantScreened):
        return _known(partial(participants.screened, outcome=fact.outcome), fact)
    return _known(participants.trained, fact)


async def _change_participant(uow: UnitOfWork, repo: MatchingRepository, fact: AppliedFact) -> None:
    """Apply ``fact`` to the stored participant now; the program's pool changed.

    Two round trips: the program and the person read together, the person saved with the
    pool change. The consumer holds the facts of a batch instead (:class:`HeldFacts`).
    """
    program, existing = await repo.program_and_participant(
        program_id=fact.program_id, participant_id=fact.participant_id
    )
    _check_program(program, fact)
    assert program is not None
    await repo.save_participant(
        participant=participant_change(fact)(existing),
        at=uow.now,
        pool_changed=_matches_continuously(program),
    )


def _check_program(program: Program | None, fact: AppliedFact) -> None:
    if program is None:
        raise Rejected(f"unknown program {fact.program_id}")
    if isinstance(fact, ParticipantJoined) and not program.is_open:
        raise Rejected(f"program {fact.program_id} is closed")


@dataclass
class HeldFacts:
    """The participant facts of one consumer transaction, applied together before it
    commits: one read of the programs and people they name, one statement saving the
    people and noting the pool changes (a cohort arriving is matching's busiest stream).

    A fact that cannot apply raises :class:`Rejected` there: the kit then applies the
    batch one event per transaction, so only that event is dead-lettered.
    """

    repo: MatchingRepository
    facts: list[tuple[AppliedFact, datetime]]

    async def write(self) -> None:
        """Read, apply in order, save."""
        keys = list(dict.fromkeys((f.program_id, f.participant_id) for f, _ in self.facts))
        programs_by_id, people = await self.repo.programs_and_participants(keys=keys)
        current: dict[tuple[str, str], Participant | None] = dict.fromkeys(keys)
        current.update(people)
        saved: dict[tuple[str, str], SavedParticipant] = {}
        changed: set[str] = set()
        for fact, at in self.facts:
            program = programs_by_id.get(fact.program_id)
            _check_program(program, fact)
            assert program is not None
            key = (fact.program_id, fact.participant_id)
            current[key] = person = participant_change(fact)(current[key])
            first = saved.get(key)
            saved[key] = SavedParticipant(person, first.joined_at if first else at, at)
            if _matches_continuously(program):
                changed.add(fact.program_id)
        await self.repo.save_participants(saved=list(saved.values()), pool_changed=changed)


_HELD_FACTS = "matching.held_facts"


def _hold_fact(uow: UnitOfWork, repo: MatchingRepository, fact: AppliedFact) -> None:
    held = uow.scope.held(_HELD_FACTS, lambda: HeldFacts(repo, []))
    held.facts.append((fact, uow.now))


def _known(
    change: Callable[[Participant], Participant], fact: ParticipantScreened | TrainingCompleted
) -> ParticipantChange:
    """``change`` for a participant who must have joined (Rejected otherwise)."""

    def apply(existing: Participant | None) -> Participant:
        if existing is None:
            raise Rejected(f"{fact.participant_id} has not joined program {fact.program_id}")
        return change(existing)

    return apply


async def record_participant_left(
    data: ParticipantLeft, uow: UnitOfWork, repo: MatchingRepository
) -> None:
    """End the person's pairs, decline their proposals, and take them out of the pool."""
    existing = await _participant_or_reject(repo, data.program_id, data.participant_id)
    await _withdraw_open_pairs(
        uow,
        repo,
        await repo.open_pairs(program_id=data.program_id, participant_id=data.participant_id),
        end_reason=PairEndReason.PARTICIPANT_LEFT,
        decline_reason=DeclineReason.DECLINED,
        by=data.participant_id,
    )
    await repo.save_participant(participant=participants.left(existing), at=uow.now)
    await _pool_changed(repo, await _program_or_reject(repo, data.program_id))


async def record_participant_forgotten(
    data: ParticipantForgotten, uow: UnitOfWork, repo: MatchingRepository
) -> None:
    """End the person's open pairs, erase their data everywhere, confirm the erasure."""
    programs_joined = await repo.programs_of(participant_id=data.participant_id)
    await _withdraw_open_pairs(
        uow,
        repo,
        await repo.open_pairs(participant_id=data.participant_id),
        end_reason=PairEndReason.PARTICIPANT_FORGOTTEN,
        decline_reason=DeclineReason.DECLINED,
        by=None,
    )
    erased = await repo.erase_participant(participant_id=data.participant_id)
    for program_id in programs_joined:
        program = await repo.get_program(program_id=program_id)
        if program is not None:
            await _pool_changed(repo, program)
    await uow.emit(
        ErasureCompleted(
            participant_id=data.participant_id,
            service=ServiceName.MATCHING,
            completed_at=uow.now,
            records_erased=erased,
        )
    )


# --- consumed events: pair outcomes -----------------------------------------------------


async def record_pair_accepted(
    data: PairAccepted, uow: UnitOfWork, repo: MatchingRepository
) -> None:
    """One side accepted (matching's own API or an external system); maybe PairFormed.

    Two round trips: the pair read for update, then saved. The consumer holds the
    acceptances of a batch instead (:class:`HeldPairs`).
    """
    pair = await _pair_or_reject(repo, data.pair_id, data.program_id)
    transition = _acceptance(pair, data, at=uow.now)
    if transition is not None:
        await _apply(uow, repo, transition, announce=transition.without(PairAccepted))


def _acceptance(pair: Pair, data: PairAccepted, *, at: datetime) -> Transition | None:
    """What a consumed PairAccepted does to ``pair``: None when the pair is closed (a
    stale acceptance, ignored); Rejected when the participant is not that side."""
    if not pair.is_open:
        _log.info("stale_acceptance_ignored", pair_id=pair.pair_id, status=pair.status)
        return None
    if pair.side_of(data.participant_id) is not data.side:
        raise Rejected(f"{data.participant_id} is not the {data.side} of pair {pair.pair_id}")
    return pairs.accept(pair, participant_id=data.participant_id, at=at)


@dataclass
class HeldPairs:
    """The pairs the PairAccepted of one consumer transaction change, saved together
    before it commits (an acceptance per side of every proposal: matching's busiest
    stream after the joiners).

    The first acceptance reads, and locks until the commit, every pair the batch's
    acceptances name (one query; ``ahead``, from the transaction's scope); each
    acceptance then changes its pair in memory, in order. Its events are emitted by the
    handler that causes them, and one statement saves every changed pair before the
    commit. Any other event of the batch first has the held pairs written, so it reads
    what they did.
    """

    repo: MatchingRepository
    ahead: Collection[str] = ()
    """The pairs the batch's acceptances name, read together with the first one's."""
    read: dict[str, Pair] = field(default_factory=dict)
    changed: dict[str, Pair] = field(default_factory=dict)

    async def pair(self, data: PairAccepted) -> Pair:
        """The pair ``data`` names, as this transaction left it (Rejected when unknown)."""
        if data.pair_id not in self.read:
            wanted = {data.pair_id, *self.ahead} - self.read.keys()
            self.read.update(await self.repo.get_pairs(pair_ids=wanted))
            self.ahead = ()
        pair = self.read.get(data.pair_id)
        if pair is None or pair.program_id != data.program_id:
            raise Rejected(f"no pair {data.pair_id} in program {data.program_id}")
        return pair

    def keep(self, pair: Pair) -> None:
        """``pair`` is the new state of a pair read here: save it before the commit."""
        self.read[pair.pair_id] = self.changed[pair.pair_id] = pair

    async def write(self) -> None:
        """Save the changed pairs in one statement."""
        await self.repo.save_pairs(pairs=list(self.changed.values()))


_HELD_PAIRS = "matching.held_pairs"


def _accepted_pairs(uow: UnitOfWork) -> set[str]:
    """The pairs named by the acceptances of the unit of work's transaction (an id
    holding NUL, which its own handler rejects, is left out of the others' read)."""
    events = uow.scope.events
    return {e.pair_id for e in events if isinstance(e, PairAccepted) and "\x00" not in e.pair_id}


async def _hold_pair_accepted(
    data: PairAccepted, uow: UnitOfWork, repo: MatchingRepository
) -> None:
    """:func:`record_pair_accepted` with the pair held for the transaction."""
    held = uow.scope.held(_HELD_PAIRS, lambda: HeldPairs(repo, _accepted_pairs(uow)))
    transition = _acceptance(await held.pair(data), data, at=uow.now)
    if transition is None or not transition.changed:
        return
    held.keep(transition.pair)
    await _announce(uow, transition, transition.without(PairAccepted))


async def record_pair_declined(
    data: PairDeclined, uow: UnitOfWork, repo: MatchingRepository
) -> None:
    """A proposal was declined elsewhere: the two are free again and never re-proposed."""
    pair = await _pair_or_reject(repo, data.pair_id, data.program_id)
    transition = _or_reject(
        lambda: pairs.decline(pair, reason=data.reason, by=data.declined_by, at=uow.now)
    )
    await _apply(uow, repo, transition, announce=())


async def record_pair_ended(data: PairEnded, uow: UnitOfWork, repo: MatchingRepository) -> None:
    """A formed pair ended elsewhere: capacity is freed, the two are never re-paired."""
    pair = await _pair_or_reject(repo, data.pair_id, data.program_id)
    transition = _or_reject(
        lambda: pairs.end(pair, reason=data.reason, by=data.ended_by, at=uow.now)
    )
    await _apply(uow, repo, transition, announce=())


async def record_pair_at_risk(data: PairAtRisk, uow: UnitOfWork, repo: MatchingRepository) -> None:
    """Flag the pair; rematch (end it) when recommended and the program rematches itself.

    A program rematches itself when it is open and allows continuous pairing; otherwise
    the pair stays flagged for its admins, who may end it.
    """
    pair = await _pair_or_reject(repo, data.pair_id, data.program_id)
    program = await _program_or_reject(repo, data.program_id)
    rematch = data.recommended_action is RiskAction.REMATCH and program.is_open
    if rematch and program.allows(PairingMode.CONTINUOUS) and pair.status is PairStatus.FORMED:
        transition = pairs.end(pair, reason=PairEndReason.AT_RISK_REMATCH, by=None, at=uow.now)
        await _apply(uow, repo, transition, announce=transition.events)
        return
    flagged = pairs.flag_at_risk(pair, at=uow.now)
    if flagged != pair:
        await repo.save_pair(pair=flagged)


# --- timers ----------------------------------------------------------------------------


async def expire_proposals(uow: UnitOfWork, repo: MatchingRepository) -> None:
    """Decline (``expired``) the proposals nobody accepted in time."""
    for pair in await repo.expired_proposals(at=uow.now, limit=EXPIRY_BATCH):
        transition = pairs.expire(pair, at=uow.now)
        await _apply(uow, repo, transition, announce=transition.events)


async def plan_continuous(uow: UnitOfWork, repo: MatchingRepository) -> None:
    """Match the open people of every continuous program whose pool changed.

    Each program is planned in its own savepoint: one that fails (a bug, bad data) is
    logged, its events are dropped and its changes kept for the next tick, and the other
    programs are matched all the same. Transient failures fail the whole tick (retried).
    """
    for program_id, newest in (await repo.changed_pools(mode=PairingMode.CONTINUOUS)).items():
        emitted, counted = len(uow.emitted), len(uow.committed_actions)
        try:
            async with repo.savepoint():
                await _match_continuously(program_id, uow, repo)
                await repo.forget_pool_changes(program_id=program_id, up_to=newest)
        except Exception as error:
            if is_transient(error):
                raise
            del uow.emitted[emitted:]
            del uow.committed_actions[counted:]  # nor count its proposals
            _log.exception("continuous_matching_failed", program_id=program_id)


async def _match_continuously(program_id: str, uow: UnitOfWork, repo: MatchingRepository) -> None:
    await repo.lock_program(program_id=program_id)
    snapshot = await load_pool(program_id, PairingMode.CONTINUOUS, repo)
    run = await plan_run(snapshot, mode=PairingMode.CONTINUOUS, at=uow.now, by=None)
    if run.plan.pairs:
        await repo.add_run(run=run)
        await _publish(run, by=None, uow=uow, repo=repo)  # made here, under the lock


# --- commands: programs ----------------------------------------------------------------


async def create_program(
    definition: ProgramDefinition, *, by: str, uow: UnitOfWork, repo: MatchingRepository
) -> Program:
    """Create an open program and announce it (ProgramCreated)."""
    program, created = programs.create_program(definition)
    if not await repo.add_program(program=program, at=uow.now):
        raise AlreadyExists(f"program {program.program_id} exists")
    await uow.emit(created)
    await _audit(repo, program.program_id, AdminActionKind.PROGRAM_CREATED, by, uow)
    return program


async def update_program(
    definition: ProgramDefinition, *, by: str, uow: UnitOfWork, repo: MatchingRepository
) -> Program:
    """Replace the definition (ProgramUpdated, revision + 1); no event when unchanged."""
    program = await _program(repo, definition.program_id, for_update=True)
    changed, updated = programs.update_program(program, definition)
    if updated is not None:
        await repo.save_program(program=changed, at=uow.now)
        await uow.emit(updated)
        await _pool_changed(repo, changed)
        reason = "changed: " + ", ".join(updated.changed_fields)
        await _audit(repo, program.program_id, AdminActionKind.PROGRAM_UPDATED, by, uow, reason)
    return changed


async def close_program(
    program_id: str,
    *,
    reason: ProgramClosedReason,
    by: str,
    uow: UnitOfWork,
    repo: MatchingRepository,
) -> Program:
    """Close the program: its pairs end and its proposals are declined (program_closed)."""
    await repo.lock_program(program_id=program_id)
    program = await _program(repo, program_id, for_update=True)
    closed, event = programs.close_program(program, reason=reason, by=by, at=uow.now)
    await _withdraw_open_pairs(
        uow,
        repo,
        await repo.open_pairs(program_id=program_id),
        end_reason=PairEndReason.PROGRAM_CLOSED,
        decline_reason=DeclineReason.PROGRAM_CLOSED,
        by=by,
    )
    await repo.save_program(program=closed, at=uow.now)
    await uow.emit(event)
    await _audit(repo, program_id, AdminActionKind.PROGRAM_CLOSED, by, uow, reason.value)
    return closed


# --- commands: participants (emit only; the consumer applies) ---------------------------


JOIN_REQUESTS = uuid.UUID("6f1c2a43-52b4-4c5e-9d0e-7a5b1f0c9e21")
"""Namespace of the ids of ParticipantJoined events caused by a keyed join request."""


def join_event_id(profile: ParticipantJoined, request_key: str) -> str:
    """The event id of a join request sent with ``request_key`` (``Idempotency-Key``)."""
    name = f"{profile.program_id}\x1f{profile.participant_id}\x1f{request_key}"
    return str(uuid.uuid5(JOIN_REQUESTS, name))


async def join_program(
    profile: ParticipantJoined,
    *,
    uow: UnitOfWork,
    repo: MatchingRepository,
    request_key: str | None = None,
) -> CloudEvent:
    """Announce that someone joins an open program (ParticipantJoined).

    With ``request_key``, a repeat of the same request answers the event it caused the
    first time (while the outbox keeps it) instead of announcing the join again, even
    before that event has been applied.
    """
    event_id = None if request_key is None else join_event_id(profile, request_key)
    if event_id is not None and (earlier := await outbox.emitted(uow.conn, event_id)):
        return earlier
    (await _program(repo, profile.program_id)).require_open()
    participants.require_can_join(
        await repo.get_participant(
            program_id=profile.program_id, participant_id=profile.participant_id
        )
    )
    return await uow.emit(profile, event_id=event_id)


async def update_participant(
    profile: ParticipantProfile, *, uow: UnitOfWork, repo: MatchingRepository
) -> CloudEvent | None:
    """Announce a changed profile (ParticipantUpdated); None when nothing changed."""
    current = await _active_participant(repo, profile.program_id, profile.participant_id)
    event = participants.update_event(current, profile)
    return None if event is None else await uow.emit(event)


ParticipantFact = ParticipantLeft | ParticipantScreened | TrainingCompleted


async def announce_fact(
    fact: ParticipantFact, *, uow: UnitOfWork, repo: MatchingRepository
) -> CloudEvent:
    """Announce a fact about an active participant: a no-fault exit, a screening, a training.

    The consumer applies it like the same fact from an HR feed or an LMS.
    """
    await _active_participant(repo, fact.program_id, fact.participant_id)
    return await uow.emit(fact)


async def request_erasure(
    program_id: str,
    participant_id: str,
    *,
    requested_by: str | None,
    uow: UnitOfWork,
    repo: MatchingRepository,
) -> CloudEvent:
    """Announce that a participant of the program (active or not) asked to be forgotten.

    ParticipantForgotten is about the person, not the program: every service erases them
    everywhere and answers ErasureCompleted. ``requested_by`` is the admin who filed it,
    None when the person asked themself.
    """
    if await repo.get_participant(program_id=program_id, participant_id=participant_id) is None:
        raise UnknownResource(f"{participant_id} is not a participant of program {program_id}")
    forgotten = ParticipantForgotten(
        participant_id=participant_id, requested_at=uow.now, requested_by=requested_by
    )
    return await uow.emit(forgotten)


# --- commands: match runs --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """What a run plans from: the program, its active people, the forbidden combinations."""

    program: Program
    candidates: list[Candidate]
    excluded: frozenset[tuple[str, str]]

    @property
    def rules(self) -> ProgramRules:
        """The program's matching rules."""
        return ProgramRules.from_definition(self.program.definition)


async def load_pool(
    program_id: str,
    mode: PairingMode,
    repo: MatchingRepository,
    *,
    among: Collection[str] | None = None,
) -> PoolSnapshot:
    """The program's pool for a run in ``mode`` (the program must allow it).

    By default the people with a free place, which is all a plan can use (the open
    people, however long the program's history); with ``among``, those of the given
    people who are active, whatever their places (re-checking a planned run). Excluded
    combinations are read for the people of the pool only.
    """
    program = await _program(repo, program_id)
    program.require_mode(mode)
    people = await repo.candidates(
        program_id=program_id, participant_ids=among, free_only=among is None
    )
    ids = [c.participant_id for c in people]
    return PoolSnapshot(program, people, await repo.excluded(program_id=program_id, among=ids))


async def plan_run(
    snapshot: PoolSnapshot, *, mode: PairingMode, at: datetime, by: str | None
) -> MatchRun:
    """Plan a staged run in a worker thread, so the event loop keeps serving."""
    started = time.perf_counter()
    plan = await asyncio.to_thread(
        plan_matching,
        rules=snapshot.rules,
        participants=snapshot.candidates,
        excluded=snapshot.excluded,
        at=at,
    )
    seconds = time.perf_counter() - started
    metrics.MATCH_RUN_SECONDS.observe(seconds)
    metrics.MATCH_RUNS.labels(snapshot.program.program_id, mode.value).inc()
    return MatchRun(
        run_id=f"run-{uuid.uuid4().hex[:16]}",
        program_id=snapshot.program.program_id,
        mode=mode,
        status=staging.RunStatus.STAGED,
        plan=plan,
        created_at=at,
        duration_ms=int(seconds * 1000),
        created_by=by,
    )


async def stage_run(run: MatchRun, *, by: str, uow: UnitOfWork, repo: MatchingRepository) -> None:
    """Store a planned batch run for review (nothing is proposed yet)."""
    await repo.add_run(run=run)
    await _audit(repo, run.program_id, AdminActionKind.RUN_STAGED, by, uow, run_id=run.run_id)


async def publish_run(
    run_id: str, *, by: str | None, uow: UnitOfWork, repo: MatchingRepository
) -> MatchRun:
    """Propose the run's pairs that are still allowed now; MatchRunCompleted."""
    return await _publish(await _locked_run(repo, run_id), by=by, uow=uow, repo=repo)


async def _publish(
    run: MatchRun, *, by: str | None, uow: UnitOfWork, repo: MatchingRepository
) -> MatchRun:
    """Publish ``run``, read under its program's lock (held until commit)."""
    run_id = run.run_id
    planned = {person for p in run.plan.pairs for person in (p.mentor_id, p.mentee_id)}
    snapshot = await load_pool(run.program_id, run.mode, repo, among=planned)
    checked = await _recheck(run, snapshot, at=uow.now)
    made = await _propose(
        checked.kept, program=snapshot.program, mode=run.mode, run_id=run_id, uow=uow, repo=repo
    )
    outcome = PublishOutcome(tuple(p.pair_id for p in made), checked.dropped)
    published = staging.publish(run, by=by, at=uow.now, outcome=outcome)
    await repo.save_run(run=published)
    await uow.emit(
        staging.run_completed(
            published,
            objective=snapshot.program.definition.objective,
            proposed=len(made),
            total_score=sum(p.score for p in made),
        )
    )
    if by is not None:
        await _audit(repo, run.program_id, AdminActionKind.RUN_PUBLISHED, by, uow, run_id=run_id)
    return published


async def _recheck(run: MatchRun, snapshot: PoolSnapshot, *, at: datetime) -> staging.Revalidation:
    """The run's planned pairs checked against the pool now (in a worker thread)."""
    return await asyncio.to_thread(
        staging.revalidate,
        run.plan.pairs,
        rules=snapshot.rules,
        pool={c.participant_id: c for c in snapshot.candidates},
        excluded=snapshot.excluded,
        at=at,
    )


async def discard_run(
    run_id: str, *, by: str, uow: UnitOfWork, repo: MatchingRepository
) -> MatchRun:
    """Drop a staged run without proposing anything."""
    discarded = staging.discard(await _locked_run(repo, run_id))
    await repo.save_run(run=discarded)
    await _audit(repo, discarded.program_id, AdminActionKind.RUN_DISCARDED, by, uow, run_id=run_id)
    return discarded


# --- commands: pairs -------------------------------------------------------------------


async def accept_pair(
    pair_id: str, *, participant_id: str, uow: UnitOfWork, repo: MatchingRepository
) -> Pair:
    """The participant accepts a proposal (PairAccepted; PairFormed when both have)."""
    transition = pairs.accept(await _pair(repo, pair_id), participant_id=participant_id, at=uow.now)
    await _apply(uow, repo, transition, announce=transition.events)
    return transition.pair


async def decline_pair(
    pair_id: str, *, participant_id: str, uow: UnitOfWork, repo: MatchingRepository
) -> Pair:
    """The participant declines a proposal (PairDeclined); both go back to the pool."""
    pair = await _pair(repo, pair_id)
    transition = pairs.decline(pair, reason=DeclineReason.DECLINED, by=participant_id, at=uow.now)
    await _apply(uow, repo, transition, announce=transition.events)
    return transition.pair


async def end_pair(
    pair_id: str,
    *,
    reason: PairEndReason,
    by: str,
    admin: bool,
    uow: UnitOfWork,
    repo: MatchingRepository,
) -> Pair:
    """A side (no-fault exit) or an admin ends a formed pair (PairEnded)."""
    pair = await _pair(repo, pair_id)
    if not admin and not pair.involves(by):
        raise pairs.NotAPartyToThePair(f"{by} is not a party to pair {pair_id}")
    transition = pairs.end(pair, reason=reason, by=by, at=uow.now)
    await _apply(uow, repo, transition, announce=transition.events)
    if admin and transition.changed:
        await _audit(repo, pair.program_id, AdminActionKind.PAIR_ENDED, by, uow, reason, pair=pair)
    return transition.pair


async def veto_pair(
    pair_id: str, *, by: str, reason: str, uow: UnitOfWork, repo: MatchingRepository
) -> Pair:
    """An admin vetoes a proposal (PairDeclined ``vetoed``); recorded with who and why."""
    pair = await _pair(repo, pair_id)
    transition = pairs.decline(pair, reason=DeclineReason.VETOED, by=by, at=uow.now)
    await _apply(uow, repo, transition, announce=transition.events)
    if transition.changed:
        await _audit(repo, pair.program_id, AdminActionKind.VETO_PAIR, by, uow, reason, pair=pair)
    return transition.pair


async def veto_combination(
    veto: audit.Veto, *, uow: UnitOfWork, repo: MatchingRepository
) -> list[Pair]:
    """Forbid a (mentor, mentee) combination; an open pair of it is withdrawn."""
    await repo.lock_program(program_id=veto.program_id)
    (await _program(repo, veto.program_id)).require_open()
    if not await repo.add_veto(veto=veto):
        return []
    found = [
        await repo.pair_of(program_id=veto.program_id, mentor_id=a, mentee_id=b)
        for a, b in ((veto.mentor_id, veto.mentee_id), (veto.mentee_id, veto.mentor_id))
    ]
    withdrawn = await _withdraw_open_pairs(
        uow,
        repo,
        [p for p in found if p is not None and p.is_open],
        end_reason=PairEndReason.ADMIN_ENDED,
        decline_reason=DeclineReason.VETOED,
        by=veto.vetoed_by,
    )
    await repo.record_action(
        action=AdminAction(
            program_id=veto.program_id,
            action=AdminActionKind.VETO_COMBINATION,
            actor_id=veto.vetoed_by,
            at=uow.now,
            reason=veto.reason,
            mentor_id=veto.mentor_id,
            mentee_id=veto.mentee_id,
        )
    )
    return withdrawn


async def request_self_match(
    program_id: str,
    *,
    mentee_id: str,
    mentor_id: str,
    uow: UnitOfWork,
    repo: MatchingRepository,
) -> Pair:
    """A mentee asks a named mentor: constraints hold; the mentee has accepted already."""
    return await _propose_one(
        program_id,
        mentor_id,
        mentee_id,
        mode=PairingMode.SELF_MATCH,
        by=mentee_id,
        uow=uow,
        repo=repo,
    )


async def assign_pair(
    program_id: str,
    *,
    mentor_id: str,
    mentee_id: str,
    by: str,
    reason: str,
    uow: UnitOfWork,
    repo: MatchingRepository,
) -> Pair:
    """An admin proposes a pair by hand, saying why: constraints hold, both must accept."""
    pair = await _propose_one(
        program_id, mentor_id, mentee_id, mode=PairingMode.MANUAL, by=by, uow=uow, repo=repo
    )
    await _audit(repo, program_id, AdminActionKind.MANUAL_PAIR, by, uow, reason, pair=pair)
    return pair


# --- queries ---------------------------------------------------------------------------


async def load_program(program_id: str, *, repo: MatchingRepository) -> Program:
    """The program (UnknownResource when there is none)."""
    return await _program(repo, program_id)


async def load_participant(
    program_id: str, participant_id: str, *, repo: MatchingRepository
) -> Participant:
    """The participant of the program, active or not (UnknownResource when never joined)."""
    found = await repo.get_participant(program_id=program_id, participant_id=participant_id)
    if found is None:
        raise UnknownResource(f"{participant_id} has not joined program {program_id}")
    return found


async def load_pair(pair_id: str, *, repo: MatchingRepository) -> Pair:
    """The pair with the score and per-factor explanation it was proposed with."""
    return await _pair(repo, pair_id, for_update=False)


async def load_run(run_id: str, *, repo: MatchingRepository) -> MatchRun:
    """The run with its plan and outcome."""
    return await _run(repo, run_id)


# --- wiring ----------------------------------------------------------------------------


def handler_table(repository: RepositoryFactory) -> HandlerTable:
    """The one explicit table: consumed event -> handler, with the repository bound."""
    table: dict[type[EventData], EventHandler] = {
        ParticipantJoined: record_participant_joined,
        ParticipantUpdated: record_participant_updated,
        ParticipantScreened: record_participant_screened,
        TrainingCompleted: record_training_completed,
        ParticipantLeft: record_participant_left,
        ParticipantForgotten: record_participant_forgotten,
        PairAccepted: record_pair_accepted,
        PairDeclined: record_pair_declined,
        PairEnded: record_pair_ended,
        PairAtRisk: record_pair_at_risk,
    }
    return {kind: _bind(handler, repository) for kind, handler in table.items()}


def _bind(
    handler: EventHandler, repository: RepositoryFactory
) -> Callable[[Any, UnitOfWork], Awaitable[None]]:
    async def run(data: Any, uow: UnitOfWork) -> None:
        where = nul_in_event(data)
        if where is not None:
            raise Rejected(f"{where} holds a NUL character, which the store cannot keep")
        if isinstance(data, _FACTS):
            _hold_fact(uow, repository(uow.conn), data)
            return
        if isinstance(data, PairAccepted):  # reads and changes pairs only
            await _hold_pair_accepted(data, uow, repository(uow.conn))
            return
        for held in (_HELD_FACTS, _HELD_PAIRS):  # what this handler reads must be there
            await uow.scope.write_held(held)
        await handler(data, uow, repository(uow.conn))

    run.__name__ = handler.__name__
    return run


# --- shared steps ----------------------------------------------------------------------


def nul_in_event(data: EventData) -> str | None:
    """Where the event's data holds NUL (see :func:`first_nul`), or None.

    JSON escapes NUL as ``\\u0000``: data whose JSON text has no such escape is clean,
    so the walk runs only for the rare event that may hold one.
    """
    if "\\u0000" not in data.model_dump_json():
        return None
    return first_nul(data.model_dump(mode="json"), data.event_type)


def first_nul(value: object, where: str) -> str | None:
    """Where the first string (or key) holding NUL is in a JSON value, or None.

    PostgreSQL text and jsonb cannot keep NUL: such input is refused before it is stored.
    """
    if isinstance(value, str):
        return where if "\x00" in value else None
    items: list[tuple[object, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in str(key):
                return f"{where} key"
            items.append((item, f"{where}.{key}"))
    elif isinstance(value, list):
        items = [(item, f"{where}[{i}]") for i, item in enumerate(value)]
    return next((w for item, path in items if (w := first_nul(item, path)) is not None), None)


async def _propose_one(
    program_id: str,
    mentor_id: str,
    mentee_id: str,
    *,
    mode: PairingMode,
    by: str,
    uow: UnitOfWork,
    repo: MatchingRepository,
) -> Pair:
    await repo.lock_program(program_id=program_id)
    program = await _program(repo, program_id)
    program.require_mode(mode)
    people = {
        c.participant_id: c
        for c in await repo.candidates(
            program_id=program_id, participant_ids=[mentor_id, mentee_id]
        )
    }
    mentor, mentee = people.get(mentor_id), people.get(mentee_id)
    if mentor is None or mentee is None:
        raise PairNotAllowed([INACTIVE])
    rules = ProgramRules.from_definition(program.definition)
    excluded = await repo.excluded(program_id=program_id, among=[mentor_id, mentee_id])
    violations = check_pair(
        rules=rules, mentor=mentor, mentee=mentee, excluded=excluded, at=uow.now
    )
    if violations:
        raise PairNotAllowed(violations)
    scored = score_pair(rules=rules, mentor=mentor, mentee=mentee, at=uow.now)
    made = await _propose([scored], program=program, mode=mode, by=by, uow=uow, repo=repo)
    if not made:
        raise PairNotAllowed([PREVIOUSLY_EXCLUDED])
    return made[0]


async def _propose(
    proposals: Sequence[PlannedPair],
    *,
    program: Program,
    mode: PairingMode,
    uow: UnitOfWork,
    repo: MatchingRepository,
    run_id: str | None = None,
    by: str | None = None,
) -> list[Pair]:
    propose = partial(
        pairs.propose,
        program_id=program.program_id,
        mode=mode,
        at=uow.now,
        acceptance_timeout=timedelta(hours=program.definition.acceptance_timeout_hours),
        run_id=run_id,
        proposed_by=by,
    )
    transitions = await off_loop(
        lambda: [propose(p, pair_id=f"pair-{uuid.uuid4().hex[:16]}") for p in proposals],
        size=len(proposals),
    )
    inserted = await repo.add_pairs(pairs=[t.pair for t in transitions])
    made = [t for t in transitions if t.pair.pair_id in inserted]
    for index, transition in enumerate(made, start=1):
        for event in transition.events:
            await uow.emit(event)
        if index % BIG == 0:
            await asyncio.sleep(0)  # a big run: let the API serve between chunks
    count = len(made)
    uow.after_commit(lambda: metrics.PAIRS_PROPOSED.inc(count))
    return [t.pair for t in made]


async def _apply(
    uow: UnitOfWork,
    repo: MatchingRepository,
    transition: Transition,
    *,
    announce: Sequence[EventData],
) -> None:
    """Store a pair's transition and emit ``announce`` (a subset of its events)."""
    if not transition.changed:
        return
    await repo.save_pair(pair=transition.pair)
    await _announce(uow, transition, announce)
    if not transition.pair.is_open:
        program = await repo.get_program(program_id=transition.pair.program_id)
        if program is not None:
            await _pool_changed(repo, program)


async def _announce(uow: UnitOfWork, transition: Transition, events: Sequence[EventData]) -> None:
    """Emit ``events`` of a pair's transition; count a formed pair once committed."""
    for event in events:
        await uow.emit(event)
    if any(isinstance(e, PairFormed) for e in transition.events):
        uow.after_commit(metrics.PAIRS_FORMED.inc)


async def _withdraw_open_pairs(
    uow: UnitOfWork,
    repo: MatchingRepository,
    open_pairs: Sequence[Pair],
    *,
    end_reason: PairEndReason,
    decline_reason: DeclineReason,
    by: str | None,
) -> list[Pair]:
    withdrawn = []
    for pair in open_pairs:
        transition = pairs.withdraw(
            pair, end_reason=end_reason, decline_reason=decline_reason, by=by, at=uow.now
        )
        await _apply(uow, repo, transition, announce=transition.events)
        withdrawn.append(transition.pair)
    return withdrawn


def _matches_continuously(program: Program) -> bool:
    return program.is_open and program.allows(PairingMode.CONTINUOUS)


async def _pool_changed(repo: MatchingRepository, program: Program) -> None:
    if _matches_continuously(program):
        await repo.note_pool_change(program_id=program.program_id)


async def _audit(
    repo: MatchingRepository,
    program_id: str,
    action: AdminActionKind,
    by: str,
    uow: UnitOfWork,
    reason: str | None = None,
    *,
    pair: Pair | None = None,
    run_id: str | None = None,
) -> None:
    await repo.record_action(
        action=AdminAction(
            program_id=program_id,
            action=action,
            actor_id=by,
            at=uow.now,
            reason=reason,
            pair_id=None if pair is None else pair.pair_id,
            run_id=run_id,
            mentor_id=None if pair is None else pair.mentor_id,
            mentee_id=None if pair is None else pair.mentee_id,
        )
    )


def _or_reject(step: Callable[[], Transition]) -> Transition:
    """Run a pair rule for a consumed event; a fact that contradicts the pair is rejected."""
    try:
        return step()
    except pairs.PairRuleError as error:
        raise Rejected(str(error)) from error


async def _program(
    repo: MatchingRepository, program_id: str, *, for_update: bool = False
) -> Program:
    program = await repo.get_program(program_id=program_id, for_update=for_update)
    if program is None:
        raise UnknownResource(f"no program {program_id}")
    return program


async def _program_or_reject(repo: MatchingRepository, program_id: str) -> Program:
    program = await repo.get_program(program_id=program_id)
    if program is None:
        raise Rejected(f"unknown program {program_id}")
    return program


async def _active_participant(
    repo: MatchingRepository, program_id: str, participant_id: str
) -> Participant:
    found = await repo.get_participant(program_id=program_id, participant_id=participant_id)
    if found is None:
        raise UnknownResource(f"{participant_id} has not joined program {program_id}")
    return participants.require_active(found, participant_id)


async def _participant_or_reject(
    repo: MatchingRepository, program_id: str, participant_id: str
) -> Participant:
    found = await repo.get_participant(program_id=program_id, participant_id=participant_id)
    if found is None:
        raise Rejected(f"{participant_id} has not joined program {program_id}")
    return found


async def _pair(repo: MatchingRepository, pair_id: str, *, for_update: bool = True) -> Pair:
    """The pair, locked until commit by default: commands read, change and save it."""
    pair = await repo.get_pair(pair_id=pair_id, for_update=for_update)
    if pair is None:
        raise UnknownResource(f"no pair {pair_id}")
    return pair


async def _pair_or_reject(repo: MatchingRepository, pair_id: str, program_id: str) -> Pair:
    pair = await repo.get_pair(pair_id=pair_id, for_update=True)
    if pair is None or pair.program_id != program_id:
        raise Rejected(f"no pair {pair_id} in program {program_id}")
    return pair


async def _locked_run(repo: MatchingRepository, run_id: str) -> MatchRun:
    """The run, read under its program's lock: it is published or discarded once."""
    await repo.lock_program(program_id=(await _run(repo, run_id)).program_id)
    return await _run(repo, run_id)


async def _run(repo: MatchingRepository, run_id: str) -> MatchRun:
    run = await repo.get_run(run_id=run_id)
    if run is None:
        raise UnknownResource(f"no match run {run_id}")
    return run
