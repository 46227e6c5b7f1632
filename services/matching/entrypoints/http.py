"""The matching HTTP API: programs, participants, match runs, pairs (FastAPI routers).

Routes are thin: read the caller, open a unit of work, call one handler, shape the
answer. Domain refusals become 4xx answers with the reason (see :data:`_REFUSALS`);
participants see and act on their own proposals and pairs only; an admin acts within the
programs of their token's ``programs`` claim. A pair or run outside the caller's reach
answers 404, exactly like one that does not exist, so ids reveal nothing; program ids are
not secret (anyone signed in lists programs), so a program outside an admin's claim
answers 403 with the reason.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request

from schemas.envelope import CloudEvent
from schemas.pairs import PairEndReason
from schemas.participants import (
    ParticipantJoined,
    ParticipantLeft,
    ParticipantProfile,
    ParticipantScreened,
    TrainingCompleted,
)
from schemas.primitives import PairingMode
from schemas.programs import ProgramDefinition
from servicekit.auth import ID_PATTERN, Caller, caller
from servicekit.http import unprocessable
from servicekit.outbox import EventTooLarge
from servicekit.runtime import RouterFactory, ServiceContext
from servicekit.unit_of_work import UnitOfWork, unit_of_work
from services.matching import handlers
from services.matching.adapters.repository import MatchingRepository
from services.matching.domain import audit, pairs, participants, programs, staging
from services.matching.domain.pairs import Pair, PairStatus
from services.matching.domain.staging import MatchRun
from services.matching.entrypoints import views
from services.matching.handlers import RepositoryFactory

Who = Annotated[Caller, Depends(caller)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]
RequestKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=ID_PATTERN,
        description="Makes the request idempotent: a repeat with the same key (and the same "
        "program and participant) answers the event of the first request and announces "
        "nothing new, even before that event has been applied.",
    ),
]
Id = Annotated[
    str,
    Path(
        pattern=ID_PATTERN,
        description="An id: 1-128 characters, no whitespace or control characters.",
    ),
]
"""An id in a path (refused with 422 before it reaches the store, which cannot keep NUL)."""

APPLIED_LATER = (
    "Answers 202 with the id of the event it emitted: the matching consumer applies the "
    "event moments later, exactly like one from an HR feed or an LMS. Until it has, "
    "`GET /programs/{program_id}/participants/{participant_id}` still shows the previous "
    "state (404 right after a join)."
)

_REFUSALS: tuple[tuple[type[Exception], int], ...] = (
    (handlers.UnknownResource, 404),
    (handlers.AlreadyExists, 409),
    (pairs.NotAPartyToThePair, 403),
    (pairs.PairRuleError, 409),
    (programs.ProgramIsClosed, 409),
    (programs.ModeNotAllowed, 409),
    (programs.ProgramRuleError, 422),
    (participants.AlreadyJoined, 409),
    (participants.NotJoined, 404),
    (staging.RunNotStaged, 409),
    (EventTooLarge, 413),  # the event the command would emit exceeds max_event_bytes
)

Command = Callable[[], AbstractAsyncContextManager[tuple[UnitOfWork, MatchingRepository]]]
"""Opens one command transaction: ``async with command() as (uow, repo)``."""


def routes(repository: RepositoryFactory) -> RouterFactory:
    """The matching API's routers, with the store bound at bootstrap."""

    def build(context: ServiceContext) -> list[APIRouter]:
        command = _commands(context, repository)
        return [
            _programs(command),
            _participants(command),
            _runs(command, context),
            _pairs(command),
        ]

    return build


def _commands(context: ServiceContext, repository: RepositoryFactory) -> Command:
    s = context.settings

    @asynccontextmanager
    async def command() -> AsyncIterator[tuple[UnitOfWork, MatchingRepository]]:
        """One transaction with its events; domain refusals become HTTP answers."""
        try:
            async with unit_of_work(
                context.pool,
                source=f"/upward/{s.service_name}",
                region=s.region,
                clock=context.clock,
                max_event_bytes=s.max_event_bytes,
            ) as uow:
                yield uow, repository(uow.conn)
        except handlers.PairNotAllowed as error:
            detail = {"message": str(error), "violations": error.violations}
            raise HTTPException(422, detail) from error
        except tuple(kind for kind, _ in _REFUSALS) as error:
            raise HTTPException(_status_of(error), str(error)) from error

    return command


def _status_of(error: Exception) -> int:
    return next(status for kind, status in _REFUSALS if isinstance(error, kind))


