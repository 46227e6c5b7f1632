"""An in-memory SessionsRepository (subclasses the real port; the contract suite runs on both)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from servicekit.erasure import personal_texts, redact, with_name_words
from services.sessions.adapters.repository import SessionsRepository
from services.sessions.domain.model import (
    Note,
    Pair,
    PairStatus,
    Participant,
    Program,
    Session,
    SessionStatus,
)
from services.sessions.domain.slots import Interval


class FakeSessionsRepository(SessionsRepository):
    """Dictionaries instead of tables; no transactions (tests run one step at a time)."""

    def __init__(self) -> None:
        self.programs: dict[str, Program] = {}
        self.participants: dict[str, Participant] = {}
        self.wants: dict[tuple[str, str], dict[str, int]] = {}
        self.forgotten: set[str] = set()
        self.pairs_by_id: dict[str, Pair] = {}
        self.sessions_by_id: dict[str, Session] = {}
        self.all_notes: list[Note] = []
        self.locked_calendars: list[tuple[str, ...]] = []

    async def save_program(self, *, program: Program) -> bool:
        """Insert or replace a program unless its revision is not newer; True if saved."""
        known = self.programs.get(program.program_id)
        if known is not None and known.revision >= program.revision:
            return False
        closed = known.closed if known else program.closed
        self.programs[program.program_id] = replace(program, closed=closed)
        return True

    async def get_program(self, *, program_id: str) -> Program | None:
        """The program, or None when it is not known yet."""
        return self.programs.get(program_id)

    async def close_program(self, *, program_id: str) -> None:
        """Mark the program closed: its pairs get no new sessions."""
        if program_id in self.programs:
            self.programs[program_id] = replace(self.programs[program_id], closed=True)

    async def move_pair_ends(self, *, program_id: str, duration: timedelta) -> int:
        """Set ``ends_at = formed_at + duration`` on the program's active pairs."""
        moved = 0
        for pair in list(self.pairs_by_id.values()):
            if pair.program_id == program_id and pair.status is PairStatus.ACTIVE:
                self.pairs_by_id[pair.pair_id] = replace(pair, ends_at=pair.formed_at + duration)
                moved += 1
        return moved

    async def save_participant(self, *, participant: Participant, program_id: str) -> None:
        """Insert or replace a directory entry and the person's wants in ``program_id``."""
        self.participants[participant.participant_id] = replace(participant, wants=None)
        self.wants[(participant.participant_id, program_id)] = dict(participant.wants or {})

    async def get_participant(self, *, participant_id: str, program_id: str) -> Participant | None:
        """The directory entry with the wants of ``program_id``, or None."""
        person = self.participants.get(participant_id)
        if person is None:
            return None
        return replace(person, wants=self.wants.get((participant_id, program_id)))

    async def program_and_people(
        self, *, program_id: str, participant_ids: Sequence[str]
    ) -> tuple[Program | None, dict[str, Participant]]:
        """The program and the known people with their wants, in one read."""
        people = {}
        for participant_id in participant_ids:
            person = await self.get_participant(
                participant_id=participant_id, program_id=program_id
            )
            if person is not None:
                people[participant_id] = person
        return self.programs.get(program_id), people

    async def planning_facts(
        self, *, keys: Sequence[tuple[str, str]]
    ) -> tuple[dict[str, Program], dict[tuple[str, str], Participant]]:
        """The programs known, by id, and the people known with their wants, by key."""
        programs = {k: p for k, p in self.programs.items() if k in {g for g, _ in keys}}
        people = {}
        for program_id, participant_id in keys:
            person = await self.get_participant(
                participant_id=participant_id, program_id=program_id
            )
            if person is not None:
                people[(program_id, participant_id)] = person
        return programs, people

    async def forget_participant(self, *, participant_id: str, now: datetime) -> int:
        """Erase the person's directory entry, wants and notes; return rows erased."""
        person = self.participants.pop(participant_id, None)
        erased = int(person is not None)
        if person is not None:
            erased += self._redact_partner_notes(participant_id, person)
        for key in [k for k in self.wants if k[0] == participant_id]:
            del self.wants[key]
            erased += 1
        kept = [n for n in self.all_notes if n.author_id != participant_id]
        erased += len(self.all_notes) - len(kept)
        self.all_notes = kept
        self.forgotten.add(participant_id)
        return erased

    def _redact_partner_notes(self, participant_id: str, person: Participant) -> int:
        personal = with_name_words(personal_texts(name=person.display_name, email=person.email))
        changed = 0
        for index, note in enumerate(self.all_notes):
            pair = self.pairs_by_id.get(note.pair_id)
            if pair is None or participant_id not in (pair.mentor_id, pair.mentee_id):
                continue
            body = redact(note.body, personal)
            if note.author_id != participant_id and body != note.body:
                self.all_notes[index] = replace(note, body=body)
                changed += 1
        return changed

    async def is_forgotten(self, *, participant_id: str) -> bool:
        """True once the person asked to be forgotten."""
        return participant_id in self.forgotten

    async def add_pair(self, *, pair: Pair, sessions: Sequence[Session] = ()) -> bool:
        """Insert a pair, with its first sessions; False (and no change) when it is known."""
        if pair.pair_id in self.pairs_by_id:
            return False
        self.pairs_by_id[pair.pair_id] = pair
        await self.add_sessions(sessions=sessions)
        return True

    async def add_pairs(self, *, pairs: Sequence[Pair], sessions: Sequence[Session]) -> set[str]:
        """Insert the pairs not known yet, with their own sessions; the ids of those added."""
        added = set()
        for pair in pairs:
            if await self.add_pair(pair=pair):
                added.add(pair.pair_id)
        await self.add_sessions(sessions=[s for s in sessions if s.pair_id in added])
        return added

    async def known_pair_ids(self, *, pair_ids: Sequence[str]) -> set[str]:
        """Those of ``pair_ids`` that are known."""
        return set(pair_ids) & set(self.pairs_by_id)

    async def get_pair(self, *, pair_id: str, lock: bool = False) -> Pair | None:
        """The pair (no locks in memory)."""
        return self.pairs_by_id.get(pair_id)

    async def save_pair(self, *, pair: Pair) -> None:
        """Store the pair's new state."""
        self.pairs_by_id[pair.pair_id] = pair

    async def pair_ids(
        self,
        *,
        statuses: Sequence[PairStatus],
        program_id: str | None = None,
        participant_id: str | None = None,
    ) -> list[str]:
        """Ids of the pairs in ``statuses``, of a program and/or with a participant."""
        return sorted(
            p.pair_id
            for p in self.pairs_by_id.values()
            if p.status in statuses
            and program_id in (None, p.program_id)
            and (participant_id is None or participant_id in p.members)
        )

    async def pairs(
        self,
        *,
        participant_id: str | None = None,
        program_id: str | None = None,
        program_ids: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[Pair]:
        """Pairs of a participant and/or program (of ``program_ids`` if given), newest first."""
        found = [
            p
            for p in self.pairs_by_id.values()
            if program_id in (None, p.program_id)
            and (program_ids is None or p.program_id in program_ids)
            and (participant_id is None or participant_id in p.members)
        ]
        found.sort(key=lambda p: p.pair_id)
        found.sort(key=lambda p: p.formed_at, reverse=True)
        return found[:limit]

    async def pairs_to_complete(self, *, now: datetime, limit: int) -> list[str]:
        """Active pairs whose program duration is over at ``now``."""
        due = [
            p
            for p in self.pairs_by_id.values()
            if p.status is PairStatus.ACTIVE and p.ends_at is not None and p.ends_at <= now
        ]
        return [p.pair_id for p in sorted(due, key=lambda p: (p.ends_at, p.pair_id))][:limit]

    async def pairs_to_check_for_stall(self, *, now: datetime, limit: int) -> list[str]:
        """Active, not yet stalled pairs that may have hit a stall rule at ``now``."""
        found = []
        for pair in self.pairs_by_id.values():
            program = self.programs.get(pair.program_id)
            if program is None or pair.status is not PairStatus.ACTIVE or pair.stalled:
                continue
            quiet = pair.last_held_at or pair.formed_at
            late = quiet + timedelta(days=program.max_days_without_session) <= now
            if pair.consecutive_missed >= program.max_missed_sessions or late:
                found.append(pair.pair_id)
        return sorted(found)[:limit]

    async def add_session(self, *, session: Session) -> bool:
        """Insert a session; False when the pair already has one with that number."""
        taken = any(
            s.session_id == session.session_id
            or (s.pair_id == session.pair_id and s.number == session.number)
            for s in self.sessions_by_id.values()
        )
        if taken:
            return False
        self.sessions_by_id[session.session_id] = session
        return True

    async def add_sessions(self, *, sessions: Sequence[Session]) -> set[str]:
        """Insert sessions in one go; the ids of those added."""
        return {s.session_id for s in sessions if await self.add_session(session=s)}

    async def get_session(self, *, session_id: str) -> Session | None:
        """The session, or None."""
        return self.sessions_by_id.get(session_id)

    async def save_session(self, *, session: Session) -> None:
        """Store the session's new state."""
        self.sessions_by_id[session.session_id] = session

    async def sessions_of_pair(self, *, pair_id: str) -> list[Session]:
        """Every session of the pair, by number."""
        found = [s for s in self.sessions_by_id.values() if s.pair_id == pair_id]
        return sorted(found, key=lambda s: s.number)

    async def busy(
        self, *, participant_ids: Sequence[str], window: Interval, exclude: str | None = None
    ) -> list[Interval]:
        """Scheduled sessions of these people overlapping ``window`` (except ``exclude``)."""
        found = [
            s
            for s in self.sessions_by_id.values()
            if s.status is SessionStatus.SCHEDULED
            and s.session_id != exclude
            and s.starts_at < window.end
            and s.ends_at > window.start
            and set(participant_ids) & set(self.pairs_by_id[s.pair_id].members)
        ]
        return [s.interval for s in sorted(found, key=lambda s: s.starts_at)]

    async def calendars(
        self, *, participant_ids: Sequence[str], window: Interval
    ) -> dict[str, list[Interval]]:
        """Each person's scheduled sessions overlapping ``window``."""
        found: dict[str, list[Interval]] = {}
        for person in participant_ids:
            busy = await self.busy(participant_ids=[person], window=window)
            if busy:
                found[person] = busy
        return found

    async def lock_calendars(self, *, participant_ids: Sequence[str]) -> None:
        """Nothing runs concurrently in memory: remember who was locked, for tests."""
        self.locked_calendars.append(tuple(sorted(set(participant_ids))))

    async def overdue_sessions(self, *, ended_before: datetime, limit: int) -> list[Session]:
        """Scheduled sessions that ended before ``ended_before``, oldest first."""
        found = [
            s
            for s in self.sessions_by_id.values()
            if s.status is SessionStatus.SCHEDULED and s.ends_at < ended_before
        ]
        return sorted(found, key=lambda s: (s.ends_at, s.session_id))[:limit]

    async def sessions(
        self,
        *,
        participant_id: str | None = None,
        pair_id: str | None = None,
        status: SessionStatus | None = None,
        program_ids: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[Session]:
        """Sessions of a participant's pairs and/or of a pair (of ``program_ids`` if given),
        by start time."""
        found = [
            s
            for s in self.sessions_by_id.values()
            if (participant_id is None or participant_id in self.pairs_by_id[s.pair_id].members)
            and pair_id in (None, s.pair_id)
            and status in (None, s.status)
            and (program_ids is None or s.program_id in program_ids)
        ]
        return sorted(found, key=lambda s: (s.starts_at, s.session_id))[:limit]

    async def add_note(self, *, note: Note) -> None:
        """Keep a private note."""
        self.all_notes.append(note)

    async def notes(self, *, session_id: str) -> list[Note]:
        """The notes of a session, oldest first (stable for equal times)."""
        found = [n for n in self.all_notes if n.session_id == session_id]
        return sorted(found, key=lambda n: n.written_at)
