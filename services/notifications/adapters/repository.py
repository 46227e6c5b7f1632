"""The notifications store: the abstract port and its asyncpg implementation.

Every method runs on the caller's connection (a handler's or the delivery worker's
transaction) and takes keyword-only arguments.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from pydantic import BaseModel

from schemas.notifications import Channel, NotificationKind
from servicekit.db import Connection
from servicekit.erasure import (
    erase_from_outbox,
    personal_texts,
    redact_texts,
)
from services.notifications.domain.delivery import ClaimedDelivery
from services.notifications.domain.planning import (
    CalendarPart,
    PlannedDelivery,
    ProgramInfo,
    SessionInfo,
)
from services.notifications.domain.preferences import Contact, Preferences, Recipient


class DeliveryView(BaseModel):
    """A delivery as the API shows it: no content, only what, when and how it went."""

    delivery_id: str
    recipient_id: str
    channel: str
    kind: str
    reference_id: str | None
    status: str
    due_at: datetime
    attempts: int
    sent_at: datetime | None
    last_error: str | None


class NotificationsRepository(ABC):
    """What the handlers, the delivery worker and the API need from the store."""

    @abstractmethod
    async def upsert_contact(self, *, contact: Contact, source: str, now: datetime) -> None:
        """Insert or replace a person's contact details."""

    @abstractmethod
    async def recipients(self, *, person_ids: Sequence[str]) -> dict[str, Recipient]:
        """Contact (when known) and preferences (or the defaults) of each person."""

    @abstractmethod
    async def directory(
        self, *, program_id: str, person_ids: Sequence[str]
    ) -> tuple[ProgramInfo | None, dict[str, Recipient]]:
        """A program's projection (if known) and its people as :meth:`recipients` returns them."""

    @abstractmethod
    async def save_preferences(
        self, *, person_id: str, preferences: Preferences, now: datetime
    ) -> None:
        """Insert or replace a person's preferences."""

    @abstractmethod
    async def erase_person(self, *, person_id: str, now: datetime) -> int:
        """Delete a person's personal data; return the number of rows deleted or scrubbed.

        Their contact, preferences and messages go; other people's messages lose the
        person's name and address (context and calendar invite), and the outbox keeps
        nothing of them (``servicekit.erasure``). Only their id stays, so that no later
        event plans a message to them or brings their contact back.
        """

    @abstractmethod
    async def save_program(self, *, program: ProgramInfo) -> None:
        """Insert or replace a program's projection."""

    @abstractmethod
    async def program(self, *, program_id: str) -> ProgramInfo | None:
        """A program's projection, if known."""

    @abstractmethod
    async def programs(self, *, program_ids: Sequence[str]) -> dict[str, ProgramInfo]:
        """The projections of those programs that are known, by id."""

    @abstractmethod
    async def save_session(self, *, session: SessionInfo) -> None:
        """Insert or replace a session's projection."""

    @abstractmethod
    async def save_sessions(self, *, sessions: Sequence[SessionInfo]) -> None:
        """:meth:`save_session` of several sessions in one statement (distinct ids)."""

    @abstractmethod
    async def session(self, *, session_id: str) -> SessionInfo | None:
        """A session's projection, if known."""

    @abstractmethod
    async def future_sessions(self, *, program_id: str, after: datetime) -> list[SessionInfo]:
        """Sessions of a program starting after ``after`` (not cancelled)."""

    @abstractmethod
    async def delete_session(self, *, session_id: str) -> None:
        """Forget a cancelled session."""

    @abstractmethod
    async def mark_answered(self, *, request_id: str) -> None:
        """Remember that a feedback request was answered."""

    @abstractmethod
    async def is_answered(self, *, request_id: str) -> bool:
        """True when the feedback request was answered."""

    @abstractmethod
    async def add_deliveries(self, *, planned: Sequence[PlannedDelivery], now: datetime) -> int:
        """Insert planned deliveries, skipping natural keys already there; return inserted."""

    @abstractmethod
    async def add_planned(self, *, planned: Sequence[tuple[PlannedDelivery, datetime]]) -> int:
        """:meth:`add_deliveries` of several events at once: each delivery with the time it
        was planned (its ``created_at``). A natural key appears at most once."""

    @abstractmethod
    async def cancel_pending(self, *, cancel_key: str) -> int:
        """Cancel the pending deliveries sharing ``cancel_key``; return how many."""

    @abstractmethod
    async def claim_due(self, *, now: datetime, limit: int) -> list[ClaimedDelivery]:
        """Lock (SKIP LOCKED) deliveries due now, or whose sending lease ran out."""

    @abstractmethod
    async def defer(self, *, delivery_ids: Sequence[str], until: datetime) -> None:
        """Put claimed deliveries back to pending, due at ``until`` (no attempt counted)."""

    @abstractmethod
    async def mark_sending(
        self, *, delivery_ids: Sequence[str], token: str, lease_until: datetime
    ) -> None:
        """Count an attempt and lease the deliveries to the claim ``token``."""

    @abstractmethod
    async def recent_send_times(
        self, *, recipient_ids: Sequence[str], since: datetime
    ) -> dict[str, list[datetime]]:
        """Send time of each message sent to each recipient since ``since``."""

    @abstractmethod
    async def mark_sent(
        self, *, token: str, delivery_ids: Sequence[str], message_id: str, sent_at: datetime
    ) -> list[str]:
        """Mark sent the deliveries still leased to ``token``; return those marked."""

    @abstractmethod
    async def schedule_retry(
        self, *, token: str, delivery_ids: Sequence[str], due_at: datetime, error: str
    ) -> list[str]:
        """Back to pending at ``due_at`` (still leased to ``token``); return those changed."""

    @abstractmethod
    async def mark_failed(
        self, *, token: str | None, delivery_ids: Sequence[str], error: str
    ) -> list[str]:
        """Give up on deliveries (leased to ``token``, if given); return those changed."""

    @abstractmethod
    async def deliveries_of(self, *, recipient_id: str, limit: int) -> list[DeliveryView]:
        """A person's latest deliveries, newest first."""

    @abstractmethod
    async def programs_of(self, *, person_id: str) -> set[str]:
        """The programs a person has sessions in (from the stored SessionScheduled)."""

    @abstractmethod
    async def pending_count(self) -> int:
        """Deliveries waiting to be sent (pending or sending)."""


