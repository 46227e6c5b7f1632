"""Feedback requests: who is asked, about what, and by when.

A request's id is derived from what it is about (pair, session or milestone week, side),
so the same fact can never create two requests, whichever event brings it.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from schemas.feedback import FeedbackKind, FeedbackRequested
from schemas.primitives import PairSide

_NAMESPACE = uuid.UUID("6f1d3c2e-5b8a-4f0e-9d7c-2a1b3c4d5e6f")
_NAMESPACE_BYTES = _NAMESPACE.bytes


class RequestStatus(StrEnum):
    """Open until answered; missing once past due without an answer."""

    OPEN = "open"
    SUBMITTED = "submitted"
    MISSING = "missing"


@dataclass(frozen=True)
class PairMembers:
    """The two people of a formed pair."""

    pair_id: str
    program_id: str
    mentor_id: str
    mentee_id: str

    def person(self, side: PairSide) -> str:
        """The participant on ``side``."""
        return self.mentor_id if side is PairSide.MENTOR else self.mentee_id


@dataclass(frozen=True)
class FeedbackRequest:
    """One person asked for feedback about one session or milestone."""

    request_id: str
    pair_id: str
    program_id: str
    participant_id: str
    side: PairSide
    kind: FeedbackKind
    session_id: str | None
    milestone_week: int | None
    requested_at: datetime
    due_at: datetime

    def to_event(self) -> FeedbackRequested:
        """The FeedbackRequested event announcing this request."""
        return FeedbackRequested(
            pair_id=self.pair_id,
            program_id=self.program_id,
            request_id=self.request_id,
            kind=self.kind,
            session_id=self.session_id,
            milestone_week=self.milestone_week,
            participant_id=self.participant_id,
            side=self.side,
            due_at=self.due_at,
        )


def request_id(*, pair_id: str, about: str, side: PairSide) -> str:
    """A stable request id: the same pair, subject and side always give the same id.

    It is ``"fbr-" + uuid5(_NAMESPACE, "<pair>/<about>/<side>").hex``, computed from the
    SHA-1 digest directly (a third of the time of building the UUID object; a test
    checks it against :func:`uuid.uuid5`).
    """
    name = f"{pair_id}/{about}/{side.value}".encode()
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return "fbr-" + digest.hex()


def session_requests(
    pair: PairMembers, *, session_id: str, now: datetime, response_days: int
) -> list[FeedbackRequest]:
    """One request to each person of the pair after a held session."""
    return [
        _request(pair, side, FeedbackKind.SESSION, now, response_days, session_id=session_id)
        for side in PairSide
    ]


def milestone_requests(
    pair: PairMembers, *, week: int, now: datetime, response_days: int
) -> list[FeedbackRequest]:
    """One milestone survey to each person of the pair."""
    return [
        _request(pair, side, FeedbackKind.MILESTONE, now, response_days, milestone_week=week)
        for side in PairSide
    ]


def _request(
    pair: PairMembers,
    side: PairSide,
    kind: FeedbackKind,
    now: datetime,
    response_days: int,
    *,
    session_id: str | None = None,
    milestone_week: int | None = None,
) -> FeedbackRequest:
    about = f"session/{session_id}" if session_id is not None else f"milestone/{milestone_week}"
    return FeedbackRequest(
        request_id=request_id(pair_id=pair.pair_id, about=about, side=side),
        pair_id=pair.pair_id,
        program_id=pair.program_id,
        participant_id=pair.person(side),
        side=side,
        kind=kind,
        session_id=session_id,
        milestone_week=milestone_week,
        requested_at=now,
        due_at=now + timedelta(days=response_days),
    )


@dataclass(frozen=True)
class RequestState:
    """A stored request with where it stands."""

    request: FeedbackRequest
    status: RequestStatus
    late: bool = False


def is_late(*, due_at: datetime, submitted_at: datetime) -> bool:
    """An answer after the due time is accepted but counted as late."""
    return submitted_at > due_at
