"""The feedback handlers on the fake store: requests, answers, health, milestones, outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.base import EventData
from schemas.codec import new_event
from schemas.feedback import (
    FeedbackKind,
    FeedbackRequested,
    FeedbackSubmitted,
    HealthSignal,
    PairAtRisk,
    PairHealth,
    PairHealthChanged,
    RiskAction,
)
from schemas.pairs import PairEnded, PairEndReason, PairFormed
from schemas.participants import ErasureCompleted, ParticipantForgotten
from schemas.primitives import PairingMode, PairSide, ServiceName
from schemas.programs import FeedbackSettings, ProgramCreated
from schemas.sessions import PairStalled, SessionHeld, SessionMissed, StallReason
from servicekit.clock import ManualClock
from servicekit.unit_of_work import TransactionScope, UnitOfWork
from services.feedback import handlers
from services.feedback.domain.requests import RequestStatus
from services.feedback.domain.submissions import (
    AlreadyAnswered,
    Answer,
    InvalidAnswer,
    NotYourRequest,
    SkillRating,
)
from tests.feedback.fake_store import FakeFeedbackStore

PROGRAM = "prg-2025-digital"
ADMIN = "emp-00017"
FORMED = datetime(2025, 3, 3, 9, tzinfo=UTC)


class _NoConnection:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError("handlers must go through the store")


class Harness:
    """One fake store, a manual clock and the events each call emitted."""

    def __init__(self) -> None:
        self.store = FakeFeedbackStore()
        self.clock = ManualClock(FORMED)
        self.table = handlers.handler_table(lambda conn: self.store)

    def uow(
        self, cause: EventData | None = None, scope: TransactionScope | None = None
    ) -> UnitOfWork:
        envelope = new_event(cause, source="/test", time=self.clock.now()) if cause else None
        return UnitOfWork(
            _NoConnection(),  # type: ignore[arg-type]
            source="/upward/feedback",
            region="test",
            cause=envelope,
            clock=self.clock,
            scope=scope,
        )

    async def handle(self, data: EventData) -> list[EventData]:
        """One event in its own transaction."""
        return (await self.handle_batch(data))[0]

    async def handle_batch(self, *events: EventData) -> list[list[EventData]]:
        """Events in one transaction, as the consumer applies a batch: one unit of work
        each, sharing a scope whose held writes run before the commit; what each emitted."""
        scope = TransactionScope()
        units = []
        for data in events:
            units.append(uow := self.uow(data, scope))
            await self.table[type(data)](data, uow)
        await scope.finish()
        return [_data(uow) for uow in units]

    async def submit(self, request_id: str, caller: str, answer: Answer) -> list[EventData]:
        uow = self.uow()
        command = handlers.SubmitAnswer(request_id, caller, answer)
        await handlers.submit_answer(command, uow, store=lambda conn: self.store)
        return _data(uow)

    async def tick(self, timer: Any) -> list[EventData]:
        uow = self.uow()
        await timer(uow, store=lambda conn: self.store)
        return _data(uow)


def _data(uow: UnitOfWork) -> list[EventData]:
    from schemas.registry import event_class

    return [
        event_class(e.type.removeprefix("upward.")).model_validate(e.data) for _, e in uow.emitted
    ]


def program(**feedback: Any) -> ProgramCreated:
    data = ProgramCreated.example().model_dump(mode="json")
    data["feedback"] = FeedbackSettings(**feedback).model_dump(mode="json")
    return ProgramCreated.model_validate(data)


def formed(pair: str, mentor: str = "emp-m", mentee: str = "emp-e") -> PairFormed:
    return PairFormed(
        pair_id=pair,
        program_id=PROGRAM,
        mentor_id=mentor,
        mentee_id=mentee,
        topics=["social-media"],
        mode=PairingMode.BATCH,
    )


def held(pair: str, session: str, sequence: int = 1) -> SessionHeld:
    return SessionHeld(
        pair_id=pair,
        program_id=PROGRAM,
        session_id=session,
        sequence=sequence,
        held_at=FORMED + timedelta(days=7 * sequence),
        duration_minutes=60,
        attendees=["emp-m", "emp-e"],
    )


def stalled(pair: str) -> PairStalled:
    return PairStalled(
        pair_id=pair,
        program_id=PROGRAM,
        mentor_id="emp-m",
        mentee_id="emp-e",
        reason=StallReason.MISSED_SESSIONS,
        consecutive_missed=2,
        days_without_session=30,
    )


def missed(pair: str, session: str, consecutive: int) -> SessionMissed:
    return SessionMissed(
        pair_id=pair,
        program_id=PROGRAM,
        session_id=session,
        sequence=consecutive,
        scheduled_starts_at=FORMED,
        consecutive_missed=consecutive,
    )


def end(pair: str, reason: PairEndReason) -> PairEnded:
    return PairEnded(
        pair_id=pair, program_id=PROGRAM, mentor_id="emp-m", mentee_id="emp-e", reason=reason
    )


def requested(events: list[EventData]) -> list[FeedbackRequested]:
    return [e for e in events if isinstance(e, FeedbackRequested)]


@pytest.fixture
async def h() -> Harness:
    harness = Harness()
    await harness.handle(program(response_days=5))
    return harness


async def test_a_held_session_requests_feedback_from_both(h: Harness) -> None:
    await h.handle(formed("pair-1"))
    events = requested(await h.handle(held("pair-1", "ses-1")))
    assert {(e.participant_id, e.side) for e in events} == {
        ("emp-m", PairSide.MENTOR),
        ("emp-e", PairSide.MENTEE),
    }
    assert {e.due_at for e in events} == {FORMED + timedelta(days=5)}
    assert {e.session_id for e in events} == {"ses-1"}


async def test_the_same_session_from_another_event_requests_nothing(h: Harness) -> None:
    await h.handle(formed("pair-1"))
    await h.handle(held("pair-1", "ses-1"))
    assert await h.handle(held("pair-1", "ses-1")) == []
    assert len(h.store.state.requests) == 2


async def test_a_session_held_before_the_pair_is_known_is_asked_about_later(h: Harness) -> None:
    assert await h.handle(held("pair-1", "ses-1")) == []
    events = requested(await h.handle(formed("pair-1")))
    assert {(e.participant_id, e.session_id) for e in events} == {
        ("emp-m", "ses-1"),
        ("emp-e", "ses-1"),
    }
    assert requested(await h.handle(formed("pair-1"))) == []


async def test_held_sessions_of_one_transaction_give_what_they_give_one_by_one() -> None:
    def batch() -> list[EventData]:
        return [
            formed("pair-1"),
            held("pair-2", "ses-0"),  # before its pair: asked about when it forms
            stalled("pair-1"),
            held("pair-1", "ses-1"),
            held("pair-1", "ses-1"),  # the same session again
            held("pair-1", "ses-2", sequence=2),
            missed("pair-1", "ses-3", consecutive=3),
            held("pair-1", "ses-4", sequence=4),
            formed("pair-2", mentor="emp-m2", mentee="emp-e2"),
            held("pair-2", "ses-5"),
        ]

    alone, together = Harness(), Harness()
    for h in (alone, together):
        await h.handle(program(response_days=5))
    one_by_one = [await alone.handle(data) for data in batch()]
    in_one_transaction = await together.handle_batch(*batch())

    assert in_one_transaction == one_by_one
    assert together.store.state == alone.store.state
    kinds = [[type(e).__name__ for e in emitted] for emitted in one_by_one]
    assert kinds[3] == ["FeedbackRequested", "FeedbackRequested", "PairHealthChanged"]
    assert kinds[4] == [] and kinds[5] == ["FeedbackRequested"] * 2
    assert "PairHealthChanged" in kinds[6] and "PairHealthChanged" in kinds[7]
    assert kinds[8] == ["FeedbackRequested"] * 2  # the early session of pair-2


async def test_no_session_requests_when_the_program_says_so(h: Harness) -> None:
    await h.handle(program(after_each_session=False))
    await h.handle(formed("pair-1"))
    assert await h.handle(held("pair-1", "ses-1")) == []


async def answerable(h: Harness, pair: str = "pair-1", session: str = "ses-1") -> dict[str, str]:
    """Form the pair, hold a session; return side -> request id."""
    await h.handle(formed(pair))
    events = requested(await h.handle(held(pair, session)))
    return {e.side.value: e.request_id for e in events}


async def test_an_answer_is_accepted_once_and_published_without_ratings(h: Harness) -> None:
    ids = await answerable(h)
    events = await h.submit(ids["mentee"], "emp-e", Answer(5, 4, 5, 4, nps=9, comment="thanks"))
    [submitted] = [e for e in events if isinstance(e, FeedbackSubmitted)]
    assert submitted.request_id == ids["mentee"] and submitted.side is PairSide.MENTEE
    assert submitted.ratings is None and not submitted.late
    assert "thanks" not in submitted.model_dump_json()
    with pytest.raises(AlreadyAnswered):
        await h.submit(ids["mentee"], "emp-e", Answer(1, 1, 1, 1))
    with pytest.raises(NotYourRequest):
        await h.submit(ids["mentor"], "emp-e", Answer(1, 1, 1, 1))
    with pytest.raises(handlers.RequestNotFound):
        await h.submit("fbr-nope", "emp-e", Answer(1, 1, 1, 1))


async def test_skills_must_be_catalogue_topics(h: Harness) -> None:
    ids = await answerable(h)
    with pytest.raises(InvalidAnswer, match="astrology"):
        await h.submit(
            ids["mentee"], "emp-e", Answer(4, 4, 4, 4, skills=(SkillRating("astrology", 1, 2),))
        )
    state = h.store.state.requests[ids["mentee"]]
    assert state.status is RequestStatus.OPEN


async def test_a_late_answer_is_accepted_and_flagged(h: Harness) -> None:
    ids = await answerable(h)
    h.clock.advance(timedelta(days=6))
    await h.tick(handlers.mark_overdue_requests)
    assert h.store.state.requests[ids["mentor"]].status is RequestStatus.MISSING
    events = await h.submit(ids["mentor"], "emp-m", Answer(4, 4, 4, 4))
    [submitted] = [e for e in events if isinstance(e, FeedbackSubmitted)]
    assert submitted.late
    state = h.store.state.requests[ids["mentor"]]
    assert state.status is RequestStatus.SUBMITTED and state.late


async def test_poor_ratings_put_the_pair_at_risk_once(h: Harness) -> None:
    ids = await answerable(h)
    events = await h.submit(ids["mentee"], "emp-e", Answer(1, 2, 1, 1))
    [changed] = [e for e in events if isinstance(e, PairHealthChanged)]
    [at_risk] = [e for e in events if isinstance(e, PairAtRisk)]
    assert changed.previous_health is PairHealth.HEALTHY and changed.health is PairHealth.AT_RISK
    assert (at_risk.mentor_id, at_risk.mentee_id) == ("emp-m", "emp-e")
    assert at_risk.threshold == 0.4 and at_risk.score < 0.4
    assert at_risk.recommended_action is RiskAction.REMATCH  # low safety
    assert HealthSignal.LOW_SAFETY in at_risk.signals
    again = await h.submit(ids["mentor"], "emp-m", Answer(2, 1, 2, 1))
    assert not [e for e in again if isinstance(e, PairAtRisk | PairHealthChanged)]


async def test_missed_sessions_and_a_stall_lower_health(h: Harness) -> None:
    await h.handle(formed("pair-1"))
    common = {"pair_id": "pair-1", "program_id": PROGRAM, "absent": ["emp-e"]}
    first = await h.handle(
        SessionMissed(
            **common, session_id="s1", sequence=1, scheduled_starts_at=FORMED, consecutive_missed=1
        )
    )
    assert first == []  # 0.85: still healthy (0.7 after two, 0.55 after three)
    second = await h.handle(
        SessionMissed(
            **common, session_id="s2", sequence=2, scheduled_starts_at=FORMED, consecutive_missed=3
        )
    )
    assert [e.health for e in second if isinstance(e, PairHealthChanged)] == [PairHealth.WATCH]
    stalled = await h.handle(
        PairStalled(
            pair_id="pair-1",
            program_id=PROGRAM,
            mentor_id="emp-m",
            mentee_id="emp-e",
            reason=StallReason.MISSED_SESSIONS,
            consecutive_missed=3,
            days_without_session=40,
        )
    )
    [at_risk] = [e for e in stalled if isinstance(e, PairAtRisk)]
    assert set(at_risk.signals) == {HealthSignal.MISSED_SESSIONS, HealthSignal.STALLED}
    recovered = await h.handle(held("pair-1", "s3", sequence=3))
    assert [e.health for e in recovered if isinstance(e, PairHealthChanged)] == [PairHealth.HEALTHY]


async def test_an_ended_pair_is_no_longer_assessed(h: Harness) -> None:
    ids = await answerable(h)
    ended = end("pair-1", PairEndReason.NO_FAULT_EXIT)
    assert await h.handle(ended) == []
    events = await h.submit(ids["mentee"], "emp-e", Answer(1, 1, 1, 1))
    assert [type(e) for e in events] == [FeedbackSubmitted]


async def test_milestone_surveys_when_due_and_the_close_at_the_end(h: Harness) -> None:
    await h.handle(formed("pair-1"))
    assert await h.tick(handlers.request_due_milestones) == []
    h.clock.set(FORMED + timedelta(weeks=2))
    week_two = requested(await h.tick(handlers.request_due_milestones))
    assert {(e.kind, e.milestone_week) for e in week_two} == {(FeedbackKind.MILESTONE, 2)}
    assert len(week_two) == 2
    assert await h.tick(handlers.request_due_milestones) == []
    ended = end("pair-1", PairEndReason.PROGRAM_CLOSED)
    close = requested(await h.handle(ended))
    assert {e.milestone_week for e in close} == {26} and len(close) == 2
    h.clock.set(FORMED + timedelta(weeks=30))
    assert await h.tick(handlers.request_due_milestones) == []


async def test_unanswered_requests_lower_health(h: Harness) -> None:
    await h.handle(formed("pair-1"))
    await h.handle(held("pair-1", "s1", 1))
    missed = SessionMissed(
        pair_id="pair-1",
        program_id=PROGRAM,
        session_id="s2",
        sequence=2,
        scheduled_starts_at=FORMED,
        consecutive_missed=2,
    )
    assert await h.handle(missed) == []  # 0.7: healthy
    h.clock.advance(timedelta(days=5))
    assert await h.tick(handlers.mark_overdue_requests) == []  # due, not past due
    h.clock.advance(timedelta(seconds=1))
    events = await h.tick(handlers.mark_overdue_requests)
    [changed] = [e for e in events if isinstance(e, PairHealthChanged)]
    assert changed.health is PairHealth.WATCH and changed.score == 0.6
    assert set(changed.signals) == {HealthSignal.NO_FEEDBACK, HealthSignal.MISSED_SESSIONS}


async def test_outcomes_show_k_people_and_hide_the_one_person_cell(h: Harness) -> None:
    """Six mentees answer sessions, one mentee a milestone: that one is never shown."""
    mentee_ids = []
    for n in range(6):
        pair = f"pair-{n}"
        await h.handle(formed(pair, mentor=f"emp-m{n}", mentee=f"emp-e{n}"))
        events = requested(await h.handle(held(pair, f"ses-{n}")))
        mentee_ids += [
            (e.request_id, e.participant_id) for e in events if e.side is PairSide.MENTEE
        ]
    for request_id, person in mentee_ids:
        await h.submit(request_id, person, Answer(4, 4, 4, 4, nps=10))
    h.clock.set(FORMED + timedelta(weeks=2))
    milestone = requested(await h.tick(handlers.request_due_milestones))
    lone = next(e for e in milestone if e.participant_id == "emp-e0")
    await h.submit(lone.request_id, "emp-e0", Answer(1, 1, 1, 1, nps=0))
    settings = await h.store.program(program_id=PROGRAM)
    assert settings is not None
    report = await handlers.program_outcomes(h.store, settings)
    cells = {(c.side, c.kind): c for c in report.feedback}
    session = cells[("mentee", "session")]
    # five answers made the cell visible; the sixth waits for k more (one person's move)
    assert session.answers is not None and session.answers.people == 5
    assert session.answers.satisfaction == 4.0
    assert session.requests is not None and session.requests.response_rate == 1.0
    # the lone milestone answer waits: the milestone cell shows nobody's ratings
    lone_cell = cells[("mentee", "milestone")].answers
    assert lone_cell is not None and lone_cell.people == 0 and lone_cell.satisfaction is None
    assert all(c.answers is None or c.answers.satisfaction in (None, 4.0) for c in report.feedback)
    for n in range(1, 6):  # the five others answer the milestone survey too
        request = next(e for e in milestone if e.participant_id == f"emp-e{n}")
        await h.submit(request.request_id, f"emp-e{n}", Answer(2, 2, 2, 2))
    filtered = await handlers.program_outcomes(
        h.store, settings, side=PairSide.MENTEE, kind=FeedbackKind.MILESTONE
    )
    [cell] = filtered.feedback
    assert cell.answers is not None and cell.answers.people >= 5
    assert cell.answers.satisfaction is not None and cell.answers.satisfaction < 2.0
    full = await handlers.program_outcomes(h.store, settings)
    assert all(c.answers is None or c.answers.people in (0, 5, 6) for c in full.feedback)


async def test_forgetting_a_participant_keeps_the_figures_and_confirms(h: Harness) -> None:
    """The comment goes, the id goes, the released figures do not move by one person."""
    for n in range(5):
        await h.handle(formed(f"pair-{n}", mentor=f"emp-m{n}", mentee=f"emp-e{n}"))
        events = requested(await h.handle(held(f"pair-{n}", f"ses-{n}")))
        mentee = next(e for e in events if e.side is PairSide.MENTEE)
        await h.submit(mentee.request_id, f"emp-e{n}", Answer(n + 1, 3, 3, 3, comment=f"c{n}"))
    settings = await h.store.program(program_id=PROGRAM)
    assert settings is not None
    before = await handlers.program_outcomes(h.store, settings)
    assert any(c.answers is not None and c.answers.people == 5 for c in before.feedback)

    events = await h.handle(ParticipantForgotten(participant_id="emp-e0", requested_at=FORMED))
    [done] = events
    assert isinstance(done, ErasureCompleted)
    assert (done.participant_id, done.service) == ("emp-e0", ServiceName.FEEDBACK)
    assert done.records_erased >= 4  # comment, request, pair side, contribution
    after = await handlers.program_outcomes(h.store, settings)
    assert after.feedback == before.feedback and after.retention == before.retention
    assert await h.store.answers_of(participant_id="emp-e0") == []
    comments = {a.answer.comment for a in h.store.state.answers.values()}
    assert comments == {None, "c1", "c2", "c3", "c4"}
    assert "emp-e0" not in repr(h.store.state.pairs) + repr(h.store.state.requests)
    # a PairFormed still in flight when the erasure ran does not bring the id back
    assert await h.handle(formed("pair-late", mentor="emp-m9", mentee="emp-e0")) == []
    assert "pair-late" not in h.store.state.pairs
