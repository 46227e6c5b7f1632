"""The feedback service's store: the abstract port and its asyncpg implementation.

Handlers and routes talk to :class:`FeedbackStore`; :class:`PostgresFeedbackStore` runs
on the connection of the current transaction, so every write joins the unit of work.
Tests use an in-memory fake that subclasses the same port and passes the same suite.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from datetime import datetime

import asyncpg

from schemas.feedback import FeedbackKind, HealthSignal, PairHealth
from schemas.pairs import PairEndReason
from schemas.primitives import PairSide
from servicekit.db import Connection
from servicekit.erasure import erase_from_outbox
from services.feedback.domain.health import HealthAssessment, RatedAnswer
from services.feedback.domain.milestones import ProgramCalendar
from services.feedback.domain.outcomes import (
    AtomTotals,
    RatingTotals,
    RequestTotals,
    SkillLevels,
)
from services.feedback.domain.pairs import HeldSession, PairContext, PairRecord
from services.feedback.domain.privacy import Atom
from services.feedback.domain.programs import ProgramSettings
from services.feedback.domain.requests import (
    FeedbackRequest,
    PairMembers,
    RequestState,
    RequestStatus,
)
from services.feedback.domain.submissions import AlreadyAnswered, Answer, SkillRating, StoredAnswer

RELEASED = "released"
PENDING = "pending"
PeopleByAtom = dict[Atom, frozenset[str]]


class FeedbackStore(ABC):
    """Everything the feedback service reads and writes."""

    # programs

    @abstractmethod
    async def save_program(self, *, program: ProgramSettings) -> None:
        """Insert or replace a program, unless a later revision is stored."""

    @abstractmethod
    async def close_program(self, *, program_id: str, closed_at: datetime) -> None:
        """Record that a program closed."""

    @abstractmethod
    async def program(self, *, program_id: str) -> ProgramSettings | None:
        """The program, if its definition arrived."""

    # pairs and attendance

    @abstractmethod
    async def add_pair(self, *, members: PairMembers, formed_at: datetime) -> bool:
        """Store a formed pair; False when it was already stored."""

    @abstractmethod
    async def forget_participant(
        self, *, participant_id: str, pseudonym: str, now: datetime
    ) -> int:
        """Erase the person's comments, put ``pseudonym`` in place of their id; rows changed."""

    @abstractmethod
    async def is_forgotten(self, *, participant_ids: Collection[str]) -> bool:
        """True when one of these people asked to be forgotten."""

    @abstractmethod
    async def pair(self, *, pair_id: str, for_update: bool = False) -> PairRecord | None:
        """The pair with its attendance and last health band (locked when ``for_update``)."""

    async def pair_context(
        self, *, pair_id: str, answers: int, closed: int, for_update: bool = False
    ) -> PairContext | None:
        """The pair with its program, the ratings of its last ``answers`` answers and the
        outcomes of its last ``closed`` closed requests (locked when ``for_update``)."""
        found = await self.pair_contexts(
            pair_ids=[pair_id], answers=answers, closed=closed, for_update=for_update
        )
        return found.get(pair_id)

    @abstractmethod
    async def pair_contexts(
        self, *, pair_ids: Collection[str], answers: int, closed: int, for_update: bool = False
    ) -> dict[str, PairContext]:
        """:meth:`pair_context` of each known pair of ``pair_ids``, by pair id (locked in
        pair id order when ``for_update``)."""

    @abstractmethod
    async def end_pair(self, *, pair_id: str, reason: PairEndReason, ended_at: datetime) -> bool:
        """Mark an open pair ended; False when unknown or already ended."""

    @abstractmethod
    async def save_health(self, *, pair_id: str, assessment: HealthAssessment) -> None:
        """Store a pair's latest health assessment."""

    @abstractmethod
    async def open_pairs(self) -> list[PairRecord]:
        """Every pair not ended."""

    @abstractmethod
    async def health_bands(self) -> dict[PairHealth, int]:
        """Open pairs per health band."""

    @abstractmethod
    async def record_held_sessions(self, *, sessions: Sequence[HeldSession]) -> list[HeldSession]:
        """Store held sessions and clear their pairs' misses in a row and stalls (a held
        session ends both); return those that were not stored already (a session given
        twice is stored once). One already stored changes nothing."""

    @abstractmethod
    async def held_sessions(self, *, pair_id: str) -> list[str]:
        """Ids of the pair's held sessions, oldest first."""

    @abstractmethod
    async def set_attendance(
        self, *, pair_id: str, consecutive_missed: int, stalled: bool | None
    ) -> None:
        """Set the sessions missed in a row and, unless None, whether the pair is stalled."""

    # requests

    @abstractmethod
    async def add_requests(self, *, requests: Sequence[FeedbackRequest]) -> list[FeedbackRequest]:
        """Store requests; return those that were not stored already."""

    @abstractmethod
    async def request(self, *, request_id: str) -> RequestState | None:
        """A request and its status."""

    @abstractmethod
    async def requests_of(self, *, participant_id: str) -> list[RequestState]:
        """The participant's requests, newest first."""

    @abstractmethod
    async def requested_milestones(self) -> dict[str, frozenset[int]]:
        """Milestone weeks already requested, per open pair (pairs with none are absent)."""

    @abstractmethod
    async def mark_missing(self, *, now: datetime) -> list[str]:
        """Mark open requests due before ``now`` as missing; return their pairs."""

    @abstractmethod
    async def closed_request_outcomes(self, *, pair_id: str, limit: int) -> list[bool]:
        """For the pair's last ``limit`` answered or missing requests: True if missing."""

    # answers

    @abstractmethod
    async def save_answer(self, *, stored: StoredAnswer) -> None:
        """Store an answer and close its request; AlreadyAnswered if it has one."""

    @abstractmethod
    async def answer(self, *, request_id: str) -> StoredAnswer | None:
        """The answer to a request."""

    @abstractmethod
    async def answers_of(self, *, participant_id: str) -> list[StoredAnswer]:
        """The participant's answers, newest first."""

    @abstractmethod
    async def recent_answers(self, *, pair_id: str, limit: int) -> list[RatedAnswer]:
        """The ratings of the pair's last ``limit`` answers, oldest first."""

    # report tables

    @abstractmethod
    async def lock_outcomes(self, *, program_id: str) -> None:
        """Serialise the releases of one program's figures until the transaction ends."""

    @abstractmethod
    async def add_contribution(
        self, *, program_id: str, atom: Atom, person_id: str, totals: RatingTotals
    ) -> None:
        """Add an answer's totals to the pending contributions."""

    @abstractmethod
    async def contribution_people(self, *, program_id: str, stage: str) -> PeopleByAtom:
        """The people with released (or pending) contributions, per atom."""

    @abstractmethod
    async def release_contributions(
        self, *, program_id: str, atoms: Collection[Atom], released_at: datetime
    ) -> None:
        """Move the pending contributions of ``atoms`` into the released figures."""

    @abstractmethod
    async def released_totals(self, *, program_id: str) -> dict[Atom, AtomTotals]:
        """Released people and totals per atom, with the live request counts."""

    @abstractmethod
    async def last_release(self, *, program_id: str) -> datetime | None:
        """When the program's figures last moved."""

    @abstractmethod
    async def add_skill(self, *, program_id: str, mentee_id: str, skill: SkillRating) -> None:
        """Record a self-assessment (the first 'before' stays); mark it pending."""

    @abstractmethod
    async def pending_skill_mentees(self, *, program_id: str) -> dict[str, int]:
        """Mentees with a pending self-assessment, per topic."""

    @abstractmethod
    async def release_skills(self, *, program_id: str, topics: Collection[str]) -> None:
        """Move the pending self-assessments of ``topics`` into the released figures."""

    @abstractmethod
    async def released_skills(self, *, program_id: str) -> dict[str, list[SkillLevels]]:
        """Released levels per topic."""

    @abstractmethod
    async def participation(
        self, *, program_id: str
    ) -> dict[tuple[str, str], list[PairEndReason | None]]:
        """(side, person) -> the end reason of each of their pairs (None: still open)."""

    @abstractmethod
    async def sessions_by_pair(self, *, program_id: str) -> dict[str, int]:
        """Sessions held per pair of the program (0 for a pair without any)."""

    @abstractmethod
    async def people_asked_and_answering(self, *, program_id: str) -> tuple[int, int]:
        """Distinct people asked for feedback in the program, and those who answered."""

    @abstractmethod
    async def takes_part(self, *, program_id: str, person_id: str) -> bool:
        """True when the person is (or was) in a pair of the program."""


