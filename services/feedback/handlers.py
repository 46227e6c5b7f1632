"""The feedback service's handlers: one function per event, command or timer tick.

Each runs inside one unit of work: it loads state through the store on ``uow.conn``,
asks the domain what follows, saves it and emits the events that result. Effects are
idempotent by natural key (request ids derive from pair, session or week and side; a
held session is stored once), so a *different* event carrying the same fact, e.g. a
re-published SessionHeld, changes nothing either.

SessionHeld, the busiest stream, is held for the transaction (a consumer batch) and the
batch's sessions are applied together before it commits (:class:`HeldSessions`); every
other handler writes what is held first, so the outcome is the same as one by one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial

from schemas.feedback import FeedbackKind, PairAtRisk, PairHealthChanged
from schemas.pairs import PairEnded, PairFormed
from schemas.participants import ErasureCompleted, ParticipantForgotten
from schemas.primitives import PairSide, ServiceName
from schemas.programs import ProgramClosed, ProgramCreated, ProgramUpdated
from schemas.sessions import PairStalled, SessionHeld, SessionMissed
from servicekit.db import Connection
from servicekit.unit_of_work import Handler, HandlerTable, UnitOfWork, after_held
from services.feedback.adapters.metrics import PAIR_HEALTH_PAIRS, PAIRS_AT_RISK
from services.feedback.adapters.repository import (
    PENDING,
    RELEASED,
    FeedbackStore,
    PostgresFeedbackStore,
)
from services.feedback.domain import health, milestones, outcomes, privacy, requests
from services.feedback.domain.pairs import HeldSession, PairContext, PairRecord
from services.feedback.domain.programs import ProgramSettings, program_settings, unknown_program
from services.feedback.domain.requests import FeedbackRequest, PairMembers
from services.feedback.domain.submissions import (
    Answer,
    StoredAnswer,
    SubmissionRefused,
    check_submission,
    submitted_event,
)

StoreFactory = Callable[[Connection], FeedbackStore]


class RequestNotFound(SubmissionRefused):
    """No request has this id."""


def _event_time(uow: UnitOfWork) -> datetime:
    """When the fact happened: the cause's CloudEvents time, else the clock."""
    return uow.cause.time if uow.cause is not None else uow.now


async def _program_or_defaults(
    store: FeedbackStore, program_id: str, uow: UnitOfWork
) -> ProgramSettings:
    found = await store.program(program_id=program_id)
    return found or unknown_program(program_id, uow.now.date())


async def _emit_requests(
    store: FeedbackStore, uow: UnitOfWork, wanted: list[FeedbackRequest]
) -> None:
    for request in await store.add_requests(requests=wanted):
        await uow.emit(request.to_event())


# programs


async def record_program(
    data: ProgramCreated | ProgramUpdated, uow: UnitOfWork, *, store: StoreFactory
) -> None:
    """Keep the program's calendar, feedback settings, k and admins (latest revision)."""
    await store(uow.conn).save_program(program=program_settings(data))


async def record_program_closed(
    data: ProgramClosed, uow: UnitOfWork, *, store: StoreFactory
) -> None:
    """Note the closing; the pairs end through PairEnded."""
    await store(uow.conn).close_program(program_id=data.program_id, closed_at=data.closed_at)


# participants


async def forget_participant(
    data: ParticipantForgotten, uow: UnitOfWork, *, store: StoreFactory
) -> None:
    """Erase the person's comments, replace their id by a pseudonym, confirm the erasure.

    Ratings stay, under the pseudonym: they are in released figures, and taking them out
    would move those figures by one person's answers. The pseudonym is random and not
    kept, so nothing here links it back to the person.
    """
    pseudonym = f"forgotten-{uuid.uuid4().hex}"
    erased = await store(uow.conn).forget_participant(
        participant_id=data.participant_id, pseudonym=pseudonym, now=uow.now
    )
    await uow.emit(
        ErasureCompleted(
            participant_id=data.participant_id,
            service=ServiceName.FEEDBACK,
            completed_at=uow.now,
            records_erased=erased,
        )
    )


