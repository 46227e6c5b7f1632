"""The sessions service's HTTP API (FastAPI; OpenAPI at ``/openapi.json``).

Scoped by caller (a bearer JWT, ``servicekit.auth``): a participant sees and acts on
their own pairs' sessions only; an admin lists, reschedules and cancels the sessions of
the programs in their token's ``programs`` claim (``*``: all) but never reads notes nor
records what happened in a session; ``service`` callers cannot act on sessions. A session
outside the caller's reach answers 404, as one that does not exist: a session id reveals
nothing. Bad input answers 4xx with a reason.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, TypeVar

import structlog
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field

from schemas.primitives import Identifier, TopicKey
from servicekit.auth import ID_PATTERN, Caller, CallerDep, Role
from servicekit.retry import Backoff, is_transient, retry_transient
from servicekit.runtime import ServiceContext
from servicekit.settings import ServiceSettings
from servicekit.unit_of_work import UnitOfWork, unit_of_work
from services.sessions.adapters.calendar import feed, invite
from services.sessions.adapters.repository import SessionsRepository
from services.sessions.domain.commands import Actor, Cancel, RecordHeld, RecordMissed, Reschedule
from services.sessions.domain.errors import Conflict, Forbidden, Invalid, NotFound, SessionsError
from services.sessions.domain.model import Note, Pair, Session, SessionStatus
from services.sessions.entrypoints.identity import check_feed_token, feed_token
from services.sessions.handlers import (
    cancel_session,
    record_session_held,
    record_session_missed,
    reschedule_session,
)
from services.sessions.service_layer import Dependencies, PairFacts, invite_context, load_facts
from services.sessions.settings import SessionsSettings

SessionId = Annotated[str, Path(pattern=ID_PATTERN, description="Session id.")]
ParticipantId = Annotated[str, Path(pattern=ID_PATTERN, description="Participant id.")]
PairFilter = Annotated[str | None, Query(pattern=ID_PATTERN, description="Only this pair.")]
ProgramFilter = Annotated[str | None, Query(pattern=ID_PATTERN, description="Only this program.")]
RETRY_FOR_S = 5.0
_log = structlog.get_logger(__name__)
ICS = "text/calendar; charset=utf-8"
T = TypeVar("T")
C = TypeVar("C")
_STATUS = {NotFound: 404, Forbidden: 403, Conflict: 409, Invalid: 422}


class SessionView(BaseModel):
    """A session as its pair (or an admin) sees it. Notes are read separately."""

    session_id: str
    pair_id: str
    program_id: str
    number: int = Field(description="1 for the pair's first session, then 2, 3...")
    status: SessionStatus
    starts_at: datetime
    ends_at: datetime
    agenda: list[str] = Field(description="Catalogue topics planned, easiest first.")
    warnings: list[str] = Field(description="Scheduling compromises (outside working hours).")
    ical_sequence: int = Field(description="iCalendar SEQUENCE of the current invite.")
    attendees: list[str]
    absent: list[str]
    duration_minutes: int | None
    topics_covered: list[str]
    cancel_reason: str | None

    @classmethod
    def of(cls, session: Session) -> SessionView:
        """The view of a domain session."""
        fields = {name: getattr(session, name) for name in cls.model_fields}
        return cls.model_validate(fields)


class PairView(BaseModel):
    """A pair as the sessions service tracks it."""

    pair_id: str
    program_id: str
    mentor_id: str
    mentee_id: str
    topics: list[str]
    status: str = Field(description="pending (waiting for program or people), active, ended.")
    formed_at: datetime
    ends_at: datetime | None = Field(description="When the program's duration is over for it.")
    consecutive_missed: int
    last_held_at: datetime | None
    stalled: bool
    end_reason: str | None

    @classmethod
    def of(cls, pair: Pair) -> PairView:
        """The view of a domain pair."""
        return cls.model_validate({name: getattr(pair, name) for name in cls.model_fields})


class HeldRequest(BaseModel):
    """What happened in a session that took place."""

    attendees: list[Identifier] = Field(min_length=1, max_length=2, description="Who came.")
    duration_minutes: int = Field(ge=1, le=600, description="How long it lasted.")
    topics_covered: list[TopicKey] = Field(
        default_factory=list, max_length=50, description="Catalogue topics covered."
    )
    notes: str | None = Field(
        default=None,
        max_length=20000,
        pattern=r"^[^\x00]*$",
        description="Private notes: kept here, readable only by the two people of the pair.",
    )


class MissedRequest(BaseModel):
    """A session that did not take place."""

    absent: list[Identifier] = Field(
        default_factory=list, max_length=2, description="Who did not come, if known."
    )


class RescheduleRequest(BaseModel):
    """Where to move a session."""

    starts_at: AwareDatetime | None = Field(
        default=None, description="New start; absent: the next good slot for both people."
    )


class NoteView(BaseModel):
    """A private note of the pair."""

    author_id: str
    body: str
    written_at: datetime

    @classmethod
    def of(cls, note: Note) -> NoteView:
        """The view of a note."""
        return cls(author_id=note.author_id, body=note.body, written_at=note.written_at)


class FeedLink(BaseModel):
    """Where the caller's calendar feed is."""

    url: str = Field(description="Subscribe to this URL in a calendar client; keep it secret.")