def _accepted(event: CloudEvent) -> views.EventAccepted:
    return views.EventAccepted(event_id=event.id, event_type=event.type)


def _programs(cmd: Command) -> APIRouter:
    router = APIRouter(tags=["programs"], dependencies=[Depends(refuse_nul)])

    @router.post("/programs", status_code=201, summary="Create a program (ProgramCreated)")
    async def create(body: ProgramDefinition, who: Who) -> views.ProgramView:
        who.require_program(body.program_id)
        async with cmd() as (uow, repo):
            program = await handlers.create_program(body, by=who.subject, uow=uow, repo=repo)
        return views.ProgramView.model_validate(program)

    @router.get("/programs", summary="List programs")
    async def list_programs(who: Who) -> list[views.ProgramView]:
        async with cmd() as (_, repo):
            return [views.ProgramView.model_validate(p) for p in await repo.list_programs()]

    @router.get("/programs/{program_id}", summary="One program")
    async def get(program_id: Id, who: Who) -> views.ProgramView:
        async with cmd() as (_, repo):
            return views.ProgramView.model_validate(
                await handlers.load_program(program_id, repo=repo)
            )

    @router.put("/programs/{program_id}", summary="Update a program (ProgramUpdated)")
    async def update(program_id: Id, body: ProgramDefinition, who: Who) -> views.ProgramView:
        who.require_program(program_id)
        _same("program_id", program_id, body.program_id)
        async with cmd() as (uow, repo):
            program = await handlers.update_program(body, by=who.subject, uow=uow, repo=repo)
        return views.ProgramView.model_validate(program)

    @router.post("/programs/{program_id}/close", summary="Close a program (ProgramClosed)")
    async def close(program_id: Id, body: views.CloseProgramRequest, who: Who) -> views.ProgramView:
        who.require_program(program_id)
        async with cmd() as (uow, repo):
            program = await handlers.close_program(
                program_id, reason=body.reason, by=who.subject, uow=uow, repo=repo
            )
        return views.ProgramView.model_validate(program)

    @router.get("/programs/{program_id}/audit", summary="Admin actions: who did what and why")
    async def audit_trail(
        program_id: Id, who: Who, limit: Limit = 100, offset: Offset = 0
    ) -> list[views.AuditEntry]:
        who.require_program(program_id)
        async with cmd() as (_, repo):
            found = await repo.actions(program_id=program_id, limit=limit, offset=offset)
        return [views.AuditEntry.model_validate(a) for a in found]

    return router


