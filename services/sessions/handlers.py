"""One small function per event, command and timer tick, and the HANDLERS table.

Events: programs and participants feed the service's projections (a pair waits until
its program and both people are known); PairFormed starts a pair's calendar;
PairEnded, ParticipantLeft, ProgramClosed and ParticipantForgotten stop it. Commands
come from the HTTP API. Timer ticks notice missed sessions, stalled pairs and pairs
whose program is over.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from schemas.pairs import PairEnded, PairEndReason, PairFormed
from schemas.participants import (
    ParticipantForgotten,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantProfile,
    ParticipantUpdated,
)
from schemas.programs import ProgramClosed, ProgramCreated, ProgramDefinition, ProgramUpdated
from schemas.sessions import CancelReason
from servicekit.unit_of_work import Handler, HandlerTable, Rejected, UnitOfWork, after_held
from services.sessions import publishing
from services.sessions.adapters import metrics
from services.sessions.adapters.calendar import invite
from services.sessions.domain.agenda import Topic
from services.sessions.domain.commands import Actor, Cancel, RecordHeld, RecordMissed, Reschedule
from services.sessions.domain.errors import Conflict, Forbidden, Invalid, NotFound
from services.sessions.domain.model import (
    Attendance,
    Note,
    Pair,
    PairStatus,
    Participant,
    Program,
    Session,
    SessionStatus,
)
from services.sessions.domain.slots import Interval, Slot, WorkingHours, assess, parse_weekdays
from services.sessions.service_layer import (
    Dependencies,
    HeldStarts,
    PairFacts,
    Scope,
    activate_waiting,
    availability,
    cancel_one,
    cancel_reason_for,
    complete,
    end_pair,
    flag_if_stalled,
    free_slot,
    invite_context,
    lock_pair,
    open_scope,
    record_missed,
    top_up,
)

_OPEN = (PairStatus.PENDING, PairStatus.ACTIVE)

# Events ---------------------------------------------------------------------------------


async def define_program(
    data: ProgramCreated | ProgramUpdated, uow: UnitOfWork, *, deps: Dependencies
) -> None:
    """Keep the program's definition; start the pairs that were waiting for it."""
    scope = open_scope(uow, deps)
    program = program_from(data)
    before = await scope.repo.get_program(program_id=program.program_id)
    if not await scope.repo.save_program(program=program):
        return
    duration = timedelta(weeks=program.duration_weeks)
    await scope.repo.move_pair_ends(program_id=program.program_id, duration=duration)
    await activate_waiting(scope, program_id=program.program_id)
    if before is not None and before.duration_weeks < program.duration_weeks:
        await _top_up_program(scope, program.program_id)


async def _top_up_program(scope: Scope, program_id: str) -> None:
    """A longer program: pairs that had reached the old end get their next sessions."""
    for pair_id in await scope.repo.pair_ids(statuses=[PairStatus.ACTIVE], program_id=program_id):
        facts = await lock_pair(scope, pair_id)
        if facts is not None:
            await top_up(scope, facts)


def program_from(data: ProgramDefinition) -> Program:
    """The part of a program's definition the sessions service keeps."""
    return Program(
        program_id=data.program_id,
        name=data.name,
        cadence_days=data.cadence_days,
        duration_weeks=data.duration_weeks,
        session_minutes=data.session_minutes,
        max_missed_sessions=data.stall_rules.max_missed_sessions,
        max_days_without_session=data.stall_rules.max_days_without_session,
        catalogue=tuple(Topic(t.key, t.title, t.difficulty) for t in data.topics),
        revision=data.revision if isinstance(data, ProgramUpdated) else 1,
    )


async def close_program(data: ProgramClosed, uow: UnitOfWork, *, deps: Dependencies) -> None:
    """A closed program's pairs end here and their future sessions are cancelled."""
    scope = open_scope(uow, deps)
    await scope.repo.close_program(program_id=data.program_id)
    for pair_id in await scope.repo.pair_ids(statuses=_OPEN, program_id=data.program_id):
        await _end_here(scope, pair_id, PairEndReason.PROGRAM_CLOSED, ended_by=data.closed_by)


