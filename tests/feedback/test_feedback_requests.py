"""Feedback requests: one per person, stable ids, due dates, lateness."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from schemas.feedback import FeedbackKind
from schemas.primitives import PairSide
from services.feedback.domain.requests import (
    PairMembers,
    is_late,
    milestone_requests,
    request_id,
    session_requests,
)

PAIR = PairMembers(pair_id="pair-1", program_id="prg-1", mentor_id="emp-m", mentee_id="emp-e")
NOW = datetime(2025, 3, 11, 16, tzinfo=UTC)


def test_a_held_session_asks_both_people_with_a_due_date() -> None:
    requests = session_requests(PAIR, session_id="ses-1", now=NOW, response_days=7)
    assert {(r.side, r.participant_id) for r in requests} == {
        (PairSide.MENTOR, "emp-m"),
        (PairSide.MENTEE, "emp-e"),
    }
    assert {r.due_at for r in requests} == {NOW + timedelta(days=7)}
    assert {r.kind for r in requests} == {FeedbackKind.SESSION}
    event = requests[0].to_event()
    assert event.request_id == requests[0].request_id and event.session_id == "ses-1"


def test_request_ids_are_stable_and_distinct() -> None:
    first = session_requests(PAIR, session_id="ses-1", now=NOW, response_days=7)
    again = session_requests(
        PAIR, session_id="ses-1", now=NOW + timedelta(hours=1), response_days=3
    )
    other = session_requests(PAIR, session_id="ses-2", now=NOW, response_days=7)
    milestone = milestone_requests(PAIR, week=2, now=NOW, response_days=7)
    assert [r.request_id for r in first] == [r.request_id for r in again]
    ids = {r.request_id for r in first + other + milestone}
    assert len(ids) == 6
    assert all(len(i) <= 128 for i in ids)


@given(pair_id=st.text(max_size=40), about=st.text(max_size=60), side=st.sampled_from(PairSide))
def test_request_ids_are_the_uuid5_of_pair_subject_and_side(
    pair_id: str, about: str, side: PairSide
) -> None:
    namespace = uuid.UUID("6f1d3c2e-5b8a-4f0e-9d7c-2a1b3c4d5e6f")  # ids already stored use it
    expected = "fbr-" + uuid.uuid5(namespace, f"{pair_id}/{about}/{side.value}").hex
    assert request_id(pair_id=pair_id, about=about, side=side) == expected


def test_milestone_requests_carry_their_week() -> None:
    requests = milestone_requests(PAIR, week=13, now=NOW, response_days=5)
    assert {r.milestone_week for r in requests} == {13}
    assert {r.to_event().kind for r in requests} == {FeedbackKind.MILESTONE}


def test_an_answer_after_the_due_time_is_late() -> None:
    due = NOW + timedelta(days=7)
    assert not is_late(due_at=due, submitted_at=due)
    assert is_late(due_at=due, submitted_at=due + timedelta(seconds=1))
