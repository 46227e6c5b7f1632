"""The matching handlers on the in-memory store: lifecycle, modes and refusals (no I/O).

The same flows run end to end through Kafka and PostgreSQL in
``test_matching_service_integration.py``; here every rule is exercised quickly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from matching_service_fake import InMemoryMatchingRepository
from matching_service_fixtures import mentee, mentor, program_definition
from prometheus_client import REGISTRY

from schemas.envelope import CloudEvent
from schemas.feedback import HealthSignal, PairAtRisk, RiskAction
from schemas.pairs import DeclineReason, PairAccepted, PairDeclined, PairEnded, PairEndReason
from schemas.participants import (
    LeaveReason,
    ParticipantForgotten,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantScreened,
    ScreeningOutcome,
    TrainingCompleted,
)
from schemas.primitives import PairingMode, PairSide
from schemas.programs import ProgramClosedReason
from servicekit.clock import ManualClock
from servicekit.runtime import ServiceContext
from servicekit.timers import Wake
from servicekit.unit_of_work import Rejected, TransactionScope, UnitOfWork, run_committed
from services.matching import bootstrap, handlers
from services.matching.adapters.offload import BIG
from services.matching.adapters.repository import POOL_CHANGED_CHANNEL
from services.matching.domain import pairs, participants, programs, staging
from services.matching.domain.audit import AdminActionKind, Veto
from services.matching.domain.model import Candidate, MatchPlan, PlannedPair
from services.matching.domain.pairs import Pair, PairStatus
from services.matching.settings import MatchingSettings

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


class World:
    """The in-memory store, a manual clock, and every event emitted so far."""

    def __init__(self) -> None:
        self.repo = InMemoryMatchingRepository()
        self.clock = ManualClock(T0)
        self.events: list[CloudEvent] = []

    def uow(self) -> UnitOfWork:
        return UnitOfWork(cast(Any, None), source="/test", region="test", clock=self.clock)

    async def command(self, step: Any, *args: Any, **kwargs: Any) -> Any:
        uow = self.uow()
        result = await step(*args, uow=uow, repo=self.repo, **kwargs)
        self.events += [event for _, event in uow.emitted]
        return result

    async def deliver(self, handler: Any, data: Any) -> None:
        uow = self.uow()
        await handler(data, uow, self.repo)
        self.events += [event for _, event in uow.emitted]

    async def tick(self, timer: Any) -> None:
        uow = self.uow()
        await timer(uow, self.repo)
        self.events += [event for _, event in uow.emitted]

    def emitted(self) -> list[str]:
        """Names of the events emitted since the last call."""
        names = [e.event_name for e in self.events]
        self.events = []
        return names

    async def join(self, *profiles: ParticipantJoined) -> None:
        for profile in profiles:
            await self.deliver(handlers.record_participant_joined, profile)

    async def open_proposals(self, participant_id: str) -> list[Pair]:
        return [
            p
            for p in await self.repo.open_pairs(participant_id=participant_id)
            if p.status is PairStatus.PROPOSED
        ]


async def a_world(**program: Any) -> World:
    world = World()
    await world.command(handlers.create_program, program_definition(**program), by="admin-1")
    world.emitted()
    return world


async def proposed_pair(world: World) -> Pair:
    """m-1 and e-1 joined a continuous program and the timer proposed them."""
    await world.join(mentor("m-1"), mentee("e-1"))
    await world.tick(handlers.plan_continuous)
    assert world.emitted() == ["PairProposed", "MatchRunCompleted"]
    (pair,) = await world.open_proposals("e-1")
    return pair


async def formed_pair(world: World) -> Pair:
    pair = await proposed_pair(world)
    await world.command(handlers.accept_pair, pair.pair_id, participant_id="m-1")
    await world.command(handlers.accept_pair, pair.pair_id, participant_id="e-1")
    world.emitted()
    formed = await world.repo.get_pair(pair_id=pair.pair_id)
    assert formed is not None and formed.status is PairStatus.FORMED
    return formed


# --- participants -----------------------------------------------------------------------


async def test_a_join_adds_the_participant_and_changes_the_pool() -> None:
    world = await a_world()
    await world.join(mentor("m-1"))
    assert await world.repo.get_participant(program_id="prg-1", participant_id="m-1")
    assert list(await world.repo.changed_pools(mode=PairingMode.CONTINUOUS)) == ["prg-1"]


async def test_a_join_to_an_unknown_or_closed_program_is_rejected() -> None:
    world = await a_world()
    with pytest.raises(Rejected, match="unknown program"):
        await world.join(mentor("m-1", program_id="prg-x"))
    await world.command(
        handlers.close_program, "prg-1", reason=ProgramClosedReason.CANCELLED, by="admin-1"
    )
    with pytest.raises(Rejected, match="closed"):
        await world.join(mentor("m-1"))


async def test_a_join_command_only_emits_and_a_second_join_is_refused() -> None:
    world = await a_world()
    await world.command(handlers.join_program, mentor("m-1"))
    assert world.emitted() == ["ParticipantJoined"]
    assert await world.repo.get_participant(program_id="prg-1", participant_id="m-1") is None
    await world.join(mentor("m-1"))
    with pytest.raises(participants.AlreadyJoined):
        await world.command(handlers.join_program, mentor("m-1"))


async def test_a_screening_of_someone_who_never_joined_is_rejected() -> None:
    world = await a_world()
    with pytest.raises(Rejected):
        await world.deliver(
            handlers.record_participant_left,
            ParticipantLeft(
                participant_id="ghost",
                program_id="prg-1",
                reason=LeaveReason.VOLUNTARY,
                left_at=T0,
            ),
        )


# --- continuous mode and the pair lifecycle ---------------------------------------------


async def test_continuous_mode_proposes_new_joiners_once() -> None:
    world = await a_world()
    pair = await proposed_pair(world)
    assert pair.mode is PairingMode.CONTINUOUS and pair.run_id is not None
    await world.tick(handlers.plan_continuous)
    assert world.emitted() == []
    assert await world.repo.changed_pools(mode=PairingMode.CONTINUOUS) == {}


async def test_both_acceptances_form_the_pair() -> None:
    world = await a_world()
    pair = await proposed_pair(world)
    await world.command(handlers.accept_pair, pair.pair_id, participant_id="m-1")
    assert world.emitted() == ["PairAccepted"]
    await world.command(handlers.accept_pair, pair.pair_id, participant_id="e-1")
    assert world.emitted() == ["PairAccepted", "PairFormed"]
    await world.command(handlers.accept_pair, pair.pair_id, participant_id="e-1")
    assert world.emitted() == []


async def test_a_consumed_acceptance_emits_only_its_consequence() -> None:
    world = await a_world()
    pair = await proposed_pair(world)
    for who, side in (("m-1", PairSide.MENTOR), ("e-1", PairSide.MENTEE)):
        accepted = PairAccepted(
            pair_id=pair.pair_id, program_id="prg-1", participant_id=who, side=side
        )
        await world.deliver(handlers.record_pair_accepted, accepted)
    assert world.emitted() == ["PairFormed"]
    await world.deliver(handlers.record_pair_accepted, accepted)
    assert world.emitted() == []


async def test_a_consumed_acceptance_that_contradicts_the_pair_is_rejected() -> None:
    world = await a_world()
    pair = await proposed_pair(world)
    wrong_side = PairAccepted(
        pair_id=pair.pair_id, program_id="prg-1", participant_id="m-1", side=PairSide.MENTEE
    )
    with pytest.raises(Rejected):
        await world.deliver(handlers.record_pair_accepted, wrong_side)
    unknown = wrong_side.model_copy(update={"pair_id": "pair-nope"})
    with pytest.raises(Rejected):
        await world.deliver(handlers.record_pair_accepted, unknown)


async def test_a_decline_frees_both_and_the_next_proposal_is_different() -> None:
    world = await a_world()
    pair = await proposed_pair(world)
    await world.join(mentor("m-2"))
    await world.tick(handlers.plan_continuous)
    assert world.emitted() == []  # e-1 is taken by a proposal, m-2 has nobody to mentor
    await world.command(handlers.decline_pair, pair.pair_id, participant_id="e-1")
    assert world.emitted() == ["PairDeclined"]
    await world.tick(handlers.plan_continuous)
    assert world.emitted() == ["PairProposed", "MatchRunCompleted"]
    (second,) = await world.open_proposals("e-1")
    assert second.mentor_id == "m-2"


async def test_a_consumed_decline_of_a_formed_pair_is_rejected() -> None:
    world = await a_world()
    pair = await formed_pair(world)
    declined = PairDeclined(
        pair_id=pair.pair_id, program_id="prg-1", reason=DeclineReason.DECLINED, declined_by="e-1"
    )
    with pytest.raises(Rejected, match="formed"):
        await world.deliver(handlers.record_pair_declined, declined)


async def test_an_unanswered_proposal_expires_and_frees_the_two() -> None:
    world = await a_world(acceptance_timeout_hours=24)
    pair = await proposed_pair(world)
    world.clock.advance(timedelta(hours=23))
    await world.tick(handlers.expire_proposals)
    assert world.emitted() == []
    world.clock.advance(timedelta(hours=1))
    await world.tick(handlers.expire_proposals)
    assert world.emitted() == ["PairDeclined"]
    expired = await world.repo.get_pair(pair_id=pair.pair_id)
    assert expired is not None and expired.close_reason == "expired"
    people = {c.participant_id: c for c in await world.repo.candidates(program_id="prg-1")}
    assert people["e-1"].needs_mentor and people["m-1"].mentor_slots == 1


async def test_leaving_ends_the_pair_and_the_partner_is_free_again() -> None:
    world = await a_world()
    pair = await formed_pair(world)
    left = ParticipantLeft(
        participant_id="m-1", program_id="prg-1", reason=LeaveReason.VOLUNTARY, left_at=T0
    )
    await world.deliver(handlers.record_participant_left, left)
    assert world.emitted() == ["PairEnded"]
    ended = await world.repo.get_pair(pair_id=pair.pair_id)
    assert ended is not None and ended.close_reason == "participant_left"
    people = await world.repo.candidates(program_id="prg-1")
    assert [c.participant_id for c in people] == ["e-1"] and people[0].needs_mentor


def ended(pair: Pair, reason: PairEndReason, *, by: str | None = None) -> PairEnded:
    """The PairEnded of ``pair`` (m-1 mentoring e-1) as another system would send it."""
    return PairEnded(
        pair_id=pair.pair_id,
        program_id=pair.program_id,
        mentor_id="m-1",
        mentee_id="e-1",
        reason=reason,
        ended_by=by,
    )


async def test_a_pair_ended_elsewhere_frees_both_and_the_mentee_is_rematched() -> None:
    world = await a_world()
    pair = await formed_pair(world)
    await world.join(mentor("m-2"))
    await world.deliver(
        handlers.record_pair_ended, ended(pair, PairEndReason.NO_FAULT_EXIT, by="e-1")
    )
    assert world.emitted() == []  # the event is the announcement
    await world.tick(handlers.plan_continuous)
    assert world.emitted() == ["PairProposed", "MatchRunCompleted"]
    (rematch,) = await world.open_proposals("e-1")
    assert rematch.mentor_id == "m-2"  # never m-1 again
    people = {c.participant_id: c for c in await world.repo.candidates(program_id="prg-1")}
    assert people["m-1"].mentor_slots == 1  # m-1's place is free for someone else


def at_risk(pair: Pair, action: RiskAction) -> PairAtRisk:
    return PairAtRisk(
        pair_id=pair.pair_id,
        program_id=pair.program_id,
        mentor_id=pair.mentor_id,
        mentee_id=pair.mentee_id,
        score=0.2,
        threshold=0.4,
        signals=[HealthSignal.STALLED],
        recommended_action=action,
    )


async def test_an_at_risk_pair_is_rematched_when_the_program_matches_continuously() -> None:
    world = await a_world()
    pair = await formed_pair(world)
    await world.join(mentor("m-2"))
    await world.deliver(handlers.record_pair_at_risk, at_risk(pair, RiskAction.REMATCH))
    assert world.emitted() == ["PairEnded"]
    await world.tick(handlers.plan_continuous)
    assert world.emitted() == ["PairProposed", "MatchRunCompleted"]
    (rematch,) = await world.open_proposals("e-1")
    assert rematch.mentor_id == "m-2"


async def test_an_at_risk_pair_is_only_flagged_for_a_check_in_or_without_continuous() -> None:
    world = await a_world()
    pair = await formed_pair(world)
    await world.deliver(handlers.record_pair_at_risk, at_risk(pair, RiskAction.CHECK_IN))
    assert world.emitted() == []
    flagged = await world.repo.get_pair(pair_id=pair.pair_id)
    assert flagged is not None and flagged.status is PairStatus.FORMED and flagged.at_risk_at
    definition = program_definition(pairing_modes=[PairingMode.BATCH, PairingMode.MANUAL])
    await world.command(handlers.update_program, definition, by="admin-1")
    await world.deliver(handlers.record_pair_at_risk, at_risk(pair, RiskAction.REMATCH))
    assert world.emitted() == ["ProgramUpdated"]


# --- self-match, manual pairs, vetoes ---------------------------------------------------


async def test_a_self_match_request_keeps_the_constraints() -> None:
    world = await a_world()
    await world.join(mentor("m-1"), mentee("e-1"), mentor("m-senior", grade=12))
    with pytest.raises(handlers.PairNotAllowed) as refused:
        await world.command(
            handlers.request_self_match, "prg-1", mentee_id="e-1", mentor_id="m-senior"
        )
    assert refused.value.violations == ["grade_gap"]
    pair = await world.command(
        handlers.request_self_match, "prg-1", mentee_id="e-1", mentor_id="m-1"
    )
    assert world.emitted() == ["PairProposed", "PairAccepted"]
    assert pair.mode is PairingMode.SELF_MATCH and pair.proposed_by == "e-1"
    await world.command(handlers.accept_pair, pair.pair_id, participant_id="m-1")
    assert world.emitted() == ["PairAccepted", "PairFormed"]


async def test_a_named_mentor_may_decline_a_self_match_request() -> None:
    world = await a_world()
    await world.join(mentor("m-1"), mentee("e-1"))
    asked = await world.command(
        handlers.request_self_match, "prg-1", mentee_id="e-1", mentor_id="m-1"
    )
    with pytest.raises(pairs.NotAPartyToThePair):
        await world.command(handlers.decline_pair, asked.pair_id, participant_id="m-2")
    world.emitted()
    await world.command(handlers.decline_pair, asked.pair_id, participant_id="m-1")
    assert world.emitted() == ["PairDeclined"]
    people = {c.participant_id: c for c in await world.repo.candidates(program_id="prg-1")}
    assert people["e-1"].needs_mentor and people["m-1"].mentor_slots == 1
    with pytest.raises(handlers.PairNotAllowed) as again:
        await world.command(handlers.request_self_match, "prg-1", mentee_id="e-1", mentor_id="m-1")
    assert again.value.violations == ["previously_excluded"]


async def test_a_manual_pair_is_audited_and_needs_the_mode() -> None:
    world = await a_world()
    await world.join(mentor("m-1"), mentee("e-1"))
    pair = await world.command(
        handlers.assign_pair, "prg-1", mentor_id="m-1", mentee_id="e-1", by="admin-1", reason="ok"
    )
    assert world.emitted() == ["PairProposed"] and pair.proposed_by == "admin-1"
    (entry,) = [a for a in world.repo.audit if a.action is AdminActionKind.MANUAL_PAIR]
    assert entry.actor_id == "admin-1" and entry.reason == "ok" and entry.pair_id == pair.pair_id
    batch_only = await a_world(pairing_modes=[PairingMode.BATCH])
    await batch_only.join(mentor("m-1"), mentee("e-1"))
    with pytest.raises(programs.ModeNotAllowed):
        await batch_only.command(
            handlers.assign_pair, "prg-1", mentor_id="m-1", mentee_id="e-1", by="a", reason="x"
        )


async def test_a_veto_withdraws_the_proposal_and_forbids_the_pair_for_good() -> None:
    world = await a_world()
    pair = await proposed_pair(world)
    veto = Veto("prg-1", "m-1", "e-1", "admin-1", "same team in practice", T0)
    withdrawn = await world.command(handlers.veto_combination, veto)
    assert [p.close_reason for p in withdrawn] == ["vetoed"]
    assert world.emitted() == ["PairDeclined"]
    assert await world.command(handlers.veto_combination, veto) == []
    with pytest.raises(handlers.PairNotAllowed) as refused:
        await world.command(
            handlers.assign_pair, "prg-1", mentor_id="m-1", mentee_id="e-1", by="a", reason="x"
        )
    assert "previously_excluded" in refused.value.violations
    vetoed = await world.repo.get_pair(pair_id=pair.pair_id)
    assert vetoed is not None and vetoed.closed_by == "admin-1"
    assert [a.reason for a in world.repo.audit if a.action is AdminActionKind.VETO_COMBINATION] == [
        "same team in practice"
    ]


async def test_vetoing_a_closed_proposal_changes_and_records_nothing() -> None:
    world = await a_world()
    pair = await proposed_pair(world)
    await world.command(handlers.decline_pair, pair.pair_id, participant_id="e-1")
    world.emitted()
    again = await world.command(handlers.veto_pair, pair.pair_id, by="admin-1", reason="late")
    assert again.close_reason == "declined" and world.emitted() == []
    assert [a for a in world.repo.audit if a.action is AdminActionKind.VETO_PAIR] == []
    await world.join(mentor("m-2"))
    await world.tick(handlers.plan_continuous)
    (second,) = await world.open_proposals("e-1")
    await world.command(handlers.veto_pair, second.pair_id, by="admin-1", reason="conflict")
    (vetoed,) = [a for a in world.repo.audit if a.action is AdminActionKind.VETO_PAIR]
    assert vetoed.pair_id == second.pair_id and vetoed.reason == "conflict"


# --- batch runs -------------------------------------------------------------------------


async def test_a_dry_run_proposes_nothing_and_publishing_rechecks_the_plan() -> None:
    world = await a_world(pairing_modes=[PairingMode.BATCH])
    await world.join(mentor("m-1"), mentor("m-2"), mentee("e-1"), mentee("e-2"))
    snapshot = await handlers.load_pool("prg-1", PairingMode.BATCH, world.repo)
    run = await handlers.plan_run(snapshot, mode=PairingMode.BATCH, at=T0, by="admin-1")
    await world.command(handlers.stage_run, run, by="admin-1")
    assert world.emitted() == [] and len(run.plan.pairs) == 2
    left = ParticipantLeft(
        participant_id="e-2", program_id="prg-1", reason=LeaveReason.VOLUNTARY, left_at=T0
    )
    await world.deliver(handlers.record_participant_left, left)
    published = await world.command(handlers.publish_run, run.run_id, by="admin-1")
    assert world.emitted() == ["PairProposed", "MatchRunCompleted"]
    assert published.outcome is not None and len(published.outcome.proposed) == 1
    assert [d.reasons for d in published.outcome.dropped] == [("inactive",)]
    with pytest.raises(staging.RunNotStaged):
        await world.command(handlers.publish_run, run.run_id, by="admin-1")


async def test_closing_a_program_ends_pairs_and_withdraws_proposals() -> None:
    world = await a_world()
    formed = await formed_pair(world)
    await world.join(mentor("m-2"), mentee("e-2"))
    await world.tick(handlers.plan_continuous)
    world.emitted()
    await world.command(
        handlers.close_program, "prg-1", reason=ProgramClosedReason.CANCELLED, by="admin-1"
    )
    assert sorted(world.emitted()) == ["PairDeclined", "PairEnded", "ProgramClosed"]
    ended = await world.repo.get_pair(pair_id=formed.pair_id)
    assert ended is not None and ended.close_reason == "program_closed"
    (withdrawn,) = [p for p in world.repo.pairs.values() if p.status is PairStatus.DECLINED]
    assert withdrawn.close_reason == "program_closed" and withdrawn.closed_by == "admin-1"
    assert await world.repo.open_pairs(program_id="prg-1") == []


async def test_forgetting_someone_ends_their_pairs_and_erases_them() -> None:
    world = await a_world()
    pair = await formed_pair(world)
    forgotten = ParticipantForgotten(participant_id="e-1", requested_at=T0)
    await world.deliver(handlers.record_participant_forgotten, forgotten)
    assert world.emitted() == ["PairEnded", "ErasureCompleted"]
    erased = await world.repo.get_pair(pair_id=pair.pair_id)
    assert erased is not None and erased.mentee_id == f"erased:{pair.pair_id}"
    assert erased.status is PairStatus.ENDED and erased.close_reason == "participant_forgotten"
    ended_elsewhere = ended(pair, PairEndReason.PARTICIPANT_FORGOTTEN)
    await world.deliver(handlers.record_pair_ended, ended_elsewhere)  # our own event, back
    assert world.emitted() == []
    assert await world.repo.get_participant(program_id="prg-1", participant_id="e-1") is None
    people = {c.participant_id: c for c in await world.repo.candidates(program_id="prg-1")}
    assert people["m-1"].mentor_slots == 1


async def test_erasure_is_requested_for_a_participant_of_the_program_only() -> None:
    world = await a_world()
    await formed_pair(world)
    event = await world.command(handlers.request_erasure, "prg-1", "e-1", requested_by=None)
    assert world.emitted() == ["ParticipantForgotten"]
    assert event.subject == "e-1" and event.data["requested_by"] is None
    by_admin = await world.command(handlers.request_erasure, "prg-1", "m-1", requested_by="admin-1")
    assert by_admin.data["requested_by"] == "admin-1"
    with pytest.raises(handlers.UnknownResource):
        await world.command(handlers.request_erasure, "prg-1", "nobody", requested_by=None)
    with pytest.raises(handlers.UnknownResource):
        await world.command(handlers.request_erasure, "prg-other", "e-1", requested_by=None)


async def test_an_update_without_changes_emits_nothing() -> None:
    world = await a_world()
    program = await world.command(handlers.update_program, program_definition(), by="admin-1")
    assert world.emitted() == [] and program.revision == 1


class BrokenProgramStore(InMemoryMatchingRepository):
    """A store whose candidates of one program cannot be read (a bug, bad data)."""

    async def candidates(
        self, *, program_id: str, participant_ids: Any = None, free_only: bool = False
    ) -> list[Candidate]:
        if program_id == "prg-bad":
            raise RuntimeError("corrupt profile")
        return await super().candidates(
            program_id=program_id, participant_ids=participant_ids, free_only=free_only
        )


async def test_one_failing_program_does_not_stop_continuous_matching_of_the_others() -> None:
    world = World()
    world.repo = BrokenProgramStore()
    for program_id in ("prg-bad", "prg-good"):
        await world.command(handlers.create_program, program_definition(program_id), by="a")
        await world.join(mentor("m-1", program_id), mentee("e-1", program_id))
    world.emitted()
    await world.tick(handlers.plan_continuous)
    assert world.emitted() == ["PairProposed", "MatchRunCompleted"]
    assert [p.program_id for p in await world.repo.open_pairs()] == ["prg-good"]
    assert list(await world.repo.changed_pools(mode=PairingMode.CONTINUOUS)) == ["prg-bad"]


async def test_facts_are_announced_only_about_active_participants() -> None:
    world = await a_world()
    await world.join(mentor("m-1"))
    screened = ParticipantScreened(
        participant_id="m-1",
        program_id="prg-1",
        outcome=ScreeningOutcome.PASSED,
        screened_by="admin-1",
        screened_at=T0,
    )
    await world.command(handlers.announce_fact, screened)
    assert world.emitted() == ["ParticipantScreened"]
    with pytest.raises(handlers.UnknownResource):
        await world.command(
            handlers.announce_fact, screened.model_copy(update={"participant_id": "x"})
        )


class BrokenRunStore(InMemoryMatchingRepository):
    """A store that cannot save one program's published run (after proposing its pairs)."""

    async def save_run(self, *, run: staging.MatchRun) -> None:
        if run.program_id == "prg-bad":
            raise RuntimeError("disk full")
        await super().save_run(run=run)


