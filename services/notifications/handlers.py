"""Event handlers of the notifications service, and its HANDLERS table.

Handlers never send anything. They keep the service's projections (contacts, programs,
sessions) and, in the event's transaction, write the deliveries the event causes: rows
with a natural key (source key, recipient, channel) inserted with ``ON CONFLICT``, so a
redelivered event, or another event with the same effect, plans nothing twice. The
delivery worker (sending.py) sends them when they are due.

A consumer batch is one transaction: the handlers hold their planning and writes in the
transaction's scope and do them together before it commits (``_HeldWrites``), a few
statements for the whole batch instead of several round trips per event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from schemas.base import EventData
from schemas.feedback import FeedbackRequested, FeedbackSubmitted, PairAtRisk
from schemas.pairs import PairEnded, PairFormed, PairProposed
from schemas.participants import (
    ErasureCompleted,
    ParticipantForgotten,
    ParticipantJoined,
    ParticipantUpdated,
)
from schemas.primitives import ServiceName
from schemas.programs import ProgramCreated, ProgramUpdated
from schemas.sessions import PairStalled, SessionCancelled, SessionRescheduled, SessionScheduled
from servicekit.db import Connection
from servicekit.unit_of_work import (
    Handler,
    HandlerTable,
    Rejected,
    UnitOfWork,
)
from services.notifications.adapters.repository import NotificationsRepository
from services.notifications.domain import notices
from services.notifications.domain.planning import (
    Links,
    Notice,
    PlannedDelivery,
    ProgramInfo,
    SessionInfo,
    feedback_cancel_key,
    plan_deliveries,
    reminder_notices,
    session_cancel_key,
)
from services.notifications.domain.preferences import Contact, Recipient

DEFAULT_REMINDER_OFFSETS = (1440, 60)


@dataclass(frozen=True)
class Dependencies:
    """What the handlers are built with (injected at bootstrap)."""

    repository: Callable[[Connection], NotificationsRepository]
    links: Links
    overdue_after: timedelta


PairNotices = Callable[[notices.PairAudience, dict[str, Recipient]], list[Notice]]
"""What a pair's event tells whom, once its program and people are known."""


@dataclass(frozen=True)
class _PairJob:
    """A pair's event waiting for the directory read of its transaction's batch."""

    program_id: str
    mentor_id: str
    mentee_id: str
    source_key: str
    now: datetime
    notices: PairNotices


@dataclass
class _HeldWrites:
    """What a transaction's handlers planned and saved, written together when the
    transaction is about to commit, or earlier: before a handler that reads or changes
    sessions, deliveries, contacts or programs otherwise (see ``_HOLDING``).

    Pair events are planned then, in order, with one read of every program and person
    they address; then the sessions and the deliveries are written, one statement each.
    Holding changes no outcome: what the planning reads cannot change before it runs, a
    natural key planned twice in the transaction keeps its first planning (as the second
    insert would have found it pending), and a session saved twice keeps its first
    identity with its last times (as the upsert would).
    """

    repo: NotificationsRepository
    sessions: dict[str, SessionInfo] = field(default_factory=dict)
    planned: list[_PairJob | tuple[list[PlannedDelivery], datetime]] = field(default_factory=list)

    def save_session(self, session: SessionInfo) -> None:
        held = self.sessions.get(session.session_id)
        self.sessions[session.session_id] = (
            session
            if held is None
            else replace(held, starts_at=session.starts_at, ends_at=session.ends_at)
        )

    def add_deliveries(self, planned: list[PlannedDelivery], now: datetime) -> None:
        self.planned.append((planned, now))

    def add_pair_job(self, job: _PairJob) -> None:
        self.planned.append(job)

    async def write(self) -> None:
        await self.repo.save_sessions(sessions=list(self.sessions.values()))
        deliveries: dict[str, tuple[PlannedDelivery, datetime]] = {}
        for planned, now in await self._resolved():
            for delivery in planned:
                deliveries.setdefault(delivery.delivery_id, (delivery, now))
        await self.repo.add_planned(planned=list(deliveries.values()))

    async def _resolved(self) -> list[tuple[list[PlannedDelivery], datetime]]:
        """The held deliveries, with the pair jobs planned (one read for all of them)."""
        jobs = [j for j in self.planned if isinstance(j, _PairJob)]
        if not jobs:
            return [p for p in self.planned if not isinstance(p, _PairJob)]
        programs = await self.repo.programs(program_ids=[j.program_id for j in jobs])
        directory = await self.repo.recipients(
            person_ids=[p for j in jobs for p in (j.mentor_id, j.mentee_id)]
        )
        resolved = []
        for item in self.planned:
            if not isinstance(item, _PairJob):
                resolved.append(item)
                continue
            people = {p: directory[p] for p in (item.mentor_id, item.mentee_id)}
            audience = notices.PairAudience(
                mentor_id=item.mentor_id,
                mentee_id=item.mentee_id,
                source_key=item.source_key,
                program=programs.get(item.program_id),
                names=_names(people),
                now=item.now,
            )
            planned = item.notices(audience, people)
            resolved.append((_deliveries(planned, people, item.now), item.now))
        return resolved


