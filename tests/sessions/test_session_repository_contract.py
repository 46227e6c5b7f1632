"""One suite, two stores: the in-memory fake and the asyncpg repository behave alike.

The PostgreSQL run uses a real database with the service's migrations; each test runs
in a transaction that is rolled back.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import asyncpg
import pytest
from sessions_fakes import FakeSessionsRepository

from servicekit import db
from services.sessions import bootstrap
from services.sessions.adapters.repository import PostgresSessionsRepository, SessionsRepository
from services.sessions.domain.agenda import Topic
from services.sessions.domain.model import (
    Note,
    Pair,
    PairStatus,
    Participant,
    Program,
    Session,
    SessionStatus,
)
from services.sessions.domain.slots import Interval, WorkingHours
from tests.fixtures.infra import PostgresServerInfo

MIGRATIONS = Path(bootstrap.__file__).parent / "migrations"
T0 = datetime(2025, 3, 3, 9, tzinfo=UTC)
PROGRAM = Program(
    "prg-1", "Digital fluency", 14, 26, 60, 2, 35, (Topic("social-media", "Social", 1),)
)
PAIR = Pair("pair-1", "prg-1", "emp-m", "emp-e", ("social-media",), formed_at=T0)


def session(number: int, *, pair_id: str = "pair-1", start: datetime | None = None) -> Session:
    starts_at = start or T0 + timedelta(days=14 * number)
    return Session(
        session_id=f"ses-{pair_id}-{number}",
        pair_id=pair_id,
        program_id="prg-1",
        number=number,
        due_at=starts_at,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=1),
        agenda=("social-media",),
        warnings=("late for someone",),
    )


@pytest.fixture(scope="module")
async def sessions_database(postgres: PostgresServerInfo) -> AsyncIterator[str]:
    name = f"test_sessions_repo_{uuid.uuid4().hex[:12]}"
    url = await postgres.create_database(name)
    pool = await db.create_pool(url)
    await db.apply_migrations(pool, "servicekit", db.KIT_MIGRATIONS)
    await db.apply_migrations(pool, "sessions", MIGRATIONS)
    await pool.close()
    yield url
    await postgres.drop_database(name)


@pytest.fixture
async def postgres_repository(sessions_database: str) -> AsyncIterator[SessionsRepository]:
    conn = await asyncpg.connect(sessions_database)
    transaction = conn.transaction()
    await transaction.start()
    try:
        yield PostgresSessionsRepository(conn)
    finally:
        await transaction.rollback()
        await conn.close()


@pytest.fixture(params=["fake", pytest.param("postgres", marks=pytest.mark.integration)])
def repo(request: pytest.FixtureRequest) -> SessionsRepository:
    if request.param == "fake":
        return FakeSessionsRepository()
    repository: SessionsRepository = request.getfixturevalue("postgres_repository")
    return repository


async def test_program_revisions_only_move_forward(repo: SessionsRepository) -> None:
    assert await repo.save_program(program=PROGRAM)
    assert await repo.get_program(program_id="prg-1") == PROGRAM
    assert not await repo.save_program(program=replace(PROGRAM, name="Old"))
    newer = replace(PROGRAM, revision=2, cadence_days=7)
    assert await repo.save_program(program=newer)
    assert await repo.get_program(program_id="prg-1") == newer
    assert await repo.get_program(program_id="nope") is None


async def test_a_closed_program_stays_closed(repo: SessionsRepository) -> None:
    await repo.save_program(program=PROGRAM)
    await repo.close_program(program_id="prg-1")
    await repo.save_program(program=replace(PROGRAM, revision=3))
    stored = await repo.get_program(program_id="prg-1")
    assert stored is not None and stored.closed and stored.revision == 3


async def test_participants_keep_wants_per_program(repo: SessionsRepository) -> None:
    hours = WorkingHours(time(7, 30), time(15), frozenset({0, 1, 2}))
    person = Participant("emp-m", "Aisha", "a@example.com", "Europe/London", hours, {"x": 3})
    await repo.save_participant(participant=person, program_id="prg-1")
    other = replace(person, display_name="Aisha R", wants={"y": 1})
    await repo.save_participant(participant=other, program_id="prg-2")
    first = await repo.get_participant(participant_id="emp-m", program_id="prg-1")
    assert first == replace(other, wants={"x": 3})
    unknown_program = await repo.get_participant(participant_id="emp-m", program_id="prg-9")
    assert unknown_program is not None and unknown_program.wants is None
    assert await repo.get_participant(participant_id="emp-x", program_id="prg-1") is None


async def test_program_and_people_in_one_read(repo: SessionsRepository) -> None:
    hours = WorkingHours(time(7, 30), time(15), frozenset({0, 1, 2}))
    mentor = Participant("emp-m", "Aisha", "a@example.com", "Europe/London", hours, {"x": 3})
    mentee = Participant("emp-e", "Ben", "b@example.com", "Asia/Tokyo", None, None)
    await repo.save_participant(participant=mentor, program_id="prg-1")
    await repo.save_participant(participant=mentee, program_id="prg-2")
    ids = ["emp-m", "emp-e", "emp-x"]
    assert await repo.program_and_people(program_id="prg-1", participant_ids=ids) == (
        None,
        {"emp-m": mentor, "emp-e": replace(mentee, wants=None)},
    )
    await repo.save_program(program=PROGRAM)
    program, people = await repo.program_and_people(program_id="prg-1", participant_ids=ids)
    assert program == PROGRAM
    for participant_id in ids:
        alone = await repo.get_participant(participant_id=participant_id, program_id="prg-1")
        assert people.get(participant_id) == alone
    nobody = await repo.program_and_people(program_id="prg-1", participant_ids=["emp-x"])
    assert nobody == (PROGRAM, {})
    assert await repo.program_and_people(program_id="nope", participant_ids=[]) == (None, {})


async def test_forgetting_erases_personal_data_and_notes(repo: SessionsRepository) -> None:
    person = Participant("emp-m", "Aisha", "a@example.com", "Europe/London", None, {"x": 3})
    await repo.save_participant(participant=person, program_id="prg-1")
    await repo.add_pair(pair=PAIR)
    await repo.add_session(session=session(1))
    await repo.add_note(note=Note("ses-pair-1-1", "pair-1", "emp-m", "mine", T0))
    await repo.add_note(note=Note("ses-pair-1-1", "pair-1", "emp-e", "theirs", T0))
    assert not await repo.is_forgotten(participant_id="emp-m")
    assert await repo.forget_participant(participant_id="emp-m", now=T0) == 3
    assert await repo.get_participant(participant_id="emp-m", program_id="prg-1") is None
    assert [n.body for n in await repo.notes(session_id="ses-pair-1-1")] == ["theirs"]
    assert await repo.is_forgotten(participant_id="emp-m")
    assert await repo.forget_participant(participant_id="emp-m", now=T0) == 0


async def test_forgetting_takes_the_name_out_of_the_partners_notes(
    repo: SessionsRepository,
) -> None:
    person = Participant("emp-m", "Aisha Rahman", "aisha@example.com", "Europe/London")
    await repo.save_participant(participant=person, program_id="prg-1")
    await repo.add_pair(pair=PAIR)
    await repo.add_session(session=session(1))
    partner_note = "Aisha (aisha@example.com) said AISHA RAHMAN likes Rahmania"
    await repo.add_note(note=Note("ses-pair-1-1", "pair-1", "emp-e", partner_note, T0))
    await repo.add_note(note=Note("ses-pair-1-1", "pair-1", "emp-e", "nothing to hide", T0))
    assert await repo.forget_participant(participant_id="emp-m", now=T0) == 3  # entry, wants, note
    assert [n.body for n in await repo.notes(session_id="ses-pair-1-1")] == [
        "(erased) (erased@erased.invalid) said (erased) likes Rahmania",
        "nothing to hide",
    ]


async def test_pairs_are_added_once_and_saved(repo: SessionsRepository) -> None:
    assert await repo.add_pair(pair=PAIR)
    assert not await repo.add_pair(pair=replace(PAIR, mentor_id="someone-else"))
    active = replace(
        PAIR,
        status=PairStatus.ACTIVE,
        first_due=T0 + timedelta(days=2),
        ends_at=T0 + timedelta(weeks=26),
        consecutive_missed=1,
        last_held_at=T0 + timedelta(days=3),
        stalled=True,
    )
    await repo.save_pair(pair=active)
    assert await repo.get_pair(pair_id="pair-1", lock=True) == active
    assert await repo.get_pair(pair_id="nope") is None


async def test_pair_queries(repo: SessionsRepository) -> None:
    await repo.save_program(program=PROGRAM)
    ends = T0 + timedelta(weeks=26)
    await repo.add_pair(pair=replace(PAIR, status=PairStatus.ACTIVE, ends_at=ends))
    later = T0 + timedelta(days=1)
    await repo.add_pair(pair=Pair("pair-2", "prg-1", "emp-m", "emp-z", ("x",), formed_at=later))
    await repo.add_pair(pair=Pair("pair-3", "prg-2", "emp-q", "emp-r", ("x",), formed_at=T0))
    assert await repo.pair_ids(statuses=[PairStatus.PENDING]) == ["pair-2", "pair-3"]
    assert await repo.pair_ids(statuses=list(PairStatus), participant_id="emp-m") == [
        "pair-1",
        "pair-2",
    ]
    assert await repo.pair_ids(statuses=[PairStatus.PENDING], program_id="prg-2") == ["pair-3"]
    mine = await repo.pairs(participant_id="emp-m")
    assert [p.pair_id for p in mine] == ["pair-2", "pair-1"]
    assert [p.pair_id for p in await repo.pairs(program_id="prg-2", limit=5)] == ["pair-3"]
    assert [p.pair_id for p in await repo.pairs(program_ids=["prg-2", "prg-9"])] == ["pair-3"]
    assert await repo.pairs(program_ids=[]) == []
    assert await repo.pairs_to_complete(now=ends - timedelta(seconds=1), limit=10) == []
    assert await repo.pairs_to_complete(now=ends, limit=10) == ["pair-1"]
    assert await repo.move_pair_ends(program_id="prg-1", duration=timedelta(weeks=1)) == 1
    moved = await repo.get_pair(pair_id="pair-1")
    assert moved is not None and moved.ends_at == T0 + timedelta(weeks=1)


async def test_pairs_to_check_for_stall(repo: SessionsRepository) -> None:
    await repo.save_program(program=PROGRAM)
    active = replace(PAIR, status=PairStatus.ACTIVE)
    await repo.add_pair(pair=active)
    await repo.add_pair(pair=replace(active, pair_id="pair-2", consecutive_missed=2))
    await repo.add_pair(pair=replace(active, pair_id="pair-3", consecutive_missed=2, stalled=True))
    await repo.add_pair(
        pair=replace(active, pair_id="pair-4", last_held_at=T0 + timedelta(days=30))
    )
    assert await repo.pairs_to_check_for_stall(now=T0, limit=10) == ["pair-2"]
    day_35 = T0 + timedelta(days=35)
    assert await repo.pairs_to_check_for_stall(now=day_35, limit=10) == ["pair-1", "pair-2"]
    assert await repo.pairs_to_check_for_stall(now=day_35, limit=1) == ["pair-1"]


async def test_sessions_are_added_once_per_number(repo: SessionsRepository) -> None:
    await repo.add_pair(pair=PAIR)
    assert await repo.add_session(session=session(1))
    assert not await repo.add_session(session=replace(session(1), session_id="ses-other"))
    assert await repo.add_session(session=session(2))
    assert await repo.get_session(session_id="ses-pair-1-1") == session(1)
    assert [s.number for s in await repo.sessions_of_pair(pair_id="pair-1")] == [1, 2]
    assert await repo.get_session(session_id="nope") is None


async def test_sessions_are_added_in_one_go(repo: SessionsRepository) -> None:
    await repo.add_pair(pair=PAIR)
    assert await repo.add_sessions(sessions=[]) == set()
    await repo.add_session(session=session(1))
    held = replace(
        session(3),
        status=SessionStatus.HELD,
        attendees=("emp-m",),
        duration_minutes=45,
        topics_covered=("social-media",),
        cancel_reason=None,
        updated_at=T0 + timedelta(microseconds=17),
        warnings=(),
    )
    taken = replace(session(1), session_id="ses-other")
    added = await repo.add_sessions(sessions=[taken, session(2), held])
    assert added == {"ses-pair-1-2", "ses-pair-1-3"}
    assert await repo.get_session(session_id="ses-other") is None
    assert await repo.sessions_of_pair(pair_id="pair-1") == [session(1), session(2), held]


async def test_a_pair_is_added_with_its_first_sessions_once(repo: SessionsRepository) -> None:
    first = [session(1), replace(session(2), warnings=(), updated_at=T0)]
    assert await repo.add_pair(pair=PAIR, sessions=first)
    assert await repo.get_pair(pair_id="pair-1") == PAIR
    assert await repo.sessions_of_pair(pair_id="pair-1") == first
    again = replace(PAIR, mentor_id="someone-else")
    assert not await repo.add_pair(pair=again, sessions=[session(3)])
    assert await repo.get_pair(pair_id="pair-1") == PAIR
    assert await repo.sessions_of_pair(pair_id="pair-1") == first


async def test_pairs_are_added_in_one_go_with_their_own_sessions(
    repo: SessionsRepository,
) -> None:
    await repo.add_pair(pair=PAIR, sessions=[session(1)])
    second = Pair("pair-2", "prg-1", "emp-a", "emp-b", ("x",), formed_at=T0)
    active = replace(
        Pair("pair-3", "prg-1", "emp-c", "emp-d", (), formed_at=T0),
        status=PairStatus.ACTIVE,
        first_due=T0 + timedelta(days=2),
        ends_at=T0 + timedelta(weeks=26),
    )
    ours = [session(1, pair_id="pair-3"), replace(session(2, pair_id="pair-3"), warnings=())]
    again = replace(PAIR, mentor_id="someone-else")
    added = await repo.add_pairs(
        pairs=[again, second, active], sessions=[session(2), *ours, session(1, pair_id="pair-2")]
    )
    assert added == {"pair-2", "pair-3"}
    assert await repo.get_pair(pair_id="pair-1") == PAIR
    assert await repo.get_pair(pair_id="pair-3") == active
    assert await repo.sessions_of_pair(pair_id="pair-1") == [session(1)]
    assert await repo.sessions_of_pair(pair_id="pair-2") == [session(1, pair_id="pair-2")]
    assert await repo.sessions_of_pair(pair_id="pair-3") == ours
    assert await repo.add_pairs(pairs=[], sessions=[]) == set()
    known = await repo.known_pair_ids(pair_ids=["pair-1", "pair-3", "pair-9"])
    assert known == {"pair-1", "pair-3"}


async def test_planning_facts_of_a_batch(repo: SessionsRepository) -> None:
    mentor = Participant("emp-m", "Aisha", "a@example.com", "Europe/London", None, {"x": 3})
    mentee = Participant("emp-e", "Ben", "b@example.com", "Asia/Tokyo", None, None)
    await repo.save_participant(participant=mentor, program_id="prg-1")
    await repo.save_participant(participant=mentor, program_id="prg-2")
    await repo.save_participant(participant=mentee, program_id="prg-2")
    await repo.save_program(program=PROGRAM)
    keys = [("prg-1", "emp-m"), ("prg-1", "emp-e"), ("prg-2", "emp-e"), ("prg-1", "emp-x")]
    programs, people = await repo.planning_facts(keys=keys)
    assert programs == {"prg-1": PROGRAM}
    assert people == {
        ("prg-1", "emp-m"): mentor,
        ("prg-1", "emp-e"): replace(mentee, wants=None),
        ("prg-2", "emp-e"): replace(mentee, wants={}),
    }
    for (program_id, person), found in people.items():
        assert found == await repo.get_participant(participant_id=person, program_id=program_id)
    assert await repo.planning_facts(keys=[]) == ({}, {})


async def test_calendars_are_each_persons_scheduled_sessions(repo: SessionsRepository) -> None:
    await repo.add_pair(pair=PAIR)
    await repo.add_pair(pair=Pair("pair-2", "prg-1", "emp-e", "emp-z", ("x",), formed_at=T0))
    start = T0 + timedelta(days=1)
    await repo.add_session(session=session(1, start=start))
    await repo.add_session(session=session(1, pair_id="pair-2", start=start + timedelta(hours=2)))
    await repo.add_session(
        session=replace(session(2, start=start + timedelta(hours=4)), status=SessionStatus.HELD)
    )
    window = Interval(start, start + timedelta(days=1))
    first = Interval(start, start + timedelta(hours=1))
    later = Interval(start + timedelta(hours=2), start + timedelta(hours=3))
    found = await repo.calendars(participant_ids=["emp-m", "emp-e", "emp-x"], window=window)
    assert found == {"emp-m": [first], "emp-e": [first, later]}
    for person in ("emp-m", "emp-e"):
        assert found[person] == await repo.busy(participant_ids=[person], window=window)
    edge = Interval(start + timedelta(hours=1), start + timedelta(hours=2))
    assert await repo.calendars(participant_ids=["emp-e"], window=edge) == {}


async def test_saved_sessions_keep_every_field(repo: SessionsRepository) -> None:
    await repo.add_pair(pair=PAIR)
    await repo.add_session(session=session(1))
    held = replace(
        session(1),
        status=SessionStatus.HELD,
        ical_sequence=2,
        attendees=("emp-m", "emp-e"),
        absent=("emp-x",),
        duration_minutes=50,
        topics_covered=("social-media",),
        cancel_reason="admin",
        updated_at=T0,
        starts_at=T0 + timedelta(days=15),
        ends_at=T0 + timedelta(days=15, hours=1),
    )
    await repo.save_session(session=held)
    assert await repo.get_session(session_id=held.session_id) == held


async def test_busy_sees_both_peoples_scheduled_sessions(repo: SessionsRepository) -> None:
    await repo.add_pair(pair=PAIR)
    await repo.add_pair(pair=Pair("pair-2", "prg-1", "emp-e", "emp-z", ("x",), formed_at=T0))
    await repo.add_pair(pair=Pair("pair-3", "prg-1", "emp-q", "emp-r", ("x",), formed_at=T0))
    start = T0 + timedelta(days=1)
    await repo.add_session(session=session(1, start=start))
    await repo.add_session(session=session(1, pair_id="pair-2", start=start + timedelta(hours=2)))
    await repo.add_session(session=session(1, pair_id="pair-3", start=start))
    cancelled = replace(
        session(2, start=start + timedelta(hours=4)), status=SessionStatus.CANCELLED
    )
    await repo.add_session(session=cancelled)
    window = Interval(start, start + timedelta(days=1))
    busy = await repo.busy(participant_ids=["emp-m", "emp-e"], window=window)
    assert busy == [
        Interval(start, start + timedelta(hours=1)),
        Interval(start + timedelta(hours=2), start + timedelta(hours=3)),
    ]
    excluded = await repo.busy(participant_ids=["emp-m"], window=window, exclude="ses-pair-1-1")
    assert excluded == []
    edge = Interval(start + timedelta(hours=1), start + timedelta(hours=2))
    assert await repo.busy(participant_ids=["emp-e"], window=edge) == []


async def test_overdue_and_listed_sessions(repo: SessionsRepository) -> None:
    await repo.add_pair(pair=PAIR)
    await repo.add_pair(pair=Pair("pair-2", "prg-1", "emp-q", "emp-r", ("x",), formed_at=T0))
    await repo.add_session(session=session(2))
    await repo.add_session(session=session(1))
    await repo.add_session(session=replace(session(3), status=SessionStatus.HELD))
    await repo.add_session(session=session(1, pair_id="pair-2"))
    cutoff = T0 + timedelta(days=28, hours=1)
    overdue = await repo.overdue_sessions(ended_before=cutoff, limit=10)
    assert [(s.pair_id, s.number) for s in overdue] == [("pair-1", 1), ("pair-2", 1)]
    assert len(await repo.overdue_sessions(ended_before=cutoff, limit=1)) == 1
    mine = await repo.sessions(participant_id="emp-e")
    assert [s.number for s in mine] == [1, 2, 3]
    held = await repo.sessions(participant_id="emp-e", status=SessionStatus.HELD)
    assert [s.number for s in held] == [3]
    assert [s.pair_id for s in await repo.sessions(pair_id="pair-2")] == ["pair-2"]
    assert len(await repo.sessions(limit=2)) == 2
    assert await repo.sessions(program_ids=["prg-2"]) == []
    assert len(await repo.sessions(program_ids=["prg-1", "prg-2"])) == 4


async def test_notes_in_order(repo: SessionsRepository) -> None:
    await repo.add_pair(pair=PAIR)
    await repo.add_session(session=session(1))
    second = Note("ses-pair-1-1", "pair-1", "emp-e", "second", T0 + timedelta(minutes=1))
    first = Note("ses-pair-1-1", "pair-1", "emp-m", "first", T0)
    await repo.add_note(note=second)
    await repo.add_note(note=first)
    assert await repo.notes(session_id="ses-pair-1-1") == [first, second]
    assert await repo.notes(session_id="other") == []


async def test_calendars_can_be_locked_in_a_transaction(repo: SessionsRepository) -> None:
    await repo.lock_calendars(participant_ids=["emp-m", "emp-e", "emp-m"])
    await repo.lock_calendars(participant_ids=["emp-e"])  # re-entrant within one transaction


@pytest.mark.integration
async def test_a_locked_calendar_makes_another_planner_wait(sessions_database: str) -> None:
    first, second = (
        await asyncpg.connect(sessions_database),
        await asyncpg.connect(sessions_database),
    )
    try:
        async with first.transaction():
            await PostgresSessionsRepository(first).lock_calendars(participant_ids=["emp-m"])
            async with second.transaction():
                await second.execute("SET LOCAL lock_timeout = '200ms'")
                await PostgresSessionsRepository(second).lock_calendars(participant_ids=["emp-z"])
                with pytest.raises(asyncpg.exceptions.LockNotAvailableError):
                    await PostgresSessionsRepository(second).lock_calendars(
                        participant_ids=["emp-z", "emp-m"]
                    )
    finally:
        await first.close()
        await second.close()