def proposed_total() -> float:
    return REGISTRY.get_sample_value("upward_pairs_proposed_total") or 0.0


async def test_a_program_failing_after_proposing_counts_none_of_its_proposals() -> None:
    world = World()
    world.repo = BrokenRunStore()
    for program_id in ("prg-bad", "prg-good"):
        await world.command(handlers.create_program, program_definition(program_id), by="a")
        await world.join(mentor("m-1", program_id), mentee("e-1", program_id))
    before = proposed_total()
    uow = world.uow()
    await handlers.plan_continuous(uow, world.repo)
    run_committed(uow.committed_actions)
    assert [e.event_name for _, e in uow.emitted] == ["PairProposed", "MatchRunCompleted"]
    assert proposed_total() - before == 1
    assert [p.program_id for p in await world.repo.open_pairs()] == ["prg-good"]


async def test_a_consumed_event_holding_nul_is_rejected_with_the_field_named() -> None:
    world = await a_world()
    table = handlers.handler_table(lambda _: world.repo)
    joined = mentor("m-1").model_copy(update={"department": "Mark\x00eting"})
    with pytest.raises(Rejected, match=r"ParticipantJoined\.department holds a NUL"):
        await table[ParticipantJoined](joined, world.uow())
    offers = mentor("m-1").model_copy(update={"offers": {"social\x00media": 3}})
    with pytest.raises(Rejected, match=r"ParticipantJoined\.offers key holds a NUL"):
        await table[ParticipantJoined](offers, world.uow())
    uow = world.uow()
    await table[ParticipantJoined](mentor("m-1"), uow)
    escaped = mentor("m-2").model_copy(update={"department": "Mark\\u0000eting"})
    await table[ParticipantJoined](escaped, uow)  # a backslash and text: no NUL
    await uow.scope.finish()
    assert await world.repo.get_participant(program_id="prg-1", participant_id="m-1")
    assert await world.repo.get_participant(program_id="prg-1", participant_id="m-2")