_HELD = "notifications.held_writes"


def _held(uow: UnitOfWork, repo: NotificationsRepository) -> _HeldWrites:
    """This transaction's held writes (written before it commits)."""
    return uow.scope.held(_HELD, lambda: _HeldWrites(repo))


def _source_key(uow: UnitOfWork) -> str:
    if uow.cause is None:
        raise Rejected("a notification needs the event that caused it")
    return uow.cause.id


async def _plan(
    uow: UnitOfWork,
    repo: NotificationsRepository,
    planned: Sequence[Notice],
    known: Mapping[str, Recipient] | None = None,
) -> None:
    """Write the deliveries of ``planned`` notices (each recipient's channels and timing).

    ``known`` recipients (already read by the handler) are not read again.
    """
    recipients = dict(known or {})
    missing = [n.recipient_id for n in planned if n.recipient_id not in recipients]
    if missing:
        recipients |= await repo.recipients(person_ids=missing)
    _held(uow, repo).add_deliveries(_deliveries(planned, recipients, uow.now), uow.now)


def _deliveries(
    planned: Sequence[Notice], recipients: Mapping[str, Recipient], now: datetime
) -> list[PlannedDelivery]:
    return [
        delivery
        for notice in planned
        for delivery in plan_deliveries(notice, recipients[notice.recipient_id], now=now)
    ]


def _plan_for_pair(
    uow: UnitOfWork,
    deps: Dependencies,
    pair: PairProposed | PairFormed | PairEnded | SessionInfo,
    what: PairNotices,
) -> None:
    """Hold a pair's event: planned with its batch's directory read, before the commit."""
    job = _PairJob(
        program_id=pair.program_id,
        mentor_id=pair.mentor_id,
        mentee_id=pair.mentee_id,
        source_key=_source_key(uow),
        now=uow.now,
        notices=what,
    )
    _held(uow, deps.repository(uow.conn)).add_pair_job(job)


def _names(recipients: dict[str, Recipient]) -> dict[str, str]:
    return {p: r.contact.display_name for p, r in recipients.items() if r.contact}


def _emails(recipients: dict[str, Recipient]) -> dict[str, str]:
    return {p: r.contact.email for p, r in recipients.items() if r.contact}


async def record_program(
    data: ProgramCreated | ProgramUpdated, uow: UnitOfWork, deps: Dependencies
) -> None:
    """Keep the program's name, admins, reminder offsets and topic titles."""
    repo = deps.repository(uow.conn)
    program = ProgramInfo(
        program_id=data.program_id,
        name=data.name,
        admin_ids=list(data.admin_ids),
        reminder_offsets_minutes=list(data.reminder_offsets_minutes),
        topic_titles={t.key: t.title for t in data.topics},
    )
    await repo.save_program(program=program)
    if isinstance(data, ProgramUpdated) and "reminder_offsets_minutes" in data.changed_fields:
        for session in await repo.future_sessions(program_id=data.program_id, after=uow.now):
            await _replan_reminders(uow, repo, session)


async def record_participant(
    data: ParticipantJoined | ParticipantUpdated, uow: UnitOfWork, deps: Dependencies
) -> None:
    """Keep the participant's contact details."""
    contact = Contact(
        person_id=data.participant_id,
        display_name=data.display_name,
        email=data.email,
        timezone=data.timezone,
        languages=list(data.languages),
    )
    await deps.repository(uow.conn).upsert_contact(
        contact=contact, source="participant", now=uow.now
    )