_RECIPIENTS = """
SELECT ids.person_id, c.display_name, c.email, c.timezone, c.languages, p.preferences
FROM unnest($1::text[]) AS ids(person_id)
LEFT JOIN contacts c ON c.person_id = ids.person_id
LEFT JOIN preferences p ON p.person_id = ids.person_id
"""

_DIRECTORY = """
SELECT ids.person_id, c.display_name, c.email, c.timezone, c.languages, p.preferences,
    g.program_id, g.name, g.admin_ids, g.reminder_offsets_minutes, g.topic_titles
FROM (SELECT 1) AS one
LEFT JOIN programs g ON g.program_id = $2
LEFT JOIN unnest($1::text[]) AS ids(person_id) ON true
LEFT JOIN contacts c ON c.person_id = ids.person_id
LEFT JOIN preferences p ON p.person_id = ids.person_id
"""
# One round trip for what a pair's message needs: the program and both people. The
# ``(SELECT 1)`` row keeps the program when no person is asked for.

_INSERT_DELIVERIES = """
INSERT INTO deliveries (delivery_id, source_key, recipient_id, partner_id, channel, kind,
    reference_id, context, calendar_ics, calendar_method, cancel_key, digest, due_at, created_at)
SELECT r ->> 0, r ->> 1, r ->> 2, r ->> 3, r ->> 4, r ->> 5, r ->> 6, r -> 7, r ->> 8, r ->> 9,
    r ->> 10, (r ->> 11)::boolean, (r ->> 12)::timestamptz, (r ->> 13)::timestamptz
FROM jsonb_array_elements($1::jsonb) AS r
WHERE NOT EXISTS (SELECT 1 FROM forgotten_people f WHERE f.person_id = r ->> 2)
ON CONFLICT (source_key, recipient_id, channel) DO UPDATE
SET status = 'pending', due_at = EXCLUDED.due_at, context = EXCLUDED.context,
    digest = EXCLUDED.digest, attempts = 0, last_error = NULL
WHERE deliveries.status = 'cancelled'
"""
# The batch travels as one JSON document, a list of rows in the column order above
# (``_delivery_row``), written by orjson in one call: asyncpg would check and encode every
# element of fourteen arrays one by one, and the context of each row would need its own
# ``json.dumps``. Positional ``->>`` keeps PostgreSQL's side as cheap as the arrays were.
# A natural key already planned is left alone (redelivery, replay), unless it was
# cancelled: a session moved away and back plans its reminders again. Nothing is planned
# for a forgotten person.