async def record_participant(
    data: ParticipantJoined | ParticipantUpdated, uow: UnitOfWork, *, deps: Dependencies
) -> None:
    """Keep the directory entry; start the pairs that were waiting for this person."""
    scope = open_scope(uow, deps)
    if await scope.repo.is_forgotten(participant_id=data.participant_id):
        return
    await scope.repo.save_participant(
        participant=participant_from(data), program_id=data.program_id
    )
    await activate_waiting(scope, participant_id=data.participant_id)


def participant_from(data: ParticipantProfile) -> Participant:
    """The directory entry of a participant profile."""
    hours = data.working_hours
    return Participant(
        participant_id=data.participant_id,
        display_name=data.display_name,
        email=data.email,
        timezone=data.timezone,
        working_hours=None
        if hours is None
        else WorkingHours(hours.start, hours.end, parse_weekdays(",".join(hours.days))),
        wants=dict(data.wants),
    )


async def leave_program(data: ParticipantLeft, uow: UnitOfWork, *, deps: Dependencies) -> None:
    """The person left the program: their pairs in it end here, future sessions cancelled.

    Matching publishes the pairs' PairEnded (``participant_left``); when it arrives the
    pairs are already ended here and it changes nothing.
    """
    scope = open_scope(uow, deps)
    pair_ids = await scope.repo.pair_ids(
        statuses=_OPEN, program_id=data.program_id, participant_id=data.participant_id
    )
    for pair_id in pair_ids:
        await _end_here(
            scope, pair_id, PairEndReason.PARTICIPANT_LEFT, ended_by=data.participant_id
        )


async def forget_participant(
    data: ParticipantForgotten, uow: UnitOfWork, *, deps: Dependencies
) -> None:
    """Erase the person's data, end their pairs here, and confirm the erasure."""
    scope = open_scope(uow, deps)
    erased = await scope.repo.forget_participant(participant_id=data.participant_id, now=uow.now)
    for pair_id in await scope.repo.pair_ids(statuses=_OPEN, participant_id=data.participant_id):
        await _end_here(scope, pair_id, PairEndReason.PARTICIPANT_FORGOTTEN, ended_by=None)
    await uow.emit(publishing.erasure_completed(data.participant_id, erased=erased, now=uow.now))


async def _end_here(
    scope: Scope, pair_id: str, reason: PairEndReason, *, ended_by: str | None
) -> None:
    facts = await lock_pair(scope, pair_id)
    if facts is not None and facts.pair.status is not PairStatus.ENDED:
        cancel_reason = cancel_reason_for(reason)
        await end_pair(scope, facts, reason=reason, cancel_reason=cancel_reason, ended_by=ended_by)


async def start_pair(data: PairFormed, uow: UnitOfWork, *, deps: Dependencies) -> None:
    """Record the pair and schedule its first sessions (or wait for what is missing).

    The pair is held with the transaction's other new pairs and started with them
    before it commits (:class:`HeldStarts`).
    """
    if data.mentor_id == data.mentee_id:
        raise Rejected("a pair needs two different people: mentor_id equals mentee_id")
    pair = Pair(
        pair_id=data.pair_id,
        program_id=data.program_id,
        mentor_id=data.mentor_id,
        mentee_id=data.mentee_id,
        topics=tuple(data.topics),
        formed_at=uow.now,
    )
    held = uow.scope.held(_HELD_STARTS, HeldStarts)
    held.starts.append((open_scope(uow, deps), pair))


_HELD_STARTS = "sessions.held_starts"


def _after_held_starts(handler: Handler) -> Handler:
    """``handler`` run once the pairs held so far in the transaction are started: it
    may read or change them, their people's calendars, or what their start depends on."""
    return after_held(_HELD_STARTS, handler)


async def stop_pair(data: PairEnded, uow: UnitOfWork, *, deps: Dependencies) -> None:
    """The pair ended: cancel its future sessions (nothing to do when already ended)."""
    scope = open_scope(uow, deps)
    if await scope.repo.get_pair(pair_id=data.pair_id) is None:
        await scope.repo.add_pair(pair=_ended_unknown_pair(data, uow))
        return
    await _end_here(scope, data.pair_id, data.reason, ended_by=data.ended_by)


