"""What each consumed event tells whom: one function per event, returning notices.

Contexts hold only what the message needs. Admin notices (a pair at risk or stalled)
carry the program's name, the pair id and a link: never names, scores, ratings or
signals, because what is said in a pair stays in the pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from schemas.feedback import FeedbackRequested, PairAtRisk
from schemas.notifications import NotificationKind
from schemas.pairs import PairEnded, PairEndReason, PairFormed, PairProposed
from schemas.sessions import PairStalled, SessionCancelled, SessionRescheduled, SessionScheduled
from services.notifications.domain.planning import (
    CalendarPart,
    Context,
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


@dataclass(frozen=True)
class PairAudience:
    """The two people of a pair, as one event addresses them."""

    mentor_id: str
    mentee_id: str
    source_key: str
    program: ProgramInfo | None
    names: Mapping[str, str]
    now: datetime

    def tell_both(
        self,
        kind: NotificationKind,
        reference_id: str,
        context: Context,
        *,
        calendar: CalendarPart | None = None,
    ) -> list[Notice]:
        """One notice per side: the shared ``context`` plus side, partner and program."""
        return [
            Notice(
                source_key=self.source_key,
                recipient_id=recipient,
                kind=kind,
                reference_id=reference_id,
                context={
                    "side": side.value,
                    "partner_name": self.names.get(partner),
                    "program_name": _program_name(self.program),
                    **context,
                },
                not_before=self.now,
                urgent=calendar is not None,
                calendar=calendar,
                partner_id=partner,
            )
            for recipient, partner, side in pair_sides(self.mentor_id, self.mentee_id)
        ]

    def titles(self, keys: Sequence[str]) -> list[str]:
        """Catalogue titles of topic keys (the keys when the program is unknown)."""
        return self.program.titles(keys) if self.program else list(keys)


def pair_proposed(event: PairProposed, audience: PairAudience, *, links: Links) -> list[Notice]:
    """Both people are asked to accept the proposed pair."""
    context: Context = {
        "topics": audience.titles(event.topics),
        "expires_at": event.expires_at.isoformat(),
        "link": links.pair(event.pair_id),
    }
    return audience.tell_both(NotificationKind.PAIR_PROPOSED, event.pair_id, context)


def pair_formed(
    event: PairFormed, audience: PairAudience, *, emails: Mapping[str, str], links: Links
) -> list[Notice]:
    """Both people are introduced to each other (name and e-mail address)."""
    notices = audience.tell_both(
        NotificationKind.PAIR_FORMED,
        event.pair_id,
        {"topics": audience.titles(event.topics), "link": links.pair(event.pair_id)},
    )
    return [
        replace(n, context={**n.context, "partner_email": emails.get(n.partner_id or "")})
        for n in notices
    ]


def pair_ended(event: PairEnded, audience: PairAudience) -> list[Notice]:
    """Both people learn the pair ended, without blame."""
    context: Context = {"ending": _ENDING_TONE[event.reason]}
    return audience.tell_both(NotificationKind.PAIR_ENDED, event.pair_id, context)


def session_scheduled(event: SessionScheduled, audience: PairAudience) -> list[Notice]:
    """Both people get the invite, with the iCalendar REQUEST attached."""
    context: Context = {
        "starts_at": event.starts_at.isoformat(),
        "ends_at": event.ends_at.isoformat(),
        "sequence": event.sequence,
        "agenda": audience.titles(event.agenda),
    }
    calendar = CalendarPart(event.ics, "REQUEST")
    return audience.tell_both(
        NotificationKind.SESSION_INVITE, event.session_id, context, calendar=calendar
    )


def session_rescheduled(event: SessionRescheduled, audience: PairAudience) -> list[Notice]:
    """Both people get the updated invite (iCalendar REQUEST with a higher SEQUENCE)."""
    context: Context = {
        "starts_at": event.starts_at.isoformat(),
        "ends_at": event.ends_at.isoformat(),
        "previous_starts_at": event.previous_starts_at.isoformat(),
    }
    calendar = CalendarPart(event.ics, "REQUEST")
    return audience.tell_both(
        NotificationKind.SESSION_UPDATE, event.session_id, context, calendar=calendar
    )


def session_cancelled(
    event: SessionCancelled, audience: PairAudience, *, session: SessionInfo
) -> list[Notice]:
    """Both people get the cancellation (iCalendar CANCEL), so calendars drop the meeting."""
    context: Context = {"starts_at": session.starts_at.isoformat(), "reason": event.reason.value}
    calendar = CalendarPart(event.ics, "CANCEL")
    return audience.tell_both(
        NotificationKind.SESSION_CANCELLED, event.session_id, context, calendar=calendar
    )


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
    context: Context = {
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
