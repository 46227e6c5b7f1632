"""Steps the handlers share: start a pair's calendar, keep it filled, end it.

Every step runs inside the caller's unit of work (one transaction) through a
:class:`Scope`: the repository on the transaction's connection, the unit of work (for
``now`` and ``emit``) and the service's :class:`Policy`. Steps that change a pair or
its sessions expect the pair's row to be locked (:func:`lock_pair`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import takewhile
from typing import Protocol

from schemas.pairs import PairEndReason
from schemas.sessions import CancelReason
from servicekit.db import Connection
from servicekit.unit_of_work import UnitOfWork
from services.sessions import publishing
from services.sessions.adapters import metrics
from services.sessions.adapters.calendar import InviteContext, Organizer, invite
from services.sessions.adapters.repository import PostgresSessionsRepository, SessionsRepository
from services.sessions.domain.agenda import AgendaRequest, plan_agenda, wanted_topics
from services.sessions.domain.cadence import next_due, search_window, session_id_for
from services.sessions.domain.errors import Conflict
from services.sessions.domain.model import (
    Pair,
    PairStatus,
    Participant,
    Program,
    Session,
    SessionStatus,
)
from services.sessions.domain.slots import (
    Availability,
    Interval,
    Slot,
    SlotRequest,
    WorkingHours,
    find_slot,
    parse_weekdays,
)
from services.sessions.settings import SessionsSettings


@dataclass(frozen=True)
class Policy:
    """The service-wide scheduling choices (from :class:`SessionsSettings`)."""

    default_hours: WorkingHours
    first_session_lead: timedelta
    min_notice: timedelta
    sessions_ahead: int
    agenda_size: int
    missed_grace: timedelta
    organizer: Organizer
    batch_max: int

    @classmethod
    def from_settings(cls, settings: SessionsSettings) -> Policy:
        """The policy the settings describe."""
        hours = WorkingHours(
            settings.working_hours_start,
            settings.working_hours_end,
            parse_weekdays(settings.working_days),
        )
        return cls(
            default_hours=hours,
            first_session_lead=timedelta(hours=settings.first_session_lead_hours),
            min_notice=timedelta(hours=settings.min_notice_hours),
            sessions_ahead=settings.sessions_ahead,
            agenda_size=settings.agenda_size,
            missed_grace=timedelta(minutes=settings.missed_grace_minutes),
            organizer=Organizer(settings.organizer_email, settings.organizer_name),
            batch_max=settings.timer_batch_max,
        )


RepositoryFactory = Callable[[Connection], SessionsRepository]


@dataclass(frozen=True)
class Dependencies:
    """What bootstrap injects into the handlers."""

    policy: Policy
    repository: RepositoryFactory = PostgresSessionsRepository


@dataclass(frozen=True)
class Scope:
    """One transaction's repository, unit of work and policy."""

    repo: SessionsRepository
    uow: UnitOfWork
    policy: Policy

    @property
    def now(self) -> datetime:
        """The clock's time when the transaction began."""
        return self.uow.now


def open_scope(uow: UnitOfWork, deps: Dependencies) -> Scope:
    """The scope of ``uow``."""
    return Scope(deps.repository(uow.conn), uow, deps.policy)


@dataclass(frozen=True)
class PairFacts:
    """A pair with its program and people (each None while not known yet)."""

    pair: Pair
    program: Program | None
    mentor: Participant | None
    mentee: Participant | None

    @property
    def ready(self) -> bool:
        """True when sessions can be planned: program open, both people known."""
        open_program = self.program is not None and not self.program.closed
        return open_program and self.mentor is not None and self.mentee is not None

    def with_pair(self, pair: Pair) -> PairFacts:
        """The same facts about the pair's new state."""
        return replace(self, pair=pair)

    def require_program(self) -> Program:
        """The program; Conflict when it is not known (no session can exist then)."""
        if self.program is None:
            raise Conflict("the pair's program is not known yet")
        return self.program


async def load_facts(repo: SessionsRepository, pair: Pair) -> PairFacts:
    """The pair's program and people as known now (one read)."""
    program, people = await repo.program_and_people(
        program_id=pair.program_id, participant_ids=pair.members
    )
    return PairFacts(
        pair=pair,
        program=program,
        mentor=people.get(pair.mentor_id),
        mentee=people.get(pair.mentee_id),
    )


async def lock_pair(scope: Scope, pair_id: str) -> PairFacts | None:
    """Lock the pair's row and load its facts; None for an unknown pair."""
    pair = await scope.repo.get_pair(pair_id=pair_id, lock=True)
    return None if pair is None else await load_facts(scope.repo, pair)