class PostgresFeedbackStore(FeedbackStore):
    """The store on an asyncpg connection (the transaction of the unit of work)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def save_program(self, *, program: ProgramSettings) -> None:
        """Insert or replace a program, unless a later revision is stored."""
        c = program.calendar
        await self.conn.execute(
            """
            INSERT INTO programs (program_id, revision, starts_on, duration_weeks,
                milestone_weeks, k_anonymity, after_each_session, response_days,
                at_risk_threshold, topics, admin_ids)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (program_id) DO UPDATE SET
                revision = excluded.revision, starts_on = excluded.starts_on,
                duration_weeks = excluded.duration_weeks,
                milestone_weeks = excluded.milestone_weeks, k_anonymity = excluded.k_anonymity,
                after_each_session = excluded.after_each_session,
                response_days = excluded.response_days,
                at_risk_threshold = excluded.at_risk_threshold,
                topics = excluded.topics, admin_ids = excluded.admin_ids
            WHERE programs.revision <= excluded.revision
            """,
            program.program_id,
            program.revision,
            c.starts_on,
            c.duration_weeks,
            list(c.milestone_weeks) if c.milestone_weeks is not None else None,
            program.k_anonymity,
            program.after_each_session,
            program.response_days,
            program.at_risk_threshold,
            sorted(program.topics),
            sorted(program.admin_ids),
        )

    async def close_program(self, *, program_id: str, closed_at: datetime) -> None:
        """Record that a program closed."""
        await self.conn.execute(
            "UPDATE programs SET closed_at = $2 WHERE program_id = $1", program_id, closed_at
        )

    async def program(self, *, program_id: str) -> ProgramSettings | None:
        """The program, if its definition arrived."""
        row = await self.conn.fetchrow("SELECT * FROM programs WHERE program_id = $1", program_id)
        return _program(row) if row else None

    async def add_pair(self, *, members: PairMembers, formed_at: datetime) -> bool:
        """Store a formed pair; False when it was already stored."""
        inserted = await self.conn.fetchval(
            """
            INSERT INTO pairs (pair_id, program_id, mentor_id, mentee_id, formed_at)
            VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true
            """,
            members.pair_id,
            members.program_id,
            members.mentor_id,
            members.mentee_id,
            formed_at,
        )
        return bool(inserted)

    async def forget_participant(
        self, *, participant_id: str, pseudonym: str, now: datetime
    ) -> int:
        """Erase the person's comments, put ``pseudonym`` in place of their id; rows changed.

        The published outbox rows that name the person are deleted too.
        """
        await self.conn.execute(
            "INSERT INTO forgotten_participants (participant_id, forgotten_at) VALUES ($1, $2)"
            " ON CONFLICT (participant_id) DO NOTHING",
            participant_id,
            now,
        )
        changed = _affected(
            await self.conn.execute(
                """
                UPDATE feedback_answers a SET comment = NULL FROM feedback_requests r
                WHERE r.request_id = a.request_id AND r.participant_id = $1
                    AND a.comment IS NOT NULL
                """,
                participant_id,
            )
        )
        for table, column in _PERSON_COLUMNS:
            changed += _affected(
                await self.conn.execute(
                    f"UPDATE {table} SET {column} = $2 WHERE {column} = $1",
                    participant_id,
                    pseudonym,
                )
            )
        # Feedback events carry ids, never names or free text: published ones that name
        # the person go, waiting ones are published as they are.
        return changed + await erase_from_outbox(
            self.conn, participant_id=participant_id, personal=()
        )

    async def is_forgotten(self, *, participant_ids: Collection[str]) -> bool:
        """True when one of these people asked to be forgotten."""
        found = await self.conn.fetchval(
            "SELECT true FROM forgotten_participants WHERE participant_id = ANY($1::text[])",
            list(participant_ids),
        )
        return bool(found)

    async def pair(self, *, pair_id: str, for_update: bool = False) -> PairRecord | None:
        """The pair with its attendance and last health band (locked when ``for_update``)."""
        lock = " FOR UPDATE OF p" if for_update else ""
        row = await self.conn.fetchrow(f"{_PAIR_SELECT} WHERE p.pair_id = $1{lock}", pair_id)
        return _pair(row) if row else None

    async def pair_contexts(
        self, *, pair_ids: Collection[str], answers: int, closed: int, for_update: bool = False
    ) -> dict[str, PairContext]:
        """:meth:`pair_context` of each known pair of ``pair_ids``, by pair id (locked in
        pair id order when ``for_update``).

        One statement: the program and both histories are sub-selects of each pair's row.
        """
        lock = " FOR UPDATE OF p" if for_update else ""
        rows = await self.conn.fetch(
            f"{_CONTEXT_SELECT} WHERE p.pair_id = ANY($1::text[]) ORDER BY p.pair_id{lock}",
            list(pair_ids),
            answers,
            closed,
        )
        programs: dict[str, ProgramSettings | None] = {}  # read once per program
        return {row["pair_id"]: _context(row, programs) for row in rows}

    async def end_pair(self, *, pair_id: str, reason: PairEndReason, ended_at: datetime) -> bool:
        """Mark an open pair ended; False when unknown or already ended."""
        ended = await self.conn.fetchval(
            """
            UPDATE pairs SET ended_at = $2, end_reason = $3
            WHERE pair_id = $1 AND ended_at IS NULL RETURNING true
            """,
            pair_id,
            ended_at,
            reason.value,
        )
        return bool(ended)

    async def save_health(self, *, pair_id: str, assessment: HealthAssessment) -> None:
        """Store a pair's latest health assessment."""
        await self.conn.execute(
            """
            UPDATE pairs SET health_band = $2, health_score = $3, health_signals = $4
            WHERE pair_id = $1
            """,
            pair_id,
            assessment.band.value,
            assessment.score,
            [s.value for s in assessment.signals],
        )

    async def open_pairs(self) -> list[PairRecord]:
        """Every pair not ended."""
        rows = await self.conn.fetch(f"{_PAIR_SELECT} WHERE p.ended_at IS NULL ORDER BY p.pair_id")
        return [_pair(r) for r in rows]

    async def health_bands(self) -> dict[PairHealth, int]:
        """Open pairs per health band."""
        rows = await self.conn.fetch(
            "SELECT health_band, count(*) AS n FROM pairs WHERE ended_at IS NULL"
            " GROUP BY health_band"
        )
        counts = {band: 0 for band in PairHealth}
        counts.update({PairHealth(r["health_band"]): r["n"] for r in rows})
        return counts

    async def record_held_sessions(self, *, sessions: Sequence[HeldSession]) -> list[HeldSession]:
        """Store held sessions and clear their pairs' misses in a row and stalls (a held
        session ends both); return those that were not stored already (a session given
        twice is stored once), in one statement."""
        if not sessions:
            return []
        rows = await self.conn.fetch(
            """
            WITH held AS (
                INSERT INTO held_sessions (pair_id, session_id, program_id, held_at)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
                ON CONFLICT DO NOTHING RETURNING pair_id, session_id),
            attended AS (
                INSERT INTO pair_attendance (pair_id, consecutive_missed, stalled)
                SELECT DISTINCT pair_id, 0, false FROM held
                ON CONFLICT (pair_id) DO UPDATE SET consecutive_missed = 0, stalled = false)
            SELECT pair_id, session_id FROM held
            """,
            [h.pair_id for h in sessions],
            [h.session_id for h in sessions],
            [h.program_id for h in sessions],
            [h.held_at for h in sessions],
        )
        stored = {(r["pair_id"], r["session_id"]) for r in rows}
        added: list[HeldSession] = []
        for h in sessions:
            if (h.pair_id, h.session_id) in stored:
                stored.discard((h.pair_id, h.session_id))  # a repeated session is added once
                added.append(h)
        return added

    async def held_sessions(self, *, pair_id: str) -> list[str]:
        """Ids of the pair's held sessions, oldest first."""
        rows = await self.conn.fetch(
            "SELECT session_id FROM held_sessions WHERE pair_id = $1 ORDER BY held_at, session_id",
            pair_id,
        )
        return [r["session_id"] for r in rows]

    async def set_attendance(
        self, *, pair_id: str, consecutive_missed: int, stalled: bool | None
    ) -> None:
        """Set the sessions missed in a row and, unless None, whether the pair is stalled."""
        await self.conn.execute(
            """
            INSERT INTO pair_attendance (pair_id, consecutive_missed, stalled)
            VALUES ($1, $2, coalesce($3, false))
            ON CONFLICT (pair_id) DO UPDATE SET consecutive_missed = excluded.consecutive_missed,
                stalled = coalesce($3, pair_attendance.stalled)
            """,
            pair_id,
            consecutive_missed,
            stalled,
        )

    async def add_requests(self, *, requests: Sequence[FeedbackRequest]) -> list[FeedbackRequest]:
        """Store requests; return those that were not stored already (in one statement)."""
        if not requests:
            return []
        rows = await self.conn.fetch(
            """
            INSERT INTO feedback_requests (request_id, pair_id, program_id, participant_id,
                side, kind, session_id, milestone_week, requested_at, due_at)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                $6::text[], $7::text[], $8::integer[], $9::timestamptz[], $10::timestamptz[])
            ON CONFLICT DO NOTHING RETURNING request_id
            """,
            [r.request_id for r in requests],
            [r.pair_id for r in requests],
            [r.program_id for r in requests],
            [r.participant_id for r in requests],
            [r.side.value for r in requests],
            [r.kind.value for r in requests],
            [r.session_id for r in requests],
            [r.milestone_week for r in requests],
            [r.requested_at for r in requests],
            [r.due_at for r in requests],
        )
        inserted = {r["request_id"] for r in rows}
        added: list[FeedbackRequest] = []
        for r in requests:
            if r.request_id in inserted:
                inserted.discard(r.request_id)  # a repeated request is added once
                added.append(r)
        return added

    async def request(self, *, request_id: str) -> RequestState | None:
        """A request and its status."""
        row = await self.conn.fetchrow(
            "SELECT * FROM feedback_requests WHERE request_id = $1", request_id
        )
        return _request_state(row) if row else None

    async def requests_of(self, *, participant_id: str) -> list[RequestState]:
        """The participant's requests, newest first."""
        rows = await self.conn.fetch(
            "SELECT * FROM feedback_requests WHERE participant_id = $1"
            " ORDER BY requested_at DESC, request_id",
            participant_id,
        )
        return [_request_state(r) for r in rows]

    async def requested_milestones(self) -> dict[str, frozenset[int]]:
        """Milestone weeks already requested, per open pair (pairs with none are absent)."""
        rows = await self.conn.fetch(
            """
            SELECT r.pair_id, array_agg(DISTINCT r.milestone_week) AS weeks
            FROM feedback_requests r JOIN pairs p USING (pair_id)
            WHERE r.kind = 'milestone' AND p.ended_at IS NULL
            GROUP BY r.pair_id
            """
        )
        return {r["pair_id"]: frozenset(r["weeks"]) for r in rows}

    async def mark_missing(self, *, now: datetime) -> list[str]:
        """Mark open requests due before ``now`` as missing; return their pairs."""
        rows = await self.conn.fetch(
            """
            UPDATE feedback_requests SET status = 'missing'
            WHERE status = 'open' AND due_at < $1 RETURNING pair_id
            """,
            now,
        )
        return sorted({r["pair_id"] for r in rows})

    async def closed_request_outcomes(self, *, pair_id: str, limit: int) -> list[bool]:
        """For the pair's last ``limit`` answered or missing requests: True if missing."""
        rows = await self.conn.fetch(
            """
            SELECT status = 'missing' AS missing FROM feedback_requests
            WHERE pair_id = $1 AND status <> 'open'
            ORDER BY due_at DESC, request_id DESC LIMIT $2
            """,
            pair_id,
            limit,
        )
        return [r["missing"] for r in reversed(rows)]

    async def save_answer(self, *, stored: StoredAnswer) -> None:
        """Store an answer and close its request; AlreadyAnswered if it has one."""
        a, request_id = stored.answer, stored.request.request_id
        inserted = await self.conn.fetchval(
            """
            INSERT INTO feedback_answers (request_id, satisfaction, usefulness, comfort,
                progress, nps, comment, submitted_at, late)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING true
            """,
            request_id,
            a.satisfaction,
            a.usefulness,
            a.comfort,
            a.progress,
            a.nps,
            a.comment,
            stored.submitted_at,
            stored.late,
        )
        if not inserted:
            raise AlreadyAnswered(f"request {request_id} was already answered")
        await self.conn.executemany(
            "INSERT INTO answer_skills (request_id, topic, before, after) VALUES ($1, $2, $3, $4)",
            [(request_id, s.topic, s.before, s.after) for s in a.skills],
        )
        await self.conn.execute(
            "UPDATE feedback_requests SET status = 'submitted', late = $2 WHERE request_id = $1",
            request_id,
            stored.late,
        )

    async def answer(self, *, request_id: str) -> StoredAnswer | None:
        """The answer to a request."""
        found = await self._answers("r.request_id = $1", request_id)
        return found[0] if found else None

    async def answers_of(self, *, participant_id: str) -> list[StoredAnswer]:
        """The participant's answers, newest first."""
        return await self._answers("r.participant_id = $1", participant_id)

    async def _answers(self, where: str, value: str) -> list[StoredAnswer]:
        rows = await self.conn.fetch(
            f"""
            SELECT r.*, a.satisfaction, a.usefulness, a.comfort, a.progress, a.nps, a.comment,
                a.submitted_at, a.late AS answer_late,
                coalesce((SELECT array_agg(ROW(s.topic, s.before, s.after) ORDER BY s.topic)
                          FROM answer_skills s WHERE s.request_id = r.request_id),
                         '{{}}') AS skills
            FROM feedback_requests r JOIN feedback_answers a USING (request_id)
            WHERE {where} ORDER BY a.submitted_at DESC, r.request_id
            """,
            value,
        )
        return [_stored_answer(r) for r in rows]

    async def recent_answers(self, *, pair_id: str, limit: int) -> list[RatedAnswer]:
        """The ratings of the pair's last ``limit`` answers, oldest first."""
        rows = await self.conn.fetch(
            """
            SELECT a.satisfaction, a.usefulness, a.comfort, a.progress
            FROM feedback_answers a JOIN feedback_requests r USING (request_id)
            WHERE r.pair_id = $1 ORDER BY a.submitted_at DESC, a.request_id DESC LIMIT $2
            """,
            pair_id,
            limit,
        )
        return [RatedAnswer(*r.values()) for r in reversed(rows)]

    async def lock_outcomes(self, *, program_id: str) -> None:
        """Serialise the releases of one program's figures until the transaction ends."""
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('upward-feedback-outcomes'), hashtext($1))",
            program_id,
        )

    async def add_contribution(
        self, *, program_id: str, atom: Atom, person_id: str, totals: RatingTotals
    ) -> None:
        """Add an answer's totals to the pending contributions."""
        t = totals
        await self.conn.execute(
            f"""
            INSERT INTO rating_contributions (program_id, side, kind, person_id, stage,
                {_TOTAL_COLUMNS})
            VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10, $11, $12)
            ON CONFLICT (program_id, side, kind, person_id, stage) DO UPDATE SET {_ADD_TOTALS}
            """,
            program_id,
            *atom,
            person_id,
            t.responses,
            t.satisfaction,
            t.usefulness,
            t.comfort,
            t.progress,
            t.nps_answers,
            t.promoters,
            t.detractors,
        )

    async def contribution_people(self, *, program_id: str, stage: str) -> PeopleByAtom:
        """The people with released (or pending) contributions, per atom."""
        rows = await self.conn.fetch(
            """
            SELECT side, kind, array_agg(person_id) AS people FROM rating_contributions
            WHERE program_id = $1 AND stage = $2 GROUP BY side, kind
            """,
            program_id,
            stage,
        )
        return {(r["side"], r["kind"]): frozenset(r["people"]) for r in rows}

    async def release_contributions(
        self, *, program_id: str, atoms: Collection[Atom], released_at: datetime
    ) -> None:
        """Move the pending contributions of ``atoms`` into the released figures."""
        for side, kind in atoms:
            await self.conn.execute(
                f"""
                WITH moved AS (
                    DELETE FROM rating_contributions
                    WHERE program_id = $1 AND side = $2 AND kind = $3 AND stage = 'pending'
                    RETURNING *)
                INSERT INTO rating_contributions (program_id, side, kind, person_id, stage,
                    {_TOTAL_COLUMNS})
                SELECT program_id, side, kind, person_id, 'released', {_TOTAL_COLUMNS} FROM moved
                ON CONFLICT (program_id, side, kind, person_id, stage) DO UPDATE SET {_ADD_TOTALS}
                """,
                program_id,
                side,
                kind,
            )
        await self.conn.execute(
            """
            INSERT INTO outcome_releases (program_id, released_at, releases) VALUES ($1, $2, 1)
            ON CONFLICT (program_id) DO UPDATE SET released_at = excluded.released_at,
                releases = outcome_releases.releases + 1
            """,
            program_id,
            released_at,
        )

    async def released_totals(self, *, program_id: str) -> dict[Atom, AtomTotals]:
        """Released people and totals per atom, with the live request counts."""
        rows = await self.conn.fetch(
            f"""
            SELECT side, kind, array_agg(person_id) AS people,
                {", ".join(f"sum({c})::int AS {c}" for c in _TOTALS)}
            FROM rating_contributions WHERE program_id = $1 AND stage = 'released'
            GROUP BY side, kind
            """,
            program_id,
        )
        requests = await self._request_totals(program_id)
        by_atom: dict[Atom, asyncpg.Record] = {(r["side"], r["kind"]): r for r in rows}
        atoms = set(requests) | set(by_atom)
        empty: tuple[frozenset[str], RequestTotals] = (frozenset(), RequestTotals())
        return {a: _atom_totals(by_atom.get(a), *requests.get(a, empty)) for a in atoms}

    async def _request_totals(
        self, program_id: str
    ) -> dict[Atom, tuple[frozenset[str], RequestTotals]]:
        rows = await self.conn.fetch(
            """
            SELECT side, kind, array_agg(DISTINCT participant_id) AS asked,
                count(*)::int AS requests,
                count(*) FILTER (WHERE status = 'submitted')::int AS answered,
                count(*) FILTER (WHERE late)::int AS late,
                count(*) FILTER (WHERE status = 'missing')::int AS missing
            FROM feedback_requests WHERE program_id = $1 GROUP BY side, kind
            """,
            program_id,
        )
        return {
            (r["side"], r["kind"]): (
                frozenset(r["asked"]),
                RequestTotals(r["requests"], r["answered"], r["late"], r["missing"]),
            )
            for r in rows
        }

    async def last_release(self, *, program_id: str) -> datetime | None:
        """When the program's figures last moved."""
        released: datetime | None = await self.conn.fetchval(
            "SELECT released_at FROM outcome_releases WHERE program_id = $1", program_id
        )
        return released

    async def add_skill(self, *, program_id: str, mentee_id: str, skill: SkillRating) -> None:
        """Record a self-assessment (the first 'before' stays); mark it pending."""
        await self.conn.execute(
            """
            INSERT INTO skill_progress (program_id, topic, mentee_id, first_before,
                latest_after, pending)
            VALUES ($1, $2, $3, $4, $5, true)
            ON CONFLICT (program_id, topic, mentee_id) DO UPDATE SET
                latest_after = excluded.latest_after, pending = true
            """,
            program_id,
            skill.topic,
            mentee_id,
            skill.before,
            skill.after,
        )

    async def pending_skill_mentees(self, *, program_id: str) -> dict[str, int]:
        """Mentees with a pending self-assessment, per topic."""
        rows = await self.conn.fetch(
            "SELECT topic, count(*)::int AS n FROM skill_progress"
            " WHERE program_id = $1 AND pending GROUP BY topic",
            program_id,
        )
        return {r["topic"]: r["n"] for r in rows}

    async def release_skills(self, *, program_id: str, topics: Collection[str]) -> None:
        """Move the pending self-assessments of ``topics`` into the released figures."""
        await self.conn.execute(
            """
            UPDATE skill_progress SET released_before = first_before,
                released_after = latest_after, pending = false
            WHERE program_id = $1 AND topic = ANY($2::text[]) AND pending
            """,
            program_id,
            list(topics),
        )

    async def released_skills(self, *, program_id: str) -> dict[str, list[SkillLevels]]:
        """Released levels per topic."""
        rows = await self.conn.fetch(
            """
            SELECT topic, released_before, released_after FROM skill_progress
            WHERE program_id = $1 AND released_before IS NOT NULL ORDER BY topic, mentee_id
            """,
            program_id,
        )
        levels: dict[str, list[SkillLevels]] = {}
        for r in rows:
            levels.setdefault(r["topic"], []).append(
                SkillLevels(r["released_before"], r["released_after"])
            )
        return levels

    async def participation(
        self, *, program_id: str
    ) -> dict[tuple[str, str], list[PairEndReason | None]]:
        """(side, person) -> the end reason of each of their pairs (None: still open)."""
        rows = await self.conn.fetch(
            """
            SELECT 'mentor' AS side, mentor_id AS person, end_reason FROM pairs
            WHERE program_id = $1
            UNION ALL
            SELECT 'mentee', mentee_id, end_reason FROM pairs WHERE program_id = $1
            """,
            program_id,
        )
        found: dict[tuple[str, str], list[PairEndReason | None]] = {}
        for r in rows:
            reason = PairEndReason(r["end_reason"]) if r["end_reason"] else None
            found.setdefault((r["side"], r["person"]), []).append(reason)
        return found

    async def sessions_by_pair(self, *, program_id: str) -> dict[str, int]:
        """Sessions held per pair of the program (0 for a pair without any)."""
        rows = await self.conn.fetch(
            """
            SELECT p.pair_id, count(h.session_id)::int AS held
            FROM pairs p LEFT JOIN held_sessions h USING (pair_id)
            WHERE p.program_id = $1 GROUP BY p.pair_id
            """,
            program_id,
        )
        return {r["pair_id"]: r["held"] for r in rows}

    async def people_asked_and_answering(self, *, program_id: str) -> tuple[int, int]:
        """Distinct people asked for feedback in the program, and those who answered."""
        row = await self.conn.fetchrow(
            """
            SELECT count(DISTINCT participant_id)::int AS asked,
                count(DISTINCT participant_id) FILTER (WHERE status = 'submitted')::int
                    AS answering
            FROM feedback_requests WHERE program_id = $1
            """,
            program_id,
        )
        return (row["asked"], row["answering"]) if row else (0, 0)

    async def takes_part(self, *, program_id: str, person_id: str) -> bool:
        """True when the person is (or was) in a pair of the program."""
        found = await self.conn.fetchval(
            "SELECT true FROM pairs WHERE program_id = $1 AND $2 IN (mentor_id, mentee_id) LIMIT 1",
            program_id,
            person_id,
        )
        return bool(found)


