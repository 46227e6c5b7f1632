"""The matching store: the abstract port and its asyncpg implementation.

Handlers talk to :class:`MatchingRepository` only; :class:`PostgresMatchingRepository`
works on the open transaction's connection. Tests run one contract suite against this
class and an in-memory fake that subclasses the port, so the fake cannot drift.
"""

from __future__ import annotations

import functools
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg

from schemas.pairs import ScoreFactor
from schemas.participants import ParticipantProfile, ScreeningOutcome
from schemas.primitives import PairingMode
from schemas.programs import ProgramDefinition
from servicekit.db import Connection
from servicekit.erasure import (
    erase_from_outbox,
    personal_texts,
    redact_texts,
)
from services.matching.adapters.offload import off_loop
from services.matching.domain.audit import AdminAction, AdminActionKind, Veto
from services.matching.domain.model import Candidate, MatchPlan, PlannedPair, Unmatched
from services.matching.domain.pairs import Pair, PairStatus, excluded_combinations
from services.matching.domain.participants import Participant, ParticipantStatus, to_candidate
from services.matching.domain.programs import Program, ProgramStatus
from services.matching.domain.staging import (
    Dropped,
    MatchRun,
    PublishOutcome,
    RunStatus,
)

PoolChanges = Mapping[str, int]
"""program id -> the newest pool change seen (see :meth:`MatchingRepository.changed_pools`)."""


@dataclass(frozen=True)
class SavedParticipant:
    """A participant to save, with when they joined (if new) and when they last changed."""

    participant: Participant
    joined_at: datetime
    updated_at: datetime


