"""Program rules (create, update, close) and the participant projection."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from matching_service_fixtures import mentee, mentor, program_definition

from schemas.participants import ParticipantUpdated, ScreeningOutcome
from schemas.primitives import PairingMode, Role
from schemas.programs import ProgramClosedReason
from services.matching.domain import participants, programs
from services.matching.domain.participants import ParticipantStatus

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def test_a_new_program_is_open_at_revision_one() -> None:
    program, created = programs.create_program(program_definition())
    assert program.is_open and program.revision == 1
    assert created.event_type == "ProgramCreated" and created.program_id == "prg-1"


def test_an_update_names_the_changed_fields_and_bumps_the_revision() -> None:
    program, _ = programs.create_program(program_definition())
    changed, event = programs.update_program(program, program_definition(cadence_days=7))
    assert event is not None
    assert event.changed_fields == ["cadence_days"] and event.revision == 2
    assert changed.revision == 2 and changed.definition.cadence_days == 7


def test_an_update_without_changes_emits_nothing() -> None:
    program, _ = programs.create_program(program_definition())
    same, event = programs.update_program(program, program_definition())
    assert event is None and same.revision == 1


def test_the_program_id_cannot_change() -> None:
    program, _ = programs.create_program(program_definition())
    with pytest.raises(programs.ProgramRuleError):
        programs.update_program(program, program_definition("prg-2"))


def test_a_closed_program_refuses_updates_closing_and_pairing() -> None:
    program, _ = programs.create_program(program_definition())
    closed, event = programs.close_program(
        program, reason=ProgramClosedReason.CANCELLED, by="admin-1", at=T0
    )
    assert event.closed_by == "admin-1" and not closed.is_open
    with pytest.raises(programs.ProgramIsClosed):
        programs.update_program(closed, program_definition(cadence_days=7))
    with pytest.raises(programs.ProgramIsClosed):
        programs.close_program(closed, reason=ProgramClosedReason.CANCELLED, by="a", at=T0)
    with pytest.raises(programs.ProgramIsClosed):
        closed.require_mode(PairingMode.BATCH)


def test_a_mode_the_program_does_not_allow_is_refused() -> None:
    program, _ = programs.create_program(program_definition(pairing_modes=[PairingMode.BATCH]))
    program.require_mode(PairingMode.BATCH)
    with pytest.raises(programs.ModeNotAllowed, match="self_match"):
        program.require_mode(PairingMode.SELF_MATCH)


def test_a_rejoin_keeps_screening_and_training() -> None:
    person = participants.joined(None, mentor("m-1"))
    person = participants.trained(participants.screened(person, ScreeningOutcome.PASSED))
    rejoined = participants.joined(participants.left(person), mentor("m-1"))
    assert rejoined.status is ParticipantStatus.ACTIVE
    assert rejoined.screening is ScreeningOutcome.PASSED and rejoined.trained


def test_an_active_participant_cannot_join_twice() -> None:
    person = participants.joined(None, mentor("m-1"))
    with pytest.raises(participants.AlreadyJoined):
        participants.require_can_join(person)
    participants.require_can_join(participants.left(person))
    participants.require_can_join(None)


def test_an_update_event_lists_what_changed_or_is_none() -> None:
    person = participants.joined(None, mentor("m-1"))
    assert participants.update_event(person, mentor("m-1")) is None
    event = participants.update_event(person, mentor("m-1", capacity=3, grade=4))
    assert isinstance(event, ParticipantUpdated)
    assert event.changed_fields == ["capacity", "grade"]


def test_an_update_stores_the_profile_without_its_changed_fields() -> None:
    update = ParticipantUpdated.model_validate(
        mentor("m-1", capacity=2).model_dump() | {"changed_fields": ["capacity"]}
    )
    person = participants.updated(None, update)
    assert "changed_fields" not in person.profile.model_dump()
    assert person.profile.capacity == 2


def test_a_candidate_has_the_free_places_of_its_open_pairs() -> None:
    profile = mentor("m-1", capacity=3, role="both").model_dump(mode="json")
    candidate = participants.to_candidate(
        profile, screening="passed", trained=True, open_as_mentor=2, open_as_mentee=False
    )
    assert candidate.role is Role.BOTH and candidate.mentor_slots == 1
    assert candidate.needs_mentor and candidate.screened and candidate.trained
    assert candidate.languages == frozenset({"en"})


def test_a_mentee_with_an_open_or_completed_pair_needs_no_mentor() -> None:
    profile = mentee("e-1").model_dump(mode="json")
    taken = participants.to_candidate(
        profile, screening=None, trained=False, open_as_mentor=0, open_as_mentee=True
    )
    finished = participants.to_candidate(
        profile,
        screening="failed",
        trained=False,
        open_as_mentor=0,
        open_as_mentee=False,
        mentee_finished=True,
    )
    assert not taken.needs_mentor and not finished.needs_mentor
    assert not finished.screened
