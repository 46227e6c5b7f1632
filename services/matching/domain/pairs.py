"""The pair aggregate: a proposal that both people accept becomes a formed pair.

State machine (every transition returns the new pair and the events it causes)::

    proposed --both sides accept--> formed --end--> ended
        |
        +--decline / expire / veto--> declined

Declined and ended are final. A combination (mentor, mentee) is proposed at most once
in a program: a declined or ended pair is never proposed again (voluntary participation,
no-fault exit). Accepting, declining or ending twice changes nothing and causes no
event, so a redelivered or replayed command is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from schemas.base import EventData
from schemas.pairs import (
    DeclineReason,
    PairAccepted,
    PairDeclined,
    PairEnded,
    PairEndReason,
    PairFormed,
    PairProposed,
    ScoreFactor,
)
from schemas.primitives import PairingMode, PairSide
from services.matching.domain.model import PlannedPair


class PairStatus(StrEnum):
    """Where a pair is in its life."""

    PROPOSED = "proposed"
    FORMED = "formed"
    DECLINED = "declined"
    ENDED = "ended"


OPEN_STATUSES = frozenset({PairStatus.PROPOSED, PairStatus.FORMED})


class PairRuleError(Exception):
    """A command that the pair's rules refuse (the HTTP layer answers 4xx)."""


class NotAPartyToThePair(PairRuleError):
    """The person is neither the mentor nor the mentee of the pair."""


class PairNotOpen(PairRuleError):
    """The pair was already declined or ended."""


class PairAlreadyFormed(PairRuleError):
    """A formed pair cannot be declined (it can be ended)."""


class PairNotFormed(PairRuleError):
    """Only a formed pair can be ended (a proposal is declined instead)."""


@dataclass(frozen=True, slots=True)
class Pair:
    """A proposed, formed, declined or ended pair of one program."""

    pair_id: str
    program_id: str
    mentor_id: str
    mentee_id: str
    status: PairStatus
    mode: PairingMode
    score: float
    explanation: tuple[ScoreFactor, ...]
    topics: tuple[str, ...]
    proposed_at: datetime
    expires_at: datetime
    run_id: str | None = None
    proposed_by: str | None = None
    mentor_accepted_at: datetime | None = None
    mentee_accepted_at: datetime | None = None
    formed_at: datetime | None = None
    closed_at: datetime | None = None
    close_reason: str | None = None
    closed_by: str | None = None
    at_risk_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        """Proposed or formed: the two people are taken."""
        return self.status in OPEN_STATUSES

    def side_of(self, participant_id: str) -> PairSide | None:
        """The side ``participant_id`` is on, or None when not a party to the pair."""
        if participant_id == self.mentor_id:
            return PairSide.MENTOR
        if participant_id == self.mentee_id:
            return PairSide.MENTEE
        return None

    def involves(self, participant_id: str) -> bool:
        """True when ``participant_id`` is the mentor or the mentee."""
        return self.side_of(participant_id) is not None

    def accepted_by(self, side: PairSide) -> bool:
        """True when ``side`` has accepted."""
        accepted = self.mentor_accepted_at if side is PairSide.MENTOR else self.mentee_accepted_at
        return accepted is not None


@dataclass(frozen=True, slots=True)
class Transition:
    """The result of a command on a pair: its new state and the events caused."""

    pair: Pair
    events: tuple[EventData, ...] = ()

    @property
    def changed(self) -> bool:
        """True when the command changed the pair (a repeated command does not)."""
        return bool(self.events)

    def without(self, kind: type[EventData]) -> tuple[EventData, ...]:
        """The events caused, except those of type ``kind``.

        A consumed PairAccepted already is the announcement: applying it emits only
        its consequences (PairFormed), not the same fact again.
        """
        return tuple(e for e in self.events if not isinstance(e, kind))


def propose(
    proposal: PlannedPair,
    *,
    pair_id: str,
    program_id: str,
    mode: PairingMode,
    at: datetime,
    acceptance_timeout: timedelta,
    run_id: str | None = None,
    proposed_by: str | None = None,
) -> Transition:
    """A new proposal; a mentee asking for a mentor (self-match) has accepted already."""
    pair = Pair(
        pair_id=pair_id,
        program_id=program_id,
        mentor_id=proposal.mentor_id,
        mentee_id=proposal.mentee_id,
        status=PairStatus.PROPOSED,
        mode=mode,
        score=proposal.score,
        explanation=proposal.explanation,
        topics=proposal.topics,
        proposed_at=at,
        expires_at=at + acceptance_timeout,
        run_id=run_id,
        proposed_by=proposed_by,
    )
    proposed = Transition(pair, (proposal_event(pair),))
    if mode is PairingMode.SELF_MATCH and proposed_by == proposal.mentee_id:
        accepted = accept(pair, participant_id=proposal.mentee_id, at=at)
        return Transition(accepted.pair, proposed.events + accepted.events)
    return proposed


def proposal_event(pair: Pair) -> PairProposed:
    """The PairProposed announcing ``pair``."""
    return PairProposed(
        pair_id=pair.pair_id,
        program_id=pair.program_id,
        mentor_id=pair.mentor_id,
        mentee_id=pair.mentee_id,
        score=pair.score,
        explanation=list(pair.explanation),
        topics=list(pair.topics),
        run_id=pair.run_id,
        mode=pair.mode,
        proposed_by=pair.proposed_by,
        expires_at=pair.expires_at,
    )