class MatchingRepository(ABC):
    """Everything the matching service stores. Keyword-only arguments throughout."""

    # --- programs -------------------------------------------------------------------
    @abstractmethod
    async def add_program(self, *, program: Program, at: datetime) -> bool:
        """Insert a new program; False when the id is taken."""

    @abstractmethod
    async def get_program(self, *, program_id: str, for_update: bool = False) -> Program | None:
        """The program, or None; ``for_update`` locks it until commit (update, close)."""

    @abstractmethod
    async def save_program(self, *, program: Program, at: datetime) -> None:
        """Store a changed definition, revision or status."""

    @abstractmethod
    async def list_programs(self) -> list[Program]:
        """Every program, oldest first."""

    @abstractmethod
    async def lock_program(self, *, program_id: str) -> None:
        """Serialise the transactions that create pairs in one program (until commit)."""

    @abstractmethod
    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested transaction: what is written inside is undone if the block raises."""

    @abstractmethod
    async def note_pool_change(self, *, program_id: str) -> None:
        """Record that the program's pool changed (the continuous mode plans it again)."""

    @abstractmethod
    async def changed_pools(self, *, mode: PairingMode) -> dict[str, int]:
        """Open programs allowing ``mode`` whose pool changed: id -> newest change seen.

        Changes of programs that are closed or do not allow ``mode`` are forgotten.
        """

    @abstractmethod
    async def forget_pool_changes(self, *, program_id: str, up_to: int) -> None:
        """Drop the program's pool changes up to ``up_to`` (they have been planned)."""

    # --- participants ---------------------------------------------------------------
    @abstractmethod
    async def get_participant(self, *, program_id: str, participant_id: str) -> Participant | None:
        """The participant of the program, or None."""

    @abstractmethod
    async def program_and_participant(
        self, *, program_id: str, participant_id: str
    ) -> tuple[Program | None, Participant | None]:
        """The program and its participant, read together (either may be None)."""

    @abstractmethod
    async def save_participant(
        self, *, participant: Participant, at: datetime, pool_changed: bool = False
    ) -> None:
        """Insert or replace the participant; with ``pool_changed``, also note a change of
        the program's pool (:meth:`note_pool_change`) in the same statement."""

    @abstractmethod
    async def programs_and_participants(
        self, *, keys: Sequence[tuple[str, str]]
    ) -> tuple[dict[str, Program], dict[tuple[str, str], Participant]]:
        """The programs named by ``keys`` (program id, participant id) and the participants
        among them that exist, read together."""

    @abstractmethod
    async def save_participants(
        self, *, saved: Sequence[SavedParticipant], pool_changed: Collection[str]
    ) -> None:
        """Insert or replace the participants (one entry per person), and note a change of
        the pools of ``pool_changed`` programs, in one statement."""

    @abstractmethod
    async def list_participants(
        self, *, program_id: str, limit: int, offset: int
    ) -> list[Participant]:
        """Participants of the program ordered by id."""

    @abstractmethod
    async def programs_of(self, *, participant_id: str) -> list[str]:
        """Ids of the programs the person is (or was) a participant of."""

    @abstractmethod
    async def candidates(
        self,
        *,
        program_id: str,
        participant_ids: Collection[str] | None = None,
        free_only: bool = False,
    ) -> list[Candidate]:
        """Active participants as the engine sees them, with their free places (one query).

        With ``free_only``, only those a plan can use: a mentor (or ``both``) with a free
        slot, a mentee (or ``both``) with no open pair who has not completed one. The
        others are left in the store, so a pool's cost follows its open people, not the
        program's history.
        """

    @abstractmethod
    async def erase_participant(self, *, participant_id: str) -> int:
        """Erase the person in every program; return the rows deleted or changed.

        Their participant rows (profiles: name, e-mail, time zone, manager chain,
        preferences, background) and vetoes are deleted; in pairs they are replaced by
        ``erased:<pair_id>``; they are removed from run plans and blanked in the audit,
        whose reasons lose their name (admins stay the actors of their own actions).
        The outbox loses the events it published about them, and the events still
        waiting lose their name and e-mail (``servicekit.erasure``).
        """

    # --- pairs ----------------------------------------------------------------------
    @abstractmethod
    async def add_pairs(self, *, pairs: Sequence[Pair]) -> set[str]:
        """Insert new pairs; return the ids inserted.

        A pair whose combination was ever proposed in the program, or whose mentee has
        an open pair already, is skipped: the store itself refuses a second pair.
        """

    @abstractmethod
    async def save_pair(self, *, pair: Pair) -> None:
        """Store a pair's new status, acceptances and closing details."""

    @abstractmethod
    async def save_pairs(self, *, pairs: Sequence[Pair]) -> None:
        """Store the new state of several pairs (as :meth:`save_pair`), in one statement."""

    @abstractmethod
    async def get_pair(self, *, pair_id: str, for_update: bool = False) -> Pair | None:
        """The pair, or None; ``for_update`` locks it until commit (read, change, save)."""

    @abstractmethod
    async def get_pairs(self, *, pair_ids: Collection[str]) -> dict[str, Pair]:
        """The pairs of ``pair_ids`` that exist, by id, locked until commit (one query)."""

    @abstractmethod
    async def find_pairs(
        self,
        *,
        program_id: str,
        statuses: Collection[PairStatus] | None = None,
        participant_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Pair]:
        """Pairs of the program, newest proposal first, optionally of one person."""

    @abstractmethod
    async def open_pairs(
        self, *, program_id: str | None = None, participant_id: str | None = None
    ) -> list[Pair]:
        """Proposed and formed pairs, of one program and/or one person, locked until commit."""

    @abstractmethod
    async def pair_of(self, *, program_id: str, mentor_id: str, mentee_id: str) -> Pair | None:
        """The pair of this combination, if it was ever proposed (locked until commit)."""

    @abstractmethod
    async def expired_proposals(self, *, at: datetime, limit: int) -> list[Pair]:
        """Proposals past their acceptance deadline, oldest first, locked until commit.

        Proposals another transaction is changing right now are skipped (the next tick
        sees them as they are then).
        """

    @abstractmethod
    async def excluded(
        self, *, program_id: str, among: Collection[str] | None = None
    ) -> frozenset[tuple[str, str]]:
        """Combinations never to propose in the program (every pair ever made, vetoes);
        with ``among``, only those whose two people are both in it."""

    # --- vetoes, audit, runs ----------------------------------------------------------
    @abstractmethod
    async def add_veto(self, *, veto: Veto) -> bool:
        """Record a veto; False when the combination was vetoed already."""

    @abstractmethod
    async def record_action(self, *, action: AdminAction) -> None:
        """Append one line to the audit trail."""

    @abstractmethod
    async def actions(self, *, program_id: str, limit: int, offset: int) -> list[AdminAction]:
        """The program's audit trail, oldest first."""

    @abstractmethod
    async def add_run(self, *, run: MatchRun) -> None:
        """Store a new run."""

    @abstractmethod
    async def get_run(self, *, run_id: str) -> MatchRun | None:
        """The run, or None."""

    @abstractmethod
    async def save_run(self, *, run: MatchRun) -> None:
        """Store a run's new status and outcome."""


OPEN = [PairStatus.PROPOSED.value, PairStatus.FORMED.value]

_PROGRAM_AND_PARTICIPANT = """
SELECT g.definition::text AS definition, g.revision, g.status AS program_status, g.closed_at,
       p.profile::text AS profile, p.status, p.screening, p.trained
FROM programs g
LEFT JOIN participants p ON p.program_id = g.program_id AND p.participant_id = $2
WHERE g.program_id = $1
"""

_SAVE_PARTICIPANT = """
WITH saved AS (
    INSERT INTO participants (program_id, participant_id, profile, status, screening,
                              trained, joined_at, updated_at)
    VALUES ($3, $4, $5::jsonb, $6, $7, $8, $9, $9)
    ON CONFLICT (program_id, participant_id) DO UPDATE SET profile = EXCLUDED.profile,
        status = EXCLUDED.status, screening = EXCLUDED.screening,
        trained = EXCLUDED.trained, updated_at = EXCLUDED.updated_at
    RETURNING program_id
), noted AS (
    INSERT INTO pool_changes (program_id) SELECT program_id FROM saved WHERE $1
    RETURNING program_id
)
SELECT pg_notify($2, program_id) FROM noted
"""