_TOTALS = (
    "responses",
    "satisfaction",
    "usefulness",
    "comfort",
    "progress",
    "nps_answers",
    "promoters",
    "detractors",
)
_TOTAL_COLUMNS = ", ".join(_TOTALS)
_PERSON_COLUMNS = (
    ("feedback_requests", "participant_id"),
    ("pairs", "mentor_id"),
    ("pairs", "mentee_id"),
    ("rating_contributions", "person_id"),
    ("skill_progress", "mentee_id"),
)
"""Every column that holds a participant id (erasure replaces it by a pseudonym)."""
_ADD_TOTALS = ", ".join(f"{c} = rating_contributions.{c} + excluded.{c}" for c in _TOTALS)

_PAIR_SELECT = """
    SELECT p.*, coalesce(a.consecutive_missed, 0) AS consecutive_missed,
        coalesce(a.stalled, false) AS stalled
    FROM pairs p LEFT JOIN pair_attendance a USING (pair_id)
"""


_CONTEXT_SELECT = """
    SELECT p.*, coalesce(a.consecutive_missed, 0) AS consecutive_missed,
        coalesce(a.stalled, false) AS stalled,
        (SELECT g FROM programs g WHERE g.program_id = p.program_id) AS program,
        ARRAY(
            SELECT ROW(f.satisfaction, f.usefulness, f.comfort, f.progress)
            FROM feedback_requests r JOIN feedback_answers f USING (request_id)
            WHERE r.pair_id = p.pair_id ORDER BY f.submitted_at DESC, f.request_id DESC LIMIT $2
        ) AS answers,
        ARRAY(
            SELECT r.status = 'missing' FROM feedback_requests r
            WHERE r.pair_id = p.pair_id AND r.status <> 'open'
            ORDER BY r.due_at DESC, r.request_id DESC LIMIT $3
        ) AS closed_missing
    FROM pairs p LEFT JOIN pair_attendance a USING (pair_id)
"""
"""A pair as :data:`_PAIR_SELECT` has it, with its program row (NULL when unknown) and its
last answers' ratings and last closed requests' outcomes, newest first."""