async def forget_participant(
    data: ParticipantForgotten, uow: UnitOfWork, deps: Dependencies
) -> None:
    """Erase the person's contact, preferences and messages; confirm with ErasureCompleted."""
    erased = await deps.repository(uow.conn).erase_person(
        person_id=data.participant_id, now=uow.now
    )
    await uow.emit(
        ErasureCompleted(
            participant_id=data.participant_id,
            service=ServiceName.NOTIFICATIONS,
            completed_at=uow.now,
            records_erased=erased,
        )
    )


async def _audience(
    uow: UnitOfWork,
    repo: NotificationsRepository,
    *,
    program_id: str,
    mentor_id: str,
    mentee_id: str,
) -> tuple[notices.PairAudience, dict[str, Recipient]]:
    """The pair's two people as this event addresses them, and their directory entries."""
    program, people = await repo.directory(program_id=program_id, person_ids=[mentor_id, mentee_id])
    audience = notices.PairAudience(
        mentor_id=mentor_id,
        mentee_id=mentee_id,
        source_key=_source_key(uow),
        program=program,
        names=_names(people),
        now=uow.now,
    )
    return audience, people


async def notify_pair_proposed(data: PairProposed, uow: UnitOfWork, deps: Dependencies) -> None:
    """Ask both people to accept the proposal."""

    def what(audience: notices.PairAudience, _: dict[str, Recipient]) -> list[Notice]:
        return notices.pair_proposed(data, audience, links=deps.links)

    _plan_for_pair(uow, deps, data, what)


async def notify_pair_formed(data: PairFormed, uow: UnitOfWork, deps: Dependencies) -> None:
    """Introduce the two people to each other."""

    def what(audience: notices.PairAudience, people: dict[str, Recipient]) -> list[Notice]:
        return notices.pair_formed(data, audience, emails=_emails(people), links=deps.links)

    _plan_for_pair(uow, deps, data, what)


async def notify_pair_ended(data: PairEnded, uow: UnitOfWork, deps: Dependencies) -> None:
    """Tell both people the pair ended (no blame)."""

    def what(audience: notices.PairAudience, _: dict[str, Recipient]) -> list[Notice]:
        return notices.pair_ended(data, audience)

    _plan_for_pair(uow, deps, data, what)


def _pair_of(data: PairProposed | PairFormed | PairEnded | SessionInfo) -> dict[str, str]:
    return {
        "program_id": data.program_id,
        "mentor_id": data.mentor_id,
        "mentee_id": data.mentee_id,
    }


def _reminders(session: SessionInfo, audience: notices.PairAudience) -> list[Notice]:
    program = audience.program
    offsets = program.reminder_offsets_minutes if program else DEFAULT_REMINDER_OFFSETS
    return reminder_notices(
        session, program=program, names=audience.names, offsets_minutes=offsets, now=audience.now
    )


async def _replan_reminders(
    uow: UnitOfWork, repo: NotificationsRepository, session: SessionInfo
) -> None:
    await repo.cancel_pending(cancel_key=session_cancel_key(session.session_id))
    audience, people = await _audience(uow, repo, **_pair_of(session))
    await _plan(uow, repo, _reminders(session, audience), people)


async def notify_session_scheduled(
    data: SessionScheduled, uow: UnitOfWork, deps: Dependencies
) -> None:
    """Send the invite to both people and schedule the session's reminders."""
    repo = deps.repository(uow.conn)
    session = SessionInfo(
        session_id=data.session_id,
        pair_id=data.pair_id,
        program_id=data.program_id,
        mentor_id=data.mentor_id,
        mentee_id=data.mentee_id,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
    )
    _held(uow, repo).save_session(session)

    def what(audience: notices.PairAudience, _: dict[str, Recipient]) -> list[Notice]:
        return notices.session_scheduled(data, audience) + _reminders(session, audience)

    _plan_for_pair(uow, deps, session, what)


async def _known_session(repo: NotificationsRepository, session_id: str) -> SessionInfo:
    session = await repo.session(session_id=session_id)
    if session is None:
        raise Rejected(f"unknown session {session_id}: SessionScheduled was never received")
    return session