# pairs


async def record_pair_formed(data: PairFormed, uow: UnitOfWork, *, store: StoreFactory) -> None:
    """Start following a pair; ask about sessions that were held before we knew it."""
    s = store(uow.conn)
    members = PairMembers(data.pair_id, data.program_id, data.mentor_id, data.mentee_id)
    if await s.is_forgotten(participant_ids=(data.mentor_id, data.mentee_id)):
        return  # formed before the erasure, delivered after it: ends anyway
    if not await s.add_pair(members=members, formed_at=_event_time(uow)):
        return
    held = await s.held_sessions(pair_id=data.pair_id)
    if held:
        program = await _program_or_defaults(s, data.program_id, uow)
        for session_id in held:
            await _request_session_feedback(s, uow, members, session_id, program)
    await reassess_pair(s, uow, data.pair_id)


async def record_pair_ended(data: PairEnded, uow: UnitOfWork, *, store: StoreFactory) -> None:
    """Stop following a pair; a pair that stayed to the end gets its close survey now."""
    s = store(uow.conn)
    ended = await s.end_pair(pair_id=data.pair_id, reason=data.reason, ended_at=_event_time(uow))
    if ended and data.reason in outcomes.STAYED_REASONS:
        await _request_close_survey(s, uow, data.pair_id, data.program_id)


async def _request_close_survey(
    s: FeedbackStore, uow: UnitOfWork, pair_id: str, program_id: str
) -> None:
    record = await s.pair(pair_id=pair_id)
    program = await s.program(program_id=program_id)
    if record is None or program is None:
        return
    schedule = milestones.milestone_schedule(formed_at=record.formed_at, calendar=program.calendar)
    close = milestones.closing_milestone(schedule)
    if close is not None:
        wanted = requests.milestone_requests(
            record.members, week=close.week, now=uow.now, response_days=program.response_days
        )
        await _emit_requests(s, uow, wanted)


# sessions


async def record_session_held(data: SessionHeld, uow: UnitOfWork, *, store: StoreFactory) -> None:
    """Ask both people for feedback; a held session clears misses and a stall.

    Held for the rest of the transaction and applied with its other held sessions
    (:class:`HeldSessions`) before it commits.
    """
    held = uow.scope.held(_HELD_SESSIONS, lambda: HeldSessions(store(uow.conn)))
    held.sessions.append((data, uow))


_HELD_SESSIONS = "feedback.held_sessions"


@dataclass
class HeldSessions:
    """The SessionHeld events of one transaction (a consumer batch), applied together
    before it commits: one statement stores the sessions and clears their pairs' misses
    and stalls, one reads the pairs' contexts (locked), one inserts the requests; then
    each event's FeedbackRequested and health change are emitted for that event.

    Holding changes no outcome: every other handler writes what is held before it runs
    (:func:`after_held_sessions`), and within the held events the contexts read at once
    are what each would have read in turn: a held session changes only the attendance
    (cleared for all of them before the read), new requests are open (not in the health
    inputs), and a pair's health saved for one event is carried to its next one.
    """

    store: FeedbackStore
    sessions: list[tuple[SessionHeld, UnitOfWork]] = field(default_factory=list)

    async def write(self) -> None:
        """Store, read, request and reassess, in the order the events came."""
        fresh = await self._stored()
        if not fresh:
            return
        contexts = await self.store.pair_contexts(
            pair_ids={data.pair_id for data, _ in fresh},
            answers=health.RATING_WINDOW,
            closed=health.NO_FEEDBACK_WINDOW,
            for_update=True,
        )  # a pair not known yet gets its requests when PairFormed arrives
        known = [
            (data, uow, contexts[data.pair_id]) for data, uow in fresh if data.pair_id in contexts
        ]
        await self._request_feedback(known)
        for data, uow, _ in known:
            contexts[data.pair_id] = await _reassess(self.store, uow, contexts[data.pair_id])

    async def _stored(self) -> list[tuple[SessionHeld, UnitOfWork]]:
        """The events whose session was not stored yet (the first of a repeated one)."""
        sessions = [_held_session(data) for data, _ in self.sessions]
        new = {
            (h.pair_id, h.session_id)
            for h in await self.store.record_held_sessions(sessions=sessions)
        }
        fresh = []
        for data, uow in self.sessions:
            if (data.pair_id, data.session_id) in new:
                new.discard((data.pair_id, data.session_id))
                fresh.append((data, uow))
        return fresh

    async def _request_feedback(
        self, known: list[tuple[SessionHeld, UnitOfWork, PairContext]]
    ) -> None:
        asked = [
            (uow, _session_requests(context, data.session_id, uow)) for data, uow, context in known
        ]
        added = await self.store.add_requests(requests=[r for _, wanted in asked for r in wanted])
        new = {r.request_id for r in added}
        for uow, wanted in asked:
            for request in wanted:
                if request.request_id in new:
                    new.discard(request.request_id)
                    await uow.emit(request.to_event())