async def activate(scope: Scope, facts: PairFacts) -> None:
    """Start a waiting pair's calendar once its program and both people are known."""
    if facts.pair.status is not PairStatus.PENDING or not facts.ready:
        return
    pair = activated(scope.policy, facts)
    await scope.repo.save_pair(pair=pair)
    await top_up(scope, facts.with_pair(pair))


def activated(policy: Policy, facts: PairFacts) -> Pair:
    """The pair with its calendar started, when it is pending and ready; else as it is."""
    if facts.pair.status is not PairStatus.PENDING or not facts.ready:
        return facts.pair
    return facts.pair.activate(program=facts.require_program(), lead=policy.first_session_lead)


@dataclass
class HeldStarts:
    """The new pairs (PairFormed) of one consumer transaction, started together before
    it commits (:func:`start_new`): a few reads and one statement for the batch instead
    of four round trips per pair. Handlers of the other events write them first
    (``write_held``), so they see the pairs as if each had been started at once.
    """

    starts: list[tuple[Scope, Pair]] = field(default_factory=list)

    async def write(self) -> None:
        """Start the held pairs, in order."""
        await start_new(self.starts)


async def start_new(starts: Sequence[tuple[Scope, Pair]]) -> None:
    """Record new pairs, each started already when it is ready (nothing for a known id).

    A pair is inserted in the state :func:`activate` would give it; a new pair has no
    sessions yet, so its first ones are planned without reading any back, against one
    calendar of the batch's people (:class:`BatchCalendar`: a pair planned earlier in
    the batch keeps its people busy for the next ones), and stored in the same statement
    as the pairs. Each pair's SessionScheduled goes out through its own unit of work.
    """
    if not starts:
        return
    repo = starts[0][0].repo
    firsts: dict[str, tuple[Scope, Pair]] = {}
    for scope, pair in starts:
        firsts.setdefault(pair.pair_id, (scope, pair))
    known = await repo.known_pair_ids(pair_ids=list(firsts))
    fresh = [start for pair_id, start in firsts.items() if pair_id not in known]
    if not fresh:
        return
    started = [
        (scope, facts.with_pair(activated(scope.policy, facts)))
        for scope, facts in zip(
            (scope for scope, _ in fresh),
            await load_batch_facts(repo, [pair for _, pair in fresh]),
            strict=True,
        )
    ]
    ready = [(s, f) for s, f in started if f.pair.status is PairStatus.ACTIVE and f.ready]
    plans = await _plan_batch(repo, ready)
    sessions = [session for planned in plans.values() for session in planned]
    added = await repo.add_pairs(pairs=[f.pair for _, f in started], sessions=sessions)
    for scope, facts in ready:
        if facts.pair.pair_id in added:
            await _announce(scope, facts, plans[facts.pair.pair_id])


async def load_batch_facts(repo: SessionsRepository, pairs: Sequence[Pair]) -> list[PairFacts]:
    """Each pair's program and people as known now (one read for all of them)."""
    keys = [(p.program_id, person) for p in pairs for person in p.members]
    programs, people = await repo.planning_facts(keys=keys)
    return [
        PairFacts(
            pair=p,
            program=programs.get(p.program_id),
            mentor=people.get((p.program_id, p.mentor_id)),
            mentee=people.get((p.program_id, p.mentee_id)),
        )
        for p in pairs
    ]


async def _plan_batch(
    repo: SessionsRepository, ready: Sequence[tuple[Scope, PairFacts]]
) -> dict[str, list[Session]]:
    """The first sessions of new, ready pairs, planned in order against their people's
    calendars (locked first, read once for the whole batch)."""
    if not ready or ready[0][0].policy.sessions_ahead < 1:
        return {}
    members = sorted({person for _, facts in ready for person in facts.pair.members})
    await repo.lock_calendars(participant_ids=members)
    span = Interval(
        min(s.now + s.policy.min_notice - _length(f.require_program()) for s, f in ready),
        max(_horizon(s, f) for s, f in ready),
    )
    calendar = BatchCalendar(
        repo, await repo.calendars(participant_ids=members, window=span), span=span
    )
    return {
        facts.pair.pair_id: await _plan_with(scope, facts, [], calendar.of(facts.pair.members))
        for scope, facts in ready
    }


async def activate_waiting(
    scope: Scope, *, program_id: str | None = None, participant_id: str | None = None
) -> None:
    """Activate the pending pairs that the new program or participant may complete."""
    waiting = await scope.repo.pair_ids(
        statuses=[PairStatus.PENDING], program_id=program_id, participant_id=participant_id
    )
    for pair_id in waiting:
        facts = await lock_pair(scope, pair_id)
        if facts is not None:
            await activate(scope, facts)


