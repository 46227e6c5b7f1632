"""An in-memory matching store that subclasses the real port.

The repository contract suite runs against this fake and the asyncpg adapter alike,
so the fake keeps the store's rules: a combination is proposed once, a mentee has one
open pair, vetoes and programs are unique, erasure scrubs every trace.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime

from schemas.primitives import PairingMode, Role
from servicekit.erasure import personal_texts, redact, with_name_words
from services.matching.adapters.repository import MatchingRepository, SavedParticipant
from services.matching.domain.audit import AdminAction, Veto
from services.matching.domain.model import Candidate, MatchPlan
from services.matching.domain.pairs import (
    OPEN_STATUSES,
    Pair,
    PairStatus,
    excluded_combinations,
)
from services.matching.domain.participants import Participant, ParticipantStatus, to_candidate
from services.matching.domain.programs import Program
from services.matching.domain.staging import MatchRun, PublishOutcome


class InMemoryMatchingRepository(MatchingRepository):
    """The matching store in dictionaries (one instance = one database)."""

    def __init__(self) -> None:
        self.programs: dict[str, Program] = {}
        self.participants: dict[tuple[str, str], Participant] = {}
        self.pairs: dict[str, Pair] = {}
        self.vetoes: dict[tuple[str, str, str], Veto] = {}
        self.audit: list[AdminAction] = []
        self.runs: dict[str, MatchRun] = {}
        self.pool_changes: list[tuple[int, str]] = []
        self._next_change = 1

    async def add_program(self, *, program: Program, at: datetime) -> bool:
        if program.program_id in self.programs:
            return False
        self.programs[program.program_id] = program
        return True

    async def get_program(self, *, program_id: str, for_update: bool = False) -> Program | None:
        return self.programs.get(program_id)

    async def save_program(self, *, program: Program, at: datetime) -> None:
        self.programs[program.program_id] = program

    async def list_programs(self) -> list[Program]:
        return list(self.programs.values())

    async def lock_program(self, *, program_id: str) -> None:
        return None

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Undo what the block wrote when it raises (the whole store is restored)."""
        saved = copy.deepcopy(self.__dict__)
        try:
            yield
        except BaseException:
            self.__dict__.update(saved)
            raise

    async def note_pool_change(self, *, program_id: str) -> None:
        self.pool_changes.append((self._next_change, program_id))
        self._next_change += 1

    async def changed_pools(self, *, mode: PairingMode) -> dict[str, int]:
        def plannable(program_id: str) -> bool:
            program = self.programs.get(program_id)
            return program is not None and program.is_open and program.allows(mode)

        self.pool_changes = [(n, p) for n, p in self.pool_changes if plannable(p)]
        newest: dict[str, int] = {}
        for change, program_id in self.pool_changes:
            newest[program_id] = max(change, newest.get(program_id, 0))
        return dict(sorted(newest.items()))

    async def forget_pool_changes(self, *, program_id: str, up_to: int) -> None:
        self.pool_changes = [(n, p) for n, p in self.pool_changes if p != program_id or n > up_to]

    async def get_participant(self, *, program_id: str, participant_id: str) -> Participant | None:
        return self.participants.get((program_id, participant_id))

    async def program_and_participant(
        self, *, program_id: str, participant_id: str
    ) -> tuple[Program | None, Participant | None]:
        program = await self.get_program(program_id=program_id)
        if program is None:
            return None, None
        return program, await self.get_participant(
            program_id=program_id, participant_id=participant_id
        )

    async def save_participant(
        self, *, participant: Participant, at: datetime, pool_changed: bool = False
    ) -> None:
        self.participants[(participant.program_id, participant.participant_id)] = participant
        if pool_changed:
            await self.note_pool_change(program_id=participant.program_id)

    async def programs_and_participants(
        self, *, keys: Sequence[tuple[str, str]]
    ) -> tuple[dict[str, Program], dict[tuple[str, str], Participant]]:
        found = {p: self.programs[p] for p, _ in keys if p in self.programs}
        people = {k: self.participants[k] for k in keys if k[0] in found and k in self.participants}
        return found, people

    async def save_participants(
        self, *, saved: Sequence[SavedParticipant], pool_changed: Collection[str]
    ) -> None:
        for entry in saved:
            person = entry.participant
            self.participants[(person.program_id, person.participant_id)] = person
        for program_id in sorted({s.participant.program_id for s in saved} & set(pool_changed)):
            await self.note_pool_change(program_id=program_id)

    async def list_participants(
        self, *, program_id: str, limit: int, offset: int
    ) -> list[Participant]:
        found = sorted(
            (p for (prog, _), p in self.participants.items() if prog == program_id),
            key=lambda p: p.participant_id,
        )
        return found[offset : offset + limit]

    async def programs_of(self, *, participant_id: str) -> list[str]:
        return sorted(prog for prog, pid in self.participants if pid == participant_id)

    async def candidates(
        self,
        *,
        program_id: str,
        participant_ids: Collection[str] | None = None,
        free_only: bool = False,
    ) -> list[Candidate]:
        found = []
        for (prog, pid), person in sorted(self.participants.items()):
            if prog != program_id or person.status is not ParticipantStatus.ACTIVE:
                continue
            if participant_ids is not None and pid not in participant_ids:
                continue
            candidate = self._candidate(program_id, person)
            if not free_only or _has_a_free_place(candidate):
                found.append(candidate)
        return found

    def _candidate(self, program_id: str, person: Participant) -> Candidate:
        mine = [p for p in self.pairs.values() if p.program_id == program_id]
        pid = person.participant_id
        return to_candidate(
            person.profile.model_dump(mode="json"),
            screening=None if person.screening is None else person.screening.value,
            trained=person.trained,
            open_as_mentor=sum(1 for p in mine if p.mentor_id == pid and p.is_open),
            open_as_mentee=any(p.mentee_id == pid and p.is_open for p in mine),
            mentee_finished=any(
                p.mentee_id == pid
                and p.status is PairStatus.ENDED
                and p.close_reason == "completed"
                for p in mine
            ),
        )

    async def erase_participant(self, *, participant_id: str) -> int:
        erased = self._redact_reasons(participant_id)
        for key in [k for k in self.participants if k[1] == participant_id]:
            del self.participants[key]
            erased += 1
        for pair_id, pair in list(self.pairs.items()):
            if pair.involves(participant_id):
                self.pairs[pair_id] = _pair_without(pair, participant_id)
                erased += 1
        for veto in [k for k in self.vetoes if participant_id in k[1:]]:
            del self.vetoes[veto]
            erased += 1
        erased += self._scrub_audit(participant_id)
        erased += self._scrub_runs(participant_id)
        return erased

    def _redact_reasons(self, participant_id: str) -> int:
        personal: set[str] = set()
        for (_, pid), person in self.participants.items():
            if pid == participant_id:
                profile = person.profile
                personal |= personal_texts(name=profile.display_name, email=profile.email)
        redacted = 0
        for index, action in enumerate(self.audit):
            if action.reason and participant_id in (action.mentor_id, action.mentee_id):
                reason = redact(action.reason, with_name_words(personal))
                redacted += reason != action.reason
                self.audit[index] = replace(action, reason=reason)
        return redacted

    def _scrub_audit(self, participant_id: str) -> int:
        scrubbed = 0
        for index, action in enumerate(self.audit):
            if participant_id in (action.mentor_id, action.mentee_id):
                self.audit[index] = replace(
                    action,
                    mentor_id=None if action.mentor_id == participant_id else action.mentor_id,
                    mentee_id=None if action.mentee_id == participant_id else action.mentee_id,
                )
                scrubbed += 1
        return scrubbed

    def _scrub_runs(self, participant_id: str) -> int:
        scrubbed = 0
        for run_id, run in self.runs.items():
            plan = _plan_without(run.plan, participant_id)
            outcome = None if run.outcome is None else _outcome_without(run.outcome, participant_id)
            if plan != run.plan or outcome != run.outcome:
                self.runs[run_id] = replace(run, plan=plan, outcome=outcome)
                scrubbed += (plan != run.plan) + (outcome != run.outcome)
        return scrubbed

    async def add_pairs(self, *, pairs: Sequence[Pair]) -> set[str]:
        inserted = set()
        for pair in pairs:
            if self._conflicts(pair):
                continue
            self.pairs[pair.pair_id] = pair
            inserted.add(pair.pair_id)
        return inserted

    def _conflicts(self, new: Pair) -> bool:
        for pair in self.pairs.values():
            if pair.pair_id == new.pair_id:
                return True
            if pair.program_id != new.program_id:
                continue
            if (pair.mentor_id, pair.mentee_id) == (new.mentor_id, new.mentee_id):
                return True
            if pair.mentee_id == new.mentee_id and pair.is_open and new.is_open:
                return True
        return False

    async def save_pair(self, *, pair: Pair) -> None:
        if pair.pair_id in self.pairs:
            self.pairs[pair.pair_id] = pair

    async def save_pairs(self, *, pairs: Sequence[Pair]) -> None:
        for pair in pairs:
            if pair.pair_id in self.pairs:
                self.pairs[pair.pair_id] = pair

    async def get_pairs(self, *, pair_ids: Collection[str]) -> dict[str, Pair]:
        return {p: self.pairs[p] for p in sorted(set(pair_ids)) if p in self.pairs}

    async def get_pair(self, *, pair_id: str, for_update: bool = False) -> Pair | None:
        return self.pairs.get(pair_id)  # one task at a time: nothing to lock

    async def find_pairs(
        self,
        *,
        program_id: str,
        statuses: Collection[PairStatus] | None = None,
        participant_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Pair]:
        found = [
            p
            for p in self.pairs.values()
            if p.program_id == program_id
            and (statuses is None or p.status in statuses)
            and (participant_id is None or p.involves(participant_id))
        ]
        found.sort(key=lambda p: p.pair_id)
        found.sort(key=lambda p: p.proposed_at, reverse=True)
        return found[offset : offset + limit]

    async def open_pairs(
        self, *, program_id: str | None = None, participant_id: str | None = None
    ) -> list[Pair]:
        found = [
            p
            for p in self.pairs.values()
            if p.status in OPEN_STATUSES
            and (program_id is None or p.program_id == program_id)
            and (participant_id is None or p.involves(participant_id))
        ]
        return sorted(found, key=lambda p: (p.proposed_at, p.pair_id))

    async def pair_of(self, *, program_id: str, mentor_id: str, mentee_id: str) -> Pair | None:
        for pair in self.pairs.values():
            if (pair.program_id, pair.mentor_id, pair.mentee_id) == (
                program_id,
                mentor_id,
                mentee_id,
            ):
                return pair
        return None

    async def expired_proposals(self, *, at: datetime, limit: int) -> list[Pair]:
        found = [
            p for p in self.pairs.values() if p.status is PairStatus.PROPOSED and p.expires_at <= at
        ]
        return sorted(found, key=lambda p: (p.expires_at, p.pair_id))[:limit]

    async def excluded(
        self, *, program_id: str, among: Collection[str] | None = None
    ) -> frozenset[tuple[str, str]]:
        def wanted(program: str, mentor_id: str, mentee_id: str) -> bool:
            both_in = among is None or (mentor_id in among and mentee_id in among)
            return program == program_id and both_in

        return excluded_combinations(
            [
                (p.mentor_id, p.mentee_id)
                for p in self.pairs.values()
                if wanted(p.program_id, p.mentor_id, p.mentee_id)
            ],
            [
                (v.mentor_id, v.mentee_id)
                for v in self.vetoes.values()
                if wanted(v.program_id, v.mentor_id, v.mentee_id)
            ],
        )

    async def add_veto(self, *, veto: Veto) -> bool:
        key = (veto.program_id, veto.mentor_id, veto.mentee_id)
        if key in self.vetoes:
            return False
        self.vetoes[key] = veto
        return True

    async def record_action(self, *, action: AdminAction) -> None:
        self.audit.append(action)

    async def actions(self, *, program_id: str, limit: int, offset: int) -> list[AdminAction]:
        found = [a for a in self.audit if a.program_id == program_id]
        return found[offset : offset + limit]

    async def add_run(self, *, run: MatchRun) -> None:
        self.runs[run.run_id] = run

    async def get_run(self, *, run_id: str) -> MatchRun | None:
        return self.runs.get(run_id)

    async def save_run(self, *, run: MatchRun) -> None:
        stored = self.runs[run.run_id]
        self.runs[run.run_id] = replace(
            stored,
            status=run.status,
            published_at=run.published_at,
            published_by=run.published_by,
            outcome=run.outcome,
        )


