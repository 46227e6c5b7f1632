"""What each consumed event tells whom: one function per event, returning notices.

Contexts hold only what the message needs. Admin notices (a pair at risk or stalled)
carry the program's name, the pair id and a link: never names, scores, ratings or
signals, because what is said in a pair stays in the pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from schemas.feedback import FeedbackRequested, PairAtRisk
from schemas.notifications import NotificationKind
from schemas.pairs import PairEnded, PairEndReason, PairFormed, PairProposed
from schemas.sessions import PairStalled, SessionCancelled, SessionRescheduled, SessionScheduled
from services.notifications.domain.planning import (
    CalendarPart,
    Links,
    Notice,
    ProgramInfo,
    SessionInfo,
    feedback_cancel_key,
    pair_sides,
)

_ENDING_TONE: dict[PairEndReason, str] = {
    PairEndReason.COMPLETED: "completed",
    PairEndReason.PROGRAM_CLOSED: "completed",
    PairEndReason.NO_FAULT_EXIT: "closed",
    PairEndReason.PARTICIPANT_LEFT: "closed",
    PairEndReason.PARTICIPANT_FORGOTTEN: "closed",
    PairEndReason.AT_RISK_REMATCH: "rearranged",
    PairEndReason.STALLED: "rearranged",
    PairEndReason.ADMIN_ENDED: "rearranged",
}
"""Reasons are grouped so no message blames anyone: completed, closed (no fault), rearranged."""


def _program_name(program: ProgramInfo | None) -> str | None:
    return program.name if program else None


def pair_proposed(
    event: PairProposed,
    *,
    source_key: str,
    program: ProgramInfo | None,
    names: Mapping[str, str],
    links: Links,
    now: datetime,
) -> list[Notice]:
    """Both people are asked to accept the proposed pair."""
    topics = program.titles(event.topics) if program else list(event.topics)
    return [
        Notice(
            source_key=source_key,
            recipient_id=recipient,
            kind=NotificationKind.PAIR_PROPOSED,
            reference_id=event.pair_id,
            context={
                "side": side.value,
                "partner_name": names.get(partner),
                "program_name": _program_name(program),
                "topics": topics,
                "expires_at": event.expires_at.isoformat(),
                "link": links.pair(event.pair_id),
            },
            not_before=now,
            partner_id=partner,
        )
        for recipient, partner, side in pair_sides(event.mentor_id, event.mentee_id)
    ]


def pair_formed(
    event: PairFormed,
    *,
    source_key: str,
    program: ProgramInfo | None,
    names: Mapping[str, str],
    emails: Mapping[str, str],
    links: Links,
    now: datetime,
) -> list[Notice]:
    """Both people are introduced to each other (name and e-mail address)."""
    topics = program.titles(event.topics) if program else list(event.topics)
    return [
        Notice(
            source_key=source_key,
            recipient_id=recipient,
            kind=NotificationKind.PAIR_FORMED,
            reference_id=event.pair_id,
            context={
                "side": side.value,
                "partner_name": names.get(partner),
                "partner_email": emails.get(partner),
                "program_name": _program_name(program),
                "topics": topics,
                "link": links.pair(event.pair_id),
            },
            not_before=now,
            partner_id=partner,
        )
        for recipient, partner, side in pair_sides(event.mentor_id, event.mentee_id)
    ]


def pair_ended(
    event: PairEnded,
    *,
    source_key: str,
    program: ProgramInfo | None,
    names: Mapping[str, str],
    now: datetime,
) -> list[Notice]:
    """Both people learn the pair ended, without blame."""
    return [
        Notice(
            source_key=source_key,
            recipient_id=recipient,
            kind=NotificationKind.PAIR_ENDED,
            reference_id=event.pair_id,
            context={
                "side": side.value,
                "partner_name": names.get(partner),
                "program_name": _program_name(program),
                "ending": _ENDING_TONE[event.reason],
            },
            not_before=now,
            partner_id=partner,
        )
        for recipient, partner, side in pair_sides(event.mentor_id, event.mentee_id)
    ]


def session_scheduled(
    event: SessionScheduled,
    *,
    source_key: str,
    program: ProgramInfo | None,
    names: Mapping[str, str],
    now: datetime,
) -> list[Notice]:
    """Both people get the invite, with the iCalendar REQUEST attached."""
    agenda = program.titles(event.agenda) if program else list(event.agenda)
    return [
        Notice(
            source_key=source_key,
            recipient_id=recipient,
            kind=NotificationKind.SESSION_INVITE,
            reference_id=event.session_id,
            context={
                "side": side.value,
                "partner_name": names.get(partner),
                "program_name": _program_name(program),
                "starts_at": event.starts_at.isoformat(),
                "ends_at": event.ends_at.isoformat(),
                "sequence": event.sequence,
                "agenda": agenda,
            },
            not_before=now,
            urgent=True,
            calendar=CalendarPart(event.ics, "REQUEST"),
            partner_id=partner,
        )
        for recipient, partner, side in pair_sides(event.mentor_id, event.mentee_id)
    ]


def session_rescheduled(
    event: SessionRescheduled,
    *,
    source_key: str,
    session: SessionInfo,
    program: ProgramInfo | None,
    names: Mapping[str, str],
    now: datetime,
) -> list[Notice]:
    """Both people get the updated invite (iCalendar REQUEST with a higher SEQUENCE)."""
    return [
        Notice(
            source_key=source_key,
            recipient_id=recipient,
            kind=NotificationKind.SESSION_UPDATE,
            reference_id=event.session_id,
            context={
                "side": side.value,
                "partner_name": names.get(partner),
                "program_name": _program_name(program),
                "starts_at": event.starts_at.isoformat(),
                "ends_at": event.ends_at.isoformat(),
                "previous_starts_at": event.previous_starts_at.isoformat(),
            },
            not_before=now,
            urgent=True,
            calendar=CalendarPart(event.ics, "REQUEST"),
            partner_id=partner,
        )
        for recipient, partner, side in pair_sides(session.mentor_id, session.mentee_id)
    ]


def session_cancelled(
    event: SessionCancelled,
    *,
    source_key: str,
    session: SessionInfo,
    program: ProgramInfo | None,
    names: Mapping[str, str],
    now: datetime,
) -> list[Notice]:
    """Both people get the cancellation (iCalendar CANCEL), so calendars drop the meeting."""
    return [
        Notice(
            source_key=source_key,
            recipient_id=recipient,
            kind=NotificationKind.SESSION_CANCELLED,
            reference_id=event.session_id,
            context={
                "side": side.value,
                "partner_name": names.get(partner),
                "program_name": _program_name(program),
                "starts_at": session.starts_at.isoformat(),
                "reason": event.reason.value,
            },
            not_before=now,
            urgent=True,
            calendar=CalendarPart(event.ics, "CANCEL"),
            partner_id=partner,
        )
        for recipient, partner, side in pair_sides(session.mentor_id, session.mentee_id)
    ]


def feedback_requested(
    event: FeedbackRequested,
    *,
    source_key: str,
    program: ProgramInfo | None,
    links: Links,
    overdue_after: timedelta,
    now: datetime,
) -> list[Notice]:
    """The request itself, and a reminder once it is overdue (dropped if answered)."""
    context: dict[str, str | int | list[str] | None] = {
        "side": event.side.value,
        "program_name": _program_name(program),
        "feedback_kind": event.kind.value,
        "milestone_week": event.milestone_week,
        "due_at": event.due_at.isoformat(),
        "link": links.feedback(event.request_id),
    }
    request = Notice(
        source_key=source_key,
        recipient_id=event.participant_id,
        kind=NotificationKind.FEEDBACK_REQUEST,
        reference_id=event.request_id,
        context=context,
        not_before=now,
    )
    overdue = Notice(
        source_key=f"feedback-overdue:{event.request_id}",
        recipient_id=event.participant_id,
        kind=NotificationKind.FEEDBACK_OVERDUE,
        reference_id=event.request_id,
        context=context,
        not_before=event.due_at + overdue_after,
        cancel_key=feedback_cancel_key(event.request_id),
    )
    return [request, overdue]


def pair_needs_attention(
    event: PairAtRisk | PairStalled,
    *,
    source_key: str,
    program: ProgramInfo | None,
    links: Links,
    now: datetime,
) -> list[Notice]:
    """The program's admins learn that a pair needs attention: a link, nothing confidential."""
    if program is None:
        return []
    kind = (
        NotificationKind.PAIR_AT_RISK
        if isinstance(event, PairAtRisk)
        else NotificationKind.PAIR_STALLED
    )
    return [
        Notice(
            source_key=source_key,
            recipient_id=admin_id,
            kind=kind,
            reference_id=event.pair_id,
            context={
                "program_name": program.name,
                "pair_id": event.pair_id,
                "link": links.admin_pair(event.program_id, event.pair_id),
            },
            not_before=now,
        )
        for admin_id in program.admin_ids
    ]