async def top_up(scope: Scope, facts: PairFacts) -> None:
    """Schedule sessions until the pair has ``sessions_ahead`` of them scheduled."""
    if facts.pair.status is not PairStatus.ACTIVE or not facts.ready:
        return
    sessions = await scope.repo.sessions_of_pair(pair_id=facts.pair.pair_id)
    planned = await _plan(scope, facts, sessions)
    added = await scope.repo.add_sessions(sessions=planned)
    await _announce(scope, facts, list(takewhile(lambda s: s.session_id in added, planned)))


async def _plan(scope: Scope, facts: PairFacts, sessions: list[Session]) -> list[Session]:
    """The sessions to add until ``sessions_ahead`` are scheduled (appended to ``sessions``).

    They are planned one after the other against the two people's calendars, locked
    first, read once (:class:`Calendar`), each new session busy for the next.
    """
    if _upcoming(sessions) >= scope.policy.sessions_ahead:
        return []
    await scope.repo.lock_calendars(participant_ids=facts.pair.members)
    calendar = Calendar(scope.repo, facts.pair.members, until=_horizon(scope, facts))
    return await _plan_with(scope, facts, sessions, calendar)


def _horizon(scope: Scope, facts: PairFacts) -> datetime:
    """The end of the pair's planning: no session of the pair ends after it."""
    return (facts.pair.ends_at or scope.now) + _length(facts.require_program())


async def _plan_with(
    scope: Scope, facts: PairFacts, sessions: list[Session], calendar: PairCalendar
) -> list[Session]:
    """:func:`_plan` with the people's calendars locked, asked through ``calendar``."""
    planned: list[Session] = []
    while _upcoming(sessions) < scope.policy.sessions_ahead:
        session = await plan_next(scope, facts, sessions, calendar=calendar)
        if session is None:
            break
        sessions.append(session)
        planned.append(session)
        calendar.add(session.interval)
    return planned


async def _announce(scope: Scope, facts: PairFacts, added: Sequence[Session]) -> None:
    """SessionScheduled, with its invite, for each session just stored."""
    context = invite_context(scope.policy, facts)
    for session in added:
        ics = invite(session, context, now=scope.now)
        await scope.uow.emit(publishing.scheduled(session, facts.pair, ics=ics))
        scope.uow.after_commit(metrics.SESSIONS.labels("scheduled").inc)


class PairCalendar(Protocol):
    """The two people's scheduled sessions, as the planner of their pair asks them."""

    async def busy(self, around: Interval) -> list[Interval]:
        """Their scheduled sessions overlapping ``around``, planned ones included."""

    def add(self, interval: Interval) -> None:
        """A session just planned for the pair: busy from now on."""


class Calendar:
    """The scheduled sessions of a pair's two people while new ones are planned.

    The first question reads every scheduled session of theirs from the start of the
    span asked about until ``until`` (the end of the pair's planning horizon); later
    questions inside that span are answered from memory, with the sessions planned
    since (:meth:`add`, not stored yet).
    """

    def __init__(
        self, repo: SessionsRepository, members: Sequence[str], *, until: datetime
    ) -> None:
        """Nothing is read yet."""
        self._repo = repo
        self._members = members
        self._until = until
        self._span: Interval | None = None
        self._stored: list[Interval] = []
        self._planned: list[Interval] = []

    async def busy(self, around: Interval) -> list[Interval]:
        """The people's scheduled sessions overlapping ``around``, planned ones included."""
        span = self._span
        if span is None or around.start < span.start or around.end > span.end:
            span = Interval(around.start, max(self._until, around.end))
            self._stored = await self._repo.busy(participant_ids=self._members, window=span)
            self._span = span
        return [
            b
            for b in (*self._stored, *self._planned)
            if b.start < around.end and b.end > around.start
        ]

    def add(self, interval: Interval) -> None:
        """A session just planned for the pair: busy from now on."""
        self._planned.append(interval)