def accept(pair: Pair, *, participant_id: str, at: datetime) -> Transition:
    """``participant_id`` accepts; when both sides have, the pair is formed."""
    side = _side(pair, participant_id)
    if pair.status is PairStatus.FORMED or pair.accepted_by(side):
        return Transition(pair)
    _require_open(pair)
    if side is PairSide.MENTOR:
        accepted = replace(pair, mentor_accepted_at=at)
    else:
        accepted = replace(pair, mentee_accepted_at=at)
    event = PairAccepted(
        pair_id=pair.pair_id, program_id=pair.program_id, participant_id=participant_id, side=side
    )
    if not (accepted.accepted_by(PairSide.MENTOR) and accepted.accepted_by(PairSide.MENTEE)):
        return Transition(accepted, (event,))
    formed = replace(accepted, status=PairStatus.FORMED, formed_at=at)
    return Transition(formed, (event, _formed_event(formed)))


def _formed_event(pair: Pair) -> PairFormed:
    return PairFormed(
        pair_id=pair.pair_id,
        program_id=pair.program_id,
        mentor_id=pair.mentor_id,
        mentee_id=pair.mentee_id,
        topics=list(pair.topics),
        mode=pair.mode,
        score=pair.score,
    )


def decline(pair: Pair, *, reason: DeclineReason, by: str | None, at: datetime) -> Transition:
    """The proposal is declined (by a side), expired (by nobody) or vetoed (by an admin)."""
    if pair.status is PairStatus.DECLINED:
        return Transition(pair)
    if reason is DeclineReason.DECLINED and by is not None:
        _side(pair, by)
    if pair.status is PairStatus.FORMED:
        raise PairAlreadyFormed(f"pair {pair.pair_id} is formed: end it instead of declining")
    _require_open(pair)
    declined = _closed(pair, PairStatus.DECLINED, reason=reason.value, by=by, at=at)
    event = PairDeclined(
        pair_id=pair.pair_id, program_id=pair.program_id, reason=reason, declined_by=by
    )
    return Transition(declined, (event,))


def expire(pair: Pair, *, at: datetime) -> Transition:
    """Decline the proposal as ``expired`` when nobody accepted it in time."""
    if pair.status is not PairStatus.PROPOSED or at < pair.expires_at:
        return Transition(pair)
    return decline(pair, reason=DeclineReason.EXPIRED, by=None, at=at)


def end(pair: Pair, *, reason: PairEndReason, by: str | None, at: datetime) -> Transition:
    """A formed pair ends; its two people are free again and never re-paired together."""
    if pair.status is PairStatus.ENDED:
        return Transition(pair)
    if pair.status is not PairStatus.FORMED:
        raise PairNotFormed(f"pair {pair.pair_id} is {pair.status}: only a formed pair ends")
    ended = _closed(pair, PairStatus.ENDED, reason=reason.value, by=by, at=at)
    event = PairEnded(
        pair_id=pair.pair_id,
        program_id=pair.program_id,
        mentor_id=pair.mentor_id,
        mentee_id=pair.mentee_id,
        reason=reason,
        ended_by=by,
    )
    return Transition(ended, (event,))


def withdraw(
    pair: Pair,
    *,
    end_reason: PairEndReason,
    decline_reason: DeclineReason,
    by: str | None,
    at: datetime,
) -> Transition:
    """Close whatever is open: end a formed pair, decline a proposal (leaving, closing)."""
    if pair.status is PairStatus.FORMED:
        return end(pair, reason=end_reason, by=by, at=at)
    if pair.status is PairStatus.PROPOSED:
        declined_by = by if decline_reason is not DeclineReason.EXPIRED else None
        return decline(pair, reason=decline_reason, by=declined_by, at=at)
    return Transition(pair)


def flag_at_risk(pair: Pair, *, at: datetime) -> Pair:
    """Remember that the pair was flagged at risk (for admins); no event of its own."""
    if not pair.is_open or pair.at_risk_at is not None:
        return pair
    return replace(pair, at_risk_at=at)


def excluded_combinations(
    pairs: Sequence[tuple[str, str]], vetoes: Sequence[tuple[str, str]]
) -> frozenset[tuple[str, str]]:
    """(mentor, mentee) combinations never to propose: every pair ever made, and vetoes.

    The engine checks each combination in both orientations: two people who declined or
    ended a pair are not re-paired with the roles swapped either.
    """
    return frozenset({*pairs, *vetoes})


def _side(pair: Pair, participant_id: str) -> PairSide:
    side = pair.side_of(participant_id)
    if side is None:
        raise NotAPartyToThePair(f"{participant_id} is not a party to pair {pair.pair_id}")
    return side


def _require_open(pair: Pair) -> None:
    if not pair.is_open:
        raise PairNotOpen(f"pair {pair.pair_id} is {pair.status} ({pair.close_reason})")


def _closed(pair: Pair, status: PairStatus, *, reason: str, by: str | None, at: datetime) -> Pair:
    return replace(pair, status=status, closed_at=at, close_reason=reason, closed_by=by)
