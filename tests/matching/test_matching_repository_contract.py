"""One contract suite for the matching store: the in-memory fake and asyncpg alike.

Every test runs twice: on :class:`InMemoryMatchingRepository` (no I/O) and on
:class:`PostgresMatchingRepository` in a transaction rolled back afterwards, on a
database migrated with the service's real migrations.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from matching_service_fake import InMemoryMatchingRepository
from matching_service_fixtures import mentee, mentor, program_definition

from schemas.pairs import DeclineReason, PairEndReason, ScoreFactor, ScoreFactorName
from schemas.participants import ScreeningOutcome
from schemas.primitives import PairingMode, Role
from schemas.programs import ProgramClosedReason
from servicekit import db
from services.matching.adapters.offload import BIG
from services.matching.adapters.repository import (
    MatchingRepository,
    PostgresMatchingRepository,
    SavedParticipant,
)
from services.matching.bootstrap import DEFINITION
from services.matching.domain import pairs, participants, programs, staging
from services.matching.domain.audit import AdminAction, AdminActionKind, Veto
from services.matching.domain.model import MatchPlan, PlannedPair, Unmatched
from services.matching.domain.pairs import Pair, PairStatus
from services.matching.domain.programs import Program
from services.matching.domain.staging import RunStatus
from tests.fixtures.infra import PostgresServerInfo

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
FACTOR = ScoreFactor(factor=ScoreFactorName.DIVERSITY, weight=0.3, value=1.0, contribution=0.3)


@pytest.fixture(params=["fake", pytest.param("postgres", marks=pytest.mark.integration)])
async def repo(request: pytest.FixtureRequest) -> AsyncIterator[MatchingRepository]:
    if request.param == "fake":
        yield InMemoryMatchingRepository()
        return
    server: PostgresServerInfo = request.getfixturevalue("postgres")
    name = f"test_matching_repo_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(await migrated(server, name))
    transaction = conn.transaction()
    await transaction.start()
    try:
        yield PostgresMatchingRepository(conn)
    finally:
        await transaction.rollback()
        await conn.close()
        await server.drop_database(name)


async def migrated(server: PostgresServerInfo, name: str) -> str:
    """A new database with the kit's and the matching service's migrations applied."""
    url = await server.create_database(name)
    pool = await db.create_pool(url)
    try:
        await db.apply_migrations(pool, "servicekit", db.KIT_MIGRATIONS)
        await db.apply_migrations(pool, "matching", DEFINITION.migrations)
    finally:
        await pool.close()
    return url


async def a_program(
    repo: MatchingRepository, program_id: str = "prg-1", **changes: object
) -> Program:
    program, _ = programs.create_program(program_definition(program_id, **changes))
    assert await repo.add_program(program=program, at=T0)
    return program


async def join(repo: MatchingRepository, *profiles: object) -> None:
    for profile in profiles:
        person = participants.joined(None, profile)  # type: ignore[arg-type]
        await repo.save_participant(participant=person, at=T0)


def a_pair(
    mentor_id: str,
    mentee_id: str,
    *,
    pair_id: str | None = None,
    program_id: str = "prg-1",
    at: datetime = T0,
) -> Pair:
    return pairs.propose(
        PlannedPair(mentor_id, mentee_id, 0.3, (FACTOR,), ("social-media", "genai-tools")),
        pair_id=pair_id or f"pair-{mentor_id}-{mentee_id}",
        program_id=program_id,
        mode=PairingMode.BATCH,
        at=at,
        acceptance_timeout=timedelta(hours=72),
        run_id="run-1",
    ).pair


# --- programs ---------------------------------------------------------------------------


async def test_a_program_round_trips_and_its_id_is_unique(repo: MatchingRepository) -> None:
    program = await a_program(repo)
    assert not await repo.add_program(program=program, at=T0)
    found = await repo.get_program(program_id="prg-1")
    assert found is not None and found.definition == program.definition
    assert found.revision == 1 and found.is_open
    assert await repo.get_program(program_id="nope") is None


async def test_a_saved_program_keeps_its_revision_and_status(repo: MatchingRepository) -> None:
    program = await a_program(repo)
    updated, _ = programs.update_program(program, program_definition(cadence_days=7))
    closed, _ = programs.close_program(
        updated, reason=ProgramClosedReason.COMPLETED, by=None, at=T0
    )
    await repo.save_program(program=closed, at=T0)
    found = await repo.get_program(program_id="prg-1")
    assert found is not None and found.revision == 2 and not found.is_open
    assert found.definition.cadence_days == 7 and found.closed_at == T0
    assert [p.program_id for p in await repo.list_programs()] == ["prg-1"]


# --- participants and candidates --------------------------------------------------------


async def test_a_participant_round_trips_and_is_replaced(repo: MatchingRepository) -> None:
    await a_program(repo)
    await join(repo, mentor("m-1"))
    person = await repo.get_participant(program_id="prg-1", participant_id="m-1")
    assert person is not None and person.profile.offers == mentor("m-1").offers
    screened = participants.trained(participants.screened(person, ScreeningOutcome.PASSED))
    await repo.save_participant(participant=participants.left(screened), at=T0)
    again = await repo.get_participant(program_id="prg-1", participant_id="m-1")
    assert again is not None and not again.is_active
    assert again.screening is ScreeningOutcome.PASSED and again.trained
    assert await repo.programs_of(participant_id="m-1") == ["prg-1"]


async def test_a_program_and_its_participant_are_read_together(repo: MatchingRepository) -> None:
    program = await a_program(repo)
    await join(repo, mentor("m-1"))
    found, person = await repo.program_and_participant(program_id="prg-1", participant_id="m-1")
    assert found == program and person is not None and person.participant_id == "m-1"
    assert person == await repo.get_participant(program_id="prg-1", participant_id="m-1")
    found, nobody = await repo.program_and_participant(program_id="prg-1", participant_id="x")
    assert found == program and nobody is None
    assert await repo.program_and_participant(program_id="prg-x", participant_id="m-1") == (
        None,
        None,
    )


async def test_programs_and_participants_of_a_batch_are_read_together(
    repo: MatchingRepository,
) -> None:
    program = await a_program(repo)
    other = await a_program(repo, "prg-2")
    await join(repo, mentor("m-1"))
    keys = [("prg-1", "m-1"), ("prg-1", "e-9"), ("prg-2", "m-1"), ("prg-x", "m-1")]
    found, people = await repo.programs_and_participants(keys=keys)
    assert found == {"prg-1": program, "prg-2": other}
    assert list(people) == [("prg-1", "m-1")]
    assert people[("prg-1", "m-1")] == await repo.get_participant(
        program_id="prg-1", participant_id="m-1"
    )
    assert await repo.programs_and_participants(keys=[]) == ({}, {})


async def test_participants_are_saved_together_with_their_pool_changes(
    repo: MatchingRepository,
) -> None:
    await a_program(repo)
    await a_program(repo, "prg-2")
    first = participants.joined(None, mentor("m-1"))
    await repo.save_participants(saved=[SavedParticipant(first, T0, T0)], pool_changed=())
    assert await repo.changed_pools(mode=PairingMode.CONTINUOUS) == {}
    later = T0 + timedelta(minutes=5)
    screened = participants.screened(first, ScreeningOutcome.PASSED)
    newcomer = participants.joined(None, mentee("e-1", "prg-2"))
    await repo.save_participants(
        saved=[SavedParticipant(screened, later, later), SavedParticipant(newcomer, T0, later)],
        pool_changed={"prg-1", "prg-2", "prg-3"},
    )
    assert await repo.get_participant(program_id="prg-1", participant_id="m-1") == screened
    assert await repo.get_participant(program_id="prg-2", participant_id="e-1") == newcomer
    assert sorted(await repo.changed_pools(mode=PairingMode.CONTINUOUS)) == ["prg-1", "prg-2"]


async def test_saving_a_participant_can_note_the_pool_change(repo: MatchingRepository) -> None:
    await a_program(repo)
    person = participants.joined(None, mentor("m-1"))
    await repo.save_participant(participant=person, at=T0)
    assert await repo.changed_pools(mode=PairingMode.CONTINUOUS) == {}
    await repo.save_participant(participant=person, at=T0, pool_changed=True)
    assert list(await repo.changed_pools(mode=PairingMode.CONTINUOUS)) == ["prg-1"]
    assert await repo.get_participant(program_id="prg-1", participant_id="m-1") == person


async def test_a_join_reads_the_program_and_the_person_together(
    repo: MatchingRepository,
) -> None:
    program = await a_program(repo)
    assert await repo.program_and_participant(program_id="nope", participant_id="m-1") == (
        None,
        None,
    )
    found, nobody = await repo.program_and_participant(program_id="prg-1", participant_id="m-1")
    assert found is not None and found.definition == program.definition and nobody is None
    await join(repo, mentor("m-1"))
    screened = participants.screened(
        await repo.get_participant(program_id="prg-1", participant_id="m-1"),  # type: ignore[arg-type]
        ScreeningOutcome.PASSED,
    )
    await repo.save_participant(participant=participants.left(screened), at=T0)
    _, person = await repo.program_and_participant(program_id="prg-1", participant_id="m-1")
    assert person == await repo.get_participant(program_id="prg-1", participant_id="m-1")
    assert person is not None and not person.is_active
    assert person.screening is ScreeningOutcome.PASSED


async def test_participants_are_listed_by_id_a_page_at_a_time(repo: MatchingRepository) -> None:
    await a_program(repo)
    await join(repo, mentee("e-3"), mentor("m-1"), mentee("e-2"))
    page = await repo.list_participants(program_id="prg-1", limit=2, offset=1)
    assert [p.participant_id for p in page] == ["e-3", "m-1"]


async def test_candidates_are_the_active_people_with_their_free_places(
    repo: MatchingRepository,
) -> None:
    await a_program(repo)
    await join(repo, mentor("m-1", capacity=2), mentee("e-1"), mentee("e-2"), mentee("e-3"))
    left = await repo.get_participant(program_id="prg-1", participant_id="e-3")
    assert left is not None
    await repo.save_participant(participant=participants.left(left), at=T0)
    await repo.add_pairs(pairs=[a_pair("m-1", "e-1")])
    found = {c.participant_id: c for c in await repo.candidates(program_id="prg-1")}
    assert sorted(found) == ["e-1", "e-2", "m-1"]
    assert found["m-1"].mentor_slots == 1
    assert not found["e-1"].needs_mentor and found["e-2"].needs_mentor
    some = await repo.candidates(program_id="prg-1", participant_ids=["e-2", "m-1", "x"])
    assert [c.participant_id for c in some] == ["e-2", "m-1"]


async def test_closed_pairs_free_their_places_but_a_completed_mentee_is_done(
    repo: MatchingRepository,
) -> None:
    await a_program(repo)
    await join(repo, mentor("m-1"), mentor("m-2"), mentee("e-1"), mentee("e-2"))
    first, second = a_pair("m-1", "e-1"), a_pair("m-2", "e-2")
    await repo.add_pairs(pairs=[first, second])
    declined = pairs.decline(first, reason=DeclineReason.DECLINED, by="e-1", at=T0).pair
    formed = pairs.accept(
        pairs.accept(second, participant_id="m-2", at=T0).pair, participant_id="e-2", at=T0
    ).pair
    completed = pairs.end(formed, reason=PairEndReason.COMPLETED, by=None, at=T0).pair
    await repo.save_pair(pair=declined)
    await repo.save_pair(pair=completed)
    found = {c.participant_id: c for c in await repo.candidates(program_id="prg-1")}
    assert found["m-1"].mentor_slots == 1 and found["m-2"].mentor_slots == 1
    assert found["e-1"].needs_mentor and not found["e-2"].needs_mentor


async def test_the_free_pool_is_the_people_with_a_place_to_fill(repo: MatchingRepository) -> None:
    await a_program(repo)
    await join(repo, mentor("m-1"), mentor("m-2", capacity=2), mentor("m-3"))
    await join(repo, mentee("e-1"), mentee("e-2"), mentee("e-3"), mentee("e-4"))
    await join(repo, mentor("b-1", role="both"))
    first, second, third = a_pair("m-1", "e-1"), a_pair("m-2", "e-2"), a_pair("m-3", "e-3")
    await repo.add_pairs(pairs=[first, second, third, a_pair("b-1", "e-4")])
    formed = pairs.accept(
        pairs.accept(third, participant_id="m-3", at=T0).pair, participant_id="e-3", at=T0
    ).pair
    await repo.save_pair(
        pair=pairs.end(formed, reason=PairEndReason.COMPLETED, by=None, at=T0).pair
    )
    everyone = await repo.candidates(program_id="prg-1")
    free = await repo.candidates(program_id="prg-1", free_only=True)
    # m-1 full; e-1, e-2, e-4 paired; e-3 completed; m-2 and m-3 have a slot; b-1 is
    # full as a mentor but still needs a mentor of their own
    assert [c.participant_id for c in free] == ["b-1", "m-2", "m-3"]
    assert len(everyone) == 8
    assert free == [c for c in everyone if c.participant_id in {"b-1", "m-2", "m-3"}]


# --- pairs ------------------------------------------------------------------------------


async def test_a_pair_round_trips_with_its_explanation(repo: MatchingRepository) -> None:
    await a_program(repo)
    pair = a_pair("m-1", "e-1")
    assert await repo.add_pairs(pairs=[pair]) == {pair.pair_id}
    assert await repo.get_pair(pair_id=pair.pair_id) == pair
    accepted = pairs.accept(pair, participant_id="e-1", at=T0 + timedelta(hours=1)).pair
    flagged = replace(accepted, at_risk_at=T0 + timedelta(hours=2))
    await repo.save_pair(pair=flagged)
    assert await repo.get_pair(pair_id=pair.pair_id) == flagged
    assert await repo.get_pair(pair_id="nope") is None


async def test_several_pairs_are_saved_in_one_call(repo: MatchingRepository) -> None:
    await a_program(repo)
    first, second, untouched = a_pair("m-1", "e-1"), a_pair("m-2", "e-2"), a_pair("m-3", "e-3")
    await repo.add_pairs(pairs=[first, second, untouched])
    at = T0 + timedelta(hours=1)
    formed = pairs.accept(
        pairs.accept(first, participant_id="m-1", at=at).pair, participant_id="e-1", at=at
    ).pair
    declined = pairs.decline(second, reason=DeclineReason.DECLINED, by="e-2", at=at).pair
    await repo.save_pairs(pairs=[formed, declined])
    await repo.save_pairs(pairs=[])
    assert await repo.get_pair(pair_id=first.pair_id) == formed
    assert await repo.get_pair(pair_id=second.pair_id) == declined
    assert await repo.get_pair(pair_id=untouched.pair_id) == untouched
    assert formed.status is PairStatus.FORMED and declined.status is PairStatus.DECLINED
    found = await repo.get_pairs(pair_ids=[second.pair_id, "nope", first.pair_id, first.pair_id])
    assert found == {first.pair_id: formed, second.pair_id: declined}
    assert await repo.get_pairs(pair_ids=[]) == {}


async def test_a_combination_is_never_stored_twice(repo: MatchingRepository) -> None:
    await a_program(repo)
    first = a_pair("m-1", "e-1", pair_id="pair-a")
    await repo.add_pairs(pairs=[first])
    declined = pairs.decline(first, reason=DeclineReason.DECLINED, by="m-1", at=T0).pair
    await repo.save_pair(pair=declined)
    assert await repo.add_pairs(pairs=[a_pair("m-1", "e-1", pair_id="pair-b")]) == set()
    assert await repo.add_pairs(pairs=[a_pair("m-2", "e-1", pair_id="pair-c")]) == {"pair-c"}


async def test_a_mentee_has_one_open_pair_at_a_time(repo: MatchingRepository) -> None:
    await a_program(repo)
    inserted = await repo.add_pairs(
        pairs=[a_pair("m-1", "e-1", pair_id="p1"), a_pair("m-2", "e-1", pair_id="p2")]
    )
    assert inserted == {"p1"}
    assert await repo.add_pairs(pairs=[a_pair("m-2", "e-1", pair_id="p3")]) == set()


async def test_pairs_are_found_by_status_and_person_newest_first(
    repo: MatchingRepository,
) -> None:
    await a_program(repo)
    old, new = a_pair("m-1", "e-1"), a_pair("m-1", "e-2", at=T0 + timedelta(hours=1))
    other = a_pair("m-2", "e-3")
    await repo.add_pairs(pairs=[old, new, other])
    await repo.save_pair(
        pair=pairs.decline(other, reason=DeclineReason.VETOED, by="admin", at=T0).pair
    )
    mine = await repo.find_pairs(program_id="prg-1", participant_id="m-1")
    assert [p.pair_id for p in mine] == [new.pair_id, old.pair_id]
    declined = await repo.find_pairs(program_id="prg-1", statuses=[PairStatus.DECLINED])
    assert [p.pair_id for p in declined] == [other.pair_id]
    page = await repo.find_pairs(program_id="prg-1", limit=1, offset=1)
    assert len(page) == 1
    assert [p.pair_id for p in await repo.open_pairs(participant_id="e-3")] == []
    assert len(await repo.open_pairs(program_id="prg-1")) == 2
    assert await repo.pair_of(program_id="prg-1", mentor_id="m-2", mentee_id="e-3") is not None
    assert await repo.pair_of(program_id="prg-1", mentor_id="e-3", mentee_id="m-2") is None


async def test_expired_proposals_are_those_past_their_deadline(repo: MatchingRepository) -> None:
    await a_program(repo)
    early, late = a_pair("m-1", "e-1"), a_pair("m-2", "e-2", at=T0 + timedelta(hours=5))
    await repo.add_pairs(pairs=[early, late])
    due = await repo.expired_proposals(at=early.expires_at, limit=10)
    assert [p.pair_id for p in due] == [early.pair_id]
    assert len(await repo.expired_proposals(at=late.expires_at, limit=10)) == 2
    assert len(await repo.expired_proposals(at=late.expires_at, limit=1)) == 1


async def test_every_pair_and_every_veto_is_excluded(repo: MatchingRepository) -> None:
    await a_program(repo)
    await a_program(repo, "prg-2")
    await repo.add_pairs(pairs=[a_pair("m-1", "e-1"), a_pair("m-9", "e-9", program_id="prg-2")])
    veto = Veto("prg-1", "m-2", "e-2", "admin-1", "conflict of interest", T0)
    assert await repo.add_veto(veto=veto)
    assert not await repo.add_veto(veto=replace(veto, reason="again"))
    assert await repo.excluded(program_id="prg-1") == {("m-1", "e-1"), ("m-2", "e-2")}
    among = await repo.excluded(program_id="prg-1", among=["m-2", "e-2", "e-1"])
    assert among == {("m-2", "e-2")}
    assert await repo.excluded(program_id="prg-1", among=[]) == frozenset()


# --- audit, runs, pool changes ----------------------------------------------------------


async def test_the_audit_trail_keeps_who_what_and_why(repo: MatchingRepository) -> None:
    await a_program(repo)
    first = AdminAction(
        "prg-1", AdminActionKind.MANUAL_PAIR, "admin-1", T0, "asked", "p1", None, "m-1", "e-1"
    )
    second = AdminAction("prg-1", AdminActionKind.RUN_PUBLISHED, "admin-2", T0, run_id="r1")
    await repo.record_action(action=first)
    await repo.record_action(action=second)
    assert await repo.actions(program_id="prg-1", limit=10, offset=0) == [first, second]
    assert await repo.actions(program_id="prg-1", limit=10, offset=1) == [second]


def a_run(status: staging.RunStatus = staging.RunStatus.STAGED) -> staging.MatchRun:
    plan = MatchPlan(
        pairs=(PlannedPair("m-1", "e-1", 0.3, (FACTOR,), ("social-media",)),),
        unmatched=(Unmatched("e-2", "capacity_taken_by_better_plan"),),
        totals={"matched": 1, "mentors": 1, "mentees": 2, "total_score": 0.3, "optimal": True},
    )
    return staging.MatchRun("run-1", "prg-1", PairingMode.BATCH, status, plan, T0, 42, "admin-1")


async def test_a_run_round_trips_and_is_published(repo: MatchingRepository) -> None:
    await a_program(repo)
    run = a_run()
    await repo.add_run(run=run)
    assert await repo.get_run(run_id="run-1") == run
    dropped = staging.Dropped(run.plan.pairs[0], ("inactive",))
    outcome = staging.PublishOutcome(proposed=("pair-x",), dropped=(dropped,))
    published = staging.publish(run, by="admin-2", at=T0, outcome=outcome)
    await repo.save_run(run=published)
    assert await repo.get_run(run_id="run-1") == published
    assert await repo.get_run(run_id="nope") is None


async def test_big_runs_pools_and_pair_batches_round_trip(repo: MatchingRepository) -> None:
    """Sizes past offload.BIG are encoded and decoded in a worker thread: same results."""
    size = BIG + 100
    await a_program(repo)
    await join(repo, *(mentor(f"m-{i:04}") for i in range(size)))
    await join(repo, *(mentee(f"e-{i:04}") for i in range(size)))
    big = [a_pair(f"m-{i:04}", f"e-{i:04}") for i in range(size)]
    assert await repo.add_pairs(pairs=big) == {p.pair_id for p in big}
    assert await repo.get_pair(pair_id=big[-1].pair_id) == big[-1]
    pool = await repo.candidates(program_id="prg-1")
    full = {c.participant_id for c in pool if c.role is Role.MENTOR and c.mentor_slots == 0}
    paired = {c.participant_id for c in pool if c.role is Role.MENTEE and not c.needs_mentor}
    assert len(pool) == 2 * size and len(full) == len(paired) == size
    plan = MatchPlan(
        pairs=tuple(
            PlannedPair(p.mentor_id, p.mentee_id, 0.3, (FACTOR,), ("social-media",)) for p in big
        ),
        unmatched=(),
        totals={"matched": size},
    )
    run = staging.MatchRun("run-big", "prg-1", PairingMode.BATCH, RunStatus.STAGED, plan, T0, 9)
    await repo.add_run(run=run)
    assert await repo.get_run(run_id="run-big") == run


async def test_pool_changes_of_continuous_programs_wait_until_planned(
    repo: MatchingRepository,
) -> None:
    await a_program(repo, "prg-1")
    await a_program(repo, "prg-batch", pairing_modes=[PairingMode.BATCH])
    for program_id in ("prg-1", "prg-1", "prg-batch"):
        await repo.note_pool_change(program_id=program_id)
    changed = await repo.changed_pools(mode=PairingMode.CONTINUOUS)
    assert list(changed) == ["prg-1"]
    await repo.note_pool_change(program_id="prg-1")
    await repo.forget_pool_changes(program_id="prg-1", up_to=changed["prg-1"])
    newer = await repo.changed_pools(mode=PairingMode.CONTINUOUS)
    assert list(newer) == ["prg-1"] and newer["prg-1"] > changed["prg-1"]
    await repo.forget_pool_changes(program_id="prg-1", up_to=newer["prg-1"])
    assert await repo.changed_pools(mode=PairingMode.CONTINUOUS) == {}
    assert await repo.changed_pools(mode=PairingMode.BATCH) == {}


async def test_erasure_removes_every_trace_of_the_person(repo: MatchingRepository) -> None:
    await a_program(repo)
    await join(repo, mentor("m-1"), mentee("e-1"), mentee("e-2"))
    await repo.add_pairs(pairs=[a_pair("m-1", "e-1"), a_pair("m-1", "e-2")])
    await repo.add_veto(veto=Veto("prg-1", "m-1", "e-2", "admin-1", "no", T0))
    await repo.record_action(
        action=AdminAction(
            "prg-1",
            AdminActionKind.VETO_COMBINATION,
            "admin-1",
            T0,
            mentor_id="m-1",
            mentee_id="e-2",
        )
    )
    await repo.add_run(run=a_run())
    erased = await repo.erase_participant(participant_id="e-1")
    assert erased == 3  # the participant, the pair, the staged plan
    assert await repo.get_participant(program_id="prg-1", participant_id="e-1") is None
    assert await repo.find_pairs(program_id="prg-1", participant_id="e-1") == []
    kept = await repo.get_pair(pair_id="pair-m-1-e-1")
    assert kept is not None and kept.mentee_id == "erased:pair-m-1-e-1"
    run = await repo.get_run(run_id="run-1")
    assert run is not None and run.plan.pairs == ()
    assert await repo.erase_participant(participant_id="m-1") == 5
    (action,) = await repo.actions(program_id="prg-1", limit=5, offset=0)
    assert action.mentor_id is None and action.mentee_id == "e-2"
    remembered = {who for pair in await repo.excluded(program_id="prg-1") for who in pair}
    assert remembered == {"erased:pair-m-1-e-1", "erased:pair-m-1-e-2", "e-2"}


async def test_erasure_takes_the_name_out_of_audit_reasons(repo: MatchingRepository) -> None:
    await a_program(repo)
    await join(repo, mentor("m-1"), mentee("e-1", email="sam@example.com"))
    reason = "Sam Senior (sam@example.com) asked for a mentor in Samarkand"
    await repo.record_action(
        action=AdminAction(
            "prg-1", AdminActionKind.MANUAL_PAIR, "admin-1", T0, reason, None, None, "m-1", "e-1"
        )
    )
    assert await repo.erase_participant(participant_id="e-1") == 3  # reason, ids, participant
    (action,) = await repo.actions(program_id="prg-1", limit=5, offset=0)
    assert action.reason == "(erased) (erased@erased.invalid) asked for a mentor in Samarkand"
    assert (action.actor_id, action.mentor_id, action.mentee_id) == ("admin-1", "m-1", None)


async def test_a_savepoint_undoes_only_its_own_writes_when_it_fails(
    repo: MatchingRepository,
) -> None:
    await a_program(repo)
    async with repo.savepoint():
        await join(repo, mentor("m-1"))
    with pytest.raises(RuntimeError):
        async with repo.savepoint():
            await join(repo, mentee("e-1"))
            raise RuntimeError("planning failed")
    people = await repo.list_participants(program_id="prg-1", limit=10, offset=0)
    assert [p.participant_id for p in people] == ["m-1"]