class BatchCalendar:
    """The scheduled sessions of the people of a batch of new pairs while their first
    sessions are planned: read once over ``span`` (:meth:`SessionsRepository.calendars`),
    then kept per person with the sessions planned since, which are not stored yet."""

    def __init__(
        self, repo: SessionsRepository, stored: dict[str, list[Interval]], *, span: Interval
    ) -> None:
        """What was read over ``span``."""
        self._repo = repo
        self._stored = stored
        self._span = span
        self._planned: dict[str, list[Interval]] = {}

    def of(self, members: Sequence[str]) -> PairCalendar:
        """The calendar of one pair's two people."""
        return _PeopleCalendar(self, members)

    async def busy(self, members: Sequence[str], around: Interval) -> list[Interval]:
        """The people's scheduled sessions overlapping ``around``, planned ones included
        (read again from the store only for a question outside the span read)."""
        if self._span.start <= around.start and around.end <= self._span.end:
            stored = [b for person in members for b in self._stored.get(person, ())]
        else:
            stored = await self._repo.busy(participant_ids=members, window=around)
        planned = [b for person in members for b in self._planned.get(person, ())]
        return [b for b in (*stored, *planned) if b.start < around.end and b.end > around.start]

    def add(self, members: Sequence[str], interval: Interval) -> None:
        """A session just planned for these people: busy for every later question."""
        for person in members:
            self._planned.setdefault(person, []).append(interval)


@dataclass(frozen=True)
class _PeopleCalendar:
    batch: BatchCalendar
    members: Sequence[str]

    async def busy(self, around: Interval) -> list[Interval]:
        return await self.batch.busy(self.members, around)

    def add(self, interval: Interval) -> None:
        self.batch.add(self.members, interval)


def _upcoming(sessions: Sequence[Session]) -> int:
    return sum(s.status is SessionStatus.SCHEDULED for s in sessions)


async def plan_next(
    scope: Scope, facts: PairFacts, sessions: Sequence[Session], *, calendar: PairCalendar
) -> Session | None:
    """The pair's next session on the cadence, or None when the program is over for it."""
    pair, program = facts.pair, facts.require_program()
    cadence = timedelta(days=program.cadence_days)
    earliest = scope.now + scope.policy.min_notice
    due = next_due(pair, sessions, cadence=cadence, earliest=earliest)
    if due is None or pair.ends_at is None:
        return None
    slot = await _first_free_slot(
        scope, facts, due, cadence=cadence, ends_at=pair.ends_at, calendar=calendar
    )
    if slot is None:
        return None
    number = len(sessions) + 1
    return Session(
        session_id=session_id_for(pair.pair_id, number),
        pair_id=pair.pair_id,
        program_id=pair.program_id,
        number=number,
        due_at=due,
        starts_at=slot.start,
        ends_at=slot.end,
        agenda=tuple(plan_agenda(_agenda_request(scope, facts, sessions, slot.start))),
        warnings=slot.warnings,
        updated_at=scope.now,
    )


def _length(program: Program) -> timedelta:
    return timedelta(minutes=program.session_minutes)


async def _first_free_slot(
    scope: Scope,
    facts: PairFacts,
    due: datetime,
    *,
    cadence: timedelta,
    ends_at: datetime,
    calendar: PairCalendar,
) -> Slot | None:
    """The least-bad free slot of the session's window, or of the next window, and so on.

    Only when every candidate of a window clashes does the search move on; None when
    nothing is free before the pair's end.
    """
    length = _length(facts.require_program())
    window = search_window(due, cadence=cadence, ends_at=ends_at)
    while window.start < window.end:
        around = Interval(window.start - length, window.end + length)
        busy = await calendar.busy(around)
        slot = find_slot(SlotRequest(window, length, availability(scope.policy, facts), busy))
        if slot is not None:
            return slot
        window = search_window(window.end, cadence=cadence, ends_at=ends_at)
    return None


async def free_slot(
    scope: Scope,
    facts: PairFacts,
    *,
    window: Interval,
    length: timedelta,
    exclude: str | None = None,
) -> Slot | None:
    """The least-bad time in ``window`` that clashes with none of the two people's sessions."""
    around = Interval(window.start - length, window.end + length)
    busy = await scope.repo.busy(participant_ids=facts.pair.members, window=around, exclude=exclude)
    return find_slot(SlotRequest(window, length, availability(scope.policy, facts), busy))


def availability(policy: Policy, facts: PairFacts) -> list[Availability]:
    """The two people as the slot finder sees them (the default hours when they gave none)."""
    people = (("mentor", facts.mentor), ("mentee", facts.mentee))
    return [
        Availability(role, person.timezone, person.working_hours or policy.default_hours)
        for role, person in people
        if person is not None
    ]