class CountingRepository(InMemoryMatchingRepository):
    """Counts the reads and writes of participants one at a time and in bulk."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def program_and_participant(self, **kwargs: Any) -> Any:
        self.calls.append("one read")
        return await super().program_and_participant(**kwargs)

    async def programs_and_participants(self, **kwargs: Any) -> Any:
        self.calls.append("batch read")
        return await super().programs_and_participants(**kwargs)

    async def save_participants(self, **kwargs: Any) -> None:
        self.calls.append("batch save")
        await super().save_participants(**kwargs)


async def test_the_participant_facts_of_a_batch_are_applied_together_before_the_commit() -> None:
    world = World()
    world.repo = counting = CountingRepository()
    await world.command(handlers.create_program, program_definition(), by="admin-1")
    table = handlers.handler_table(lambda _: counting)
    uow = world.uow()  # the kit gives every event of a batch a unit of work in one scope
    facts: list[Any] = [
        mentor("m-1"),
        mentee("e-1"),
        ParticipantScreened(
            participant_id="m-1",
            program_id="prg-1",
            outcome=ScreeningOutcome.PASSED,
            screened_by="admin-1",
            screened_at=T0,
        ),
        mentor("m-1").model_copy(update={"display_name": "Renamed"}),
    ]
    for fact in facts:
        await table[type(fact)](fact, uow)
    assert await counting.get_participant(program_id="prg-1", participant_id="m-1") is None
    await uow.scope.finish()
    assert counting.calls == ["batch read", "batch save"]
    m1 = await counting.get_participant(program_id="prg-1", participant_id="m-1")
    assert m1 is not None and m1.screening is ScreeningOutcome.PASSED
    assert m1.profile.display_name == "Renamed"
    assert await counting.get_participant(program_id="prg-1", participant_id="e-1")
    assert list(await counting.changed_pools(mode=PairingMode.CONTINUOUS)) == ["prg-1"]


async def test_a_held_fact_that_cannot_apply_fails_its_batch_and_alone_is_rejected() -> None:
    world = await a_world()
    table = handlers.handler_table(lambda _: world.repo)
    uow = world.uow()
    await table[ParticipantJoined](mentor("m-1"), uow)
    await table[TrainingCompleted](
        TrainingCompleted(
            participant_id="e-404", program_id="prg-1", course_id="c-1", completed_at=T0
        ),
        uow,
    )
    with pytest.raises(Rejected, match="e-404 has not joined program prg-1"):
        await uow.scope.finish()
    alone = world.uow()  # the kit's fallback: one event per transaction
    await table[ParticipantJoined](mentor("m-1"), alone)
    await alone.scope.finish()
    assert await world.repo.get_participant(program_id="prg-1", participant_id="m-1")
    closed = world.uow()
    await table[ParticipantJoined](mentor("m-2", "prg-unknown"), closed)
    with pytest.raises(Rejected, match="unknown program prg-unknown"):
        await closed.scope.finish()


async def test_any_other_event_finds_the_facts_held_before_it_applied() -> None:
    world = await a_world()
    table = handlers.handler_table(lambda _: world.repo)
    uow = world.uow()
    await table[ParticipantJoined](mentor("m-1"), uow)
    await table[ParticipantLeft](
        ParticipantLeft(
            participant_id="m-1", program_id="prg-1", reason=LeaveReason.VOLUNTARY, left_at=T0
        ),
        uow,
    )
    await uow.scope.finish()
    person = await world.repo.get_participant(program_id="prg-1", participant_id="m-1")
    assert person is not None and not person.is_active


class CountingPairs(InMemoryMatchingRepository):
    """Counts the reads and writes of pairs."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def get_pair(self, **kwargs: Any) -> Any:
        self.calls.append(f"read {kwargs['pair_id']}")
        return await super().get_pair(**kwargs)

    async def get_pairs(self, **kwargs: Any) -> Any:
        self.calls.append("read " + " ".join(sorted(kwargs["pair_ids"])))
        return await super().get_pairs(**kwargs)

    async def save_pair(self, **kwargs: Any) -> None:
        self.calls.append("save one")
        await super().save_pair(**kwargs)

    async def save_pairs(self, **kwargs: Any) -> None:
        self.calls.append(f"save {len(kwargs['pairs'])}")
        await super().save_pairs(**kwargs)