def _ended_unknown_pair(data: PairEnded, uow: UnitOfWork) -> Pair:
    """A pair that ended before it was seen forming: kept so it is never scheduled."""
    return Pair(
        pair_id=data.pair_id,
        program_id=data.program_id,
        mentor_id=data.mentor_id,
        mentee_id=data.mentee_id,
        topics=(),
        formed_at=uow.now,
        status=PairStatus.ENDED,
        end_reason=str(data.reason),
    )


# Commands (HTTP) ------------------------------------------------------------------------


async def record_session_held(command: RecordHeld, uow: UnitOfWork, deps: Dependencies) -> Session:
    """Record a session as held, keep the private notes, schedule the next session."""
    scope = open_scope(uow, deps)
    facts, session = await _session_for(scope, command.session_id, command.actor, members_only=True)
    attendance = Attendance(command.attendees, command.duration_minutes, command.topics_covered)
    program = facts.require_program()
    held = session.hold(attendance, pair=facts.pair, program=program, now=uow.now)
    await scope.repo.save_session(session=held)
    if command.notes:
        note = Note(held.session_id, held.pair_id, command.actor.subject, command.notes, uow.now)
        await scope.repo.add_note(note=note)
    pair = facts.pair.after_held(held.starts_at)
    await scope.repo.save_pair(pair=pair)
    await uow.emit(publishing.held(held))
    uow.after_commit(metrics.SESSIONS.labels("held").inc)
    await top_up(scope, facts.with_pair(pair))
    return held


async def record_session_missed(
    command: RecordMissed, uow: UnitOfWork, deps: Dependencies
) -> Session:
    """Record that a session did not take place, and who did not come."""
    scope = open_scope(uow, deps)
    facts, session = await _session_for(scope, command.session_id, command.actor, members_only=True)
    facts.pair.check_members(command.absent, what="absent people")
    return await record_missed(scope, facts, session, absent=command.absent)


async def reschedule_session(command: Reschedule, uow: UnitOfWork, deps: Dependencies) -> Session:
    """Move a session to the given time, or to the next good slot; reissue its invite."""
    scope = open_scope(uow, deps)
    facts, session = await _session_for(scope, command.session_id, command.actor)
    await scope.repo.lock_calendars(participant_ids=facts.pair.members)
    slot = await _new_slot(scope, facts, session, command.starts_at)
    moved = replace(session.move(slot.interval, now=uow.now), warnings=slot.warnings)
    await scope.repo.save_session(session=moved)
    ics = invite(moved, invite_context(scope.policy, facts), now=uow.now)
    requested_by = None if command.actor.is_admin else command.actor.subject
    await uow.emit(
        publishing.rescheduled(
            moved, previous_starts_at=session.starts_at, ics=ics, requested_by=requested_by
        )
    )
    return moved


async def _new_slot(
    scope: Scope, facts: PairFacts, session: Session, starts_at: datetime | None
) -> Slot:
    length = session.ends_at - session.starts_at
    ends_at = facts.pair.ends_at or session.ends_at
    if starts_at is None:
        return await _next_free_slot(scope, facts, session, length=length, ends_at=ends_at)
    if starts_at <= scope.now:
        raise Invalid("a session can only be moved to a time in the future")
    if starts_at >= ends_at:
        raise Invalid("the new time is after the end of the pair's program")
    wanted = Interval(starts_at, starts_at + length)
    members = facts.pair.members
    if await scope.repo.busy(participant_ids=members, window=wanted, exclude=session.session_id):
        raise Conflict("the new time clashes with another session of one of the pair")
    return assess(wanted, availability(scope.policy, facts))


async def _next_free_slot(
    scope: Scope, facts: PairFacts, session: Session, *, length: timedelta, ends_at: datetime
) -> Slot:
    """The least-bad free time within a week after the session (and the notice period)."""
    start = max(scope.now + scope.policy.min_notice, session.ends_at)
    window = Interval(start, min(start + timedelta(days=7), ends_at))
    slot = None
    if window.start < window.end:
        slot = await free_slot(
            scope, facts, window=window, length=length, exclude=session.session_id
        )
    if slot is None:
        raise Conflict("no free time in the week after the session, before the pair's end")
    return slot