def _affected(status: str) -> int:
    """Rows affected, from a command status such as ``UPDATE 3``."""
    return int(status.split()[-1])


def _program(row: asyncpg.Record) -> ProgramSettings:
    weeks = row["milestone_weeks"]
    return ProgramSettings(
        program_id=row["program_id"],
        revision=row["revision"],
        calendar=ProgramCalendar(
            row["starts_on"], row["duration_weeks"], tuple(weeks) if weeks is not None else None
        ),
        k_anonymity=row["k_anonymity"],
        after_each_session=row["after_each_session"],
        response_days=row["response_days"],
        at_risk_threshold=row["at_risk_threshold"],
        topics=frozenset(row["topics"]),
        admin_ids=frozenset(row["admin_ids"]),
    )


def _context(row: asyncpg.Record, programs: dict[str, ProgramSettings | None]) -> PairContext:
    """A pair's context; its program taken from ``programs`` when another pair had it."""
    program_id = row["program_id"]
    if program_id not in programs:
        program = row["program"]
        programs[program_id] = _program(program) if program is not None else None
    return PairContext(
        record=_pair(row),
        program=programs[program_id],
        recent_answers=tuple(RatedAnswer(*a) for a in reversed(row["answers"])),
        closed_requests_missing=tuple(reversed(row["closed_missing"])),
    )