def _participants(cmd: Command) -> APIRouter:
    router = APIRouter(tags=["participants"], dependencies=[Depends(refuse_nul)])
    base = "/programs/{program_id}/participants"

    @router.post(
        base,
        status_code=202,
        summary="Join a program (ParticipantJoined)",
        description="Refused at once (404, 409) for an unknown or closed program or an "
        "active participant. " + APPLIED_LATER,
    )
    async def join(
        program_id: Id, body: ParticipantJoined, who: Who, idempotency_key: RequestKey = None
    ) -> views.EventAccepted:
        who.require_self_or_program(body.participant_id, program_id)
        _same("program_id", program_id, body.program_id)

        async def attempt() -> views.EventAccepted:
            async with cmd() as (uow, repo):
                joined = await handlers.join_program(
                    body, uow=uow, repo=repo, request_key=idempotency_key
                )
            return _accepted(joined)

        try:
            return await attempt()
        except asyncpg.UniqueViolationError:
            if idempotency_key is None:
                raise
            return await attempt()  # the same request committed first, concurrently

    @router.get(base, summary="Participants of a program (admins)")
    async def list_participants(
        program_id: Id, who: Who, limit: Limit = 100, offset: Offset = 0
    ) -> list[views.ParticipantView]:
        who.require_program(program_id)
        async with cmd() as (_, repo):
            found = await repo.list_participants(program_id=program_id, limit=limit, offset=offset)
        return [views.ParticipantView.model_validate(p) for p in found]

    @router.get(base + "/{participant_id}", summary="One participant (themself or admins)")
    async def get(program_id: Id, participant_id: Id, who: Who) -> views.ParticipantView:
        who.require_self_or_program(participant_id, program_id)
        async with cmd() as (_, repo):
            found = await handlers.load_participant(program_id, participant_id, repo=repo)
        return views.ParticipantView.model_validate(found)

    @router.put(
        base + "/{participant_id}",
        status_code=202,
        summary="Update a profile (ParticipantUpdated; no event when nothing changed)",
        description=APPLIED_LATER,
    )
    async def update(
        program_id: Id, participant_id: Id, body: ParticipantProfile, who: Who
    ) -> views.EventAccepted:
        who.require_self_or_program(participant_id, program_id)
        _same("program_id", program_id, body.program_id)
        _same("participant_id", participant_id, body.participant_id)
        async with cmd() as (uow, repo):
            event = await handlers.update_participant(body, uow=uow, repo=repo)
        return views.EventAccepted() if event is None else _accepted(event)

    @router.post(
        base + "/{participant_id}/leave",
        status_code=202,
        summary="Leave (no-fault)",
        description=APPLIED_LATER,
    )
    async def leave(
        program_id: Id, participant_id: Id, body: views.LeaveRequest, who: Who
    ) -> views.EventAccepted:
        who.require_self_or_program(participant_id, program_id)
        async with cmd() as (uow, repo):
            left = ParticipantLeft(
                participant_id=participant_id,
                program_id=program_id,
                reason=body.reason,
                left_at=uow.now,
            )
            return _accepted(await handlers.announce_fact(left, uow=uow, repo=repo))

    @router.post(
        base + "/{participant_id}/screening",
        status_code=202,
        summary="Record screening",
        description=APPLIED_LATER,
    )
    async def screening(
        program_id: Id, participant_id: Id, body: views.ScreeningRequest, who: Who
    ) -> views.EventAccepted:
        who.require_program(program_id)
        async with cmd() as (uow, repo):
            screened = ParticipantScreened(
                participant_id=participant_id,
                program_id=program_id,
                outcome=body.outcome,
                screened_by=who.subject,
                screened_at=uow.now,
            )
            return _accepted(await handlers.announce_fact(screened, uow=uow, repo=repo))

    @router.post(
        base + "/{participant_id}/training",
        status_code=202,
        summary="Record training",
        description=APPLIED_LATER,
    )
    async def training(
        program_id: Id, participant_id: Id, body: views.TrainingRequest, who: Who
    ) -> views.EventAccepted:
        who.require_program(program_id)
        async with cmd() as (uow, repo):
            trained = TrainingCompleted(
                participant_id=participant_id,
                program_id=program_id,
                course_id=body.course_id,
                completed_at=uow.now,
            )
            return _accepted(await handlers.announce_fact(trained, uow=uow, repo=repo))

    @router.post(
        base + "/{participant_id}/forget",
        status_code=202,
        summary="Erase a person's data in every service (ParticipantForgotten)",
        description="The person themself or an admin files it; 404 when the person is not "
        "(or no longer) a participant of the program. Every service erases the person "
        "everywhere, not only in this program, and answers ErasureCompleted on "
        "`upward.participants`.",
    )
    async def forget(program_id: Id, participant_id: Id, who: Who) -> views.EventAccepted:
        who.require_self_or_program(participant_id, program_id)
        by = None if who.subject == participant_id else who.subject
        async with cmd() as (uow, repo):
            event = await handlers.request_erasure(
                program_id, participant_id, requested_by=by, uow=uow, repo=repo
            )
        return _accepted(event)

    return router


def _runs(cmd: Command, context: ServiceContext) -> APIRouter:
    router = APIRouter(tags=["match runs"], dependencies=[Depends(refuse_nul)])

    @router.post("/programs/{program_id}/match-runs", status_code=201, summary="Plan a batch run")
    async def start(program_id: Id, body: views.MatchRunRequest, who: Who) -> views.RunView:
        """Plan the program's pool; a dry run is staged for review, otherwise published."""
        who.require_program(program_id)
        async with cmd() as (_, repo):
            snapshot = await handlers.load_pool(program_id, PairingMode.BATCH, repo)
        run = await handlers.plan_run(
            snapshot, mode=PairingMode.BATCH, at=context.clock.now(), by=who.subject
        )
        async with cmd() as (uow, repo):
            await handlers.stage_run(run, by=who.subject, uow=uow, repo=repo)
            if not body.dry_run:
                run = await handlers.publish_run(run.run_id, by=who.subject, uow=uow, repo=repo)
        return views.run_view(run)

    @router.get("/match-runs/{run_id}", summary="A run with its plan")
    async def get(run_id: Id, who: Who) -> views.RunView:
        async with cmd() as (_, repo):
            return views.run_view(await _reachable_run(run_id, who, repo))

    @router.post("/match-runs/{run_id}/publish", summary="Publish a staged run's proposals")
    async def publish(run_id: Id, who: Who) -> views.RunView:
        async with cmd() as (uow, repo):
            await _reachable_run(run_id, who, repo)
            run = await handlers.publish_run(run_id, by=who.subject, uow=uow, repo=repo)
        return views.run_view(run)

    @router.post("/match-runs/{run_id}/discard", summary="Discard a staged run")
    async def discard(run_id: Id, who: Who) -> views.RunView:
        async with cmd() as (uow, repo):
            await _reachable_run(run_id, who, repo)
            run = await handlers.discard_run(run_id, by=who.subject, uow=uow, repo=repo)
        return views.run_view(run)

    return router


