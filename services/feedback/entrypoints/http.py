"""The feedback service's HTTP API (FastAPI; OpenAPI generated from this code).

Callers authenticate with a bearer JWT (``servicekit.auth``). Participants list and
answer their own requests and read their own answers, free text included; nobody else
can (another participant's answer answers 404, as a missing one). Admins read the
outcomes of the programs in their token's ``programs`` claim (``*``: all): aggregates
only, suppressed by k-anonymity in this service (``domain/privacy.py``), as JSON or CSV.
Services read neither.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.feedback import FeedbackKind
from schemas.primitives import Identifier, Level, PairSide, TopicKey
from servicekit.auth import Caller, CallerDep
from servicekit.runtime import ServiceContext
from servicekit.unit_of_work import UnitOfWork, unit_of_work
from services.feedback.adapters.metrics import FEEDBACK_SUBMITTED
from services.feedback.adapters.repository import FeedbackStore, PostgresFeedbackStore
from services.feedback.domain import outcomes
from services.feedback.domain.programs import ProgramSettings
from services.feedback.domain.requests import RequestState
from services.feedback.domain.submissions import (
    AlreadyAnswered,
    Answer,
    InvalidAnswer,
    NotYourRequest,
    SkillRating,
    StoredAnswer,
    SubmissionRefused,
)
from services.feedback.entrypoints.streams import REQUESTED, SUBMITTED, live_key
from services.feedback.handlers import (
    OutcomeReport,
    RequestNotFound,
    SubmitAnswer,
    program_outcomes,
    submit_answer,
)

# who is calling


def _participant(who: Caller) -> str:
    if not who.is_participant:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only participants have feedback requests")
    return who.subject


async def _admin_of(who: Caller, store: FeedbackStore, program_id: str) -> ProgramSettings:
    """The program, if ``who`` administers it and is in none of its pairs (else 403, 404).

    Administering is the token's ``programs`` claim (``*``: every program).

    An admin who also takes part could subtract their own answers from the figures,
    leaving fewer than k other people's: another admin of the program reads them.
    """
    if not who.is_admin or not who.may_run_program(program_id):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"only the admins of {program_id} see its outcomes"
        )
    program = await store.program(program_id=program_id)
    if program is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no program {program_id}")
    if await store.takes_part(program_id=program_id, person_id=who.subject):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"you take part in {program_id}: its figures include your own answers, which "
            "you could subtract; another admin of the program can read them",
        )
    return program


# models


_STRICT = ConfigDict(extra="forbid", strict=True)
"""Answers are JSON numbers and strings as documented: ``true`` or ``"4"`` is not a rating."""

PathId = Annotated[
    str,
    Path(min_length=1, max_length=128, pattern=r"^[^\s\x00]+$", description="An id."),
]
"""An id in a path: 1-128 characters, no whitespace, no NUL (PostgreSQL text refuses it)."""


class RatingsIn(BaseModel):
    """Four ratings, 1 (poor) to 5 (excellent)."""

    model_config = _STRICT

    satisfaction: Level = Field(description="Overall satisfaction.")
    usefulness: Level = Field(description="How useful the session or period was.")
    comfort: Level = Field(description="How safe and comfortable they felt to speak openly.")
    progress: Level = Field(description="Progress towards their goals.")


class SkillIn(BaseModel):
    """The mentee's self-assessed level of a catalogue topic, before and now (1-5)."""

    model_config = _STRICT

    topic: TopicKey
    before: Level
    after: Level


class AnswerIn(BaseModel):
    """An answer to a feedback request."""

    model_config = _STRICT

    ratings: RatingsIn
    nps: int | None = Field(
        default=None, ge=0, le=10, description="How likely to recommend the program, 0-10."
    )
    skills: list[SkillIn] = Field(
        default_factory=list, max_length=50, description="Mentees only: skills by topic."
    )
    comment: str | None = Field(
        default=None, max_length=4000, description="Free text, visible only to its author."
    )

    @field_validator("comment")
    @classmethod
    def _no_nul(cls, comment: str | None) -> str | None:
        if comment is not None and "\x00" in comment:
            raise ValueError("the comment may not contain NUL characters")
        return comment

    def to_domain(self) -> Answer:
        """The domain answer."""
        r = self.ratings
        skills = tuple(SkillRating(s.topic, s.before, s.after) for s in self.skills)
        return Answer(
            r.satisfaction, r.usefulness, r.comfort, r.progress, self.nps, skills, self.comment
        )