_PROGRAMS_AND_PARTICIPANTS = """
SELECT k.program_id, k.participant_id,
       g.definition::text AS definition, g.revision, g.status AS program_status, g.closed_at,
       p.profile::text AS profile, p.status, p.screening, p.trained
FROM unnest($1::text[], $2::text[]) AS k(program_id, participant_id)
JOIN programs g ON g.program_id = k.program_id
LEFT JOIN participants p ON p.program_id = k.program_id AND p.participant_id = k.participant_id
"""

_SAVE_PARTICIPANTS = """
WITH saved AS (
    INSERT INTO participants (program_id, participant_id, profile, status, screening,
                              trained, joined_at, updated_at)
    SELECT * FROM unnest($3::text[], $4::text[], $5::jsonb[], $6::text[], $7::text[],
                         $8::boolean[], $9::timestamptz[], $10::timestamptz[])
    ON CONFLICT (program_id, participant_id) DO UPDATE SET profile = EXCLUDED.profile,
        status = EXCLUDED.status, screening = EXCLUDED.screening,
        trained = EXCLUDED.trained, updated_at = EXCLUDED.updated_at
    RETURNING program_id
), noted AS (
    INSERT INTO pool_changes (program_id)
    SELECT DISTINCT program_id FROM saved WHERE program_id = ANY($1::text[])
    RETURNING program_id
)
SELECT pg_notify($2, program_id) FROM noted
"""

_EXCLUDED = """
SELECT mentor_id, mentee_id FROM {table} WHERE program_id = $1
  AND ($2::text[] IS NULL OR (mentor_id IN (SELECT unnest($2::text[]))
                              AND mentee_id IN (SELECT unnest($2::text[]))))
"""

POOL_CHANGED_CHANNEL = "upward_matching_pool_changed"
"""The ``NOTIFY`` channel of pool changes (payload: the program id)."""

_NOTE_POOL_CHANGE = """
WITH noted AS (INSERT INTO pool_changes (program_id) VALUES ($1) RETURNING program_id)
SELECT pg_notify($2, program_id) FROM noted
"""

_CANDIDATES = """
SELECT p.profile::text AS profile, p.screening, p.trained,
       COALESCE(m.open_pairs, 0) AS open_as_mentor,
       COALESCE(e.open_pair, false) AS open_as_mentee,
       COALESCE(e.finished, false) AS mentee_finished
FROM participants p
LEFT JOIN (
    SELECT mentor_id, count(*) AS open_pairs FROM pairs
    WHERE program_id = $1 AND status = ANY($3::text[]) GROUP BY mentor_id
) m ON m.mentor_id = p.participant_id
LEFT JOIN (
    SELECT mentee_id,
           bool_or(status = ANY($3::text[])) AS open_pair,
           bool_or(status = 'ended' AND close_reason = 'completed') AS finished
    FROM pairs WHERE program_id = $1 GROUP BY mentee_id
) e ON e.mentee_id = p.participant_id
WHERE p.program_id = $1 AND p.status = 'active'
  AND ($2::text[] IS NULL OR p.participant_id IN (SELECT unnest($2::text[])))
  AND (NOT $4::boolean
       OR (p.profile->>'role' <> 'mentee'
           AND COALESCE(m.open_pairs, 0) < COALESCE((p.profile->>'capacity')::int, 1))
       OR (p.profile->>'role' <> 'mentor'
           AND NOT COALESCE(e.open_pair, false) AND NOT COALESCE(e.finished, false)))
ORDER BY p.participant_id
"""

_INSERT_PAIRS = """
INSERT INTO pairs (pair_id, program_id, mentor_id, mentee_id, status, mode, score,
                   explanation, topics, run_id, proposed_by, proposed_at, expires_at,
                   mentor_accepted_at, mentee_accepted_at, formed_at)
SELECT x.pair_id, x.program_id, x.mentor_id, x.mentee_id, x.status, x.mode, x.score,
       x.explanation::jsonb, ARRAY(SELECT jsonb_array_elements_text(x.topics::jsonb)),
       x.run_id, x.proposed_by, x.proposed_at, x.expires_at,
       x.mentor_accepted_at, x.mentee_accepted_at, x.formed_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::float8[], $8::text[], $9::text[], $10::text[], $11::text[],
            $12::timestamptz[], $13::timestamptz[], $14::timestamptz[], $15::timestamptz[],
            $16::timestamptz[])
     AS x(pair_id, program_id, mentor_id, mentee_id, status, mode, score, explanation,
          topics, run_id, proposed_by, proposed_at, expires_at, mentor_accepted_at,
          mentee_accepted_at, formed_at)
ON CONFLICT DO NOTHING
RETURNING pair_id
"""

_SAVE_PAIR = """
UPDATE pairs SET status = $2, mentor_accepted_at = $3, mentee_accepted_at = $4,
       formed_at = $5, closed_at = $6, close_reason = $7, closed_by = $8, at_risk_at = $9
WHERE pair_id = $1
"""

_SAVE_PAIRS = """
UPDATE pairs SET status = x.status, mentor_accepted_at = x.mentor_accepted_at,
       mentee_accepted_at = x.mentee_accepted_at, formed_at = x.formed_at,
       closed_at = x.closed_at, close_reason = x.close_reason, closed_by = x.closed_by,
       at_risk_at = x.at_risk_at
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[],
            $6::timestamptz[], $7::text[], $8::text[], $9::timestamptz[])
     AS x(pair_id, status, mentor_accepted_at, mentee_accepted_at, formed_at, closed_at,
          close_reason, closed_by, at_risk_at)
WHERE pairs.pair_id = x.pair_id
"""