def _pairs(cmd: Command) -> APIRouter:
    router = APIRouter(tags=["pairs"], dependencies=[Depends(refuse_nul)])

    @router.get("/programs/{program_id}/proposals", summary="Open proposals (participants: own)")
    async def proposals(
        program_id: Id, who: Who, limit: Limit = 100, offset: Offset = 0
    ) -> list[views.PairView]:
        async with cmd() as (_, repo):
            found = await repo.find_pairs(
                program_id=program_id,
                statuses=[PairStatus.PROPOSED],
                participant_id=_own_or_program(who, program_id),
                limit=limit,
                offset=offset,
            )
        return [views.PairView.model_validate(p) for p in found]

    @router.get("/programs/{program_id}/pairs", summary="Pairs of a program (participants: own)")
    async def list_pairs(
        program_id: Id,
        who: Who,
        status: Annotated[list[PairStatus] | None, Query()] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[views.PairView]:
        async with cmd() as (_, repo):
            found = await repo.find_pairs(
                program_id=program_id,
                statuses=status,
                participant_id=_own_or_program(who, program_id),
                limit=limit,
                offset=offset,
            )
        return [views.PairView.model_validate(p) for p in found]

    @router.get("/pairs/{pair_id}", summary="One pair (its two people and admins)")
    async def get(pair_id: Id, who: Who) -> views.PairView:
        async with cmd() as (_, repo):
            return views.PairView.model_validate(
                _visible(await handlers.load_pair(pair_id, repo=repo), who)
            )

    @router.get("/pairs/{pair_id}/explanation", summary="Why this pair: score and factors")
    async def explain(pair_id: Id, who: Who) -> views.ExplanationView:
        async with cmd() as (_, repo):
            return views.ExplanationView.model_validate(
                _visible(await handlers.load_pair(pair_id, repo=repo), who)
            )

    @router.post("/pairs/{pair_id}/accept", summary="Accept a proposal (PairAccepted)")
    async def accept(pair_id: Id, who: Who) -> views.PairView:
        who.require_participant()
        async with cmd() as (uow, repo):
            _visible(await handlers.load_pair(pair_id, repo=repo), who)
            pair = await handlers.accept_pair(
                pair_id, participant_id=who.subject, uow=uow, repo=repo
            )
        return views.PairView.model_validate(pair)

    @router.post("/pairs/{pair_id}/decline", summary="Decline a proposal (PairDeclined)")
    async def decline(pair_id: Id, who: Who) -> views.PairView:
        who.require_participant()
        async with cmd() as (uow, repo):
            _visible(await handlers.load_pair(pair_id, repo=repo), who)
            pair = await handlers.decline_pair(
                pair_id, participant_id=who.subject, uow=uow, repo=repo
            )
        return views.PairView.model_validate(pair)

    @router.post("/pairs/{pair_id}/end", summary="End a formed pair (PairEnded)")
    async def end(pair_id: Id, body: views.EndPairRequest, who: Who) -> views.PairView:
        reason = _end_reason(body, who)
        async with cmd() as (uow, repo):
            _visible(await handlers.load_pair(pair_id, repo=repo), who)
            pair = await handlers.end_pair(
                pair_id, reason=reason, by=who.subject, admin=who.is_staff, uow=uow, repo=repo
            )
        return views.PairView.model_validate(pair)

    @router.post("/pairs/{pair_id}/veto", summary="Veto a proposal (PairDeclined vetoed)")
    async def veto(pair_id: Id, body: views.PairVetoRequest, who: Who) -> views.PairView:
        who.require_staff()
        async with cmd() as (uow, repo):
            _visible(await handlers.load_pair(pair_id, repo=repo), who)
            pair = await handlers.veto_pair(
                pair_id, by=who.subject, reason=body.reason, uow=uow, repo=repo
            )
        return views.PairView.model_validate(pair)

    @router.post(
        "/programs/{program_id}/self-match-requests",
        status_code=201,
        summary="A mentee asks a named mentor (PairProposed, mentee accepted)",
        responses={422: {"description": "The pair breaks constraints: `violations` lists them"}},
    )
    async def self_match(program_id: Id, body: views.SelfMatchRequest, who: Who) -> views.PairView:
        who.require_participant()
        async with cmd() as (uow, repo):
            pair = await handlers.request_self_match(
                program_id, mentee_id=who.subject, mentor_id=body.mentor_id, uow=uow, repo=repo
            )
        return views.PairView.model_validate(pair)

    @router.post(
        "/programs/{program_id}/manual-pairs",
        status_code=201,
        summary="An admin proposes a pair by hand (PairProposed)",
        responses={422: {"description": "The pair breaks constraints: `violations` lists them"}},
    )
    async def manual_pair(
        program_id: Id, body: views.ManualPairRequest, who: Who
    ) -> views.PairView:
        who.require_program(program_id)
        async with cmd() as (uow, repo):
            pair = await handlers.assign_pair(
                program_id,
                mentor_id=body.mentor_id,
                mentee_id=body.mentee_id,
                by=who.subject,
                reason=body.reason,
                uow=uow,
                repo=repo,
            )
        return views.PairView.model_validate(pair)

    @router.post(
        "/programs/{program_id}/vetoes",
        status_code=201,
        summary="Forbid a (mentor, mentee) combination; an open pair of it is withdrawn",
    )
    async def veto_combination(
        program_id: Id, body: views.VetoRequest, who: Who
    ) -> list[views.PairView]:
        who.require_program(program_id)
        async with cmd() as (uow, repo):
            veto = audit.Veto(
                program_id=program_id,
                mentor_id=body.mentor_id,
                mentee_id=body.mentee_id,
                vetoed_by=who.subject,
                reason=body.reason,
                vetoed_at=uow.now,
            )
            withdrawn = await handlers.veto_combination(veto, uow=uow, repo=repo)
        return [views.PairView.model_validate(p) for p in withdrawn]

    return router


async def refuse_nul(request: Request) -> None:
    """422 when a string of the JSON body holds NUL (PostgreSQL text cannot keep it).

    Answered as a request validation error, so the body has the documented 422 shape.
    """
    body = await request.body()
    if b"\\u0000" not in body:
        return
    try:
        decoded = json.loads(body)
    except ValueError:
        return  # not JSON: the body's own validation answers 422
    where = handlers.first_nul(decoded, "body")
    if where is not None:
        raise unprocessable(f"{where} holds a NUL character (\\u0000), which is not allowed")


def _visible(pair: Pair, who: Caller) -> Pair:
    """The pair, when the caller is one of its two people or runs its program.

    Anyone else is answered 404, as for a pair that does not exist: a pair id reveals
    nothing about who is paired with whom.
    """
    mine = who.is_participant and pair.involves(who.subject)
    if not mine and not who.may_run_program(pair.program_id):
        raise HTTPException(404, f"no pair {pair.pair_id}")
    return pair


async def _reachable_run(run_id: str, who: Caller, repo: MatchingRepository) -> MatchRun:
    """The run, for an admin of its program (403 to participants, 404 to other admins)."""
    who.require_staff()
    run = await handlers.load_run(run_id, repo=repo)
    if not who.may_run_program(run.program_id):
        raise HTTPException(404, f"no match run {run_id}")
    return run


def _own_or_program(who: Caller, program_id: str) -> str | None:
    """Whose pairs the caller lists: a participant their own, an admin of the program all."""
    if who.is_participant:
        return who.subject
    who.require_program(program_id)
    return None


def _end_reason(body: views.EndPairRequest, who: Caller) -> PairEndReason:
    if who.is_participant:
        if body.reason not in (None, PairEndReason.NO_FAULT_EXIT):
            raise HTTPException(403, "participants end a pair with no_fault_exit only")
        return PairEndReason.NO_FAULT_EXIT
    return body.reason or PairEndReason.ADMIN_ENDED


def _same(field: str, in_path: str, in_body: str) -> None:
    if in_path != in_body:
        raise unprocessable(f"{field} in the body ({in_body}) differs from the path ({in_path})")
