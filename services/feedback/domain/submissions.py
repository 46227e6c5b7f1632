"""Answers to feedback requests: who may answer, what an answer must contain.

Ranges (ratings 1-5, NPS 0-10) are checked where the answer enters (the HTTP model);
these rules are the ones that need the request: only the person asked may answer, once;
skills are the mentee's self-assessment, on the program's topics.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from schemas.feedback import FeedbackSubmitted
from schemas.primitives import PairSide
from services.feedback.domain.requests import FeedbackRequest, RequestStatus

PROMOTER_FROM = 9
DETRACTOR_UP_TO = 6


@dataclass(frozen=True)
class SkillRating:
    """A mentee's self-assessment of one topic, before the program and now (1-5)."""

    topic: str
    before: int
    after: int

    @property
    def growth(self) -> int:
        """Levels gained (negative when they feel they lost ground)."""
        return self.after - self.before


@dataclass(frozen=True)
class Answer:
    """What a respondent answered: four ratings 1-5, NPS 0-10, skills and a comment."""

    satisfaction: int
    usefulness: int
    comfort: int
    progress: int
    nps: int | None = None
    skills: tuple[SkillRating, ...] = ()
    comment: str | None = None


class SubmissionRefused(Exception):
    """An answer that cannot be accepted; the message says why."""


class NotYourRequest(SubmissionRefused):
    """The caller is not the person the request was addressed to."""


class AlreadyAnswered(SubmissionRefused):
    """The request has an answer already: one answer per request."""


class InvalidAnswer(SubmissionRefused):
    """The answer breaks a rule that depends on the request or the program."""


def check_submission(
    request: FeedbackRequest,
    status: RequestStatus,
    answer: Answer,
    *,
    caller_id: str,
    catalogue: Collection[str] | None,
) -> None:
    """Raise a :class:`SubmissionRefused` unless ``caller_id`` may give ``answer``."""
    if caller_id != request.participant_id:
        raise NotYourRequest(f"request {request.request_id} is not addressed to you")
    if status is RequestStatus.SUBMITTED:
        raise AlreadyAnswered(f"request {request.request_id} was already answered")
    _check_skills(request, answer, catalogue)


def _check_skills(
    request: FeedbackRequest, answer: Answer, catalogue: Collection[str] | None
) -> None:
    topics = [skill.topic for skill in answer.skills]
    if topics and request.side is not PairSide.MENTEE:
        raise InvalidAnswer("skills are the mentee's self-assessment; mentors leave them out")
    if len(set(topics)) != len(topics):
        raise InvalidAnswer("each topic may be assessed once per answer")
    unknown = sorted(set(topics) - set(catalogue)) if catalogue is not None else []
    if unknown:
        raise InvalidAnswer(f"topics not in the program's catalogue: {', '.join(unknown)}")


def submitted_event(request: FeedbackRequest, *, late: bool) -> FeedbackSubmitted:
    """FeedbackSubmitted for an answered request: no ratings, no text, no respondent id."""
    return FeedbackSubmitted(
        pair_id=request.pair_id,
        program_id=request.program_id,
        request_id=request.request_id,
        kind=request.kind,
        session_id=request.session_id,
        milestone_week=request.milestone_week,
        side=request.side,
        late=late,
    )


@dataclass(frozen=True)
class StoredAnswer:
    """An accepted answer, visible only to the person who gave it."""

    request: FeedbackRequest
    answer: Answer
    submitted_at: datetime
    late: bool