def _held_session(data: SessionHeld) -> HeldSession:
    return HeldSession(data.pair_id, data.program_id, data.session_id, data.held_at)


def _session_requests(
    context: PairContext, session_id: str, uow: UnitOfWork
) -> list[FeedbackRequest]:
    """The requests a held session of this pair asks for (none when the program says so)."""
    program = context.program_or_defaults(uow.now.date())
    if not program.after_each_session:
        return []
    return requests.session_requests(
        context.record.members,
        session_id=session_id,
        now=uow.now,
        response_days=program.response_days,
    )


def after_held_sessions(handler: Handler) -> Handler:
    """``handler`` run after the transaction's held sessions are written (it may read or
    change what they write, and its events must follow theirs)."""
    return after_held(_HELD_SESSIONS, handler)


async def _request_session_feedback(
    s: FeedbackStore,
    uow: UnitOfWork,
    members: PairMembers,
    session_id: str,
    program: ProgramSettings,
) -> None:
    if program.after_each_session:
        wanted = requests.session_requests(
            members, session_id=session_id, now=uow.now, response_days=program.response_days
        )
        await _emit_requests(s, uow, wanted)


async def record_session_missed(
    data: SessionMissed, uow: UnitOfWork, *, store: StoreFactory
) -> None:
    """Count the misses in a row; they lower the pair's health."""
    s = store(uow.conn)
    await s.set_attendance(
        pair_id=data.pair_id, consecutive_missed=data.consecutive_missed, stalled=None
    )
    await reassess_pair(s, uow, data.pair_id)


async def record_pair_stalled(data: PairStalled, uow: UnitOfWork, *, store: StoreFactory) -> None:
    """A stalled pair loses health until a session is held."""
    s = store(uow.conn)
    await s.set_attendance(
        pair_id=data.pair_id, consecutive_missed=data.consecutive_missed, stalled=True
    )
    await reassess_pair(s, uow, data.pair_id)


# pair health


async def reassess_pair(s: FeedbackStore, uow: UnitOfWork, pair_id: str) -> None:
    """Score an open pair again; announce a band change, and a crossing into at_risk."""
    context = await _pair_context(s, pair_id)
    if context is not None:
        await _reassess(s, uow, context)


async def _pair_context(s: FeedbackStore, pair_id: str) -> PairContext | None:
    """The pair, locked until the transaction ends, with what scoring its health needs."""
    return await s.pair_context(
        pair_id=pair_id,
        answers=health.RATING_WINDOW,
        closed=health.NO_FEEDBACK_WINDOW,
        for_update=True,
    )


async def _reassess(s: FeedbackStore, uow: UnitOfWork, context: PairContext) -> PairContext:
    """Score the pair, save and announce what changed; the context with its new health."""
    record = context.record
    if not record.open:
        return context
    program = context.program_or_defaults(uow.now.date())
    assessment = health.assess(context.health_inputs(), threshold=program.at_risk_threshold)
    if record.holds(assessment):
        return context
    await s.save_health(pair_id=record.pair_id, assessment=assessment)
    change = health.change_between(record.health_band, assessment)
    if change is not None:
        await uow.emit(_health_changed(record, change))
        if change.now_at_risk:
            await uow.emit(_at_risk(record, assessment, program.at_risk_threshold))
            uow.after_commit(PAIRS_AT_RISK.inc)
    return replace(context, record=record.assessed(assessment))