class RequestOut(BaseModel):
    """One of the caller's feedback requests."""

    request_id: Identifier
    pair_id: Identifier
    program_id: Identifier
    kind: FeedbackKind
    side: PairSide
    session_id: Identifier | None
    milestone_week: int | None
    requested_at: datetime
    due_at: datetime
    status: str = Field(description="open, submitted or missing (past due, unanswered).")
    late: bool = Field(description="Answered after the due time.")

    @classmethod
    def of(cls, state: RequestState) -> RequestOut:
        """From a stored request."""
        r = state.request
        return cls(
            request_id=r.request_id,
            pair_id=r.pair_id,
            program_id=r.program_id,
            kind=r.kind,
            side=r.side,
            session_id=r.session_id,
            milestone_week=r.milestone_week,
            requested_at=r.requested_at,
            due_at=r.due_at,
            status=state.status.value,
            late=state.late,
        )


class AnswerOut(BaseModel):
    """One of the caller's own answers."""

    request_id: Identifier
    kind: FeedbackKind
    session_id: Identifier | None
    milestone_week: int | None
    submitted_at: datetime
    late: bool
    ratings: RatingsIn
    nps: int | None
    skills: list[SkillIn]
    comment: str | None

    @classmethod
    def of(cls, stored: StoredAnswer) -> AnswerOut:
        """From a stored answer."""
        a, r = stored.answer, stored.request
        return cls(
            request_id=r.request_id,
            kind=r.kind,
            session_id=r.session_id,
            milestone_week=r.milestone_week,
            submitted_at=stored.submitted_at,
            late=stored.late,
            ratings=RatingsIn(
                satisfaction=a.satisfaction,
                usefulness=a.usefulness,
                comfort=a.comfort,
                progress=a.progress,
            ),
            nps=a.nps,
            skills=[SkillIn(topic=s.topic, before=s.before, after=s.after) for s in a.skills],
            comment=a.comment,
        )


class FeedbackCellOut(BaseModel):
    """Feedback figures of one filter combination; a null part is suppressed."""

    side: PairSide | None = Field(description="Respondent side; null: both.")
    kind: FeedbackKind | None = Field(description="Kind of feedback; null: both.")
    suppressed: bool = Field(
        description="Answers hidden: fewer than k people, or they would expose some."
    )
    answers: outcomes.AnswerFigures | None = Field(
        description="What the answers say; they join k people at a time (figures_as_of)."
    )
    requests: outcomes.RequestFigures | None = Field(
        description="Live request counts; null when fewer than k people were asked."
    )


class RetentionCellOut(BaseModel):
    """Retention of one side (null: both); null figures when suppressed."""

    side: PairSide | None
    suppressed: bool
    figures: outcomes.RetentionFigures | None


class SkillGrowthOut(BaseModel):
    """Self-assessed growth of one topic; null numbers when suppressed."""

    topic: TopicKey
    suppressed: bool
    mentees: int | None
    before: float | None
    after: float | None
    growth: float | None


class OutcomesOut(BaseModel):
    """A program's outcomes, as an admin may see them."""

    program_id: Identifier
    k_anonymity: int = Field(description="No figure covers fewer people than this.")
    figures_as_of: datetime | None = Field(
        description="When the answer figures last moved (they move k people at a time)."
    )
    feedback: list[FeedbackCellOut]
    skills: list[SkillGrowthOut]
    retention: list[RetentionCellOut]
    sessions: outcomes.SessionFigures

    @classmethod
    def of(cls, report: OutcomeReport) -> OutcomesOut:
        """From the report."""
        return cls(
            program_id=report.program_id,
            k_anonymity=report.k,
            figures_as_of=report.figures_as_of,
            feedback=[
                FeedbackCellOut(
                    side=c.side,
                    kind=c.kind,
                    suppressed=c.suppressed,
                    answers=c.answers,
                    requests=c.requests,
                )
                for c in report.feedback
            ],
            skills=[SkillGrowthOut(suppressed=s.suppressed, **_fields(s)) for s in report.skills],
            retention=[
                RetentionCellOut(side=c.side, suppressed=c.figures is None, figures=c.figures)
                for c in report.retention
            ],
            sessions=report.sessions,
        )


class LiveOut(BaseModel):
    """Live event counts from the faust stream table (null below k people)."""

    program_id: Identifier
    requests: int | None
    answers: int | None


def _fields(skill: outcomes.SkillGrowth) -> dict[str, Any]:
    return {
        "topic": skill.topic,
        "mentees": skill.mentees,
        "before": skill.before,
        "after": skill.after,
        "growth": skill.growth,
    }


_REFUSALS: dict[type[SubmissionRefused], int] = {
    RequestNotFound: status.HTTP_404_NOT_FOUND,
    AlreadyAnswered: status.HTTP_409_CONFLICT,
    InvalidAnswer: status.HTTP_422_UNPROCESSABLE_CONTENT,
}


def routes(context: ServiceContext) -> list[APIRouter]:
    """The participant and admin routers."""
    return [participant_router(context), admin_router(context)]


@asynccontextmanager
async def _store_in(context: ServiceContext) -> AsyncIterator[tuple[FeedbackStore, UnitOfWork]]:
    s = context.settings
    async with unit_of_work(
        context.pool,
        source=f"/upward/{s.service_name}",
        region=s.region,
        clock=context.clock,
        max_event_bytes=s.max_event_bytes,
    ) as uow:
        yield PostgresFeedbackStore(uow.conn), uow