@contextmanager
def refusals() -> Iterator[None]:
    """Turn the domain's refusals into HTTP errors with their reason."""
    try:
        yield
    except SessionsError as refusal:
        raise HTTPException(_STATUS.get(type(refusal), 400), str(refusal)) from refusal


async def retrying(attempt: Callable[[], Awaitable[T]], settings: ServiceSettings) -> T:
    """Run ``attempt``, and again after a transient failure (deadlock, lost connection).

    Each attempt is its own transaction, rolled back when it fails, so running it again
    is safe. Retries stop after ``RETRY_FOR_S``; a failure still transient then answers
    503 (try again later) instead of 500.
    """
    backoff = Backoff(settings.retry_initial_backoff_s, min(settings.retry_max_backoff_s, 1.0))
    try:
        return await retry_transient(
            attempt,
            backoff=backoff,
            pause=asyncio.sleep,
            on_retry=lambda exc: _log.warning("http_command_retried", error=repr(exc)),
            deadline=time.monotonic() + RETRY_FOR_S,
        )
    except Exception as exc:
        if is_transient(exc):
            raise HTTPException(503, "the session store is busy or unreachable; try again") from exc
        raise


def routers(
    context: ServiceContext, deps: Dependencies, settings: SessionsSettings
) -> Sequence[APIRouter]:
    """The service's routers."""
    api = _Api(context, deps, settings)
    return [api.session_routes(), api.pair_routes(), api.calendar_routes()]