def _health_changed(record: PairRecord, change: health.HealthChange) -> PairHealthChanged:
    return PairHealthChanged(
        pair_id=record.pair_id,
        program_id=record.members.program_id,
        health=change.assessment.band,
        previous_health=change.previous,
        score=change.assessment.score,
        signals=list(change.assessment.signals),
    )


def _at_risk(
    record: PairRecord, assessment: health.HealthAssessment, threshold: float
) -> PairAtRisk:
    return PairAtRisk(
        pair_id=record.pair_id,
        program_id=record.members.program_id,
        mentor_id=record.members.mentor_id,
        mentee_id=record.members.mentee_id,
        score=assessment.score,
        threshold=threshold,
        signals=list(assessment.signals),
        recommended_action=health.recommended_action(assessment, threshold=threshold),
    )


# the submission command (HTTP)


@dataclass(frozen=True)
class SubmitAnswer:
    """A participant answers one of their requests."""

    request_id: str
    caller_id: str
    answer: Answer


async def submit_answer(
    command: SubmitAnswer, uow: UnitOfWork, *, store: StoreFactory
) -> StoredAnswer:
    """Accept an answer (late ones too, flagged), feed the report tables and the health."""
    s = store(uow.conn)
    state = await s.request(request_id=command.request_id)
    if state is None:
        raise RequestNotFound(f"no feedback request {command.request_id}")
    request = state.request
    program = await s.program(program_id=request.program_id)
    catalogue = program.topics if program is not None else None
    check_submission(
        request, state.status, command.answer, caller_id=command.caller_id, catalogue=catalogue
    )
    late = requests.is_late(due_at=request.due_at, submitted_at=uow.now)
    stored = StoredAnswer(request, command.answer, uow.now, late)
    await s.save_answer(stored=stored)
    await _add_to_reports(s, stored)
    await release_outcomes(s, uow, request.program_id)
    await uow.emit(submitted_event(request, late=late))
    await reassess_pair(s, uow, request.pair_id)
    return stored


async def _add_to_reports(s: FeedbackStore, stored: StoredAnswer) -> None:
    r = stored.request
    await s.add_contribution(
        program_id=r.program_id,
        atom=(r.side.value, r.kind.value),
        person_id=r.participant_id,
        totals=outcomes.RatingTotals.of(stored.answer),
    )
    for skill in stored.answer.skills:
        await s.add_skill(program_id=r.program_id, mentee_id=r.participant_id, skill=skill)


async def release_outcomes(s: FeedbackStore, uow: UnitOfWork, program_id: str) -> None:
    """Move pending answers into the admins' figures when k-anonymity allows it."""
    await s.lock_outcomes(program_id=program_id)
    program = await _program_or_defaults(s, program_id, uow)
    k = program.k_anonymity
    atoms = privacy.releasable_pending(
        outcomes.FEEDBACK_DIMENSIONS,
        released=await s.contribution_people(program_id=program_id, stage=RELEASED),
        pending=await s.contribution_people(program_id=program_id, stage=PENDING),
        k=k,
    )
    if atoms:
        await s.release_contributions(program_id=program_id, atoms=atoms, released_at=uow.now)
    topics = outcomes.topics_to_release(await s.pending_skill_mentees(program_id=program_id), k=k)
    if topics:
        await s.release_skills(program_id=program_id, topics=topics)


# queries (admins' outcomes)


@dataclass(frozen=True)
class OutcomeReport:
    """A program's outcomes as admins may see them (every figure k-checked)."""

    program_id: str
    k: int
    figures_as_of: datetime | None
    feedback: list[outcomes.FeedbackCell]
    skills: list[outcomes.SkillGrowth]
    retention: list[outcomes.RetentionCell]
    sessions: outcomes.SessionFigures