def acceptance(pair: Pair, who: str) -> PairAccepted:
    side = PairSide.MENTOR if who == pair.mentor_id else PairSide.MENTEE
    return PairAccepted(
        pair_id=pair.pair_id, program_id=pair.program_id, participant_id=who, side=side
    )


async def a_counted_world(proposals: int) -> tuple[World, CountingPairs, list[Pair]]:
    world = World()
    world.repo = counting = CountingPairs()
    await world.command(handlers.create_program, program_definition(), by="admin-1")
    await world.join(*(mentor(f"m-{i}") for i in range(proposals)))
    await world.join(*(mentee(f"e-{i}") for i in range(proposals)))
    await world.tick(handlers.plan_continuous)
    found = await counting.open_pairs(program_id="prg-1")
    assert len(found) == proposals
    counting.calls.clear()
    world.emitted()
    return world, counting, sorted(found, key=lambda p: p.mentor_id)


async def test_the_acceptances_of_a_batch_read_each_pair_once_and_save_them_together() -> None:
    world, counting, (first, second) = await a_counted_world(2)
    table = handlers.handler_table(lambda _: counting)
    batch = [
        acceptance(pair, who)
        for pair, who in (
            (first, first.mentor_id),
            (second, second.mentee_id),
            (first, first.mentee_id),
            (first, first.mentee_id),  # a repeat: nothing
        )
    ]
    poisoned = acceptance(first, first.mentor_id).model_copy(update={"pair_id": "pair-\x00"})
    scope = TransactionScope([*batch, poisoned])  # the kit gives a batch's events to its scope
    with pytest.raises(Rejected, match="NUL"):
        await table[PairAccepted](poisoned, UnitOfWork(cast(Any, None), source="/t", region="t"))
    uow = UnitOfWork(cast(Any, None), source="/t", region="t", clock=world.clock, scope=scope)
    for accepted in batch:
        await table[PairAccepted](accepted, uow)
    assert [e.event_name for _, e in uow.emitted] == ["PairFormed"]  # emitted by the handler
    assert counting.calls == [f"read {' '.join(sorted((first.pair_id, second.pair_id)))}"]
    stored = await counting.get_pair(pair_id=first.pair_id)
    assert stored is not None and stored.status is PairStatus.PROPOSED  # held until the commit
    await uow.scope.finish()
    assert counting.calls[-1] == "save 2"
    formed, half = [await counting.get_pair(pair_id=p.pair_id) for p in (first, second)]
    assert formed is not None and formed.status is PairStatus.FORMED
    assert half is not None and half.accepted_by(PairSide.MENTEE)
    assert not half.accepted_by(PairSide.MENTOR)