class _Api:
    """The routes, with what they share: pool, clock, dependencies and settings."""

    def __init__(
        self, context: ServiceContext, deps: Dependencies, settings: SessionsSettings
    ) -> None:
        self.context = context
        self.deps = deps
        self.settings = settings

    async def command(self, run: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """Run a command in its own transaction (again on a deadlock), refusals mapped."""
        with refusals():
            return await retrying(lambda: self._transaction(run), self.settings)

    async def _transaction(self, run: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        c, s = self.context, self.settings
        async with unit_of_work(
            c.pool,
            source="/upward/sessions",
            region=s.region,
            clock=c.clock,
            max_event_bytes=s.max_event_bytes,
        ) as uow:
            return await run(uow)

    async def session_command(
        self, handler: Callable[[C, UnitOfWork, Dependencies], Awaitable[Session]], command: C
    ) -> SessionView:
        """Run a session command; answer with the session's new state."""
        return SessionView.of(await self.command(lambda uow: handler(command, uow, self.deps)))

    async def read(self, run: Callable[[SessionsRepository], Awaitable[T]]) -> T:
        """Run a read on a pooled connection, refusals mapped to HTTP errors."""

        async def attempt() -> T:
            async with self.context.pool.acquire() as conn:
                return await run(self.deps.repository(conn))

        with refusals():
            return await retrying(attempt, self.settings)

    async def reachable(self, session_id: str, who: Caller) -> None:
        """404 unless the session is one the caller may see (before acting on it)."""
        await self.read(lambda r: _visible(r, session_id, who))

    def session_routes(self) -> APIRouter:
        """Sessions: list, read, invite, notes, and the four commands."""
        router = APIRouter(prefix="/sessions", tags=["sessions"])
        self._session_reads(router)
        self._session_commands(router)
        return router

    def _session_reads(self, router: APIRouter) -> None:
        @router.get("", summary="Sessions of the caller's pairs (admin: any pair)")
        async def list_sessions(
            who: CallerDep,
            pair_id: PairFilter = None,
            status: SessionStatus | None = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        ) -> list[SessionView]:
            mine, programs = _scope(who)
            found = await self.read(
                lambda r: r.sessions(
                    participant_id=mine,
                    pair_id=pair_id,
                    status=status,
                    program_ids=programs,
                    limit=limit,
                )
            )
            return [SessionView.of(s) for s in found]

        @router.get("/{session_id}", summary="One session")
        async def get_session(session_id: SessionId, who: CallerDep) -> SessionView:
            session, _ = await self.read(lambda r: _visible(r, session_id, who))
            return SessionView.of(session)

        @router.get(
            "/{session_id}/invite.ics",
            summary="The session's current iCalendar invite (REQUEST, or CANCEL)",
            response_class=Response,
            responses={200: {"content": {"text/calendar": {}}}},
        )
        async def get_invite(session_id: SessionId, who: CallerDep) -> Response:
            session, facts = await self.read(lambda r: _visible(r, session_id, who))
            context = invite_context(self.deps.policy, facts)
            return Response(invite(session, context, now=self.context.clock.now()), media_type=ICS)

        @router.get("/{session_id}/notes", summary="The pair's private notes on a session")
        async def get_notes(session_id: SessionId, who: CallerDep) -> list[NoteView]:
            notes = await self.read(lambda r: _notes(r, session_id, who))
            return [NoteView.of(n) for n in notes]

    def _session_commands(self, router: APIRouter) -> None:
        @router.post("/{session_id}/held", summary="Record a session as held")
        async def held(session_id: SessionId, body: HeldRequest, who: CallerDep) -> SessionView:
            await self.reachable(session_id, who)
            command = RecordHeld(
                session_id,
                _actor(who),
                _unique(body.attendees),
                body.duration_minutes,
                _unique(body.topics_covered),
                body.notes,
            )
            return await self.session_command(record_session_held, command)

        @router.post("/{session_id}/missed", summary="Record that a session did not take place")
        async def missed(session_id: SessionId, body: MissedRequest, who: CallerDep) -> SessionView:
            await self.reachable(session_id, who)
            command = RecordMissed(session_id, _actor(who), _unique(body.absent))
            return await self.session_command(record_session_missed, command)

        @router.post("/{session_id}/reschedule", summary="Move a session; reissues its invite")
        async def reschedule(
            session_id: SessionId, body: RescheduleRequest, who: CallerDep
        ) -> SessionView:
            await self.reachable(session_id, who)
            command = Reschedule(session_id, _actor(who), body.starts_at)
            return await self.session_command(reschedule_session, command)

        @router.post("/{session_id}/cancel", summary="Cancel a session (METHOD:CANCEL invite)")
        async def cancel(session_id: SessionId, who: CallerDep) -> SessionView:
            await self.reachable(session_id, who)
            command = Cancel(session_id, _actor(who))
            return await self.session_command(cancel_session, command)

    def pair_routes(self) -> APIRouter:
        """Pairs: the caller's own (admin: any, by program)."""
        router = APIRouter(prefix="/pairs", tags=["pairs"])

        @router.get("", summary="The caller's pairs (admin: any pair, by program)")
        async def list_pairs(
            who: CallerDep,
            program_id: ProgramFilter = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        ) -> list[PairView]:
            mine, programs = _scope(who)
            found = await self.read(
                lambda r: r.pairs(
                    participant_id=mine, program_id=program_id, program_ids=programs, limit=limit
                )
            )
            return [PairView.of(p) for p in found]

        return router

    def calendar_routes(self) -> APIRouter:
        """The per-participant calendar feed and how to find its URL."""
        router = APIRouter(tags=["calendar"])

        @router.get("/me/calendar-feed", summary="The URL of the caller's calendar feed")
        async def my_feed(request: Request, who: CallerDep) -> FeedLink:
            participant_id = _participant_id(who)
            token = feed_token(self._feed_secret(), participant_id)
            url = request.url_for("calendar_feed", participant_id=participant_id)
            return FeedLink(url=str(url.include_query_params(token=token)))

        @router.get(
            "/participants/{participant_id}/calendar.ics",
            name="calendar_feed",
            summary="A participant's sessions as an iCalendar feed (token in the URL)",
            response_class=Response,
            responses={200: {"content": {"text/calendar": {}}}},
        )
        async def calendar_feed(
            participant_id: ParticipantId, token: str | None = None
        ) -> Response:
            check_feed_token(self._feed_secret(), participant_id, token)
            text = await self.read(lambda r: self._feed(r, participant_id))
            return Response(text, media_type=ICS)

        return router

    def _feed_secret(self) -> str:
        secret = self.settings.calendar_feed_secret
        if secret is None:
            raise HTTPException(
                503, "the calendar feed is off: set UPWARD_SESSIONS_CALENDAR_FEED_SECRET"
            )
        return secret.get_secret_value()

    async def _feed(self, repo: SessionsRepository, participant_id: str) -> str:
        if await repo.is_forgotten(participant_id=participant_id):
            raise NotFound("no calendar feed: this participant's data was erased")
        sessions = await repo.sessions(participant_id=participant_id, limit=2000)
        facts: dict[str, PairFacts] = {}
        for session in sessions:
            if session.pair_id not in facts:
                facts[session.pair_id] = await _facts(repo, session.pair_id)
        entries = [(s, invite_context(self.deps.policy, facts[s.pair_id])) for s in sessions]
        return feed(entries, owner_id=participant_id, now=self.context.clock.now())


def _unique(values: Sequence[str]) -> tuple[str, ...]:
    """The values once each, in their order (a name given twice counts once)."""
    return tuple(dict.fromkeys(values))


async def _facts(repo: SessionsRepository, pair_id: str) -> PairFacts:
    pair = await repo.get_pair(pair_id=pair_id)
    if pair is None:
        raise NotFound(f"no pair {pair_id!r}")
    return await load_facts(repo, pair)


async def _visible(
    repo: SessionsRepository, session_id: str, who: Caller
) -> tuple[Session, PairFacts]:
    """The session and its pair, if the caller may see them (404 / 403 otherwise)."""
    session = await repo.get_session(session_id=session_id)
    if session is None:
        raise NotFound(f"no session {session_id!r}")
    facts = await _facts(repo, session.pair_id)
    actor = _actor(who)
    mine = not actor.is_admin and who.subject in facts.pair.members
    if not mine and not (actor.is_admin and who.may_run_program(session.program_id)):
        raise NotFound(f"no session {session_id!r}")
    return session, facts


async def _notes(repo: SessionsRepository, session_id: str, who: Caller) -> list[Note]:
    """The notes of a session: only for the two people of its pair."""
    if _actor(who).is_admin:
        raise Forbidden("notes stay in the pair: admins cannot read them")
    await _visible(repo, session_id, who)
    return await repo.notes(session_id=session_id)


def _actor(who: Caller) -> Actor:
    """The caller as the domain's actor; 403 for service callers."""
    if who.role is Role.SERVICE:
        raise HTTPException(403, "service callers cannot act on sessions")
    return Actor(who.subject, is_admin=who.is_admin)


def _participant_id(who: Caller) -> str:
    """The caller's participant id; 403 for admins and services."""
    if not who.is_participant:
        raise HTTPException(403, "only participants have their own sessions and feed")
    return who.subject


def _scope(who: Caller) -> tuple[str | None, list[str] | None]:
    """Whose sessions and pairs the caller lists: (participant, programs); None is all."""
    if not _actor(who).is_admin:
        return who.subject, None
    return None, None if who.is_platform_admin else list(who.programs)
