"""The pair aggregate's lifecycle rules: propose, accept, form, decline, expire, end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.pairs import (
    DeclineReason,
    PairAccepted,
    PairDeclined,
    PairEnded,
    PairEndReason,
    PairFormed,
    PairProposed,
    ScoreFactor,
    ScoreFactorName,
)
from schemas.primitives import PairingMode, PairSide
from services.matching.domain import pairs
from services.matching.domain.model import PlannedPair
from services.matching.domain.pairs import Pair, PairStatus

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)
FACTOR = ScoreFactor(factor=ScoreFactorName.SKILL_COVERAGE, weight=0.4, value=0.5, contribution=0.2)
PROPOSAL = PlannedPair("mentor-1", "mentee-1", 0.2, (FACTOR,), ("social-media",))


def proposed(mode: PairingMode = PairingMode.BATCH, by: str | None = None) -> pairs.Transition:
    return pairs.propose(
        PROPOSAL,
        pair_id="pair-1",
        program_id="prg-1",
        mode=mode,
        at=T0,
        acceptance_timeout=timedelta(hours=72),
        run_id="run-1" if mode is PairingMode.BATCH else None,
        proposed_by=by,
    )


def formed() -> Pair:
    pair = proposed().pair
    pair = pairs.accept(pair, participant_id="mentor-1", at=T0).pair
    return pairs.accept(pair, participant_id="mentee-1", at=LATER).pair


def test_a_proposal_announces_the_pair_with_its_explanation_and_deadline() -> None:
    transition = proposed()
    assert transition.pair.status is PairStatus.PROPOSED
    assert transition.pair.expires_at == T0 + timedelta(hours=72)
    (event,) = transition.events
    assert isinstance(event, PairProposed)
    assert event.explanation == [FACTOR] and event.topics == ["social-media"]
    assert event.run_id == "run-1" and event.expires_at == transition.pair.expires_at


def test_a_self_match_request_counts_as_the_mentees_acceptance() -> None:
    transition = proposed(PairingMode.SELF_MATCH, by="mentee-1")
    assert [type(e) for e in transition.events] == [PairProposed, PairAccepted]
    assert transition.pair.accepted_by(PairSide.MENTEE)
    assert not transition.pair.accepted_by(PairSide.MENTOR)
    assert transition.pair.status is PairStatus.PROPOSED


def test_a_manual_pair_needs_both_acceptances() -> None:
    transition = proposed(PairingMode.MANUAL, by="admin-1")
    assert [type(e) for e in transition.events] == [PairProposed]
    assert not transition.pair.accepted_by(PairSide.MENTEE)


def test_one_acceptance_does_not_form_the_pair() -> None:
    transition = pairs.accept(proposed().pair, participant_id="mentee-1", at=LATER)
    assert transition.pair.status is PairStatus.PROPOSED
    (event,) = transition.events
    assert isinstance(event, PairAccepted) and event.side is PairSide.MENTEE


def test_both_acceptances_form_the_pair() -> None:
    first = pairs.accept(proposed().pair, participant_id="mentor-1", at=T0)
    second = pairs.accept(first.pair, participant_id="mentee-1", at=LATER)
    assert second.pair.status is PairStatus.FORMED and second.pair.formed_at == LATER
    accepted, formed_event = second.events
    assert isinstance(accepted, PairAccepted) and isinstance(formed_event, PairFormed)
    assert formed_event.topics == ["social-media"] and formed_event.score == 0.2
    assert second.without(PairAccepted) == (formed_event,)


def test_accepting_twice_changes_nothing() -> None:
    first = pairs.accept(proposed().pair, participant_id="mentor-1", at=T0)
    again = pairs.accept(first.pair, participant_id="mentor-1", at=LATER)
    assert again.pair == first.pair and not again.changed


def test_accepting_a_formed_pair_changes_nothing() -> None:
    pair = formed()
    assert not pairs.accept(pair, participant_id="mentee-1", at=LATER).changed


def test_a_stranger_cannot_accept() -> None:
    with pytest.raises(pairs.NotAPartyToThePair):
        pairs.accept(proposed().pair, participant_id="someone-else", at=T0)


def test_a_declined_proposal_cannot_be_accepted() -> None:
    declined = pairs.decline(
        proposed().pair, reason=DeclineReason.DECLINED, by="mentee-1", at=T0
    ).pair
    with pytest.raises(pairs.PairNotOpen):
        pairs.accept(declined, participant_id="mentor-1", at=LATER)


def test_a_decline_closes_the_proposal() -> None:
    transition = pairs.decline(
        proposed().pair, reason=DeclineReason.DECLINED, by="mentor-1", at=LATER
    )
    assert transition.pair.status is PairStatus.DECLINED and not transition.pair.is_open
    assert transition.pair.close_reason == "declined" and transition.pair.closed_by == "mentor-1"
    (event,) = transition.events
    assert isinstance(event, PairDeclined) and event.declined_by == "mentor-1"


def test_declining_twice_changes_nothing() -> None:
    declined = pairs.decline(proposed().pair, reason=DeclineReason.DECLINED, by="mentee-1", at=T0)
    again = pairs.decline(declined.pair, reason=DeclineReason.DECLINED, by="mentee-1", at=LATER)
    assert not again.changed and again.pair == declined.pair


def test_a_stranger_cannot_decline_but_an_admin_can_veto() -> None:
    with pytest.raises(pairs.NotAPartyToThePair):
        pairs.decline(proposed().pair, reason=DeclineReason.DECLINED, by="stranger", at=T0)
    vetoed = pairs.decline(proposed().pair, reason=DeclineReason.VETOED, by="admin-1", at=T0)
    assert vetoed.pair.close_reason == "vetoed" and vetoed.pair.closed_by == "admin-1"


def test_a_formed_pair_cannot_be_declined() -> None:
    with pytest.raises(pairs.PairAlreadyFormed):
        pairs.decline(formed(), reason=DeclineReason.DECLINED, by="mentee-1", at=LATER)


def test_a_proposal_expires_only_at_its_deadline() -> None:
    pair = proposed().pair
    assert not pairs.expire(pair, at=pair.expires_at - timedelta(seconds=1)).changed
    expired = pairs.expire(pair, at=pair.expires_at)
    (event,) = expired.events
    assert isinstance(event, PairDeclined)
    assert event.reason is DeclineReason.EXPIRED and event.declined_by is None
    assert not pairs.expire(formed(), at=pair.expires_at + timedelta(days=9)).changed


def test_a_formed_pair_ends_once() -> None:
    ended = pairs.end(formed(), reason=PairEndReason.NO_FAULT_EXIT, by="mentor-1", at=LATER)
    assert ended.pair.status is PairStatus.ENDED
    (event,) = ended.events
    assert isinstance(event, PairEnded) and event.reason is PairEndReason.NO_FAULT_EXIT
    assert not pairs.end(ended.pair, reason=PairEndReason.COMPLETED, by=None, at=LATER).changed


def test_a_proposal_cannot_be_ended() -> None:
    with pytest.raises(pairs.PairNotFormed):
        pairs.end(proposed().pair, reason=PairEndReason.ADMIN_ENDED, by="admin-1", at=LATER)


def withdraw(pair: Pair) -> pairs.Transition:
    return pairs.withdraw(
        pair,
        end_reason=PairEndReason.PARTICIPANT_LEFT,
        decline_reason=DeclineReason.DECLINED,
        by="mentee-1",
        at=LATER,
    )


def test_withdraw_ends_formed_pairs_and_declines_proposals() -> None:
    ended, declined = withdraw(formed()), withdraw(proposed().pair)
    assert ended.pair.status is PairStatus.ENDED and ended.pair.close_reason == "participant_left"
    assert declined.pair.status is PairStatus.DECLINED
    assert not withdraw(ended.pair).changed


def test_at_risk_flag_is_kept_once_on_open_pairs() -> None:
    flagged = pairs.flag_at_risk(formed(), at=LATER)
    assert flagged.at_risk_at == LATER
    assert pairs.flag_at_risk(flagged, at=LATER + timedelta(days=1)) == flagged


def test_every_pair_ever_made_and_every_veto_is_excluded() -> None:
    excluded = pairs.excluded_combinations([("a", "b")], [("c", "d")])
    assert excluded == frozenset({("a", "b"), ("c", "d")})