def _pair(row: asyncpg.Record) -> PairRecord:
    return PairRecord(
        members=PairMembers(row["pair_id"], row["program_id"], row["mentor_id"], row["mentee_id"]),
        formed_at=row["formed_at"],
        ended_at=row["ended_at"],
        end_reason=PairEndReason(row["end_reason"]) if row["end_reason"] else None,
        consecutive_missed=row["consecutive_missed"],
        stalled=row["stalled"],
        health_band=PairHealth(row["health_band"]),
        health_score=row["health_score"],
        health_signals=tuple(HealthSignal(s) for s in row["health_signals"]),
    )


def _request(row: asyncpg.Record) -> FeedbackRequest:
    return FeedbackRequest(
        request_id=row["request_id"],
        pair_id=row["pair_id"],
        program_id=row["program_id"],
        participant_id=row["participant_id"],
        side=PairSide(row["side"]),
        kind=FeedbackKind(row["kind"]),
        session_id=row["session_id"],
        milestone_week=row["milestone_week"],
        requested_at=row["requested_at"],
        due_at=row["due_at"],
    )


def _request_state(row: asyncpg.Record) -> RequestState:
    return RequestState(_request(row), RequestStatus(row["status"]), row["late"])


def _stored_answer(row: asyncpg.Record) -> StoredAnswer:
    answer = Answer(
        satisfaction=row["satisfaction"],
        usefulness=row["usefulness"],
        comfort=row["comfort"],
        progress=row["progress"],
        nps=row["nps"],
        skills=tuple(SkillRating(*s) for s in row["skills"]),
        comment=row["comment"],
    )
    return StoredAnswer(_request(row), answer, row["submitted_at"], row["answer_late"])


def _atom_totals(
    row: asyncpg.Record | None, asked: frozenset[str], requests: RequestTotals
) -> AtomTotals:
    if row is None:
        return AtomTotals(asked=asked, requests=requests)
    return AtomTotals(
        people=frozenset(row["people"]),
        ratings=RatingTotals(**{c: row[c] for c in _TOTALS}),
        asked=asked,
        requests=requests,
    )
