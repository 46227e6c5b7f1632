"""Who may answer a request, once, and what a mentee's skills must be."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.primitives import PairSide
from services.feedback.domain.requests import PairMembers, RequestStatus, session_requests
from services.feedback.domain.submissions import (
    AlreadyAnswered,
    Answer,
    InvalidAnswer,
    NotYourRequest,
    SkillRating,
    check_submission,
    submitted_event,
)

PAIR = PairMembers(pair_id="pair-1", program_id="prg-1", mentor_id="emp-m", mentee_id="emp-e")
MENTOR_REQ, MENTEE_REQ = session_requests(
    PAIR, session_id="ses-1", now=datetime(2025, 3, 11, tzinfo=UTC), response_days=7
)
CATALOGUE = {"social-media", "genai-tools"}
ANSWER = Answer(satisfaction=4, usefulness=4, comfort=5, progress=3, nps=9)


def test_the_person_asked_may_answer_an_open_request() -> None:
    skills = (SkillRating("social-media", before=2, after=4),)
    answer = Answer(4, 4, 5, 3, skills=skills)
    check_submission(MENTEE_REQ, RequestStatus.OPEN, answer, caller_id="emp-e", catalogue=CATALOGUE)
    check_submission(
        MENTOR_REQ, RequestStatus.MISSING, ANSWER, caller_id="emp-m", catalogue=CATALOGUE
    )
    assert skills[0].growth == 2


def test_someone_else_may_not_answer() -> None:
    with pytest.raises(NotYourRequest, match="not addressed to you"):
        check_submission(
            MENTEE_REQ, RequestStatus.OPEN, ANSWER, caller_id="emp-m", catalogue=CATALOGUE
        )


def test_a_second_answer_is_refused() -> None:
    with pytest.raises(AlreadyAnswered, match="already answered"):
        check_submission(
            MENTEE_REQ, RequestStatus.SUBMITTED, ANSWER, caller_id="emp-e", catalogue=CATALOGUE
        )


@pytest.mark.parametrize(
    ("request_side", "skills", "reason"),
    [
        (PairSide.MENTOR, (SkillRating("social-media", 1, 2),), "mentee's self-assessment"),
        (
            PairSide.MENTEE,
            (SkillRating("social-media", 1, 2), SkillRating("social-media", 2, 3)),
            "once per answer",
        ),
        (PairSide.MENTEE, (SkillRating("astrology", 1, 2),), "not in the program's catalogue"),
    ],
)
def test_skills_rules(request_side: PairSide, skills: tuple[SkillRating, ...], reason: str) -> None:
    request = MENTOR_REQ if request_side is PairSide.MENTOR else MENTEE_REQ
    answer = Answer(4, 4, 4, 4, skills=skills)
    with pytest.raises(InvalidAnswer, match=reason):
        check_submission(
            request,
            RequestStatus.OPEN,
            answer,
            caller_id=request.participant_id,
            catalogue=CATALOGUE,
        )


def test_the_event_says_only_that_a_request_was_answered() -> None:
    event = submitted_event(MENTEE_REQ, late=True)
    dumped = event.model_dump(mode="json", exclude_none=True)
    assert dumped["late"] is True and dumped["side"] == "mentee"
    assert "ratings" not in dumped
    assert "emp-e" not in event.model_dump_json()