async def program_outcomes(
    s: FeedbackStore,
    program: ProgramSettings,
    *,
    side: PairSide | None = None,
    kind: FeedbackKind | None = None,
) -> OutcomeReport:
    """The released figures of a program, for one filter combination or all of them."""
    k, program_id = program.k_anonymity, program.program_id
    filtered = side is not None or kind is not None
    cell = (side.value if side else None, kind.value if kind else None) if filtered else None
    totals = await s.released_totals(program_id=program_id)
    taking_part = await s.participation(program_id=program_id)
    status = {key: outcomes.participation(reasons) for key, reasons in taking_part.items()}
    retention = outcomes.retention_table(status, k=k)
    people = frozenset(person for _, person in taking_part)
    skills = outcomes.skill_table(await s.released_skills(program_id=program_id), k=k)
    return OutcomeReport(
        program_id=program_id,
        k=k,
        figures_as_of=await s.last_release(program_id=program_id),
        feedback=outcomes.feedback_table(totals, k=k, cell=cell),
        skills=skills if side in (None, PairSide.MENTEE) else [],
        retention=[c for c in retention if side is None or c.side == side.value],
        sessions=outcomes.session_figures(
            await s.sessions_by_pair(program_id=program_id), people, k=k
        ),
    )


# timers


async def request_due_milestones(uow: UnitOfWork, *, store: StoreFactory) -> None:
    """Send the milestone surveys that fell due, to both people of each open pair."""
    s = store(uow.conn)
    requested = await s.requested_milestones()
    programs: dict[str, ProgramSettings | None] = {}
    for record in await s.open_pairs():
        program_id = record.members.program_id
        if program_id not in programs:
            programs[program_id] = await s.program(program_id=program_id)
        program = programs[program_id]
        if program is not None:
            await _request_milestones(
                s, uow, record, program, requested.get(record.pair_id, frozenset())
            )


async def _request_milestones(
    s: FeedbackStore,
    uow: UnitOfWork,
    record: PairRecord,
    program: ProgramSettings,
    requested: frozenset[int],
) -> None:
    schedule = milestones.milestone_schedule(formed_at=record.formed_at, calendar=program.calendar)
    for due in milestones.due_milestones(schedule, requested_weeks=requested, now=uow.now):
        wanted = requests.milestone_requests(
            record.members, week=due.week, now=uow.now, response_days=program.response_days
        )
        await _emit_requests(s, uow, wanted)


async def mark_overdue_requests(uow: UnitOfWork, *, store: StoreFactory) -> None:
    """Requests past due without an answer become missing (a late answer is still taken)."""
    s = store(uow.conn)
    for pair_id in await s.mark_missing(now=uow.now):
        await reassess_pair(s, uow, pair_id)


async def refresh_health_gauge(uow: UnitOfWork, *, store: StoreFactory) -> None:
    """Set ``upward_pair_health_pairs{band}`` from the store."""
    for band, count in (await store(uow.conn).health_bands()).items():
        PAIR_HEALTH_PAIRS.labels(band.value).set(count)


def handler_table(store: StoreFactory) -> HandlerTable:
    """The one table of event handlers, bound to a store (every one but SessionHeld's
    runs after the transaction's held sessions are written)."""
    return {
        ProgramCreated: after_held_sessions(partial(record_program, store=store)),
        ProgramUpdated: after_held_sessions(partial(record_program, store=store)),
        ProgramClosed: after_held_sessions(partial(record_program_closed, store=store)),
        PairFormed: after_held_sessions(partial(record_pair_formed, store=store)),
        PairEnded: after_held_sessions(partial(record_pair_ended, store=store)),
        SessionHeld: partial(record_session_held, store=store),
        SessionMissed: after_held_sessions(partial(record_session_missed, store=store)),
        PairStalled: after_held_sessions(partial(record_pair_stalled, store=store)),
        ParticipantForgotten: after_held_sessions(partial(forget_participant, store=store)),
    }


HANDLERS: HandlerTable = handler_table(PostgresFeedbackStore)