_CLAIM = """
SELECT delivery_id, recipient_id, channel, kind, reference_id, context, calendar_ics,
    calendar_method, digest, attempts, due_at
FROM deliveries
WHERE (status = 'pending' AND due_at <= $1) OR (status = 'sending' AND lease_until <= $1)
ORDER BY due_at, delivery_id
LIMIT $2
FOR UPDATE SKIP LOCKED
"""


def _contact(row: asyncpg.Record) -> Contact | None:
    if row["email"] is None:
        return None
    # Validated when it was stored (upsert_contact takes a Contact): not validated again.
    return Contact.model_construct(
        person_id=row["person_id"],
        display_name=row["display_name"],
        email=row["email"],
        timezone=row["timezone"],
        languages=list(row["languages"]),
    )


_DEFAULT_PREFERENCES = Preferences()
"""The preferences of everyone who never set any (a frozen model, shared)."""


def _preferences(raw: str | None) -> Preferences:
    return Preferences.model_validate_json(raw) if raw else _DEFAULT_PREFERENCES


def _recipient(row: asyncpg.Record) -> Recipient:
    return Recipient(
        person_id=row["person_id"],
        contact=_contact(row),
        preferences=_preferences(row["preferences"]),
    )


def _program(row: asyncpg.Record) -> ProgramInfo:
    return ProgramInfo(
        program_id=row["program_id"],
        name=row["name"],
        admin_ids=list(row["admin_ids"]),
        reminder_offsets_minutes=list(row["reminder_offsets_minutes"]),
        topic_titles=json.loads(row["topic_titles"]),
    )


def _session(row: asyncpg.Record) -> SessionInfo:
    return SessionInfo(**dict(row))


def _claimed(row: asyncpg.Record) -> ClaimedDelivery:
    ics, method = row["calendar_ics"], row["calendar_method"]
    return ClaimedDelivery(
        delivery_id=row["delivery_id"],
        recipient_id=row["recipient_id"],
        channel=Channel(row["channel"]),
        kind=NotificationKind(row["kind"]),
        reference_id=row["reference_id"],
        context=json.loads(row["context"]),
        calendar=CalendarPart(ics, method) if ics else None,
        digest=row["digest"],
        attempts=row["attempts"],
        due_at=row["due_at"],
    )


_SAVE_SESSIONS = """
INSERT INTO sessions (session_id, pair_id, program_id, mentor_id, mentee_id, starts_at, ends_at)
SELECT session_id, pair_id, program_id, mentor_id, mentee_id, starts_at, ends_at
FROM jsonb_populate_recordset(NULL::sessions, $1::jsonb)
ON CONFLICT (session_id) DO UPDATE SET starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at
"""
# The sessions as one JSON document (orjson writes the SessionInfo dataclasses as they
# are, their fields named as the table's columns), like the deliveries below.


def _delivery_row(planned: PlannedDelivery, created_at: datetime) -> list[Any]:
    """A delivery as one row of ``_INSERT_DELIVERIES`` (orjson writes enums and datetimes)."""
    notice, calendar = planned.notice, planned.notice.calendar
    return [
        planned.delivery_id,
        notice.source_key,
        notice.recipient_id,
        notice.partner_id,
        planned.channel,
        notice.kind,
        notice.reference_id,
        notice.context,
        calendar.ics if calendar else None,
        calendar.method if calendar else None,
        notice.cancel_key,
        planned.digest,
        planned.due_at,
        created_at,
    ]


