"""The sessions service's store: the abstract port and its asyncpg implementation.

Every method takes keyword-only arguments. Handlers get a repository bound to the
connection of their unit of work, so reads and writes join its transaction. Changes to
one pair are serialised by locking the pair's row first (``get_pair(lock=True)``);
every change to a session happens while its pair is locked.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any

import asyncpg

from servicekit.db import Connection
from servicekit.erasure import (
    erase_from_outbox,
    personal_texts,
    redact_texts,
)
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


class SessionsRepository(ABC):
    """Port: what the handlers need from the store."""

    # Programs -----------------------------------------------------------------------
    @abstractmethod
    async def save_program(self, *, program: Program) -> bool:
        """Insert or replace a program unless its revision is not newer; True if saved."""

    @abstractmethod
    async def get_program(self, *, program_id: str) -> Program | None:
        """The program, or None when it is not known yet."""

    @abstractmethod
    async def close_program(self, *, program_id: str) -> None:
        """Mark the program closed: its pairs get no new sessions."""

    @abstractmethod
    async def move_pair_ends(self, *, program_id: str, duration: timedelta) -> int:
        """Set ``ends_at = formed_at + duration`` on the program's active pairs."""

    # Participants -------------------------------------------------------------------
    @abstractmethod
    async def save_participant(self, *, participant: Participant, program_id: str) -> None:
        """Insert or replace a directory entry and the person's wants in ``program_id``."""

    @abstractmethod
    async def get_participant(self, *, participant_id: str, program_id: str) -> Participant | None:
        """The directory entry with the wants of ``program_id``, or None."""

    @abstractmethod
    async def program_and_people(
        self, *, program_id: str, participant_ids: Sequence[str]
    ) -> tuple[Program | None, dict[str, Participant]]:
        """The program (None when not known) and those of the people who are known, by id,
        each with their wants of ``program_id``: what planning a pair needs, in one read."""

    @abstractmethod
    async def planning_facts(
        self, *, keys: Sequence[tuple[str, str]]
    ) -> tuple[dict[str, Program], dict[tuple[str, str], Participant]]:
        """For ``(program_id, participant_id)`` keys: the programs known, by id, and the
        people known, each with their wants of that program, by key (what planning a
        batch of new pairs needs)."""

    @abstractmethod
    async def forget_participant(self, *, participant_id: str, now: datetime) -> int:
        """Erase the person's directory entry, wants and notes; return rows erased.

        Their partners' notes keep their text without the person's name or e-mail, and
        the outbox keeps nothing of them (``servicekit.erasure``).
        """

    @abstractmethod
    async def is_forgotten(self, *, participant_id: str) -> bool:
        """True once the person asked to be forgotten."""

    # Pairs --------------------------------------------------------------------------
    @abstractmethod
    async def add_pair(self, *, pair: Pair, sessions: Sequence[Session] = ()) -> bool:
        """Insert a pair, with its first ``sessions``; False (and no change) when the pair
        id is already known."""

    @abstractmethod
    async def add_pairs(self, *, pairs: Sequence[Pair], sessions: Sequence[Session]) -> set[str]:
        """Insert the pairs whose ids are not known yet, each with those of ``sessions``
        that are its own, in one go; the ids of the pairs added."""

    @abstractmethod
    async def known_pair_ids(self, *, pair_ids: Sequence[str]) -> set[str]:
        """Those of ``pair_ids`` that are known."""

    @abstractmethod
    async def get_pair(self, *, pair_id: str, lock: bool = False) -> Pair | None:
        """The pair; ``lock`` holds its row until the transaction ends."""

    @abstractmethod
    async def save_pair(self, *, pair: Pair) -> None:
        """Store the pair's new state."""

    @abstractmethod
    async def pair_ids(
        self,
        *,
        statuses: Sequence[PairStatus],
        program_id: str | None = None,
        participant_id: str | None = None,
    ) -> list[str]:
        """Ids of the pairs in ``statuses``, of a program and/or with a participant."""

    @abstractmethod
    async def pairs(
        self,
        *,
        participant_id: str | None = None,
        program_id: str | None = None,
        program_ids: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[Pair]:
        """Pairs of a participant and/or program (of ``program_ids`` if given), newest first."""

    @abstractmethod
    async def pairs_to_complete(self, *, now: datetime, limit: int) -> list[str]:
        """Active pairs whose program duration is over at ``now``."""

    @abstractmethod
    async def pairs_to_check_for_stall(self, *, now: datetime, limit: int) -> list[str]:
        """Active, not yet stalled pairs that may have hit a stall rule at ``now``."""

    # Sessions -----------------------------------------------------------------------
    @abstractmethod
    async def add_session(self, *, session: Session) -> bool:
        """Insert a session; False when the pair already has one with that number."""

    @abstractmethod
    async def add_sessions(self, *, sessions: Sequence[Session]) -> set[str]:
        """Insert sessions in one go; the ids of those added (not those whose number or id
        the pair already had)."""

    @abstractmethod
    async def get_session(self, *, session_id: str) -> Session | None:
        """The session, or None."""

    @abstractmethod
    async def save_session(self, *, session: Session) -> None:
        """Store the session's new state."""

    @abstractmethod
    async def sessions_of_pair(self, *, pair_id: str) -> list[Session]:
        """Every session of the pair, by number."""

    @abstractmethod
    async def busy(
        self, *, participant_ids: Sequence[str], window: Interval, exclude: str | None = None
    ) -> list[Interval]:
        """Scheduled sessions of these people overlapping ``window`` (except ``exclude``)."""

    @abstractmethod
    async def calendars(
        self, *, participant_ids: Sequence[str], window: Interval
    ) -> dict[str, list[Interval]]:
        """Each person's scheduled sessions overlapping ``window`` (a session of two of
        them is in both lists; people with none are left out)."""

    @abstractmethod
    async def lock_calendars(self, *, participant_ids: Sequence[str]) -> None:
        """Hold these people's calendars until the transaction ends (no double booking)."""

    @abstractmethod
    async def overdue_sessions(self, *, ended_before: datetime, limit: int) -> list[Session]:
        """Scheduled sessions that ended before ``ended_before``, oldest first."""

    @abstractmethod
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

    # Notes --------------------------------------------------------------------------
    @abstractmethod
    async def add_note(self, *, note: Note) -> None:
        """Keep a private note."""

    @abstractmethod
    async def notes(self, *, session_id: str) -> list[Note]:
        """The notes of a session, oldest first."""


_PAIR_COLUMNS = (
    "pair_id, program_id, mentor_id, mentee_id, topics, formed_at, status, first_due,"
    " ends_at, consecutive_missed, last_held_at, stalled, end_reason"
)
_SESSION_COLUMNS = (
    "session_id, pair_id, program_id, number, due_at, starts_at, ends_at, agenda, warnings,"
    " status, ical_sequence, attendees, absent, duration_minutes, topics_covered,"
    " cancel_reason, updated_at"
)
_PROGRAM_FIELDS = (
    "program_id",
    "name",
    "cadence_days",
    "duration_weeks",
    "session_minutes",
    "max_missed_sessions",
    "max_days_without_session",
    "catalogue",
    "revision",
    "closed",
)
_G_PROGRAM_COLUMNS = ", ".join(f"g.{name} AS g_{name}" for name in _PROGRAM_FIELDS)
_PARTICIPANT_FIELDS = (
    "participant_id",
    "display_name",
    "email",
    "timezone",
    "working_hours",
    "wants",
)
_SESSION_NAMES = tuple(c.strip() for c in _SESSION_COLUMNS.split(","))
_S_SESSION_COLUMNS = ", ".join(f"s.{name}" for name in _SESSION_NAMES)


def _placeholders(count: int) -> str:
    return ", ".join(f"${i}" for i in range(1, count + 1))


def _affected(status: str) -> int:
    """Rows affected, from a command status such as ``DELETE 3``."""
    return int(status.split()[-1])


class PostgresSessionsRepository(SessionsRepository):
    """The port on PostgreSQL, through one asyncpg connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def save_program(self, *, program: Program) -> bool:
        """Insert or replace a program unless its revision is not newer; True if saved."""
        saved = await self._conn.fetchval(
            "INSERT INTO programs (program_id, name, cadence_days, duration_weeks,"
            " session_minutes, max_missed_sessions, max_days_without_session, catalogue,"
            " revision, closed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10)"
            " ON CONFLICT (program_id) DO UPDATE SET name = EXCLUDED.name,"
            " cadence_days = EXCLUDED.cadence_days, duration_weeks = EXCLUDED.duration_weeks,"
            " session_minutes = EXCLUDED.session_minutes,"
            " max_missed_sessions = EXCLUDED.max_missed_sessions,"
            " max_days_without_session = EXCLUDED.max_days_without_session,"
            " catalogue = EXCLUDED.catalogue, revision = EXCLUDED.revision"
            " WHERE programs.revision < EXCLUDED.revision RETURNING true",
            *_program_row(program),
        )
        return bool(saved)

    async def get_program(self, *, program_id: str) -> Program | None:
        """The program, or None when it is not known yet."""
        row = await self._conn.fetchrow("SELECT * FROM programs WHERE program_id = $1", program_id)
        return None if row is None else _program(row)

    async def close_program(self, *, program_id: str) -> None:
        """Mark the program closed: its pairs get no new sessions."""
        await self._conn.execute(
            "UPDATE programs SET closed = true WHERE program_id = $1", program_id
        )

    async def move_pair_ends(self, *, program_id: str, duration: timedelta) -> int:
        """Set ``ends_at = formed_at + duration`` on the program's active pairs."""
        status = await self._conn.execute(
            "UPDATE pairs SET ends_at = formed_at + $2 WHERE program_id = $1 AND status = 'active'",
            program_id,
            duration,
        )
        return _affected(status)

    async def save_participant(self, *, participant: Participant, program_id: str) -> None:
        """Insert or replace a directory entry and the person's wants in ``program_id``
        (one statement: the entry in a data-modifying CTE, the wants in the main query)."""
        await self._conn.execute(
            "WITH entry AS (INSERT INTO participants (participant_id, display_name, email,"
            " timezone, working_hours) VALUES ($1, $2, $3, $4, $5::jsonb)"
            " ON CONFLICT (participant_id) DO UPDATE SET display_name = EXCLUDED.display_name,"
            " email = EXCLUDED.email, timezone = EXCLUDED.timezone,"
            " working_hours = EXCLUDED.working_hours)"
            " INSERT INTO participant_wants (participant_id, program_id, wants)"
            " VALUES ($1, $6, $7::jsonb) ON CONFLICT (participant_id, program_id)"
            " DO UPDATE SET wants = EXCLUDED.wants",
            participant.participant_id,
            participant.display_name,
            participant.email,
            participant.timezone,
            _hours_json(participant.working_hours),
            program_id,
            json.dumps(participant.wants or {}),
        )

    async def get_participant(self, *, participant_id: str, program_id: str) -> Participant | None:
        """The directory entry with the wants of ``program_id``, or None."""
        row = await self._conn.fetchrow(
            "SELECT p.*, w.wants FROM participants p LEFT JOIN participant_wants w"
            " ON w.participant_id = p.participant_id AND w.program_id = $2"
            " WHERE p.participant_id = $1",
            participant_id,
            program_id,
        )
        return None if row is None else _participant(row)

    async def program_and_people(
        self, *, program_id: str, participant_ids: Sequence[str]
    ) -> tuple[Program | None, dict[str, Participant]]:
        """The program and the known people with their wants, in one round trip."""
        rows = await self._conn.fetch(
            f"SELECT {_G_PROGRAM_COLUMNS}, p.*, w.wants"
            " FROM (SELECT $1::text AS program_id) k"
            " LEFT JOIN programs g ON g.program_id = k.program_id"
            " LEFT JOIN participants p ON p.participant_id = ANY($2::text[])"
            " LEFT JOIN participant_wants w"
            " ON w.participant_id = p.participant_id AND w.program_id = k.program_id",
            program_id,
            list(participant_ids),
        )
        first = rows[0]
        program = None
        if first["g_program_id"] is not None:
            program = _program({name: first[f"g_{name}"] for name in _PROGRAM_FIELDS})
        people = {
            r["participant_id"]: _participant({name: r[name] for name in _PARTICIPANT_FIELDS})
            for r in rows
            if r["participant_id"] is not None
        }
        return program, people

    async def planning_facts(
        self, *, keys: Sequence[tuple[str, str]]
    ) -> tuple[dict[str, Program], dict[tuple[str, str], Participant]]:
        """The programs, then the people with their wants (one read each)."""
        program_ids = sorted({program_id for program_id, _ in keys})
        programs = await self._conn.fetch(
            "SELECT * FROM programs WHERE program_id = ANY($1::text[])", program_ids
        )
        rows = await self._conn.fetch(
            "SELECT k.program_id AS wanted_in, p.*, w.wants"
            " FROM unnest($1::text[], $2::text[]) AS k (program_id, participant_id)"
            " JOIN participants p ON p.participant_id = k.participant_id"
            " LEFT JOIN participant_wants w"
            " ON w.participant_id = k.participant_id AND w.program_id = k.program_id",
            [program_id for program_id, _ in keys],
            [participant_id for _, participant_id in keys],
        )
        people = {
            (r["wanted_in"], r["participant_id"]): _participant(
                {name: r[name] for name in _PARTICIPANT_FIELDS}
            )
            for r in rows
        }
        return {r["program_id"]: _program(r) for r in programs}, people

    async def forget_participant(self, *, participant_id: str, now: datetime) -> int:
        """Erase the person's directory entry, wants and notes; return rows erased."""
        personal = await self._personal_texts(participant_id)
        erased = await self._redact_partner_notes(participant_id, personal)
        for statement in (
            "DELETE FROM participants WHERE participant_id = $1",
            "DELETE FROM participant_wants WHERE participant_id = $1",
            "DELETE FROM session_notes WHERE author_id = $1",
        ):
            erased += _affected(await self._conn.execute(statement, participant_id))
        await self._conn.execute(
            "INSERT INTO forgotten_participants (participant_id, forgotten_at) VALUES ($1, $2)"
            " ON CONFLICT (participant_id) DO NOTHING",
            participant_id,
            now,
        )
        return erased + await erase_from_outbox(
            self._conn, participant_id=participant_id, personal=personal
        )

    async def _personal_texts(self, participant_id: str) -> set[str]:
        row = await self._conn.fetchrow(
            "SELECT display_name, email FROM participants WHERE participant_id = $1",
            participant_id,
        )
        if row is None:
            return set()
        return personal_texts(name=row["display_name"], email=row["email"])

    async def _redact_partner_notes(self, participant_id: str, personal: set[str]) -> int:
        """Take the person's name out of the notes their partners wrote in shared pairs."""
        return await redact_texts(
            self._conn,
            select="SELECT n.note_id, n.body FROM session_notes n JOIN pairs p USING (pair_id)"
            " WHERE $1 IN (p.mentor_id, p.mentee_id) AND n.author_id <> $1 FOR UPDATE OF n",
            args=(participant_id,),
            update="UPDATE session_notes SET body = $2 WHERE note_id = $1",
            personal=personal,
        )

    async def is_forgotten(self, *, participant_id: str) -> bool:
        """True once the person asked to be forgotten."""
        found = await self._conn.fetchval(
            "SELECT true FROM forgotten_participants WHERE participant_id = $1", participant_id
        )
        return bool(found)

    async def add_pair(self, *, pair: Pair, sessions: Sequence[Session] = ()) -> bool:
        """Insert a pair and its first sessions in one statement; False when it is known.

        The sessions are inserted only with the pair (a data-modifying CTE runs once,
        whether or not the main query reads it; the foreign key is checked at the end
        of the statement, when the pair is there).
        """
        insert_pair = (
            f"INSERT INTO pairs ({_PAIR_COLUMNS}) VALUES ({_placeholders(13)})"
            " ON CONFLICT (pair_id) DO NOTHING RETURNING true"
        )
        if not sessions:
            return bool(await self._conn.fetchval(insert_pair, *_pair_row(pair)))
        added = await self._conn.fetchval(
            f"WITH pair AS ({insert_pair}), added AS ("
            f" INSERT INTO sessions ({_SESSION_COLUMNS}) SELECT {_SESSION_COLUMNS}"
            " FROM jsonb_populate_recordset(NULL::sessions, $14::jsonb)"
            " WHERE EXISTS (SELECT FROM pair) RETURNING true)"
            " SELECT EXISTS (SELECT FROM pair)",
            *_pair_row(pair),
            _sessions_json(sessions),
        )
        return bool(added)

    async def add_pairs(self, *, pairs: Sequence[Pair], sessions: Sequence[Session]) -> set[str]:
        """Insert the new pairs and their sessions in one statement; the ids of the pairs
        added (the sessions' CTE keeps those of pairs added; the foreign key is checked
        at the end of the statement, when the pairs are there)."""
        if not pairs:
            return set()
        rows = await self._conn.fetch(
            f"WITH added AS (INSERT INTO pairs ({_PAIR_COLUMNS}) SELECT {_PAIR_COLUMNS}"
            " FROM jsonb_populate_recordset(NULL::pairs, $1::jsonb)"
            " ON CONFLICT (pair_id) DO NOTHING RETURNING pair_id), their_sessions AS ("
            f" INSERT INTO sessions ({_SESSION_COLUMNS}) SELECT {_SESSION_COLUMNS}"
            " FROM jsonb_populate_recordset(NULL::sessions, $2::jsonb)"
            " WHERE pair_id IN (SELECT pair_id FROM added) RETURNING 1)"
            " SELECT pair_id FROM added",
            _pairs_json(pairs),
            _sessions_json(sessions),
        )
        return {r["pair_id"] for r in rows}

    async def known_pair_ids(self, *, pair_ids: Sequence[str]) -> set[str]:
        """Those of ``pair_ids`` that are known."""
        rows = await self._conn.fetch(
            "SELECT pair_id FROM pairs WHERE pair_id = ANY($1::text[])", list(pair_ids)
        )
        return {r["pair_id"] for r in rows}

    async def get_pair(self, *, pair_id: str, lock: bool = False) -> Pair | None:
        """The pair; ``lock`` holds its row until the transaction ends."""
        suffix = " FOR UPDATE" if lock else ""
        row = await self._conn.fetchrow(
            f"SELECT {_PAIR_COLUMNS} FROM pairs WHERE pair_id = $1{suffix}", pair_id
        )
        return None if row is None else _pair(row)

    async def save_pair(self, *, pair: Pair) -> None:
        """Store the pair's new state."""
        await self._conn.execute(
            "UPDATE pairs SET status = $2, first_due = $3, ends_at = $4,"
            " consecutive_missed = $5, last_held_at = $6, stalled = $7, end_reason = $8"
            " WHERE pair_id = $1",
            pair.pair_id,
            str(pair.status),
            pair.first_due,
            pair.ends_at,
            pair.consecutive_missed,
            pair.last_held_at,
            pair.stalled,
            pair.end_reason,
        )

    async def pair_ids(
        self,
        *,
        statuses: Sequence[PairStatus],
        program_id: str | None = None,
        participant_id: str | None = None,
    ) -> list[str]:
        """Ids of the pairs in ``statuses``, of a program and/or with a participant."""
        rows = await self._conn.fetch(
            "SELECT pair_id FROM pairs WHERE status = ANY($1::text[])"
            " AND ($2::text IS NULL OR program_id = $2)"
            " AND ($3::text IS NULL OR $3 IN (mentor_id, mentee_id)) ORDER BY pair_id",
            [str(s) for s in statuses],
            program_id,
            participant_id,
        )
        return [r["pair_id"] for r in rows]

    async def pairs(
        self,
        *,
        participant_id: str | None = None,
        program_id: str | None = None,
        program_ids: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[Pair]:
        """Pairs of a participant and/or program (of ``program_ids`` if given), newest first."""
        rows = await self._conn.fetch(
            f"SELECT {_PAIR_COLUMNS} FROM pairs WHERE ($1::text IS NULL OR program_id = $1)"
            " AND ($2::text IS NULL OR $2 IN (mentor_id, mentee_id))"
            " AND ($4::text[] IS NULL OR program_id = ANY($4))"
            " ORDER BY formed_at DESC, pair_id LIMIT $3",
            program_id,
            participant_id,
            limit,
            None if program_ids is None else list(program_ids),
        )
        return [_pair(r) for r in rows]

    async def pairs_to_complete(self, *, now: datetime, limit: int) -> list[str]:
        """Active pairs whose program duration is over at ``now``."""
        rows = await self._conn.fetch(
            "SELECT pair_id FROM pairs WHERE status = 'active' AND ends_at <= $1"
            " ORDER BY ends_at, pair_id LIMIT $2",
            now,
            limit,
        )
        return [r["pair_id"] for r in rows]

    async def pairs_to_check_for_stall(self, *, now: datetime, limit: int) -> list[str]:
        """Active, not yet stalled pairs that may have hit a stall rule at ``now``."""
        rows = await self._conn.fetch(
            "SELECT p.pair_id FROM pairs p JOIN programs g ON g.program_id = p.program_id"
            " WHERE p.status = 'active' AND NOT p.stalled AND ("
            " p.consecutive_missed >= g.max_missed_sessions OR"
            " coalesce(p.last_held_at, p.formed_at)"
            " + make_interval(days => g.max_days_without_session) <= $1)"
            " ORDER BY p.pair_id LIMIT $2",
            now,
            limit,
        )
        return [r["pair_id"] for r in rows]

    async def add_session(self, *, session: Session) -> bool:
        """Insert a session; False when the pair already has one with that number."""
        added = await self._conn.fetchval(
            f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES ({_placeholders(17)})"
            " ON CONFLICT DO NOTHING RETURNING true",
            *_session_row(session),
        )
        return bool(added)

    async def add_sessions(self, *, sessions: Sequence[Session]) -> set[str]:
        """Insert sessions in one statement; the ids of those added."""
        if not sessions:
            return set()
        rows = await self._conn.fetch(
            f"INSERT INTO sessions ({_SESSION_COLUMNS}) SELECT {_SESSION_COLUMNS}"
            " FROM jsonb_populate_recordset(NULL::sessions, $1::jsonb)"
            " ON CONFLICT DO NOTHING RETURNING session_id",
            _sessions_json(sessions),
        )
        return {r["session_id"] for r in rows}

    async def get_session(self, *, session_id: str) -> Session | None:
        """The session, or None."""
        row = await self._conn.fetchrow(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_id = $1", session_id
        )
        return None if row is None else _session(row)

    async def save_session(self, *, session: Session) -> None:
        """Store the session's new state."""
        await self._conn.execute(
            "UPDATE sessions SET starts_at = $2, ends_at = $3, agenda = $4, warnings = $5,"
            " status = $6, ical_sequence = $7, attendees = $8, absent = $9,"
            " duration_minutes = $10, topics_covered = $11, cancel_reason = $12,"
            " updated_at = $13 WHERE session_id = $1",
            session.session_id,
            *_session_row(session)[5:],
        )

    async def sessions_of_pair(self, *, pair_id: str) -> list[Session]:
        """Every session of the pair, by number."""
        rows = await self._conn.fetch(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE pair_id = $1 ORDER BY number",
            pair_id,
        )
        return [_session(r) for r in rows]

    async def busy(
        self, *, participant_ids: Sequence[str], window: Interval, exclude: str | None = None
    ) -> list[Interval]:
        """Scheduled sessions of these people overlapping ``window`` (except ``exclude``).

        Pair by pair (the people's pairs first, then each pair's scheduled sessions on
        ``sessions_pair_scheduled``; ``OFFSET 0`` keeps the planner from scanning every
        scheduled session in the window instead), so the cost follows the people's own
        calendars, not the size of the store.
        """
        rows = await self._conn.fetch(
            "SELECT s.starts_at, s.ends_at FROM ("
            " SELECT pair_id FROM pairs WHERE mentor_id = ANY($1::text[])"
            " UNION SELECT pair_id FROM pairs WHERE mentee_id = ANY($1::text[])) mine"
            " CROSS JOIN LATERAL (SELECT starts_at, ends_at FROM sessions"
            " WHERE pair_id = mine.pair_id AND status = 'scheduled' AND starts_at < $3"
            " AND ends_at > $2 AND session_id IS DISTINCT FROM $4 OFFSET 0) s"
            " ORDER BY s.starts_at",
            list(participant_ids),
            window.start,
            window.end,
            exclude,
        )
        return [Interval(r["starts_at"], r["ends_at"]) for r in rows]

    async def calendars(
        self, *, participant_ids: Sequence[str], window: Interval
    ) -> dict[str, list[Interval]]:
        """Each person's scheduled sessions overlapping ``window``, read as :meth:`busy`
        reads them (the people's pairs, then each pair's scheduled sessions)."""
        rows = await self._conn.fetch(
            "SELECT mine.mentor_id, mine.mentee_id, s.starts_at, s.ends_at FROM ("
            " SELECT pair_id, mentor_id, mentee_id FROM pairs WHERE mentor_id = ANY($1::text[])"
            " UNION SELECT pair_id, mentor_id, mentee_id FROM pairs"
            " WHERE mentee_id = ANY($1::text[])) mine"
            " CROSS JOIN LATERAL (SELECT starts_at, ends_at FROM sessions"
            " WHERE pair_id = mine.pair_id AND status = 'scheduled' AND starts_at < $3"
            " AND ends_at > $2 OFFSET 0) s ORDER BY s.starts_at",
            list(participant_ids),
            window.start,
            window.end,
        )
        wanted = set(participant_ids)
        found: dict[str, list[Interval]] = {}
        for r in rows:
            interval = Interval(r["starts_at"], r["ends_at"])
            for person in {r["mentor_id"], r["mentee_id"]} & wanted:
                found.setdefault(person, []).append(interval)
        return found

    async def lock_calendars(self, *, participant_ids: Sequence[str]) -> None:
        """Hold these people's calendars until the transaction ends (no double booking).

        Transaction-scoped advisory locks, taken in id order so two planners wait for
        each other instead of both booking the same free hour of a shared mentor; one
        statement takes them all (``unnest`` yields the sorted ids in array order).
        """
        await self._conn.execute(
            "SELECT count(pg_advisory_xact_lock(hashtext('upward-sessions-calendar'),"
            " hashtext(id))) FROM unnest($1::text[]) AS wanted (id)",
            sorted(set(participant_ids)),
        )

    async def overdue_sessions(self, *, ended_before: datetime, limit: int) -> list[Session]:
        """Scheduled sessions that ended before ``ended_before``, oldest first."""
        rows = await self._conn.fetch(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE status = 'scheduled'"
            " AND ends_at < $1 ORDER BY ends_at, session_id LIMIT $2",
            ended_before,
            limit,
        )
        return [_session(r) for r in rows]

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
        rows = await self._conn.fetch(
            f"SELECT {_S_SESSION_COLUMNS} FROM sessions s JOIN pairs p ON p.pair_id = s.pair_id"
            " WHERE ($1::text IS NULL OR $1 IN (p.mentor_id, p.mentee_id))"
            " AND ($2::text IS NULL OR s.pair_id = $2) AND ($3::text IS NULL OR s.status = $3)"
            " AND ($5::text[] IS NULL OR s.program_id = ANY($5))"
            " ORDER BY s.starts_at, s.session_id LIMIT $4",
            participant_id,
            pair_id,
            None if status is None else str(status),
            limit,
            None if program_ids is None else list(program_ids),
        )
        return [_session(r) for r in rows]

    async def add_note(self, *, note: Note) -> None:
        """Keep a private note."""
        await self._conn.execute(
            "INSERT INTO session_notes (session_id, pair_id, author_id, body, written_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            note.session_id,
            note.pair_id,
            note.author_id,
            note.body,
            note.written_at,
        )

    async def notes(self, *, session_id: str) -> list[Note]:
        """The notes of a session, oldest first."""
        rows = await self._conn.fetch(
            "SELECT session_id, pair_id, author_id, body, written_at FROM session_notes"
            " WHERE session_id = $1 ORDER BY written_at, note_id",
            session_id,
        )
        return [Note(**dict(r)) for r in rows]


def _program_row(program: Program) -> tuple[Any, ...]:
    catalogue = [
        {"key": t.key, "title": t.title, "difficulty": t.difficulty} for t in program.catalogue
    ]
    return (
        program.program_id,
        program.name,
        program.cadence_days,
        program.duration_weeks,
        program.session_minutes,
        program.max_missed_sessions,
        program.max_days_without_session,
        json.dumps(catalogue),
        program.revision,
        program.closed,
    )


def _program(row: asyncpg.Record | dict[str, Any]) -> Program:
    data = dict(row)
    data["catalogue"] = tuple(Topic(**t) for t in json.loads(data["catalogue"]))
    return Program(**data)


def _hours_json(hours: WorkingHours | None) -> str | None:
    if hours is None:
        return None
    weekdays = sorted(hours.weekdays)
    return json.dumps(
        {"start": f"{hours.start:%H:%M}", "end": f"{hours.end:%H:%M}", "weekdays": weekdays}
    )


@lru_cache(maxsize=1024)
def _hours(text: str | None) -> WorkingHours | None:
    """Working hours from their JSON (kept: most people share a few)."""
    if text is None:
        return None
    data = json.loads(text)
    return WorkingHours(
        start=time.fromisoformat(data["start"]),
        end=time.fromisoformat(data["end"]),
        weekdays=frozenset(data["weekdays"]),
    )


def _participant(row: asyncpg.Record | dict[str, Any]) -> Participant:
    data = dict(row)
    data["working_hours"] = _hours(data["working_hours"])
    data["wants"] = None if data["wants"] is None else json.loads(data["wants"])
    return Participant(**data)


def _pair_row(pair: Pair) -> tuple[Any, ...]:
    return (
        pair.pair_id,
        pair.program_id,
        pair.mentor_id,
        pair.mentee_id,
        list(pair.topics),
        pair.formed_at,
        str(pair.status),
        pair.first_due,
        pair.ends_at,
        pair.consecutive_missed,
        pair.last_held_at,
        pair.stalled,
        pair.end_reason,
    )


_PAIR_NAMES = tuple(c.strip() for c in _PAIR_COLUMNS.split(","))


def _pairs_json(pairs: Sequence[Pair]) -> str:
    """Pairs as a JSON array of their columns (for ``jsonb_populate_recordset``)."""
    return json.dumps(
        [
            {
                name: value.isoformat() if isinstance(value, datetime) else value
                for name, value in zip(_PAIR_NAMES, _pair_row(pair), strict=True)
            }
            for pair in pairs
        ]
    )


def _pair(row: asyncpg.Record) -> Pair:
    data = dict(row)
    data["topics"] = tuple(data["topics"])
    data["status"] = PairStatus(data["status"])
    return Pair(**data)


def _session_row(session: Session) -> tuple[Any, ...]:
    return (
        session.session_id,
        session.pair_id,
        session.program_id,
        session.number,
        session.due_at,
        session.starts_at,
        session.ends_at,
        list(session.agenda),
        list(session.warnings),
        str(session.status),
        session.ical_sequence,
        list(session.attendees),
        list(session.absent),
        session.duration_minutes,
        list(session.topics_covered),
        session.cancel_reason,
        session.updated_at,
    )


def _sessions_json(sessions: Sequence[Session]) -> str:
    """Sessions as a JSON array of their columns (for ``jsonb_populate_recordset``)."""
    return json.dumps([_session_json(s) for s in sessions])


def _session_json(session: Session) -> dict[str, Any]:
    """The session as a JSON object of its columns (for ``jsonb_populate_recordset``)."""
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in zip(_SESSION_NAMES, _session_row(session), strict=True)
    }


_TUPLE_COLUMNS = ("agenda", "warnings", "attendees", "absent", "topics_covered")


def _session(row: asyncpg.Record) -> Session:
    data = dict(row)
    for name in _TUPLE_COLUMNS:
        data[name] = tuple(data[name])
    data["status"] = SessionStatus(data["status"])
    return Session(**data)
