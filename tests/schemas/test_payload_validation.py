"""Domain constraints of the payloads are enforced when decoding or building events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.envelope import CloudEvent
from schemas.feedback import FeedbackKind, FeedbackSubmitted
from schemas.participants import ParticipantJoined
from schemas.programs import ProgramCreated
from schemas.sessions import SessionScheduled


def _joined(**changes: Any) -> dict[str, Any]:
    return ParticipantJoined.example().model_dump(mode="json") | changes


@pytest.mark.parametrize(
    "changes",
    [
        {"timezone": "Mars/Olympus_Mons"},
        {"timezone": "Europe/Pariss"},
        {"timezone": "../etc/passwd"},
        {"timezone": ""},
        {"languages": ["eng"]},
        {"languages": ["EN"]},
        {"languages": []},
        {"grade": 3.5},
        {"grade": "senior"},
        {"grade": -1},
        {"offers": {"social-media": 6}},
        {"wants": {"social-media": 0}},
        {"offers": {"Social Media": 3}},
        {"email": "not-an-address"},
        {"capacity": 0},
        {"role": "sponsor"},
        {"participant_id": ""},
        {"participant_id": "has space"},
        {"preferences": {"avoid": "emp-1"}},
    ],
    ids=str,
)
def test_invalid_participant_is_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ParticipantJoined.model_validate(_joined(**changes))


@pytest.mark.parametrize("name", ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires"])
def test_iana_time_zones_are_accepted(name: str) -> None:
    assert ParticipantJoined.model_validate(_joined(timezone=name)).timezone == name


def test_defaults_of_a_minimal_participant() -> None:
    minimal = _joined()
    for optional in ("manager_chain", "offers", "capacity", "background", "preferences"):
        del minimal[optional]
    joined = ParticipantJoined.model_validate(minimal)
    assert joined.capacity == 1
    assert joined.preferences.prefer == [] and joined.preferences.avoid == []
    assert joined.background == {} and joined.manager_chain == []


def test_session_must_end_after_it_starts() -> None:
    example = SessionScheduled.example()
    data = example.model_dump() | {"ends_at": example.starts_at - timedelta(minutes=1)}
    with pytest.raises(ValidationError, match="ends_at"):
        SessionScheduled.model_validate(data)


def test_feedback_carries_no_free_text() -> None:
    data = FeedbackSubmitted.example().model_dump(mode="json")
    data["comment"] = "my mentor is a jerk"
    data["ratings"] = {  # an older producer's shape: ratings, plus a stray comment
        "satisfaction": 5,
        "usefulness": 4,
        "psychological_safety": 5,
        "comment": "confidential",
    }
    submitted = FeedbackSubmitted.model_validate(data)
    assert "confidential" not in submitted.model_dump_json()
    assert "jerk" not in submitted.model_dump_json()


def test_feedback_kind_needs_its_reference() -> None:
    data = FeedbackSubmitted.example().model_dump(mode="json") | {"session_id": None}
    with pytest.raises(ValidationError, match="session_id"):
        FeedbackSubmitted.model_validate(data)
    milestone = data | {"kind": FeedbackKind.MILESTONE, "milestone_week": 12}
    assert FeedbackSubmitted.model_validate(milestone).milestone_week == 12


def test_rating_out_of_range_is_rejected() -> None:
    data = FeedbackSubmitted.example().model_dump(mode="json")
    data["ratings"] = {"satisfaction": 6, "usefulness": 4, "psychological_safety": 5}
    with pytest.raises(ValidationError):
        FeedbackSubmitted.model_validate(data)


def test_program_defaults_follow_the_brief() -> None:
    program = ProgramCreated.example()
    assert program.k_anonymity == 5
    assert program.objective == "max_matched_then_score"
    assert {topic.difficulty for topic in program.topics} <= {1, 2, 3, 4, 5}


@pytest.mark.parametrize(
    "changes",
    [{"k_anonymity": 1}, {"topics": []}, {"objective": "greedy"}, {"duration_weeks": 0}],
    ids=str,
)
def test_invalid_program_is_rejected(changes: dict[str, Any]) -> None:
    data = ProgramCreated.example().model_dump(mode="json") | changes
    with pytest.raises(ValidationError):
        ProgramCreated.model_validate(data)


def test_envelope_rejects_naive_time_and_bad_traceparent() -> None:
    base = {
        "specversion": "1.0",
        "id": "1",
        "source": "/upward/test",
        "type": "upward.PairFormed",
        "time": "2025-03-03T09:00:00Z",
        "subject": "pair-1",
        "data": {},
        "schemaversion": 1,
    }
    assert CloudEvent.model_validate(base).event_name == "PairFormed"
    for changes in ({"time": "2025-03-03T09:00:00"}, {"traceparent": "00-xyz"}, {"id": ""}):
        with pytest.raises(ValidationError):
            CloudEvent.model_validate(base | changes)
    with pytest.raises(ValidationError):
        CloudEvent.model_validate(base | {"schemaversion": 0})


def test_milestone_weeks_given_are_kept_and_absent_means_derived() -> None:
    data = ProgramCreated.example().model_dump(mode="json")
    data["feedback"] = {"milestone_weeks": [4, 12], "response_days": 5}
    assert ProgramCreated.model_validate(data).feedback.milestone_weeks == [4, 12]
    data["feedback"] = {"response_days": 5}
    assert ProgramCreated.model_validate(data).feedback.milestone_weeks is None


def test_feedback_submitted_no_longer_needs_ratings() -> None:
    submitted = FeedbackSubmitted.example()
    assert submitted.ratings is None and submitted.late is False
    assert "ratings" not in submitted.model_dump(exclude_none=True)