class PostgresNotificationsRepository(NotificationsRepository):
    """The store on asyncpg, on the caller's connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def upsert_contact(self, *, contact: Contact, source: str, now: datetime) -> None:
        """Insert or replace a person's contact details (never a forgotten person's)."""
        await self._conn.execute(
            "INSERT INTO contacts (person_id, display_name, email, timezone, languages, source,"
            " updated_at) SELECT $1, $2, $3, $4, $5::text[], $6, $7::timestamptz"
            " WHERE NOT EXISTS (SELECT 1 FROM forgotten_people WHERE person_id = $1)"
            " ON CONFLICT (person_id) DO UPDATE"
            " SET display_name = $2, email = $3, timezone = $4, languages = $5, source = $6,"
            " updated_at = $7",
            contact.person_id,
            contact.display_name,
            contact.email,
            contact.timezone,
            contact.languages,
            source,
            now,
        )

    async def recipients(self, *, person_ids: Sequence[str]) -> dict[str, Recipient]:
        """Contact (when known) and preferences (or the defaults) of each person."""
        rows = await self._conn.fetch(_RECIPIENTS, list(dict.fromkeys(person_ids)))
        return {r["person_id"]: _recipient(r) for r in rows}

    async def directory(
        self, *, program_id: str, person_ids: Sequence[str]
    ) -> tuple[ProgramInfo | None, dict[str, Recipient]]:
        """A program's projection (if known) and its people, in one query."""
        rows = await self._conn.fetch(_DIRECTORY, list(dict.fromkeys(person_ids)), program_id)
        program = _program(rows[0]) if rows[0]["program_id"] is not None else None
        people = {r["person_id"]: _recipient(r) for r in rows if r["person_id"] is not None}
        return program, people

    async def save_preferences(
        self, *, person_id: str, preferences: Preferences, now: datetime
    ) -> None:
        """Insert or replace a person's preferences."""
        await self._conn.execute(
            "INSERT INTO preferences (person_id, preferences, updated_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (person_id) DO UPDATE SET preferences = $2, updated_at = $3",
            person_id,
            preferences.model_dump_json(),
            now,
        )

    async def erase_person(self, *, person_id: str, now: datetime) -> int:
        """Delete the person's contact, preferences and messages; scrub their name elsewhere."""
        personal = await self._personal_texts(person_id)
        erased = await self._redact_invites(person_id, personal)
        for statement in (
            "DELETE FROM contacts WHERE person_id = $1",
            "DELETE FROM preferences WHERE person_id = $1",
            "DELETE FROM deliveries WHERE recipient_id = $1",
            "UPDATE deliveries SET partner_id = NULL, context = context"
            ' || \'{"partner_name": null, "partner_email": null}\'::jsonb'
            " WHERE partner_id = $1",
        ):
            status = await self._conn.execute(statement, person_id)
            erased += int(status.split()[-1])
        await self._conn.execute(
            "INSERT INTO forgotten_people (person_id, forgotten_at) VALUES ($1, $2)"
            " ON CONFLICT (person_id) DO NOTHING",
            person_id,
            now,
        )
        return erased + await erase_from_outbox(
            self._conn, participant_id=person_id, personal=personal
        )

    async def _personal_texts(self, person_id: str) -> set[str]:
        row = await self._conn.fetchrow(
            "SELECT display_name, email FROM contacts WHERE person_id = $1", person_id
        )
        if row is None:
            return set()
        return personal_texts(name=row["display_name"], email=row["email"])

    async def _redact_invites(self, person_id: str, personal: set[str]) -> int:
        """Take the person out of the calendar invites their partners were (or will be) sent."""
        return await redact_texts(
            self._conn,
            select="SELECT delivery_id, calendar_ics FROM deliveries"
            " WHERE partner_id = $1 AND recipient_id <> $1 AND calendar_ics IS NOT NULL"
            " FOR UPDATE",
            args=(person_id,),
            update="UPDATE deliveries SET calendar_ics = $2 WHERE delivery_id = $1",
            personal=personal,
        )

    async def save_program(self, *, program: ProgramInfo) -> None:
        """Insert or replace a program's projection."""
        await self._conn.execute(
            "INSERT INTO programs (program_id, name, admin_ids, reminder_offsets_minutes,"
            " topic_titles) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (program_id) DO UPDATE"
            " SET name = $2, admin_ids = $3, reminder_offsets_minutes = $4, topic_titles = $5",
            program.program_id,
            program.name,
            program.admin_ids,
            program.reminder_offsets_minutes,
            json.dumps(program.topic_titles),
        )

    async def program(self, *, program_id: str) -> ProgramInfo | None:
        """A program's projection, if known."""
        row = await self._conn.fetchrow("SELECT * FROM programs WHERE program_id = $1", program_id)
        return _program(row) if row else None

    async def programs(self, *, program_ids: Sequence[str]) -> dict[str, ProgramInfo]:
        """The projections of those programs that are known, by id."""
        rows = await self._conn.fetch(
            "SELECT * FROM programs WHERE program_id = ANY($1::text[])",
            list(dict.fromkeys(program_ids)),
        )
        return {r["program_id"]: _program(r) for r in rows}

    async def save_session(self, *, session: SessionInfo) -> None:
        """Insert or replace a session's projection."""
        await self._conn.execute(
            "INSERT INTO sessions (session_id, pair_id, program_id, mentor_id, mentee_id,"
            " starts_at, ends_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (session_id)"
            " DO UPDATE SET starts_at = $6, ends_at = $7",
            session.session_id,
            session.pair_id,
            session.program_id,
            session.mentor_id,
            session.mentee_id,
            session.starts_at,
            session.ends_at,
        )

    async def save_sessions(self, *, sessions: Sequence[SessionInfo]) -> None:
        """Insert or replace sessions' projections, in one statement."""
        if not sessions:
            return
        await self._conn.execute(_SAVE_SESSIONS, orjson.dumps(list(sessions)).decode())

    async def session(self, *, session_id: str) -> SessionInfo | None:
        """A session's projection, if known."""
        row = await self._conn.fetchrow("SELECT * FROM sessions WHERE session_id = $1", session_id)
        return _session(row) if row else None

    async def future_sessions(self, *, program_id: str, after: datetime) -> list[SessionInfo]:
        """Sessions of a program starting after ``after``."""
        rows = await self._conn.fetch(
            "SELECT * FROM sessions WHERE program_id = $1 AND starts_at > $2 ORDER BY starts_at",
            program_id,
            after,
        )
        return [_session(r) for r in rows]

    async def delete_session(self, *, session_id: str) -> None:
        """Forget a cancelled session."""
        await self._conn.execute("DELETE FROM sessions WHERE session_id = $1", session_id)

    async def mark_answered(self, *, request_id: str) -> None:
        """Remember that a feedback request was answered."""
        await self._conn.execute(
            "INSERT INTO answered_feedback_requests (request_id) VALUES ($1)"
            " ON CONFLICT DO NOTHING",
            request_id,
        )

    async def is_answered(self, *, request_id: str) -> bool:
        """True when the feedback request was answered."""
        return bool(
            await self._conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM answered_feedback_requests WHERE request_id = $1)",
                request_id,
            )
        )

    async def add_deliveries(self, *, planned: Sequence[PlannedDelivery], now: datetime) -> int:
        """Insert planned deliveries, skipping natural keys already there; return inserted.

        A cancelled delivery with the same natural key is planned again (pending).
        """
        return await self.add_planned(planned=[(p, now) for p in planned])

    async def add_planned(self, *, planned: Sequence[tuple[PlannedDelivery, datetime]]) -> int:
        """Deliveries of several events in one statement (see :meth:`add_deliveries`)."""
        if not planned:
            return 0
        rows = orjson.dumps([_delivery_row(p, created_at) for p, created_at in planned])
        status = await self._conn.execute(_INSERT_DELIVERIES, rows.decode())
        return int(status.split()[-1])

    async def cancel_pending(self, *, cancel_key: str) -> int:
        """Cancel the pending deliveries sharing ``cancel_key``; return how many."""
        status = await self._conn.execute(
            "UPDATE deliveries SET status = 'cancelled' WHERE cancel_key = $1"
            " AND status = 'pending'",
            cancel_key,
        )
        return int(status.split()[-1])

    async def claim_due(self, *, now: datetime, limit: int) -> list[ClaimedDelivery]:
        """Lock (SKIP LOCKED) deliveries due now, or whose sending lease ran out."""
        return [_claimed(r) for r in await self._conn.fetch(_CLAIM, now, limit)]

    async def defer(self, *, delivery_ids: Sequence[str], until: datetime) -> None:
        """Put claimed deliveries back to pending, due at ``until`` (no attempt counted)."""
        await self._conn.execute(
            "UPDATE deliveries SET status = 'pending', due_at = $2, lease_until = NULL"
            " WHERE delivery_id = ANY($1::text[])",
            list(delivery_ids),
            until,
        )

    async def mark_sending(
        self, *, delivery_ids: Sequence[str], token: str, lease_until: datetime
    ) -> None:
        """Count an attempt and lease the deliveries to the claim ``token``."""
        await self._conn.execute(
            "UPDATE deliveries SET status = 'sending', attempts = attempts + 1,"
            " claim_token = $2, lease_until = $3 WHERE delivery_id = ANY($1::text[])",
            list(delivery_ids),
            token,
            lease_until,
        )

    async def recent_send_times(
        self, *, recipient_ids: Sequence[str], since: datetime
    ) -> dict[str, list[datetime]]:
        """Send time of each message sent to each recipient since ``since``."""
        rows = await self._conn.fetch(
            "SELECT recipient_id, message_id, min(sent_at) AS sent_at FROM deliveries"
            " WHERE status = 'sent' AND recipient_id = ANY($1::text[]) AND sent_at > $2"
            " GROUP BY recipient_id, message_id",
            list(recipient_ids),
            since,
        )
        times: dict[str, list[datetime]] = {}
        for r in rows:
            times.setdefault(r["recipient_id"], []).append(r["sent_at"])
        return times

    async def _finish(
        self, sql: str, token: str | None, ids: Sequence[str], *args: Any
    ) -> list[str]:
        rows = await self._conn.fetch(sql, list(ids), token, *args)
        return [r["delivery_id"] for r in rows]

    async def mark_sent(
        self, *, token: str, delivery_ids: Sequence[str], message_id: str, sent_at: datetime
    ) -> list[str]:
        """Mark sent the deliveries still leased to ``token``; return those marked."""
        return await self._finish(
            "UPDATE deliveries SET status = 'sent', sent_at = $3, message_id = $4,"
            " lease_until = NULL, last_error = NULL WHERE delivery_id = ANY($1::text[])"
            " AND status = 'sending' AND claim_token = $2 RETURNING delivery_id",
            token,
            delivery_ids,
            sent_at,
            message_id,
        )

    async def schedule_retry(
        self, *, token: str, delivery_ids: Sequence[str], due_at: datetime, error: str
    ) -> list[str]:
        """Back to pending at ``due_at`` (still leased to ``token``); return those changed."""
        return await self._finish(
            "UPDATE deliveries SET status = 'pending', due_at = $3, last_error = $4,"
            " lease_until = NULL WHERE delivery_id = ANY($1::text[]) AND status = 'sending'"
            " AND claim_token = $2 RETURNING delivery_id",
            token,
            delivery_ids,
            due_at,
            error,
        )

    async def mark_failed(
        self, *, token: str | None, delivery_ids: Sequence[str], error: str
    ) -> list[str]:
        """Give up on deliveries (leased to ``token``, if given); return those changed."""
        return await self._finish(
            "UPDATE deliveries SET status = 'failed', last_error = $3, lease_until = NULL"
            " WHERE delivery_id = ANY($1::text[]) AND status IN ('pending', 'sending')"
            " AND ($2::text IS NULL OR claim_token = $2) RETURNING delivery_id",
            token,
            delivery_ids,
            error,
        )

    async def deliveries_of(self, *, recipient_id: str, limit: int) -> list[DeliveryView]:
        """A person's latest deliveries, newest first."""
        rows = await self._conn.fetch(
            "SELECT delivery_id, recipient_id, channel, kind, reference_id, status, due_at,"
            " attempts, sent_at, last_error FROM deliveries WHERE recipient_id = $1"
            " ORDER BY created_at DESC, due_at DESC LIMIT $2",
            recipient_id,
            limit,
        )
        return [DeliveryView(**dict(r)) for r in rows]

    async def programs_of(self, *, person_id: str) -> set[str]:
        """The programs a person has sessions in (from the stored SessionScheduled)."""
        rows = await self._conn.fetch(
            "SELECT DISTINCT program_id FROM sessions WHERE $1 IN (mentor_id, mentee_id)",
            person_id,
        )
        return {r["program_id"] for r in rows}

    async def pending_count(self) -> int:
        """Deliveries waiting to be sent (pending or sending)."""
        count = await self._conn.fetchval(
            "SELECT count(*) FROM deliveries WHERE status IN ('pending', 'sending')"
        )
        return int(count or 0)
