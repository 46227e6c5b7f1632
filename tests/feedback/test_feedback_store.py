"""One suite for the FeedbackStore port, run on the fake and on PostgreSQL.

The PostgreSQL run uses a new migrated database per test, inside one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest

from schemas.feedback import HealthSignal, PairHealth
from schemas.pairs import PairEndReason
from servicekit import db
from services.feedback.adapters.repository import (
    PENDING,
    RELEASED,
    FeedbackStore,
    PostgresFeedbackStore,
)
from services.feedback.bootstrap import MIGRATIONS
from services.feedback.domain.health import HealthAssessment, RatedAnswer
from services.feedback.domain.milestones import ProgramCalendar
from services.feedback.domain.outcomes import RatingTotals, RequestTotals, SkillLevels
from services.feedback.domain.pairs import HeldSession
from services.feedback.domain.programs import ProgramSettings
from services.feedback.domain.requests import (
    PairMembers,
    RequestStatus,
    milestone_requests,
    session_requests,
)
from services.feedback.domain.submissions import (
    AlreadyAnswered,
    Answer,
    SkillRating,
    StoredAnswer,
)
from tests.feedback.fake_store import FakeFeedbackStore
from tests.fixtures.infra import PostgresServerInfo

T0 = datetime(2025, 3, 11, 9, tzinfo=UTC)
PAIR = PairMembers("pair-1", "prg-1", "emp-m", "emp-e")
OTHER = PairMembers("pair-2", "prg-1", "emp-m2", "emp-e2")


@pytest.fixture(params=["fake", pytest.param("postgres", marks=pytest.mark.integration)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[FeedbackStore]:
    if request.param == "fake":
        yield FakeFeedbackStore()
        return
    postgres: PostgresServerInfo = request.getfixturevalue("postgres")
    name = f"test_store_{uuid.uuid4().hex[:12]}"
    pool = await db.create_pool(await postgres.create_database(name), max_size=1)
    try:
        await db.apply_migrations(pool, "servicekit", db.KIT_MIGRATIONS)
        await db.apply_migrations(pool, "feedback", MIGRATIONS)
        async with pool.acquire() as conn, conn.transaction():
            yield PostgresFeedbackStore(conn)
    finally:
        await pool.close()
        await postgres.drop_database(name)


def program(revision: int = 1, **changes: object) -> ProgramSettings:
    base = ProgramSettings(
        program_id="prg-1",
        revision=revision,
        calendar=ProgramCalendar(date(2025, 3, 3), 26, (4, 12)),
        k_anonymity=5,
        topics=frozenset({"social-media", "genai-tools"}),
        admin_ids=frozenset({"adm-1"}),
    )
    return ProgramSettings(**{**base.__dict__, **changes})  # type: ignore[arg-type]


async def test_programs_keep_their_latest_revision(store: FeedbackStore) -> None:
    await store.save_program(program=program(2, k_anonymity=7))
    await store.save_program(program=program(1, k_anonymity=3))
    assert await store.program(program_id="prg-1") == program(2, k_anonymity=7)
    newer = program(3, calendar=ProgramCalendar(date(2025, 3, 3), 10, None))
    await store.save_program(program=newer)
    await store.close_program(program_id="prg-1", closed_at=T0)
    assert await store.program(program_id="prg-1") == newer
    assert await store.program(program_id="prg-x") is None


async def test_a_pair_is_stored_once_and_ends_once(store: FeedbackStore) -> None:
    assert await store.add_pair(members=PAIR, formed_at=T0)
    assert not await store.add_pair(members=PAIR, formed_at=T0 + timedelta(days=1))
    assert await store.add_pair(members=OTHER, formed_at=T0)
    record = await store.pair(pair_id="pair-1")
    assert record is not None and record.members == PAIR and record.formed_at == T0
    assert record.open and record.health_band is PairHealth.HEALTHY
    assert await store.end_pair(pair_id="pair-1", reason=PairEndReason.COMPLETED, ended_at=T0)
    assert not await store.end_pair(pair_id="pair-1", reason=PairEndReason.STALLED, ended_at=T0)
    assert not await store.end_pair(pair_id="nope", reason=PairEndReason.STALLED, ended_at=T0)
    ended = await store.pair(pair_id="pair-1")
    assert ended is not None and ended.end_reason is PairEndReason.COMPLETED
    assert [p.pair_id for p in await store.open_pairs()] == ["pair-2"]
    assert await store.pair(pair_id="nope") is None


async def test_health_and_bands(store: FeedbackStore) -> None:
    await store.add_pair(members=PAIR, formed_at=T0)
    await store.add_pair(members=OTHER, formed_at=T0)
    at_risk = HealthAssessment(0.2, PairHealth.AT_RISK, (HealthSignal.STALLED,))
    await store.save_health(pair_id="pair-1", assessment=at_risk)
    record = await store.pair(pair_id="pair-1")
    assert record is not None
    assert (record.health_band, record.health_score, record.health_signals) == (
        PairHealth.AT_RISK,
        0.2,
        (HealthSignal.STALLED,),
    )
    bands = await store.health_bands()
    assert bands == {PairHealth.HEALTHY: 1, PairHealth.WATCH: 0, PairHealth.AT_RISK: 1}


def session(pair_id: str, session_id: str, held_at: datetime = T0) -> HeldSession:
    return HeldSession(pair_id, "prg-1", session_id, held_at)


async def test_attendance_and_held_sessions(store: FeedbackStore) -> None:
    await store.add_pair(members=PAIR, formed_at=T0)
    s2 = session("pair-1", "s2", T0 + timedelta(1))
    assert await store.record_held_sessions(sessions=[s2]) == [s2]
    s1 = session("pair-1", "s1")
    assert await store.record_held_sessions(sessions=[s1, s1, s2]) == [s1]  # s1 once, s2 stored
    assert await store.record_held_sessions(sessions=[s1]) == []
    assert await store.record_held_sessions(sessions=[]) == []
    assert await store.held_sessions(pair_id="pair-1") == ["s1", "s2"]
    await store.set_attendance(pair_id="pair-1", consecutive_missed=2, stalled=None)
    await store.set_attendance(pair_id="pair-1", consecutive_missed=3, stalled=True)
    await store.set_attendance(pair_id="pair-1", consecutive_missed=4, stalled=None)
    record = await store.pair(pair_id="pair-1")
    assert record is not None and (record.consecutive_missed, record.stalled) == (4, True)
    await store.set_attendance(pair_id="pair-9", consecutive_missed=1, stalled=None)
    assert await store.sessions_by_pair(program_id="prg-1") == {"pair-1": 2}


async def test_a_held_session_clears_misses_and_the_stall_once(store: FeedbackStore) -> None:
    await store.add_pair(members=PAIR, formed_at=T0)
    await store.add_pair(members=OTHER, formed_at=T0)
    await store.set_attendance(pair_id="pair-1", consecutive_missed=2, stalled=True)
    await store.set_attendance(pair_id="pair-2", consecutive_missed=3, stalled=True)
    both = [session("pair-1", "s1"), session("pair-1", "s2"), session("pair-2", "s1")]
    assert await store.record_held_sessions(sessions=both) == both
    for pair_id in ("pair-1", "pair-2"):
        record = await store.pair(pair_id=pair_id)
        assert record is not None and (record.consecutive_missed, record.stalled) == (0, False)
    await store.set_attendance(pair_id="pair-1", consecutive_missed=1, stalled=True)
    assert await store.record_held_sessions(sessions=both[:1]) == []
    record = await store.pair(pair_id="pair-1")
    assert record is not None and (record.consecutive_missed, record.stalled) == (1, True)
    assert await store.record_held_sessions(sessions=[session("pair-9", "s1")])
    await store.add_pair(members=PairMembers("pair-9", "prg-1", "emp-m9", "emp-e9"), formed_at=T0)
    early = await store.pair(pair_id="pair-9")
    assert early is not None and (early.consecutive_missed, early.stalled) == (0, False)


async def test_a_pair_context_has_its_program_and_recent_history(store: FeedbackStore) -> None:
    assert await store.pair_context(pair_id="pair-1", answers=2, closed=2) is None
    await store.add_pair(members=PAIR, formed_at=T0)
    await store.set_attendance(pair_id="pair-1", consecutive_missed=2, stalled=None)
    bare = await store.pair_context(pair_id="pair-1", answers=2, closed=2, for_update=True)
    assert bare is not None and bare.program is None
    assert bare.record == await store.pair(pair_id="pair-1")
    assert (bare.recent_answers, bare.closed_requests_missing) == ((), ())
    assert bare.record.consecutive_missed == 2
    await store.save_program(program=program(3, k_anonymity=7))
    for n in range(1, 4):
        requests = session_requests(PAIR, session_id=f"s{n}", now=T0, response_days=7)
        await store.add_requests(requests=requests)
        answer = StoredAnswer(requests[0], Answer(n, n, n, n), T0 + timedelta(hours=n), False)
        await store.save_answer(stored=answer)
    await store.add_requests(
        requests=session_requests(OTHER, session_id="s1", now=T0, response_days=7)
    )
    await store.mark_missing(now=T0 + timedelta(days=8))
    context = await store.pair_context(pair_id="pair-1", answers=2, closed=2)
    assert context is not None and context.program == program(3, k_anonymity=7)
    assert context.recent_answers == (RatedAnswer(2, 2, 2, 2), RatedAnswer(3, 3, 3, 3))
    expected = tuple(await store.closed_request_outcomes(pair_id="pair-1", limit=2))
    assert context.closed_requests_missing == expected and len(expected) == 2
    assert context.health_inputs().consecutive_missed == 2


async def test_pair_contexts_are_read_together(store: FeedbackStore) -> None:
    await store.add_pair(members=PAIR, formed_at=T0)
    await store.add_pair(members=OTHER, formed_at=T0)
    await store.save_program(program=program())
    await store.set_attendance(pair_id="pair-2", consecutive_missed=1, stalled=True)
    requests = session_requests(OTHER, session_id="s1", now=T0, response_days=7)
    await store.add_requests(requests=requests)
    await store.save_answer(stored=StoredAnswer(requests[1], Answer(4, 4, 4, 4), T0, False))
    found = await store.pair_contexts(
        pair_ids=["pair-2", "pair-x", "pair-1", "pair-2"], answers=2, closed=2, for_update=True
    )
    assert sorted(found) == ["pair-1", "pair-2"]
    for pair_id, context in found.items():
        assert context == await store.pair_context(pair_id=pair_id, answers=2, closed=2)
    assert found["pair-2"].recent_answers == (RatedAnswer(4, 4, 4, 4),)
    assert found["pair-2"].record.stalled and found["pair-1"].program == program()
    assert await store.pair_contexts(pair_ids=[], answers=2, closed=2) == {}


async def test_requests_are_stored_once_and_go_missing_past_due(store: FeedbackStore) -> None:
    first = session_requests(PAIR, session_id="s1", now=T0, response_days=7)
    later = session_requests(PAIR, session_id="s2", now=T0 + timedelta(days=3), response_days=7)
    assert await store.add_requests(requests=first) == first
    assert await store.add_requests(requests=first + later) == later
    state = await store.request(request_id=first[0].request_id)
    assert state is not None and state.request == first[0]
    assert state.status is RequestStatus.OPEN and not state.late
    mine = await store.requests_of(participant_id="emp-e")
    assert [s.request.session_id for s in mine] == ["s2", "s1"]
    assert await store.mark_missing(now=T0 + timedelta(days=7)) == []
    assert await store.mark_missing(now=T0 + timedelta(days=8)) == ["pair-1"]
    assert await store.mark_missing(now=T0 + timedelta(days=8)) == []
    missing = await store.request(request_id=first[1].request_id)
    assert missing is not None and missing.status is RequestStatus.MISSING
    assert await store.closed_request_outcomes(pair_id="pair-1", limit=4) == [True, True]
    assert await store.request(request_id="fbr-unknown") is None


async def test_requested_milestones_of_open_pairs(store: FeedbackStore) -> None:
    await store.add_pair(members=PAIR, formed_at=T0)
    await store.add_pair(members=OTHER, formed_at=T0)
    for pair, week in [(PAIR, 2), (PAIR, 13), (OTHER, 2)]:
        await store.add_requests(
            requests=milestone_requests(pair, week=week, now=T0, response_days=7)
        )
    await store.add_requests(
        requests=session_requests(PAIR, session_id="s1", now=T0, response_days=7)
    )
    await store.end_pair(pair_id="pair-2", reason=PairEndReason.NO_FAULT_EXIT, ended_at=T0)
    assert await store.requested_milestones() == {"pair-1": frozenset({2, 13})}


async def test_one_answer_per_request(store: FeedbackStore) -> None:
    mentor_request, mentee_request = session_requests(
        PAIR, session_id="s1", now=T0, response_days=7
    )
    await store.add_requests(requests=[mentor_request, mentee_request])
    answer = Answer(
        4, 3, 5, 2, nps=9, skills=(SkillRating("social-media", 1, 3),), comment="private words"
    )
    stored = StoredAnswer(mentee_request, answer, T0 + timedelta(days=8), late=True)
    await store.save_answer(stored=stored)
    with pytest.raises(AlreadyAnswered):
        await store.save_answer(stored=stored)
    assert await store.answer(request_id=mentee_request.request_id) == stored
    assert await store.answer(request_id=mentor_request.request_id) is None
    assert await store.answers_of(participant_id="emp-e") == [stored]
    assert await store.answers_of(participant_id="emp-m") == []
    state = await store.request(request_id=mentee_request.request_id)
    assert state is not None and state.status is RequestStatus.SUBMITTED and state.late
    assert await store.people_asked_and_answering(program_id="prg-1") == (2, 1)
    assert await store.people_asked_and_answering(program_id="prg-x") == (0, 0)
    assert await store.closed_request_outcomes(pair_id="pair-1", limit=4) == [False]


async def test_recent_answers_are_oldest_first_and_limited(store: FeedbackStore) -> None:
    for n in range(1, 4):
        requests = session_requests(PAIR, session_id=f"s{n}", now=T0, response_days=7)
        await store.add_requests(requests=requests)
        answer = Answer(n, n, n, n)
        await store.save_answer(
            stored=StoredAnswer(requests[0], answer, T0 + timedelta(hours=n), late=False)
        )
    assert await store.recent_answers(pair_id="pair-1", limit=2) == [
        RatedAnswer(2, 2, 2, 2),
        RatedAnswer(3, 3, 3, 3),
    ]


async def test_contributions_wait_then_join_the_released_figures(store: FeedbackStore) -> None:
    atom = ("mentee", "session")
    one = RatingTotals.of(Answer(4, 4, 4, 4, nps=10))
    await store.add_contribution(program_id="prg-1", atom=atom, person_id="e1", totals=one)
    await store.add_contribution(program_id="prg-1", atom=atom, person_id="e1", totals=one)
    await store.add_contribution(program_id="prg-1", atom=atom, person_id="e2", totals=one)
    other_atom = ("mentor", "session")
    await store.add_contribution(program_id="prg-1", atom=other_atom, person_id="m1", totals=one)
    assert await store.contribution_people(program_id="prg-1", stage=PENDING) == {
        atom: {"e1", "e2"},
        other_atom: {"m1"},
    }
    assert await store.contribution_people(program_id="prg-1", stage=RELEASED) == {}
    assert await store.last_release(program_id="prg-1") is None
    await store.release_contributions(program_id="prg-1", atoms=[atom], released_at=T0)
    await store.add_contribution(program_id="prg-1", atom=atom, person_id="e1", totals=one)
    await store.release_contributions(program_id="prg-1", atoms=[atom], released_at=T0)
    assert await store.contribution_people(program_id="prg-1", stage=PENDING) == {
        other_atom: {"m1"}
    }
    assert await store.last_release(program_id="prg-1") == T0
    released = await store.released_totals(program_id="prg-1")
    assert set(released) == {atom}
    assert released[atom].people == {"e1", "e2"}
    assert released[atom].ratings == one + one + one + one


async def test_released_totals_count_requests_live(store: FeedbackStore) -> None:
    mentor_request, mentee_request = session_requests(
        PAIR, session_id="s1", now=T0, response_days=7
    )
    await store.add_requests(requests=[mentor_request, mentee_request])
    answer = StoredAnswer(mentee_request, Answer(3, 3, 3, 3), T0 + timedelta(days=9), late=True)
    await store.save_answer(stored=answer)
    await store.mark_missing(now=T0 + timedelta(days=10))
    totals = await store.released_totals(program_id="prg-1")
    assert totals[("mentee", "session")].requests == RequestTotals(1, 1, 1, 0)
    assert totals[("mentor", "session")].requests == RequestTotals(1, 0, 0, 1)
    assert totals[("mentor", "session")].people == frozenset()
    assert totals[("mentor", "session")].asked == {"emp-m"}


async def test_skills_keep_the_first_before_and_the_latest_after(store: FeedbackStore) -> None:
    args = {"program_id": "prg-1"}
    await store.add_skill(**args, mentee_id="e1", skill=SkillRating("social-media", 1, 2))
    await store.add_skill(**args, mentee_id="e1", skill=SkillRating("social-media", 3, 4))
    await store.add_skill(**args, mentee_id="e2", skill=SkillRating("social-media", 2, 2))
    await store.add_skill(**args, mentee_id="e2", skill=SkillRating("genai-tools", 1, 5))
    assert await store.pending_skill_mentees(**args) == {"social-media": 2, "genai-tools": 1}
    await store.release_skills(**args, topics=["social-media"])
    assert await store.pending_skill_mentees(**args) == {"genai-tools": 1}
    assert await store.released_skills(**args) == {
        "social-media": [SkillLevels(1, 4), SkillLevels(2, 2)]
    }
    await store.add_skill(**args, mentee_id="e1", skill=SkillRating("social-media", 1, 5))
    assert await store.pending_skill_mentees(**args) == {"social-media": 1, "genai-tools": 1}
    assert (await store.released_skills(**args))["social-media"][0] == SkillLevels(1, 4)


async def test_participation_lists_each_persons_pairs(store: FeedbackStore) -> None:
    await store.add_pair(members=PAIR, formed_at=T0)
    await store.add_pair(members=PairMembers("pair-3", "prg-1", "emp-m", "emp-e3"), formed_at=T0)
    await store.add_pair(members=PairMembers("pair-4", "prg-2", "emp-m", "emp-e4"), formed_at=T0)
    await store.end_pair(pair_id="pair-1", reason=PairEndReason.AT_RISK_REMATCH, ended_at=T0)
    found = await store.participation(program_id="prg-1")
    assert sorted(found[("mentor", "emp-m")], key=str) == [None, PairEndReason.AT_RISK_REMATCH]
    assert found[("mentee", "emp-e")] == [PairEndReason.AT_RISK_REMATCH]
    assert set(found) == {("mentor", "emp-m"), ("mentee", "emp-e"), ("mentee", "emp-e3")}
    assert await store.sessions_by_pair(program_id="prg-1") == {"pair-1": 0, "pair-3": 0}
    assert await store.takes_part(program_id="prg-1", person_id="emp-e")  # pair ended
    assert await store.takes_part(program_id="prg-1", person_id="emp-m")
    assert not await store.takes_part(program_id="prg-1", person_id="emp-e4")  # prg-2 only


async def test_forgetting_erases_comments_and_replaces_the_id(store: FeedbackStore) -> None:
    await store.add_pair(members=PAIR, formed_at=T0)
    mentor_request, mentee_request = session_requests(
        PAIR, session_id="s1", now=T0, response_days=7
    )
    await store.add_requests(requests=[mentor_request, mentee_request])
    words = Answer(2, 3, 1, 2, nps=4, skills=(SkillRating("social-media", 1, 3),), comment="mine")
    await store.save_answer(stored=StoredAnswer(mentee_request, words, T0, late=False))
    await store.save_answer(
        stored=StoredAnswer(mentor_request, Answer(4, 4, 4, 4, comment="theirs"), T0, late=False)
    )
    atom = ("mentee", "session")
    one = RatingTotals.of(words)
    await store.add_contribution(program_id="prg-1", atom=atom, person_id="emp-e", totals=one)
    await store.release_contributions(program_id="prg-1", atoms=[atom], released_at=T0)
    await store.add_skill(program_id="prg-1", mentee_id="emp-e", skill=SkillRating("genai", 1, 2))
    before = await store.released_totals(program_id="prg-1")
    assert not await store.is_forgotten(participant_ids=["emp-e"])

    # 1 comment, 1 request, 1 pair side, 1 contribution, 1 skill row
    changed = await store.forget_participant(participant_id="emp-e", pseudonym="fgt-1", now=T0)
    assert changed == 5
    assert await store.is_forgotten(participant_ids=["emp-x", "emp-e"])
    assert not await store.is_forgotten(participant_ids=["emp-m"])
    assert await store.answers_of(participant_id="emp-e") == []
    assert await store.requests_of(participant_id="emp-e") == []
    kept = await store.answer(request_id=mentee_request.request_id)
    assert kept is not None and kept.answer.comment is None
    assert kept.request.participant_id == "fgt-1" and kept.answer.comfort == 1
    other = await store.answer(request_id=mentor_request.request_id)
    assert other is not None and other.answer.comment == "theirs"  # the partner's stays
    record = await store.pair(pair_id="pair-1")
    assert record is not None and record.members.mentee_id == "fgt-1"
    assert record.members.mentor_id == "emp-m"
    assert set(await store.participation(program_id="prg-1")) == {
        ("mentor", "emp-m"),
        ("mentee", "fgt-1"),
    }
    after = await store.released_totals(program_id="prg-1")
    assert after[atom].people == {"fgt-1"} and after[atom].ratings == before[atom].ratings
    assert after[atom].requests == before[atom].requests
    assert await store.pending_skill_mentees(program_id="prg-1") == {"genai": 1}
    assert await store.forget_participant(participant_id="emp-e", pseudonym="fgt-2", now=T0) == 0