async def cancel_session(command: Cancel, uow: UnitOfWork, deps: Dependencies) -> Session:
    """Cancel one session (METHOD:CANCEL) and schedule the next one on the cadence."""
    scope = open_scope(uow, deps)
    facts, session = await _session_for(scope, command.session_id, command.actor)
    admin = command.actor.is_admin
    reason = CancelReason.ADMIN if admin else CancelReason.PARTICIPANT_REQUEST
    cancelled = await cancel_one(
        scope, facts, session, reason=reason, cancelled_by=command.actor.subject
    )
    await top_up(scope, facts)
    return cancelled


async def _session_for(
    scope: Scope, session_id: str, actor: Actor, *, members_only: bool = False
) -> tuple[PairFacts, Session]:
    """Lock the session's pair, check the actor may act on it, read the session again."""
    found = await scope.repo.get_session(session_id=session_id)
    facts = None if found is None else await lock_pair(scope, found.pair_id)
    session = await scope.repo.get_session(session_id=session_id)
    if facts is None or session is None:
        raise NotFound(f"no session {session_id!r}")
    if actor.is_admin and members_only:
        raise Forbidden("only the two people of the pair record what happened in a session")
    if not actor.is_admin:
        facts.pair.role_of(actor.subject)
    return facts, session


# Timers ---------------------------------------------------------------------------------


async def mark_missed_sessions(uow: UnitOfWork, *, deps: Dependencies) -> None:
    """Sessions still unrecorded ``missed_grace`` after their end become SessionMissed."""
    scope = open_scope(uow, deps)
    cutoff = uow.now - deps.policy.missed_grace
    overdue = await scope.repo.overdue_sessions(ended_before=cutoff, limit=deps.policy.batch_max)
    for candidate in overdue:
        facts = await lock_pair(scope, candidate.pair_id)
        session = await scope.repo.get_session(session_id=candidate.session_id)
        if facts is not None and session is not None and session.status is SessionStatus.SCHEDULED:
            await record_missed(scope, facts, session, absent=())


async def flag_stalled_pairs(uow: UnitOfWork, *, deps: Dependencies) -> None:
    """Pairs past ``max_days_without_session`` (or too many misses) get PairStalled."""
    scope = open_scope(uow, deps)
    limit = deps.policy.batch_max
    for pair_id in await scope.repo.pairs_to_check_for_stall(now=uow.now, limit=limit):
        facts = await lock_pair(scope, pair_id)
        if facts is not None:
            await flag_if_stalled(scope, facts)


async def complete_pairs(uow: UnitOfWork, *, deps: Dependencies) -> None:
    """Pairs whose program duration is over end with reason ``completed``."""
    scope = open_scope(uow, deps)
    for pair_id in await scope.repo.pairs_to_complete(now=uow.now, limit=deps.policy.batch_max):
        facts = await lock_pair(scope, pair_id)
        ends_at = facts.pair.ends_at if facts else None
        if facts and facts.pair.status is PairStatus.ACTIVE and ends_at and ends_at <= uow.now:
            await complete(scope, facts)


def build_handlers(deps: Dependencies) -> HandlerTable:
    """The service's one handler table, with its dependencies bound."""
    return {
        ProgramCreated: _after_held_starts(partial(define_program, deps=deps)),
        ProgramUpdated: _after_held_starts(partial(define_program, deps=deps)),
        ProgramClosed: _after_held_starts(partial(close_program, deps=deps)),
        ParticipantJoined: _after_held_starts(partial(record_participant, deps=deps)),
        ParticipantUpdated: _after_held_starts(partial(record_participant, deps=deps)),
        ParticipantLeft: _after_held_starts(partial(leave_program, deps=deps)),
        ParticipantForgotten: _after_held_starts(partial(forget_participant, deps=deps)),
        PairFormed: partial(start_pair, deps=deps),
        PairEnded: _after_held_starts(partial(stop_pair, deps=deps)),
    }