_PAIR_COLUMNS = [
    "pair_id",
    "program_id",
    "mentor_id",
    "mentee_id",
    "status",
    "mode",
    "score",
    "explanation",
    "topics",
    "run_id",
    "proposed_by",
    "proposed_at",
    "expires_at",
    "mentor_accepted_at",
    "mentee_accepted_at",
    "formed_at",
]

_ERASE = [
    "DELETE FROM participants WHERE participant_id = $1",
    # Pairs stay (they are the partner's history too) with the person replaced by a
    # tombstone unique to the pair, so events about them still find their pair.
    """UPDATE pairs SET
         mentor_id = CASE WHEN mentor_id = $1 THEN 'erased:' || pair_id ELSE mentor_id END,
         mentee_id = CASE WHEN mentee_id = $1 THEN 'erased:' || pair_id ELSE mentee_id END,
         proposed_by = NULLIF(proposed_by, $1), closed_by = NULLIF(closed_by, $1)
       WHERE mentor_id = $1 OR mentee_id = $1""",
    "DELETE FROM vetoes WHERE mentor_id = $1 OR mentee_id = $1",
    """UPDATE admin_actions
       SET mentor_id = NULLIF(mentor_id, $1), mentee_id = NULLIF(mentee_id, $1)
       WHERE mentor_id = $1 OR mentee_id = $1""",
    """UPDATE match_runs SET plan = jsonb_set(jsonb_set(plan,
         '{pairs}', COALESCE((SELECT jsonb_agg(x) FROM jsonb_array_elements(plan->'pairs') x
                         WHERE x->>'mentor_id' <> $1 AND x->>'mentee_id' <> $1), '[]')),
         '{unmatched}', COALESCE((SELECT jsonb_agg(x) FROM jsonb_array_elements(plan->'unmatched') x
                         WHERE x->>'participant_id' <> $1), '[]'))
       WHERE plan::text LIKE '%' || to_json($1::text)::text || '%'""",
    """UPDATE match_runs SET outcome = jsonb_set(outcome,
         '{dropped}', COALESCE((SELECT jsonb_agg(x) FROM jsonb_array_elements(outcome->'dropped') x
                       WHERE x->>'mentor_id' <> $1 AND x->>'mentee_id' <> $1), '[]'))
       WHERE outcome IS NOT NULL AND outcome::text LIKE '%' || to_json($1::text)::text || '%'""",
]