async def notify_session_rescheduled(
    data: SessionRescheduled, uow: UnitOfWork, deps: Dependencies
) -> None:
    """Send the updated invite and move the reminders to the new time."""
    repo = deps.repository(uow.conn)
    session = replace(
        await _known_session(repo, data.session_id), starts_at=data.starts_at, ends_at=data.ends_at
    )
    await repo.save_session(session=session)
    await repo.cancel_pending(cancel_key=session_cancel_key(session.session_id))
    audience, people = await _audience(uow, repo, **_pair_of(session))
    planned = notices.session_rescheduled(data, audience) + _reminders(session, audience)
    await _plan(uow, repo, planned, people)


async def notify_session_cancelled(
    data: SessionCancelled, uow: UnitOfWork, deps: Dependencies
) -> None:
    """Send the cancellation to both people and drop the session's pending reminders."""
    repo = deps.repository(uow.conn)
    session = await _known_session(repo, data.session_id)
    await repo.cancel_pending(cancel_key=session_cancel_key(session.session_id))
    await repo.delete_session(session_id=session.session_id)
    audience, people = await _audience(uow, repo, **_pair_of(session))
    await _plan(uow, repo, notices.session_cancelled(data, audience, session=session), people)


async def notify_feedback_requested(
    data: FeedbackRequested, uow: UnitOfWork, deps: Dependencies
) -> None:
    """Ask for feedback, and plan a reminder for when it becomes overdue."""
    repo = deps.repository(uow.conn)
    planned = notices.feedback_requested(
        data,
        source_key=_source_key(uow),
        program=await repo.program(program_id=data.program_id),
        links=deps.links,
        overdue_after=deps.overdue_after,
        now=uow.now,
    )
    if await repo.is_answered(request_id=data.request_id):
        planned = [n for n in planned if n.cancel_key is None]
    await _plan(uow, repo, planned)


async def record_feedback_submitted(
    data: FeedbackSubmitted, uow: UnitOfWork, deps: Dependencies
) -> None:
    """An answered request needs no overdue reminder."""
    repo = deps.repository(uow.conn)
    await repo.mark_answered(request_id=data.request_id)
    await repo.cancel_pending(cancel_key=feedback_cancel_key(data.request_id))


async def notify_admins(
    data: PairAtRisk | PairStalled, uow: UnitOfWork, deps: Dependencies
) -> None:
    """Tell the program's admins a pair needs attention (nothing confidential)."""
    repo = deps.repository(uow.conn)
    program = await repo.program(program_id=data.program_id)
    if program is None:
        raise Rejected(f"unknown program {data.program_id}: its admins are not known yet")
    planned = notices.pair_needs_attention(
        data, source_key=_source_key(uow), program=program, links=deps.links, now=uow.now
    )
    await _plan(uow, repo, planned)


UnboundHandler = Callable[[Any, UnitOfWork, Dependencies], Awaitable[None]]

_TABLE: dict[type[EventData], UnboundHandler] = {
    ProgramCreated: record_program,
    ProgramUpdated: record_program,
    ParticipantJoined: record_participant,
    ParticipantUpdated: record_participant,
    ParticipantForgotten: forget_participant,
    PairProposed: notify_pair_proposed,
    PairFormed: notify_pair_formed,
    PairEnded: notify_pair_ended,
    SessionScheduled: notify_session_scheduled,
    SessionRescheduled: notify_session_rescheduled,
    SessionCancelled: notify_session_cancelled,
    FeedbackRequested: notify_feedback_requested,
    FeedbackSubmitted: record_feedback_submitted,
    PairAtRisk: notify_admins,
    PairStalled: notify_admins,
}
"""The one explicit table: event class -> handler (before its dependencies are bound)."""

_HOLDING: frozenset[UnboundHandler] = frozenset(
    {
        notify_pair_proposed,
        notify_pair_formed,
        notify_pair_ended,
        notify_session_scheduled,
        notify_feedback_requested,
        notify_admins,
    }
)
"""Handlers that change no session, delivery, contact or program except through the held
writes, and read no session or delivery: what earlier handlers of the transaction held
can wait past them. Any other handler has it planned and written first."""


def build_handlers(deps: Dependencies) -> HandlerTable:
    """The HANDLERS table with ``deps`` bound to every handler."""
    return {event: _bind(handler, deps) for event, handler in _TABLE.items()}


def _bind(handler: UnboundHandler, deps: Dependencies) -> Handler:
    holding = handler in _HOLDING

    async def bound(data: Any, uow: UnitOfWork) -> None:
        if not holding:
            await uow.scope.write_held(_HELD)
        await handler(data, uow, deps)

    bound.__name__ = handler.__name__
    return bound
