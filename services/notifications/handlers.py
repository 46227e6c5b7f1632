"""Event handlers of the notifications service, and its HANDLERS table.

Handlers never send anything. They keep the service's projections (contacts, programs,
sessions) and, in the event's transaction, write the deliveries the event causes: rows
with a natural key (source key, recipient, channel) inserted with ``ON CONFLICT``, so a
redelivered event, or another event with the same effect, plans nothing twice. The
delivery worker (sending.py) sends them when they are due.
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
    TransactionScope,
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


@dataclass
class _HeldWrites:
    """The sessions and deliveries a transaction's handlers saved, written together (one
    statement each) when the transaction is about to commit, or earlier: before a handler
    that reads or changes sessions or deliveries otherwise (see ``_HOLDING``).

    Holding changes no outcome: a natural key planned twice in the transaction keeps its
    first planning (as the second insert would have found it pending), and a session saved
    twice keeps its first identity with its last times (as the upsert would).
    """

    repo: NotificationsRepository
    sessions: dict[str, SessionInfo] = field(default_factory=dict)
    deliveries: dict[str, tuple[PlannedDelivery, datetime]] = field(default_factory=dict)

    def save_session(self, session: SessionInfo) -> None:
        held = self.sessions.get(session.session_id)
        self.sessions[session.session_id] = (
            session
            if held is None
            else replace(held, starts_at=session.starts_at, ends_at=session.ends_at)
        )

    def add_deliveries(self, planned: Sequence[PlannedDelivery], now: datetime) -> None:
        for delivery in planned:
            self.deliveries.setdefault(delivery.delivery_id, (delivery, now))

    async def write(self) -> None:
        await self.repo.save_sessions(sessions=list(self.sessions.values()))
        await self.repo.add_planned(planned=list(self.deliveries.values()))


_HELD = "notifications.held_writes"


def _held(uow: UnitOfWork, repo: NotificationsRepository) -> _HeldWrites:
    """This transaction's held writes (written before it commits)."""
    held = uow.scope.cache.get(_HELD)
    if held is None:
        held = uow.scope.cache[_HELD] = _HeldWrites(repo)
        scope = uow.scope
        uow.scope.before_commit(lambda: _write_held(scope))
    assert isinstance(held, _HeldWrites)
    return held


async def _write_held(scope: TransactionScope) -> None:
    """Write what the transaction's handlers held so far (nothing if nothing is held)."""
    held = scope.cache.pop(_HELD, None)
    if held is not None:
        await held.write()


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
    deliveries = [
        delivery
        for notice in planned
        for delivery in plan_deliveries(notice, recipients[notice.recipient_id], now=uow.now)
    ]
    _held(uow, repo).add_deliveries(deliveries, uow.now)


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
    repo = deps.repository(uow.conn)
    audience, people = await _audience(uow, repo, **_pair_of(data))
    await _plan(uow, repo, notices.pair_proposed(data, audience, links=deps.links), people)


async def notify_pair_formed(data: PairFormed, uow: UnitOfWork, deps: Dependencies) -> None:
    """Introduce the two people to each other."""
    repo = deps.repository(uow.conn)
    audience, people = await _audience(uow, repo, **_pair_of(data))
    planned = notices.pair_formed(data, audience, emails=_emails(people), links=deps.links)
    await _plan(uow, repo, planned, people)


async def notify_pair_ended(data: PairEnded, uow: UnitOfWork, deps: Dependencies) -> None:
    """Tell both people the pair ended (no blame)."""
    repo = deps.repository(uow.conn)
    audience, people = await _audience(uow, repo, **_pair_of(data))
    await _plan(uow, repo, notices.pair_ended(data, audience), people)


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
    audience, people = await _audience(uow, repo, **_pair_of(session))
    planned = notices.session_scheduled(data, audience) + _reminders(session, audience)
    await _plan(uow, repo, planned, people)


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
        record_participant,
        notify_pair_proposed,
        notify_pair_formed,
        notify_pair_ended,
        notify_session_scheduled,
        notify_feedback_requested,
        notify_admins,
    }
)
"""Handlers that neither read nor change sessions or deliveries except through the held
writes: the writes held by earlier handlers of the transaction can wait past them. Any
other handler has them written first."""


def build_handlers(deps: Dependencies) -> HandlerTable:
    """The HANDLERS table with ``deps`` bound to every handler."""
    return {event: _bind(handler, deps) for event, handler in _TABLE.items()}


def _bind(handler: UnboundHandler, deps: Dependencies) -> Handler:
    holding = handler in _HOLDING

    async def bound(data: Any, uow: UnitOfWork) -> None:
        if not holding:
            await _write_held(uow.scope)
        await handler(data, uow, deps)

    bound.__name__ = handler.__name__
    return bound