async def test_a_held_acceptance_that_contradicts_its_pair_fails_the_batch() -> None:
    world, counting, (pair,) = await a_counted_world(1)
    table = handlers.handler_table(lambda _: counting)
    uow = world.uow()
    await table[PairAccepted](acceptance(pair, pair.mentor_id), uow)
    wrong = acceptance(pair, pair.mentee_id).model_copy(update={"side": PairSide.MENTOR})
    with pytest.raises(Rejected, match="is not the mentor"):
        await table[PairAccepted](wrong, uow)
    elsewhere = acceptance(pair, pair.mentee_id).model_copy(update={"program_id": "prg-2"})
    with pytest.raises(Rejected, match="no pair"):
        await table[PairAccepted](elsewhere, world.uow())
    alone = world.uow()  # the kit's fallback: one event per transaction
    await table[PairAccepted](acceptance(pair, pair.mentor_id), alone)
    await alone.scope.finish()
    stored = await counting.get_pair(pair_id=pair.pair_id)
    assert stored is not None and stored.accepted_by(PairSide.MENTOR)


async def test_any_other_pair_event_finds_the_acceptances_held_before_it() -> None:
    world, counting, (pair,) = await a_counted_world(1)
    table = handlers.handler_table(lambda _: counting)
    uow = world.uow()
    await table[PairAccepted](acceptance(pair, pair.mentor_id), uow)
    await table[PairAccepted](acceptance(pair, pair.mentee_id), uow)
    declined = PairDeclined(
        pair_id=pair.pair_id,
        program_id="prg-1",
        reason=DeclineReason.DECLINED,
        declined_by=pair.mentee_id,
    )
    with pytest.raises(Rejected, match="formed"):  # it reads the pair the batch formed
        await table[PairDeclined](declined, uow)
    assert counting.calls[:2] == [f"read {pair.pair_id}", "save 1"]
    stale = world.uow()
    ended = PairEnded(
        pair_id=pair.pair_id,
        program_id="prg-1",
        mentor_id=pair.mentor_id,
        mentee_id=pair.mentee_id,
        reason=PairEndReason.NO_FAULT_EXIT,
        ended_by=pair.mentor_id,
    )
    await table[PairEnded](ended, stale)
    await table[PairAccepted](acceptance(pair, pair.mentor_id), stale)  # after the end: stale
    await stale.scope.finish()
    stored = await counting.get_pair(pair_id=pair.pair_id)
    assert stored is not None and stored.status is PairStatus.ENDED