def _pair_without(pair: Pair, participant_id: str) -> Pair:
    tombstone = f"erased:{pair.pair_id}"
    return replace(
        pair,
        mentor_id=tombstone if pair.mentor_id == participant_id else pair.mentor_id,
        mentee_id=tombstone if pair.mentee_id == participant_id else pair.mentee_id,
        proposed_by=None if pair.proposed_by == participant_id else pair.proposed_by,
        closed_by=None if pair.closed_by == participant_id else pair.closed_by,
    )


def _plan_without(plan: MatchPlan, participant_id: str) -> MatchPlan:
    return replace(
        plan,
        pairs=tuple(p for p in plan.pairs if participant_id not in (p.mentor_id, p.mentee_id)),
        unmatched=tuple(u for u in plan.unmatched if u.participant_id != participant_id),
    )


def _outcome_without(outcome: PublishOutcome, participant_id: str) -> PublishOutcome:
    return replace(
        outcome,
        dropped=tuple(
            d
            for d in outcome.dropped
            if participant_id not in (d.proposal.mentor_id, d.proposal.mentee_id)
        ),
    )


def _has_a_free_place(candidate: Candidate) -> bool:
    """What a plan can use: a mentor's free slot, or a mentee's open side."""
    mentor_side = candidate.role != Role.MENTEE and candidate.mentor_slots > 0
    return mentor_side or (candidate.role != Role.MENTOR and candidate.needs_mentor)
