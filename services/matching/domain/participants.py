"""Participants as matching keeps them: profile, eligibility, and who is still free.

Participant facts arrive as events on ``upward.participants`` (from matching's own HTTP
API, an HR feed or an LMS); the consumer is the only writer of this projection. A
participant is matched from the pool of one program: :func:`to_candidate` turns the
stored profile and the participant's open pairs into the engine's :class:`Candidate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from schemas.participants import (
    ParticipantJoined,
    ParticipantProfile,
    ParticipantUpdated,
    ScreeningOutcome,
)
from schemas.primitives import Role
from services.matching.domain.model import Candidate
from services.matching.domain.programs import changed_fields


class ParticipantStatus(StrEnum):
    """Active participants can be matched; those who left cannot."""

    ACTIVE = "active"
    LEFT = "left"


class ParticipantRuleError(Exception):
    """A participant command the rules refuse (the HTTP layer answers 4xx)."""


class AlreadyJoined(ParticipantRuleError):
    """The participant is already active in the program."""


class NotJoined(ParticipantRuleError):
    """The participant is not (or no longer) active in the program."""


@dataclass(frozen=True, slots=True)
class Participant:
    """One person in one program."""

    profile: ParticipantProfile
    status: ParticipantStatus = ParticipantStatus.ACTIVE
    screening: ScreeningOutcome | None = None
    trained: bool = False

    @property
    def participant_id(self) -> str:
        """The participant id."""
        return self.profile.participant_id

    @property
    def program_id(self) -> str:
        """The program id."""
        return self.profile.program_id

    @property
    def is_active(self) -> bool:
        """True until the participant leaves."""
        return self.status is ParticipantStatus.ACTIVE


def joined(existing: Participant | None, data: ParticipantJoined) -> Participant:
    """Apply a join: a new participant, or a rejoin (screening and training are kept)."""
    if existing is None:
        return Participant(profile=_profile(data))
    return replace(existing, profile=_profile(data), status=ParticipantStatus.ACTIVE)


def updated(existing: Participant | None, data: ParticipantProfile) -> Participant:
    """Apply an update carrying the whole profile (an unknown participant is added)."""
    if existing is None:
        return Participant(profile=_profile(data))
    return replace(existing, profile=_profile(data))


def _profile(data: ParticipantProfile) -> ParticipantProfile:
    """The profile alone (an update event also carries ``changed_fields``)."""
    return ParticipantProfile.model_validate(data.model_dump())


def screened(existing: Participant, outcome: ScreeningOutcome) -> Participant:
    """Record a screening; the latest outcome counts."""
    return replace(existing, screening=outcome)


def trained(existing: Participant) -> Participant:
    """Record that mentor training was completed."""
    return replace(existing, trained=True)


def left(existing: Participant) -> Participant:
    """The participant left the program (no-fault)."""
    return replace(existing, status=ParticipantStatus.LEFT)


def require_can_join(existing: Participant | None) -> None:
    """Refuse a second join of an active participant (an update is the way)."""
    if existing is not None and existing.is_active:
        raise AlreadyJoined(f"{existing.participant_id} already joined {existing.program_id}")


def require_active(existing: Participant | None, participant_id: str) -> Participant:
    """The active participant, or :class:`NotJoined`."""
    if existing is None or not existing.is_active:
        raise NotJoined(f"{participant_id} is not an active participant of this program")
    return existing


def update_event(current: Participant, profile: ParticipantProfile) -> ParticipantUpdated | None:
    """The ParticipantUpdated that moves ``current`` to ``profile``; None when equal."""
    changed = changed_fields(current.profile, profile)
    if not changed:
        return None
    return ParticipantUpdated.model_validate(profile.model_dump() | {"changed_fields": changed})


def to_candidate(
    profile: Mapping[str, Any],
    *,
    screening: str | None,
    trained: bool,
    open_as_mentor: int,
    open_as_mentee: bool,
    mentee_finished: bool = False,
) -> Candidate:
    """The engine's view of a stored profile (``ParticipantProfile`` as JSON).

    ``open_as_mentor`` counts proposed and formed pairs as mentor (they hold capacity);
    a mentee whose pair completed (``mentee_finished``) is not matched again.
    """
    preferences = profile.get("preferences") or {}
    return Candidate(
        participant_id=profile["participant_id"],
        role=Role(profile["role"]),
        grade=int(profile["grade"]),
        department=profile["department"],
        timezone=profile["timezone"],
        languages=frozenset(profile["languages"]),
        manager_chain=tuple(profile.get("manager_chain") or ()),
        offers=dict(profile.get("offers") or {}),
        wants=dict(profile.get("wants") or {}),
        background=dict(profile.get("background") or {}),
        prefer=frozenset(preferences.get("prefer") or ()),
        avoid=frozenset(preferences.get("avoid") or ()),
        mentor_slots=max(0, int(profile.get("capacity", 1)) - open_as_mentor),
        needs_mentor=not open_as_mentee and not mentee_finished,
        screened=screening == ScreeningOutcome.PASSED.value,
        trained=trained,
        active=True,
    )