async def test_a_big_run_is_published_whole_in_chunks() -> None:
    world = await a_world(pairing_modes=[PairingMode.BATCH])
    size = BIG * 2 + 7
    await world.join(*(mentor(f"m-{i}") for i in range(size)))
    await world.join(*(mentee(f"e-{i}") for i in range(size)))
    planned = tuple(
        PlannedPair(f"m-{i}", f"e-{i}", 0.5, (), ("social-media",)) for i in range(size)
    )
    plan = MatchPlan(pairs=planned, unmatched=(), totals={"mentors": size, "mentees": size})
    run = staging.MatchRun(
        "run-big", "prg-1", PairingMode.BATCH, staging.RunStatus.STAGED, plan, T0, 1
    )
    await world.command(handlers.stage_run, run, by="admin-1")
    published = await world.command(handlers.publish_run, "run-big", by="admin-1")
    names = world.emitted()
    assert names.count("PairProposed") == size and names[-1] == "MatchRunCompleted"
    assert published.outcome is not None and len(set(published.outcome.proposed)) == size
    assert len(await world.repo.open_pairs(program_id="prg-1")) == size


def test_the_timers_run_at_the_configured_intervals() -> None:
    settings = MatchingSettings(
        service_name="matching",
        database_url="postgresql://localhost/matching",
        continuous_interval_s=7,
        continuous_debounce_s=0.25,
        expiry_interval_s=11,
    )
    context = cast(ServiceContext, SimpleNamespace(settings=settings))
    found = {t.name: (t.interval_s, t.wake) for t in bootstrap.timers(context)}
    assert found == {
        "acceptance-timeouts": (11, None),
        "continuous-matching": (7, Wake(POOL_CHANGED_CHANNEL, debounce_s=0.25)),
    }