def participant_router(context: ServiceContext) -> APIRouter:
    """Requests and answers: each participant sees only their own."""
    router = APIRouter(prefix="/feedback", tags=["feedback"])

    @router.get("/requests", summary="My feedback requests, newest first")
    async def my_requests(who: CallerDep) -> list[RequestOut]:
        async with _store_in(context) as (store, _):
            found = await store.requests_of(participant_id=_participant(who))
        return [RequestOut.of(s) for s in found]

    @router.post(
        "/requests/{request_id}/answer",
        status_code=status.HTTP_201_CREATED,
        summary="Answer one of my requests (once; late answers are accepted and flagged)",
        responses={403: {}, 404: {}, 409: {"description": "Already answered"}, 422: {}},
    )
    async def answer_request(request_id: PathId, body: AnswerIn, who: CallerDep) -> AnswerOut:
        command = SubmitAnswer(request_id, _participant(who), body.to_domain())
        try:
            async with _store_in(context) as (_, uow):
                stored = await submit_answer(command, uow, store=PostgresFeedbackStore)
        except NotYourRequest as refused:
            # as for a missing request: someone else's request ids reveal nothing
            raise HTTPException(404, f"no feedback request {request_id}") from refused
        except SubmissionRefused as refused:
            raise HTTPException(_REFUSALS[type(refused)], str(refused)) from refused
        FEEDBACK_SUBMITTED.labels(stored.request.kind.value).inc()  # committed
        return AnswerOut.of(stored)

    @router.get("/answers", summary="My answers, newest first")
    async def my_answers(who: CallerDep) -> list[AnswerOut]:
        async with _store_in(context) as (store, _):
            found = await store.answers_of(participant_id=_participant(who))
        return [AnswerOut.of(a) for a in found]

    @router.get("/answers/{request_id}", summary="One of my answers", responses={403: {}, 404: {}})
    async def my_answer(request_id: PathId, who: CallerDep) -> AnswerOut:
        participant = _participant(who)
        async with _store_in(context) as (store, _):
            found = await store.answer(request_id=request_id)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no answer to {request_id}")
        if found.request.participant_id != participant:
            # as for a missing answer: whether someone answered is theirs to know
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no answer to {request_id}")
        return AnswerOut.of(found)

    return router


SideFilter = Annotated[PairSide | None, Query(description="Respondent side.")]
KindFilter = Annotated[FeedbackKind | None, Query(description="Kind of feedback.")]


def admin_router(context: ServiceContext) -> APIRouter:
    """Program outcomes for the program's admins: aggregates only, k-suppressed."""
    router = APIRouter(prefix="/programs", tags=["outcomes"])

    async def report(
        program_id: str, who: Caller, side: PairSide | None, kind: FeedbackKind | None
    ) -> OutcomeReport:
        async with _store_in(context) as (store, _):
            program = await _admin_of(who, store, program_id)
            return await program_outcomes(store, program, side=side, kind=kind)

    @router.get(
        "/{program_id}/outcomes",
        summary="Program outcomes (JSON); filters: side and kind only",
        responses={403: {}, 404: {}},
    )
    async def outcomes_json(
        program_id: PathId, who: CallerDep, side: SideFilter = None, kind: KindFilter = None
    ) -> OutcomesOut:
        return OutcomesOut.of(await report(program_id, who, side, kind))

    @router.get(
        "/{program_id}/outcomes.csv",
        summary="Program outcomes (CSV export, one figure per row)",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}}, 403: {}, 404: {}},
    )
    async def outcomes_csv(
        program_id: PathId, who: CallerDep, side: SideFilter = None, kind: KindFilter = None
    ) -> Response:
        r = await report(program_id, who, side, kind)
        body = outcomes.csv_export(r.feedback, r.skills, r.retention, r.sessions)
        disposition = f'attachment; filename="outcomes-{program_id}.csv"'
        return Response(body, media_type="text/csv", headers={"Content-Disposition": disposition})

    @router.get(
        "/{program_id}/live",
        summary="Live request and answer counts (faust stream table; not the record)",
        responses={403: {}, 404: {}},
    )
    async def live(program_id: PathId, who: CallerDep) -> LiveOut:
        async with _store_in(context) as (store, _):
            program = await _admin_of(who, store, program_id)
            asked, answering = await store.people_asked_and_answering(program_id=program_id)
        k, views = program.k_anonymity, context.views
        return LiveOut(
            program_id=program_id,
            requests=outcomes.live_count(_count(views, program_id, REQUESTED), people=asked, k=k),
            answers=outcomes.live_count(
                _count(views, program_id, SUBMITTED), people=answering, k=k
            ),
        )

    return router


def _count(views: Any, program_id: str, what: str) -> int:
    return int(views[live_key(program_id, what)]) if views is not None else 0