def _agenda_request(
    scope: Scope, facts: PairFacts, sessions: Sequence[Session], start: datetime
) -> AgendaRequest:
    covered = {t for s in sessions if s.status is SessionStatus.HELD for t in s.topics_covered}
    planned = {t for s in sessions if s.status is SessionStatus.SCHEDULED for t in s.agenda}
    wants = (facts.mentee.wants if facts.mentee else None) or {}
    return AgendaRequest(
        catalogue=facts.require_program().catalogue,
        wanted=wanted_topics(facts.pair.topics, wants),
        done=covered | planned,
        progress=facts.pair.progress(start),
        size=scope.policy.agenda_size,
    )


def invite_context(policy: Policy, facts: PairFacts) -> InviteContext:
    """What the pair's invites show besides the session itself."""
    program = facts.program
    return InviteContext(
        program_name=program.name if program else facts.pair.program_id,
        topic_titles={t.key: t.title for t in program.catalogue} if program else {},
        mentor=facts.mentor,
        mentee=facts.mentee,
        organizer=policy.organizer,
    )


async def cancel_one(
    scope: Scope,
    facts: PairFacts,
    session: Session,
    *,
    reason: CancelReason,
    cancelled_by: str | None,
) -> Session:
    """Cancel one session and issue its METHOD:CANCEL invite."""
    cancelled = session.cancel(reason=str(reason), now=scope.now)
    await scope.repo.save_session(session=cancelled)
    ics = invite(cancelled, invite_context(scope.policy, facts), now=scope.now)
    await scope.uow.emit(
        publishing.cancelled(cancelled, reason=reason, ics=ics, cancelled_by=cancelled_by)
    )
    scope.uow.after_commit(metrics.SESSIONS.labels("cancelled").inc)
    return cancelled


async def cancel_future(
    scope: Scope, facts: PairFacts, *, reason: CancelReason, cancelled_by: str | None
) -> None:
    """Cancel every session of the pair that has not started yet."""
    for session in await scope.repo.sessions_of_pair(pair_id=facts.pair.pair_id):
        if session.status is SessionStatus.SCHEDULED and session.starts_at > scope.now:
            await cancel_one(scope, facts, session, reason=reason, cancelled_by=cancelled_by)


async def end_pair(
    scope: Scope,
    facts: PairFacts,
    *,
    reason: PairEndReason,
    cancel_reason: CancelReason,
    ended_by: str | None,
) -> PairFacts:
    """End the pair here: no more scheduling, future sessions cancelled."""
    ended = facts.with_pair(facts.pair.end(str(reason)))
    await scope.repo.save_pair(pair=ended.pair)
    await cancel_future(scope, ended, reason=cancel_reason, cancelled_by=ended_by)
    return ended


async def complete(scope: Scope, facts: PairFacts) -> None:
    """The program's duration is over for the pair: end it and publish PairEnded."""
    ended = await end_pair(
        scope,
        facts,
        reason=PairEndReason.COMPLETED,
        cancel_reason=CancelReason.PAIR_ENDED,
        ended_by=None,
    )
    await scope.uow.emit(publishing.completed(ended.pair))


async def record_missed(
    scope: Scope, facts: PairFacts, session: Session, *, absent: Sequence[str]
) -> Session:
    """Mark the session missed, count it, check the stall rules, schedule the next one."""
    missed = session.miss(absent=absent, now=scope.now)
    await scope.repo.save_session(session=missed)
    pair = facts.pair.after_missed()
    await scope.repo.save_pair(pair=pair)
    await scope.uow.emit(publishing.missed(missed, pair))
    scope.uow.after_commit(metrics.SESSIONS.labels("missed").inc)
    facts = await flag_if_stalled(scope, facts.with_pair(pair))
    await top_up(scope, facts)
    return missed


async def flag_if_stalled(scope: Scope, facts: PairFacts) -> PairFacts:
    """Publish PairStalled when the pair just broke one of its program's stall rules."""
    if facts.program is None:
        return facts
    reason = facts.pair.stall_reason(program=facts.program, now=scope.now)
    if reason is None:
        return facts
    pair = replace(facts.pair, stalled=True)
    await scope.repo.save_pair(pair=pair)
    await scope.uow.emit(publishing.stalled(pair, reason=reason, now=scope.now))
    scope.uow.after_commit(metrics.PAIRS_STALLED.inc)
    return facts.with_pair(pair)


_CANCEL_REASONS = {
    PairEndReason.PROGRAM_CLOSED: CancelReason.PROGRAM_CLOSED,
    PairEndReason.PARTICIPANT_FORGOTTEN: CancelReason.PARTICIPANT_FORGOTTEN,
}


def cancel_reason_for(reason: PairEndReason) -> CancelReason:
    """Why a pair's sessions are cancelled when it ends for ``reason``."""
    return _CANCEL_REASONS.get(reason, CancelReason.PAIR_ENDED)