class PostgresMatchingRepository(MatchingRepository):
    """The store on PostgreSQL, on the connection of the current transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add_program(self, *, program: Program, at: datetime) -> bool:
        """Insert a new program; False when the id is taken."""
        status = await self._conn.execute(
            "INSERT INTO programs (program_id, definition, revision, status, pairing_modes,"
            " created_at, updated_at) VALUES ($1, $2::jsonb, $3, $4, $5, $6, $6)"
            " ON CONFLICT (program_id) DO NOTHING",
            program.program_id,
            _definition_json(program.definition),
            program.revision,
            program.status.value,
            [m.value for m in program.definition.pairing_modes],
            at,
        )
        return status.endswith(" 1")

    async def get_program(self, *, program_id: str, for_update: bool = False) -> Program | None:
        """The program, or None; ``for_update`` locks it until commit (update, close)."""
        row = await self._conn.fetchrow(
            "SELECT definition::text AS definition, revision, status, closed_at FROM programs"
            " WHERE program_id = $1" + (" FOR UPDATE" if for_update else ""),
            program_id,
        )
        return None if row is None else _program(row)

    async def save_program(self, *, program: Program, at: datetime) -> None:
        """Store a changed definition, revision or status."""
        await self._conn.execute(
            "UPDATE programs SET definition = $2::jsonb, revision = $3, status = $4,"
            " pairing_modes = $5, closed_at = $6, updated_at = $7 WHERE program_id = $1",
            program.program_id,
            _definition_json(program.definition),
            program.revision,
            program.status.value,
            [m.value for m in program.definition.pairing_modes],
            program.closed_at,
            at,
        )

    async def list_programs(self) -> list[Program]:
        """Every program, oldest first."""
        rows = await self._conn.fetch(
            "SELECT definition::text AS definition, revision, status, closed_at FROM programs"
            " ORDER BY created_at, program_id"
        )
        return [_program(r) for r in rows]

    async def lock_program(self, *, program_id: str) -> None:
        """Serialise the transactions that create pairs in one program (until commit)."""
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('upward.matching.program:' || $1, 0))",
            program_id,
        )

    @asynccontextmanager
    async def _hash_joins(self) -> AsyncIterator[None]:
        """Plan the statements of the block without nested loops.

        The pool query joins every participant of a program to the pairs' counts per
        person. A plan made while the tables were small, or before PostgreSQL gathered
        their statistics (a fresh program filling in seconds, a prepared statement's
        cached generic plan), nests those loops: 20 s for 10,000 people and 5,000 pairs
        where hash joins take 20 ms. The setting is local to the transaction and put
        back after the block (a block that fails aborts the transaction, or its
        savepoint, which puts it back).
        """
        await self._conn.execute("SET LOCAL enable_nestloop = off")
        yield
        await self._conn.execute("RESET enable_nestloop")

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested transaction (a PostgreSQL savepoint) on the current transaction."""
        async with self._conn.transaction():
            yield

    async def note_pool_change(self, *, program_id: str) -> None:
        """Record that the program's pool changed (the continuous mode plans it again).

        The row comes with a ``NOTIFY`` on :data:`POOL_CHANGED_CHANNEL`, delivered when
        the transaction commits, which wakes the continuous-matching timer.
        """
        await self._conn.execute(_NOTE_POOL_CHANGE, program_id, POOL_CHANGED_CHANNEL)

    async def changed_pools(self, *, mode: PairingMode) -> dict[str, int]:
        """Open programs allowing ``mode`` whose pool changed: id -> newest change seen."""
        await self._conn.execute(
            "DELETE FROM pool_changes c USING programs p WHERE p.program_id = c.program_id"
            " AND (p.status <> 'open' OR NOT ($1 = ANY(p.pairing_modes)))",
            mode.value,
        )
        rows = await self._conn.fetch(
            "SELECT program_id, max(change_id) AS newest FROM pool_changes GROUP BY program_id"
            " ORDER BY program_id"
        )
        return {r["program_id"]: int(r["newest"]) for r in rows}

    async def forget_pool_changes(self, *, program_id: str, up_to: int) -> None:
        """Drop the program's pool changes up to ``up_to`` (they have been planned)."""
        await self._conn.execute(
            "DELETE FROM pool_changes WHERE program_id = $1 AND change_id <= $2", program_id, up_to
        )

    async def get_participant(self, *, program_id: str, participant_id: str) -> Participant | None:
        """The participant of the program, or None."""
        row = await self._conn.fetchrow(
            "SELECT profile::text AS profile, status, screening, trained FROM participants"
            " WHERE program_id = $1 AND participant_id = $2",
            program_id,
            participant_id,
        )
        return None if row is None else _participant(row)

    async def program_and_participant(
        self, *, program_id: str, participant_id: str
    ) -> tuple[Program | None, Participant | None]:
        """The program and its participant, read together (either may be None)."""
        row = await self._conn.fetchrow(_PROGRAM_AND_PARTICIPANT, program_id, participant_id)
        if row is None:
            return None, None
        person = None if row["profile"] is None else _participant(row)
        return _program(row), person

    async def save_participant(
        self, *, participant: Participant, at: datetime, pool_changed: bool = False
    ) -> None:
        """Insert or replace the participant (and note a pool change: one round trip)."""
        await self._conn.execute(
            _SAVE_PARTICIPANT,
            pool_changed,
            POOL_CHANGED_CHANNEL,
            participant.program_id,
            participant.participant_id,
            participant.profile.model_dump_json(),
            participant.status.value,
            None if participant.screening is None else participant.screening.value,
            participant.trained,
            at,
        )

    async def programs_and_participants(
        self, *, keys: Sequence[tuple[str, str]]
    ) -> tuple[dict[str, Program], dict[tuple[str, str], Participant]]:
        """The programs and the existing participants of ``keys``, in one query."""
        rows = await self._conn.fetch(
            _PROGRAMS_AND_PARTICIPANTS, [k[0] for k in keys], [k[1] for k in keys]
        )
        found = {r["program_id"]: _program(r) for r in rows}
        people = {
            (r["program_id"], r["participant_id"]): _participant(r)
            for r in rows
            if r["profile"] is not None
        }
        return found, people

    async def save_participants(
        self, *, saved: Sequence[SavedParticipant], pool_changed: Collection[str]
    ) -> None:
        """Upsert the participants and note the pool changes (with NOTIFY): one statement."""
        people = [s.participant for s in saved]
        await self._conn.execute(
            _SAVE_PARTICIPANTS,
            list(pool_changed),
            POOL_CHANGED_CHANNEL,
            [p.program_id for p in people],
            [p.participant_id for p in people],
            [p.profile.model_dump_json() for p in people],
            [p.status.value for p in people],
            [None if p.screening is None else p.screening.value for p in people],
            [p.trained for p in people],
            [s.joined_at for s in saved],
            [s.updated_at for s in saved],
        )

    async def list_participants(
        self, *, program_id: str, limit: int, offset: int
    ) -> list[Participant]:
        """Participants of the program ordered by id."""
        rows = await self._conn.fetch(
            "SELECT profile::text AS profile, status, screening, trained FROM participants"
            " WHERE program_id = $1 ORDER BY participant_id LIMIT $2 OFFSET $3",
            program_id,
            limit,
            offset,
        )
        return [_participant(r) for r in rows]

    async def programs_of(self, *, participant_id: str) -> list[str]:
        """Ids of the programs the person is (or was) a participant of."""
        rows = await self._conn.fetch(
            "SELECT program_id FROM participants WHERE participant_id = $1 ORDER BY program_id",
            participant_id,
        )
        return [r["program_id"] for r in rows]

    async def candidates(
        self,
        *,
        program_id: str,
        participant_ids: Collection[str] | None = None,
        free_only: bool = False,
    ) -> list[Candidate]:
        """Active participants as the engine sees them, with their free places (one query)."""
        ids = None if participant_ids is None else list(participant_ids)
        async with self._hash_joins():
            rows = await self._conn.fetch(_CANDIDATES, program_id, ids, OPEN, free_only)
        return await off_loop(lambda: [_candidate(r) for r in rows], size=len(rows))

    async def erase_participant(self, *, participant_id: str) -> int:
        """Delete the person's data in every program and the outbox; return the rows erased."""
        personal = await self._personal_texts(participant_id)
        erased = await self._redact_audit_reasons(participant_id, personal)
        for statement in _ERASE:
            status = await self._conn.execute(statement, participant_id)
            erased += int(status.rsplit(" ", 1)[-1])
        return erased + await erase_from_outbox(
            self._conn, participant_id=participant_id, personal=personal
        )

    async def _redact_audit_reasons(self, participant_id: str, personal: set[str]) -> int:
        """Take the person's name out of the reasons admins wrote about their pairs."""
        return await redact_texts(
            self._conn,
            select="SELECT action_id, reason FROM admin_actions WHERE reason IS NOT NULL"
            " AND (mentor_id = $1 OR mentee_id = $1) FOR UPDATE",
            args=(participant_id,),
            update="UPDATE admin_actions SET reason = $2 WHERE action_id = $1",
            personal=personal,
        )

    async def _personal_texts(self, participant_id: str) -> set[str]:
        """The names and e-mail addresses the person's profiles carry."""
        rows = await self._conn.fetch(
            "SELECT profile->>'display_name' AS name, profile->>'email' AS email"
            " FROM participants WHERE participant_id = $1",
            participant_id,
        )
        found: set[str] = set()
        for row in rows:
            found |= personal_texts(name=row["name"], email=row["email"])
        return found

    async def add_pairs(self, *, pairs: Sequence[Pair]) -> set[str]:
        """Insert new pairs; return the ids inserted (conflicting pairs are skipped)."""
        if not pairs:
            return set()
        columns = await off_loop(
            lambda: [[_pair_value(p, c) for p in pairs] for c in _PAIR_COLUMNS], size=len(pairs)
        )
        rows = await self._conn.fetch(_INSERT_PAIRS, *columns)
        return {r["pair_id"] for r in rows}

    async def save_pair(self, *, pair: Pair) -> None:
        """Store a pair's new status, acceptances and closing details."""
        await self._conn.execute(
            _SAVE_PAIR,
            pair.pair_id,
            pair.status.value,
            pair.mentor_accepted_at,
            pair.mentee_accepted_at,
            pair.formed_at,
            pair.closed_at,
            pair.close_reason,
            pair.closed_by,
            pair.at_risk_at,
        )

    async def save_pairs(self, *, pairs: Sequence[Pair]) -> None:
        """Store the new state of several pairs, in one statement."""
        if not pairs:
            return
        await self._conn.execute(
            _SAVE_PAIRS,
            [p.pair_id for p in pairs],
            [p.status.value for p in pairs],
            [p.mentor_accepted_at for p in pairs],
            [p.mentee_accepted_at for p in pairs],
            [p.formed_at for p in pairs],
            [p.closed_at for p in pairs],
            [p.close_reason for p in pairs],
            [p.closed_by for p in pairs],
            [p.at_risk_at for p in pairs],
        )

    async def get_pair(self, *, pair_id: str, for_update: bool = False) -> Pair | None:
        """The pair, or None; ``for_update`` locks it until commit (read, change, save)."""
        lock = " FOR UPDATE" if for_update else ""
        row = await self._conn.fetchrow("SELECT * FROM pairs WHERE pair_id = $1" + lock, pair_id)
        return None if row is None else _pair(row)

    async def get_pairs(self, *, pair_ids: Collection[str]) -> dict[str, Pair]:
        """The pairs of ``pair_ids`` that exist, by id, locked until commit (one query).

        Locked in id order, as every other batch locks them, so two batches cannot wait
        for each other.
        """
        rows = await self._conn.fetch(
            "SELECT * FROM pairs WHERE pair_id IN (SELECT unnest($1::text[]))"
            " ORDER BY pair_id FOR UPDATE",
            sorted(set(pair_ids)),
        )
        return {r["pair_id"]: _pair(r) for r in rows}

    async def find_pairs(
        self,
        *,
        program_id: str,
        statuses: Collection[PairStatus] | None = None,
        participant_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Pair]:
        """Pairs of the program, newest proposal first, optionally of one person."""
        rows = await self._conn.fetch(
            "SELECT * FROM pairs WHERE program_id = $1"
            " AND ($2::text[] IS NULL OR status = ANY($2::text[]))"
            " AND ($3::text IS NULL OR $3 IN (mentor_id, mentee_id))"
            " ORDER BY proposed_at DESC, pair_id LIMIT $4 OFFSET $5",
            program_id,
            None if statuses is None else [s.value for s in statuses],
            participant_id,
            limit,
            offset,
        )
        return [_pair(r) for r in rows]

    async def open_pairs(
        self, *, program_id: str | None = None, participant_id: str | None = None
    ) -> list[Pair]:
        """Proposed and formed pairs, of one program and/or one person, locked until commit."""
        rows = await self._conn.fetch(
            "SELECT * FROM pairs WHERE status = ANY($1::text[])"
            " AND ($2::text IS NULL OR program_id = $2)"
            " AND ($3::text IS NULL OR $3 IN (mentor_id, mentee_id))"
            " ORDER BY proposed_at, pair_id FOR UPDATE",
            OPEN,
            program_id,
            participant_id,
        )
        return [_pair(r) for r in rows]

    async def pair_of(self, *, program_id: str, mentor_id: str, mentee_id: str) -> Pair | None:
        """The pair of this combination, if it was ever proposed (locked until commit)."""
        row = await self._conn.fetchrow(
            "SELECT * FROM pairs WHERE program_id = $1 AND mentor_id = $2 AND mentee_id = $3"
            " FOR UPDATE",
            program_id,
            mentor_id,
            mentee_id,
        )
        return None if row is None else _pair(row)

    async def expired_proposals(self, *, at: datetime, limit: int) -> list[Pair]:
        """Proposals past their deadline, oldest first, locked (busy ones are skipped)."""
        rows = await self._conn.fetch(
            "SELECT * FROM pairs WHERE status = 'proposed' AND expires_at <= $1"
            " ORDER BY expires_at, pair_id LIMIT $2 FOR UPDATE SKIP LOCKED",
            at,
            limit,
        )
        return [_pair(r) for r in rows]

    async def excluded(
        self, *, program_id: str, among: Collection[str] | None = None
    ) -> frozenset[tuple[str, str]]:
        """Combinations never to propose in the program (every pair ever made, vetoes)."""
        ids = None if among is None else list(among)
        pairs = await self._conn.fetch(_EXCLUDED.format(table="pairs"), program_id, ids)
        vetoes = await self._conn.fetch(_EXCLUDED.format(table="vetoes"), program_id, ids)
        return excluded_combinations(
            [(r["mentor_id"], r["mentee_id"]) for r in pairs],
            [(r["mentor_id"], r["mentee_id"]) for r in vetoes],
        )

    async def add_veto(self, *, veto: Veto) -> bool:
        """Record a veto; False when the combination was vetoed already."""
        status = await self._conn.execute(
            "INSERT INTO vetoes (program_id, mentor_id, mentee_id, vetoed_by, reason, vetoed_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            veto.program_id,
            veto.mentor_id,
            veto.mentee_id,
            veto.vetoed_by,
            veto.reason,
            veto.vetoed_at,
        )
        return status.endswith(" 1")

    async def record_action(self, *, action: AdminAction) -> None:
        """Append one line to the audit trail."""
        await self._conn.execute(
            "INSERT INTO admin_actions (program_id, action, actor_id, reason, pair_id, run_id,"
            " mentor_id, mentee_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            action.program_id,
            action.action.value,
            action.actor_id,
            action.reason,
            action.pair_id,
            action.run_id,
            action.mentor_id,
            action.mentee_id,
            action.at,
        )

    async def actions(self, *, program_id: str, limit: int, offset: int) -> list[AdminAction]:
        """The program's audit trail, oldest first."""
        rows = await self._conn.fetch(
            "SELECT * FROM admin_actions WHERE program_id = $1 ORDER BY action_id"
            " LIMIT $2 OFFSET $3",
            program_id,
            limit,
            offset,
        )
        return [_action(r) for r in rows]

    async def add_run(self, *, run: MatchRun) -> None:
        """Store a new run."""
        plan = await off_loop(lambda: json.dumps(plan_json(run.plan)), size=len(run.plan.pairs))
        await self._conn.execute(
            "INSERT INTO match_runs (run_id, program_id, mode, status, plan, created_by,"
            " created_at, duration_ms, published_at, published_by, outcome)"
            " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11::jsonb)",
            run.run_id,
            run.program_id,
            run.mode.value,
            run.status.value,
            plan,
            run.created_by,
            run.created_at,
            run.duration_ms,
            run.published_at,
            run.published_by,
            None if run.outcome is None else json.dumps(outcome_json(run.outcome)),
        )

    async def get_run(self, *, run_id: str) -> MatchRun | None:
        """The run, or None."""
        row = await self._conn.fetchrow(
            "SELECT run_id, program_id, mode, status, plan::text AS plan, created_by, created_at,"
            " duration_ms, published_at, published_by, outcome::text AS outcome"
            " FROM match_runs WHERE run_id = $1",
            run_id,
        )
        if row is None:
            return None
        return await off_loop(lambda: _run(row), size=len(row["plan"]) // 100)  # ~100 B a pair

    async def save_run(self, *, run: MatchRun) -> None:
        """Store a run's new status and outcome."""
        await self._conn.execute(
            "UPDATE match_runs SET status = $2, published_at = $3, published_by = $4,"
            " outcome = $5::jsonb WHERE run_id = $1",
            run.run_id,
            run.status.value,
            run.published_at,
            run.published_by,
            None if run.outcome is None else json.dumps(outcome_json(run.outcome)),
        )


def _definition_json(definition: ProgramDefinition) -> str:
    return definition.model_dump_json()


@functools.lru_cache(maxsize=256)
def _definition(stored: str) -> ProgramDefinition:
    """The definition stored as ``stored`` (frozen, so one parse serves every reader:
    each consumed join reads its program, and a 40-topic catalogue is not cheap to parse)."""
    return ProgramDefinition.model_validate_json(stored)


def _program(row: asyncpg.Record) -> Program:
    status = row["program_status"] if "program_status" in row else row["status"]
    return Program(
        definition=_definition(row["definition"]),
        revision=row["revision"],
        status=ProgramStatus(status),
        closed_at=row["closed_at"],
    )


def _participant(row: asyncpg.Record | Mapping[str, Any]) -> Participant:
    return Participant(
        profile=ParticipantProfile.model_validate_json(row["profile"]),
        status=ParticipantStatus(row["status"]),
        screening=None if row["screening"] is None else ScreeningOutcome(row["screening"]),
        trained=row["trained"],
    )


def _candidate(row: asyncpg.Record) -> Candidate:
    return to_candidate(
        json.loads(row["profile"]),
        screening=row["screening"],
        trained=row["trained"],
        open_as_mentor=row["open_as_mentor"],
        open_as_mentee=row["open_as_mentee"],
        mentee_finished=row["mentee_finished"],
    )


def _pair_value(pair: Pair, column: str) -> Any:
    if column == "explanation":
        return json.dumps([f.model_dump(mode="json") for f in pair.explanation])
    if column == "topics":
        return json.dumps(list(pair.topics))
    value = getattr(pair, column)
    return value.value if column in ("status", "mode") else value


def _pair(row: asyncpg.Record) -> Pair:
    explanation = row["explanation"]
    factors = json.loads(explanation) if isinstance(explanation, str) else explanation
    return Pair(
        **_columns(row, Pair)
        | {
            "status": PairStatus(row["status"]),
            "mode": PairingMode(row["mode"]),
            "explanation": tuple(ScoreFactor.model_validate(f) for f in factors),
            "topics": tuple(row["topics"]),
        }
    )


def _action(row: asyncpg.Record) -> AdminAction:
    return AdminAction(**_columns(row, AdminAction) | {"action": AdminActionKind(row["action"])})


def _columns(row: asyncpg.Record, kind: type[Any]) -> dict[str, Any]:
    """The row's columns named like the fields of the dataclass ``kind``."""
    return {f.name: row[f.name] for f in fields(kind)}


def proposal_json(proposal: PlannedPair) -> dict[str, Any]:
    """A proposal as JSON (stored plans, HTTP answers)."""
    return {
        "mentor_id": proposal.mentor_id,
        "mentee_id": proposal.mentee_id,
        "score": proposal.score,
        "explanation": [f.model_dump(mode="json") for f in proposal.explanation],
        "topics": list(proposal.topics),
    }


def _proposal(data: Mapping[str, Any]) -> PlannedPair:
    return PlannedPair(
        mentor_id=data["mentor_id"],
        mentee_id=data["mentee_id"],
        score=float(data["score"]),
        explanation=tuple(ScoreFactor.model_validate(f) for f in data["explanation"]),
        topics=tuple(data["topics"]),
    )


def plan_json(plan: MatchPlan) -> dict[str, Any]:
    """A run's plan as JSON."""
    return {
        "pairs": [proposal_json(p) for p in plan.pairs],
        "unmatched": [
            {"participant_id": u.participant_id, "reason": u.reason} for u in plan.unmatched
        ],
        "totals": dict(plan.totals),
    }


def outcome_json(outcome: PublishOutcome) -> dict[str, Any]:
    """What publishing a run did, as JSON."""
    return {
        "proposed": list(outcome.proposed),
        "dropped": [
            proposal_json(d.proposal) | {"reasons": list(d.reasons)} for d in outcome.dropped
        ],
    }


def _run(row: asyncpg.Record) -> MatchRun:
    plan = json.loads(row["plan"])
    outcome = None if row["outcome"] is None else json.loads(row["outcome"])
    return MatchRun(
        run_id=row["run_id"],
        program_id=row["program_id"],
        mode=PairingMode(row["mode"]),
        status=RunStatus(row["status"]),
        plan=MatchPlan(
            pairs=tuple(_proposal(p) for p in plan["pairs"]),
            unmatched=tuple(Unmatched(u["participant_id"], u["reason"]) for u in plan["unmatched"]),
            totals=plan["totals"],
        ),
        created_at=row["created_at"],
        duration_ms=row["duration_ms"],
        created_by=row["created_by"],
        published_at=row["published_at"],
        published_by=row["published_by"],
        outcome=None
        if outcome is None
        else PublishOutcome(
            proposed=tuple(outcome["proposed"]),
            dropped=tuple(Dropped(_proposal(d), tuple(d["reasons"])) for d in outcome["dropped"]),
        ),
    )
