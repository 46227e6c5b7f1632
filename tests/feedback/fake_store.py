"""An in-memory FeedbackStore for handler tests; the shared store suite keeps it honest."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from schemas.feedback import FeedbackKind, PairHealth
from schemas.pairs import PairEndReason
from services.feedback.adapters.repository import PENDING, RELEASED, FeedbackStore, PeopleByAtom
from services.feedback.domain.health import HealthAssessment, RatedAnswer
from services.feedback.domain.outcomes import AtomTotals, RatingTotals, RequestTotals, SkillLevels
from services.feedback.domain.pairs import HeldSession, PairContext, PairRecord
from services.feedback.domain.privacy import Atom
from services.feedback.domain.programs import ProgramSettings
from services.feedback.domain.requests import (
    FeedbackRequest,
    PairMembers,
    RequestState,
    RequestStatus,
)
from services.feedback.domain.submissions import AlreadyAnswered, SkillRating, StoredAnswer


@dataclass
class _Skill:
    first_before: int
    latest_after: int
    released: SkillLevels | None = None
    pending: bool = True


@dataclass
class FakeState:
    """Every table of the store, as plain dictionaries."""

    programs: dict[str, ProgramSettings] = field(default_factory=dict)
    pairs: dict[str, PairRecord] = field(default_factory=dict)
    attendance: dict[str, tuple[int, bool]] = field(default_factory=dict)
    held: dict[tuple[str, str], datetime] = field(default_factory=dict)
    requests: dict[str, RequestState] = field(default_factory=dict)
    answers: dict[str, StoredAnswer] = field(default_factory=dict)
    contributions: dict[tuple[str, Atom, str, str], RatingTotals] = field(default_factory=dict)
    skills: dict[tuple[str, str, str], _Skill] = field(default_factory=dict)
    releases: dict[str, datetime] = field(default_factory=dict)
    forgotten: dict[str, datetime] = field(default_factory=dict)


class FakeFeedbackStore(FeedbackStore):
    """The store in memory (no transaction: tests drive one handler at a time)."""

    def __init__(self, state: FakeState | None = None) -> None:
        self.state = state or FakeState()

    async def save_program(self, *, program: ProgramSettings) -> None:
        """Insert or replace a program, unless a later revision is stored."""
        stored = self.state.programs.get(program.program_id)
        if stored is None or stored.revision <= program.revision:
            self.state.programs[program.program_id] = program

    async def close_program(self, *, program_id: str, closed_at: datetime) -> None:
        """Record that a program closed (the fake keeps no closing time)."""

    async def program(self, *, program_id: str) -> ProgramSettings | None:
        """The program, if its definition arrived."""
        return self.state.programs.get(program_id)

    async def add_pair(self, *, members: PairMembers, formed_at: datetime) -> bool:
        """Store a formed pair; False when it was already stored."""
        if members.pair_id in self.state.pairs:
            return False
        self.state.pairs[members.pair_id] = PairRecord(members=members, formed_at=formed_at)
        return True

    async def forget_participant(
        self, *, participant_id: str, pseudonym: str, now: datetime
    ) -> int:
        """Erase the person's comments, put ``pseudonym`` in place of their id; rows changed."""
        self.state.forgotten.setdefault(participant_id, now)
        st, changed = self.state, 0
        for request_id, a in list(st.answers.items()):
            if a.request.participant_id == participant_id and a.answer.comment is not None:
                st.answers[request_id] = replace(a, answer=replace(a.answer, comment=None))
                changed += 1

        def rename(person: str) -> str:
            nonlocal changed
            changed += person == participant_id
            return pseudonym if person == participant_id else person

        for request_id, state in list(st.requests.items()):
            request = replace(state.request, participant_id=rename(state.request.participant_id))
            st.requests[request_id] = replace(state, request=request)
            if request_id in st.answers:
                st.answers[request_id] = replace(st.answers[request_id], request=request)
        for pair_id, record in list(st.pairs.items()):
            m = record.members
            members = replace(m, mentor_id=rename(m.mentor_id), mentee_id=rename(m.mentee_id))
            st.pairs[pair_id] = replace(record, members=members)
        st.contributions = {
            (program, atom, rename(person), stage): totals
            for (program, atom, person, stage), totals in st.contributions.items()
        }
        st.skills = {
            (program, topic, rename(mentee)): skill
            for (program, topic, mentee), skill in st.skills.items()
        }
        return changed

    async def is_forgotten(self, *, participant_ids: Collection[str]) -> bool:
        """True when one of these people asked to be forgotten."""
        return any(p in self.state.forgotten for p in participant_ids)

    async def pair(self, *, pair_id: str, for_update: bool = False) -> PairRecord | None:
        """The pair with its attendance and last health band (no locks in memory)."""
        record = self.state.pairs.get(pair_id)
        if record is None:
            return None
        missed, stalled = self.state.attendance.get(pair_id, (0, False))
        return replace(record, consecutive_missed=missed, stalled=stalled)

    async def pair_contexts(
        self, *, pair_ids: Collection[str], answers: int, closed: int, for_update: bool = False
    ) -> dict[str, PairContext]:
        """Each known pair with its program, the ratings of its last ``answers`` answers and
        the outcomes of its last ``closed`` closed requests (no locks in memory)."""
        found: dict[str, PairContext] = {}
        for pair_id in sorted(set(pair_ids)):
            record = await self.pair(pair_id=pair_id)
            if record is not None:
                found[pair_id] = PairContext(
                    record=record,
                    program=self.state.programs.get(record.members.program_id),
                    recent_answers=tuple(await self.recent_answers(pair_id=pair_id, limit=answers)),
                    closed_requests_missing=tuple(
                        await self.closed_request_outcomes(pair_id=pair_id, limit=closed)
                    ),
                )
        return found

    async def end_pair(self, *, pair_id: str, reason: PairEndReason, ended_at: datetime) -> bool:
        """Mark an open pair ended; False when unknown or already ended."""
        record = self.state.pairs.get(pair_id)
        if record is None or not record.open:
            return False
        self.state.pairs[pair_id] = replace(record, ended_at=ended_at, end_reason=reason)
        return True

    async def save_health(self, *, pair_id: str, assessment: HealthAssessment) -> None:
        """Store a pair's latest health assessment."""
        record = self.state.pairs[pair_id]
        self.state.pairs[pair_id] = replace(
            record,
            health_band=assessment.band,
            health_score=assessment.score,
            health_signals=assessment.signals,
        )

    async def open_pairs(self) -> list[PairRecord]:
        """Every pair not ended."""
        found = [await self.pair(pair_id=p) for p in sorted(self.state.pairs)]
        return [p for p in found if p is not None and p.open]

    async def health_bands(self) -> dict[PairHealth, int]:
        """Open pairs per health band."""
        counts = {band: 0 for band in PairHealth}
        for record in await self.open_pairs():
            counts[record.health_band] += 1
        return counts

    async def record_held_sessions(self, *, sessions: Sequence[HeldSession]) -> list[HeldSession]:
        """Store held sessions and clear their pairs' misses in a row and stalls; return
        those that were not stored already (a session given twice is stored once)."""
        added = []
        for h in sessions:
            if (h.pair_id, h.session_id) not in self.state.held:
                self.state.held[(h.pair_id, h.session_id)] = h.held_at
                self.state.attendance[h.pair_id] = (0, False)
                added.append(h)
        return added

    async def held_sessions(self, *, pair_id: str) -> list[str]:
        """Ids of the pair's held sessions, oldest first."""
        mine = [(at, s) for (p, s), at in self.state.held.items() if p == pair_id]
        return [s for _, s in sorted(mine)]

    async def set_attendance(
        self, *, pair_id: str, consecutive_missed: int, stalled: bool | None
    ) -> None:
        """Set the sessions missed in a row and, unless None, whether the pair is stalled."""
        _, was_stalled = self.state.attendance.get(pair_id, (0, False))
        now_stalled = was_stalled if stalled is None else stalled
        self.state.attendance[pair_id] = (consecutive_missed, now_stalled)

    async def add_requests(self, *, requests: Sequence[FeedbackRequest]) -> list[FeedbackRequest]:
        """Store requests; return those that were not stored already."""
        added = []
        for r in requests:
            if r.request_id not in self.state.requests:  # a repeated request is added once
                self.state.requests[r.request_id] = RequestState(r, RequestStatus.OPEN)
                added.append(r)
        return added

    async def request(self, *, request_id: str) -> RequestState | None:
        """A request and its status."""
        return self.state.requests.get(request_id)

    async def requests_of(self, *, participant_id: str) -> list[RequestState]:
        """The participant's requests, newest first."""
        mine = [
            s for s in self.state.requests.values() if s.request.participant_id == participant_id
        ]
        mine.sort(key=lambda s: s.request.request_id)
        return sorted(mine, key=lambda s: s.request.requested_at, reverse=True)

    async def requested_milestones(self) -> dict[str, frozenset[int]]:
        """Milestone weeks already requested, per open pair (pairs with none are absent)."""
        open_ids = {p.pair_id for p in await self.open_pairs()}
        weeks: dict[str, set[int]] = {}
        for state in self.state.requests.values():
            r = state.request
            if r.kind is FeedbackKind.MILESTONE and r.pair_id in open_ids and r.milestone_week:
                weeks.setdefault(r.pair_id, set()).add(r.milestone_week)
        return {pair_id: frozenset(w) for pair_id, w in weeks.items()}

    async def mark_missing(self, *, now: datetime) -> list[str]:
        """Mark open requests due before ``now`` as missing; return their pairs."""
        pairs: set[str] = set()
        for request_id, state in list(self.state.requests.items()):
            if state.status is RequestStatus.OPEN and state.request.due_at < now:
                self.state.requests[request_id] = replace(state, status=RequestStatus.MISSING)
                pairs.add(state.request.pair_id)
        return sorted(pairs)

    async def closed_request_outcomes(self, *, pair_id: str, limit: int) -> list[bool]:
        """For the pair's last ``limit`` answered or missing requests: True if missing."""
        closed = [
            s
            for s in self.state.requests.values()
            if s.request.pair_id == pair_id and s.status is not RequestStatus.OPEN
        ]
        closed.sort(key=lambda s: (s.request.due_at, s.request.request_id))
        return [s.status is RequestStatus.MISSING for s in closed[-limit:]]

    async def save_answer(self, *, stored: StoredAnswer) -> None:
        """Store an answer and close its request; AlreadyAnswered if it has one."""
        request_id = stored.request.request_id
        if request_id in self.state.answers:
            raise AlreadyAnswered(f"request {request_id} was already answered")
        self.state.answers[request_id] = stored
        state = self.state.requests[request_id]
        self.state.requests[request_id] = replace(
            state, status=RequestStatus.SUBMITTED, late=stored.late
        )

    async def answer(self, *, request_id: str) -> StoredAnswer | None:
        """The answer to a request."""
        return self.state.answers.get(request_id)

    async def answers_of(self, *, participant_id: str) -> list[StoredAnswer]:
        """The participant's answers, newest first."""
        mine = [
            a for a in self.state.answers.values() if a.request.participant_id == participant_id
        ]
        mine.sort(key=lambda a: a.request.request_id)
        return sorted(mine, key=lambda a: a.submitted_at, reverse=True)

    async def recent_answers(self, *, pair_id: str, limit: int) -> list[RatedAnswer]:
        """The ratings of the pair's last ``limit`` answers, oldest first."""
        mine = [a for a in self.state.answers.values() if a.request.pair_id == pair_id]
        mine.sort(key=lambda a: (a.submitted_at, a.request.request_id))
        return [
            RatedAnswer(
                a.answer.satisfaction, a.answer.usefulness, a.answer.comfort, a.answer.progress
            )
            for a in mine[-limit:]
        ]

    async def lock_outcomes(self, *, program_id: str) -> None:
        """No concurrency in memory: nothing to lock."""

    async def add_contribution(
        self, *, program_id: str, atom: Atom, person_id: str, totals: RatingTotals
    ) -> None:
        """Add an answer's totals to the pending contributions."""
        key = (program_id, atom, person_id, PENDING)
        self.state.contributions[key] = self.state.contributions.get(key, RatingTotals()) + totals

    async def contribution_people(self, *, program_id: str, stage: str) -> PeopleByAtom:
        """The people with released (or pending) contributions, per atom."""
        people: dict[Atom, set[str]] = {}
        for program, atom, person, s in self.state.contributions:
            if program == program_id and s == stage:
                people.setdefault(atom, set()).add(person)
        return {atom: frozenset(p) for atom, p in people.items()}

    async def release_contributions(
        self, *, program_id: str, atoms: Collection[Atom], released_at: datetime
    ) -> None:
        """Move the pending contributions of ``atoms`` into the released figures."""
        for key in [k for k in self.state.contributions if k[0] == program_id]:
            _, atom, person, stage = key
            if stage == PENDING and atom in atoms:
                moved = self.state.contributions.pop(key)
                target = (program_id, atom, person, RELEASED)
                self.state.contributions[target] = (
                    self.state.contributions.get(target, RatingTotals()) + moved
                )
        self.state.releases[program_id] = released_at

    async def released_totals(self, *, program_id: str) -> dict[Atom, AtomTotals]:
        """Released people and totals per atom, with the live request counts."""
        found: dict[Atom, AtomTotals] = {}
        for (program, atom, person, stage), totals in self.state.contributions.items():
            if program == program_id and stage == RELEASED:
                t = found.get(atom, AtomTotals())
                found[atom] = replace(t, people=t.people | {person}, ratings=t.ratings + totals)
        for state in self.state.requests.values():
            r = state.request
            if r.program_id == program_id:
                atom = (r.side.value, r.kind.value)
                t = found.get(atom, AtomTotals())
                asked = t.asked | {r.participant_id}
                found[atom] = replace(t, asked=asked, requests=t.requests + _request_totals(state))
        return found

    async def last_release(self, *, program_id: str) -> datetime | None:
        """When the program's figures last moved."""
        return self.state.releases.get(program_id)

    async def add_skill(self, *, program_id: str, mentee_id: str, skill: SkillRating) -> None:
        """Record a self-assessment (the first 'before' stays); mark it pending."""
        key = (program_id, skill.topic, mentee_id)
        stored = self.state.skills.get(key)
        if stored is None:
            self.state.skills[key] = _Skill(skill.before, skill.after)
        else:
            stored.latest_after, stored.pending = skill.after, True

    async def pending_skill_mentees(self, *, program_id: str) -> dict[str, int]:
        """Mentees with a pending self-assessment, per topic."""
        counts: dict[str, int] = {}
        for (program, topic, _), skill in self.state.skills.items():
            if program == program_id and skill.pending:
                counts[topic] = counts.get(topic, 0) + 1
        return counts

    async def release_skills(self, *, program_id: str, topics: Collection[str]) -> None:
        """Move the pending self-assessments of ``topics`` into the released figures."""
        for (program, topic, _), skill in self.state.skills.items():
            if program == program_id and topic in topics and skill.pending:
                skill.released = SkillLevels(skill.first_before, skill.latest_after)
                skill.pending = False

    async def released_skills(self, *, program_id: str) -> dict[str, list[SkillLevels]]:
        """Released levels per topic."""
        levels: dict[str, list[SkillLevels]] = {}
        for (program, topic, _), skill in sorted(self.state.skills.items()):
            if program == program_id and skill.released is not None:
                levels.setdefault(topic, []).append(skill.released)
        return levels

    async def participation(
        self, *, program_id: str
    ) -> dict[tuple[str, str], list[PairEndReason | None]]:
        """(side, person) -> the end reason of each of their pairs (None: still open)."""
        found: dict[tuple[str, str], list[PairEndReason | None]] = {}
        for record in self.state.pairs.values():
            m = record.members
            if m.program_id == program_id:
                found.setdefault(("mentor", m.mentor_id), []).append(record.end_reason)
                found.setdefault(("mentee", m.mentee_id), []).append(record.end_reason)
        return found

    async def sessions_by_pair(self, *, program_id: str) -> dict[str, int]:
        """Sessions held per pair of the program (0 for a pair without any)."""
        ids = [p for p, r in self.state.pairs.items() if r.members.program_id == program_id]
        return {p: sum(1 for pair, _ in self.state.held if pair == p) for p in ids}

    async def people_asked_and_answering(self, *, program_id: str) -> tuple[int, int]:
        """Distinct people asked for feedback in the program, and those who answered."""
        mine = [s for s in self.state.requests.values() if s.request.program_id == program_id]
        asked = {s.request.participant_id for s in mine}
        answering = {s.request.participant_id for s in mine if s.status is RequestStatus.SUBMITTED}
        return len(asked), len(answering)

    async def takes_part(self, *, program_id: str, person_id: str) -> bool:
        """True when the person is (or was) in a pair of the program."""
        return any(
            r.members.program_id == program_id
            and person_id in (r.members.mentor_id, r.members.mentee_id)
            for r in self.state.pairs.values()
        )


def _request_totals(state: RequestState) -> RequestTotals:
    return RequestTotals(
        requests=1,
        answered=int(state.status is RequestStatus.SUBMITTED),
        late=int(state.late),
        missing=int(state.status is RequestStatus.MISSING),
    )
