"""Redaction of a forgotten person's texts, and their erasure from a real outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from schemas.codec import decode, encode, new_event
from schemas.participants import ParticipantJoined, ParticipantLeft
from schemas.sessions import SessionScheduled
from servicekit import db, outbox
from servicekit.erasure import (
    ERASED,
    ERASED_EMAIL,
    erase_from_outbox,
    personal_texts,
    redact,
    redact_json,
    with_name_words,
)

EXACT = personal_texts(name="Aisha Rahman", email="aisha.rahman@example.com")
PERSONAL = with_name_words(EXACT)


def test_personal_texts_are_the_name_and_the_address_free_text_adds_the_words() -> None:
    assert {"Aisha Rahman", "aisha.rahman@example.com"} == EXACT
    assert {"Aisha Rahman", "Aisha", "Rahman", "aisha.rahman@example.com"} == PERSONAL
    assert with_name_words(personal_texts(name="Al Li", email=None)) == {"Al Li"}
    assert personal_texts(name=None, email=None) == set()


def test_redact_ignores_case_and_respects_word_boundaries() -> None:
    text = "AISHA rahman wrote to Aisha.Rahman@example.com; Aishaland and Rahmania stay"
    assert redact(text, PERSONAL) == (
        f"{ERASED} wrote to {ERASED_EMAIL}; Aishaland and Rahmania stay"
    )
    assert redact("nothing personal", PERSONAL) == "nothing personal"
    assert redact("Aisha", ()) == "Aisha"


def test_redact_finds_a_name_split_by_icalendar_folding() -> None:
    ics = "BEGIN:VEVENT\r\nATTENDEE;CN=Aisha Rah\r\n man:mailto:aisha.rahman@exam\r\n ple.com\r\n"
    redacted = redact(ics, PERSONAL)
    assert redacted == f"BEGIN:VEVENT\r\nATTENDEE;CN={ERASED}:mailto:{ERASED_EMAIL}\r\n"
    folded_stranger = "SUMMARY:Helen Pa\r\n rk\r\n"
    assert redact(folded_stranger, PERSONAL) == folded_stranger  # not unfolded for nothing


def test_redact_json_changes_values_never_keys() -> None:
    document = {"Aisha": ["Aisha Rahman", 3, None, {"email": "aisha.rahman@example.com"}]}
    assert redact_json(document, PERSONAL) == {"Aisha": [ERASED, 3, None, {"email": ERASED_EMAIL}]}


@pytest.fixture
async def pool(fresh_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await db.create_pool(fresh_database_url, max_size=2)
    await db.apply_migrations(created, "servicekit", db.KIT_MIGRATIONS)
    yield created
    await created.close()


def _joined(participant_id: str, name: str, email: str) -> ParticipantJoined:
    data = ParticipantJoined.example().model_dump() | {
        "participant_id": participant_id,
        "display_name": name,
        "email": email,
    }
    return ParticipantJoined.model_validate(data)


def _invite(attendee: str) -> SessionScheduled:
    example = SessionScheduled.example()
    folded = f"ATTENDEE;CN={attendee}:mailto:aisha.rahman@exam\r\n ple.com\r\nEND:VEVENT"
    return example.model_copy(update={"ics": example.ics.replace("END:VEVENT", folded)})


@pytest.mark.integration
async def test_published_rows_go_and_waiting_rows_are_published_without_the_person(
    pool: asyncpg.Pool,
) -> None:
    mine = new_event(_joined("emp-a", "Aisha Rahman", "aisha.rahman@example.com"), source="/t")
    left = ParticipantLeft.example().model_copy(update={"participant_id": "emp-a"})
    other = new_event(_joined("emp-b", "Helen Park", "helen@example.com"), source="/t")
    plain = new_event(SessionScheduled.example(), source="/t")
    waiting = new_event(_invite("Aisha Rahman"), source="/t")
    async with pool.acquire() as conn:
        sent = [mine, new_event(left, source="/t"), other]
        await outbox.append(conn, [("upward.participants", e) for e in sent], max_bytes=10**6)
        await conn.execute("UPDATE kit_outbox SET published_at = now()")
        queued = [("upward.sessions", e) for e in (plain, waiting)]
        await outbox.append(conn, queued, max_bytes=10**6)
        async with conn.transaction():
            touched = await erase_from_outbox(conn, participant_id="emp-a", personal=EXACT)
        rows = await conn.fetch(
            "SELECT event_id, payload, event_key, published_at FROM kit_outbox ORDER BY seq"
        )
    assert touched == 3  # two published rows deleted, one waiting row rewritten
    assert [r["event_id"] for r in rows] == [other.id, plain.id, waiting.id]
    assert [r["published_at"] is None for r in rows] == [False, True, True]
    assert rows[1]["payload"] == encode(plain)
    rewritten = decode(rows[2]["payload"], key=rows[2]["event_key"].encode()).data
    assert isinstance(rewritten, SessionScheduled)
    assert f"ATTENDEE;CN={ERASED}:mailto:{ERASED_EMAIL}" in rewritten.ics
    assert "Aisha" not in rewritten.ics and "Rahman" not in rewritten.ics


@pytest.mark.integration
async def test_without_personal_texts_only_published_rows_naming_the_id_go(
    pool: asyncpg.Pool,
) -> None:
    mine = new_event(_joined("emp-a", "Aisha Rahman", "aisha.rahman@example.com"), source="/t")
    longer_id = new_event(_joined("emp-ab", "Bo Li", "bo@example.com"), source="/t")
    async with pool.acquire() as conn:
        events = [("upward.participants", e) for e in (mine, longer_id)]
        await outbox.append(conn, events, max_bytes=10**6)
        await conn.execute("UPDATE kit_outbox SET published_at = now()")
        assert await erase_from_outbox(conn, participant_id="emp-a", personal=()) == 1
        kept = await conn.fetch("SELECT event_id FROM kit_outbox")
    assert [r["event_id"] for r in kept] == [longer_id.id]
