"""The events the sessions service publishes, built from its domain objects.

Private notes never appear here: SessionHeld carries attendance, duration and
catalogue topic keys only.
"""

from __future__ import annotations

from datetime import datetime

from schemas.pairs import PairEnded, PairEndReason
from schemas.participants import ErasureCompleted
from schemas.primitives import ServiceName
from schemas.sessions import (
    CancelReason,
    PairStalled,
    SessionCancelled,
    SessionHeld,
    SessionMissed,
    SessionRescheduled,
    SessionScheduled,
    StallReason,
)
from services.sessions.domain.model import Pair, Session


def scheduled(session: Session, pair: Pair, *, ics: str) -> SessionScheduled:
    """SessionScheduled, with the invite."""
    return SessionScheduled(
        pair_id=pair.pair_id,
        program_id=pair.program_id,
        session_id=session.session_id,
        starts_at=session.starts_at,
        ends_at=session.ends_at,
        mentor_id=pair.mentor_id,
        mentee_id=pair.mentee_id,
        sequence=session.number,
        agenda=list(session.agenda),
        ics=ics,
        warnings=list(session.warnings),
    )


def rescheduled(
    session: Session, *, previous_starts_at: datetime, ics: str, requested_by: str | None
) -> SessionRescheduled:
    """SessionRescheduled, with the updated invite."""
    return SessionRescheduled(
        pair_id=session.pair_id,
        program_id=session.program_id,
        session_id=session.session_id,
        starts_at=session.starts_at,
        ends_at=session.ends_at,
        previous_starts_at=previous_starts_at,
        ics=ics,
        requested_by=requested_by,
        warnings=list(session.warnings),
    )


def cancelled(
    session: Session, *, reason: CancelReason, ics: str, cancelled_by: str | None
) -> SessionCancelled:
    """SessionCancelled, with the METHOD:CANCEL invite."""
    return SessionCancelled(
        pair_id=session.pair_id,
        program_id=session.program_id,
        session_id=session.session_id,
        reason=reason,
        cancelled_by=cancelled_by,
        ics=ics,
    )


def held(session: Session) -> SessionHeld:
    """SessionHeld: attendance, duration and topics; never notes."""
    return SessionHeld(
        pair_id=session.pair_id,
        program_id=session.program_id,
        session_id=session.session_id,
        sequence=session.number,
        held_at=session.starts_at,
        duration_minutes=session.duration_minutes or 1,
        attendees=list(session.attendees),
        topics_covered=list(session.topics_covered),
    )


def missed(session: Session, pair: Pair) -> SessionMissed:
    """SessionMissed, with the pair's count of sessions missed in a row."""
    return SessionMissed(
        pair_id=session.pair_id,
        program_id=session.program_id,
        session_id=session.session_id,
        sequence=session.number,
        scheduled_starts_at=session.starts_at,
        absent=list(session.absent),
        consecutive_missed=max(pair.consecutive_missed, 1),
    )


def stalled(pair: Pair, *, reason: StallReason, now: datetime) -> PairStalled:
    """PairStalled for the rule that fired."""
    return PairStalled(
        pair_id=pair.pair_id,
        program_id=pair.program_id,
        mentor_id=pair.mentor_id,
        mentee_id=pair.mentee_id,
        reason=reason,
        consecutive_missed=pair.consecutive_missed,
        days_without_session=pair.days_without_session(now),
        last_held_at=pair.last_held_at,
    )


def completed(pair: Pair) -> PairEnded:
    """PairEnded with reason ``completed``: the program's duration is over for the pair."""
    return PairEnded(
        pair_id=pair.pair_id,
        program_id=pair.program_id,
        mentor_id=pair.mentor_id,
        mentee_id=pair.mentee_id,
        reason=PairEndReason.COMPLETED,
    )


def erasure_completed(participant_id: str, *, erased: int, now: datetime) -> ErasureCompleted:
    """ErasureCompleted from the sessions service."""
    return ErasureCompleted(
        participant_id=participant_id,
        service=ServiceName.SESSIONS,
        completed_at=now,
        records_erased=erased,
    )
