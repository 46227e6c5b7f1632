"""Poison messages of every kind against the four real services, then a replay after a fix.

The four services run in-process on the real broker and PostgreSQL. Every input topic of
every service gets a poison record of each kind (``tests/chaos/poison.py``: invalid JSON,
JSON nested too deeply, an envelope or data breaking the schema, an unknown event type, a
newer schema version, an oversized record, a missing key, a key differing from the
subject), interleaved with good events in the same partition (one of them carries a
header without a value). Each service (consumer group) must set each poison record aside
on ``<topic>.dlq`` exactly once, with the reason of its kind and the original bytes, key,
headers and position, while every good event behind it is applied and every group's
committed offset reaches the end of its topics.

Some good events are refused, as in production: a participant joining a program matching
does not know yet (``rejected``), a cancellation of a session notifications never heard of
(``rejected``), a session held written at a schema version feedback's build does not know
(``unknown_schema_version``), and a program that sessions' build fails on with a bug
(``unprocessable``). Then come the fixes: the program is created, the missing
SessionScheduled arrives, a new build of feedback and notifications knowing the version is
deployed, and a new build of sessions without the bug. The real ``upward dlq replay``
applies each refused event once in its service's store, and only in that service (the
other services on the topic do not see the replayed copy); still-bad records go back to
the dead-letter topic once per replay, with their reason, and are not applied; an
oversized (truncated) dead letter stays, not replayed. Replaying the fixed reasons again
sends nothing; replaying everything again sends only the records that came back, and
applies nothing.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest

from schemas.feedback import FeedbackSubmitted
from schemas.pairs import PairFormed
from schemas.programs import ProgramCreated
from schemas.sessions import SessionCancelled, SessionHeld, SessionScheduled
from servicekit.unit_of_work import HandlerTable, UnitOfWork
from tests.chaos.poison import (
    MAX_EVENT_BYTES,
    Poison,
    PoisonPlatform,
    Published,
    Wire,
    dead_letters,
    definition_of,
    good,
    interleaved,
    poison_of_every_kind,
    publish,
    replay,
    start_platform,
    unprocessed,
    wire_of,
)
from tests.fixtures.infra import PostgresServerInfo
from tests.integration.kafka_io import eventually
from tests.matching.matching_service_fixtures import mentee, mentor, program_definition
from tests.notifications.receivers import RunningSmtp
from upward.events.dead_letters import DeadLetter
from upward.identity import Identity

pytestmark = pytest.mark.integration

START = datetime(2025, 3, 3, 8, tzinfo=UTC)  # the example program's first day
PROGRAM = "prg-poison"
LATE_PROGRAM = "prg-poison-late"  # matching does not know it when its participant joins
BUGGY_PROGRAM = "prg-poison-buggy"  # sessions' first build fails on it
ADMIN = Identity("admin", "emp-00017", ("*",))
TOPICS = ("upward.programs", "upward.participants", "upward.pairs")
TOPICS += ("upward.sessions", "upward.feedback")
PAIR = "pair-poison-0"
PEOPLE = [f"emp-pz-{n}" for n in range(4)]
LateEvents = dict[str, Wire]


class SessionsBug(Exception):
    """The bug of sessions' first build: not transient, so the event is unprocessable."""


def buggy_sessions(table: HandlerTable) -> HandlerTable:
    """Sessions' handlers, with a bug on one program's ProgramCreated."""
    real = table[ProgramCreated]

    async def define_program(data: Any, uow: UnitOfWork) -> None:
        if data.program_id == BUGGY_PROGRAM:
            raise SessionsBug("calendar of the program cannot be parsed")
        await real(data, uow)

    return {**table, ProgramCreated: define_program}


@pytest.fixture
async def platform(
    postgres: PostgresServerInfo, kafka_bootstrap: str, smtp_server: RunningSmtp
) -> AsyncIterator[PoisonPlatform]:
    running = await start_platform(
        postgres=postgres,
        kafka=kafka_bootstrap,
        smtp=smtp_server,
        start_at=START,
        changes={"sessions": buggy_sessions},
    )
    try:
        yield running
    finally:
        await running.close()


def with_null_header(wire: Wire) -> Wire:
    """``wire`` with a header that has no value (Kafka allows it; the kit must too)."""
    return dataclasses.replace(wire, headers=(*wire.headers, ("hr.batch", None)))


def program_created(program_id: str) -> ProgramCreated:
    """ProgramCreated of the program the matching tests define (as an HR tool would send)."""
    return ProgramCreated.model_validate(program_definition(program_id).model_dump(mode="json"))


def good_events() -> tuple[dict[str, list[Wire]], LateEvents]:
    """Per topic, the good events (in order); and the ones a service will refuse at first."""
    late: LateEvents = {
        "joined_late": wire_of(mentee("emp-pz-late", LATE_PROGRAM)),
        "buggy_program": wire_of(program_created(BUGGY_PROGRAM)),
        "cancelled_unknown": good(
            SessionCancelled, pair_id=PAIR, program_id=PROGRAM, session_id="ses-pz-late"
        ),
        "held_v2": good(
            SessionHeld,
            version=2,
            pair_id=PAIR,
            program_id=PROGRAM,
            session_id="ses-pz-v2",
            attendees=PEOPLE[:2],
        ),
    }
    people = [
        mentor(p, PROGRAM) if n % 2 == 0 else mentee(p, PROGRAM) for n, p in enumerate(PEOPLE)
    ]
    pair = {"program_id": PROGRAM, "mentor_id": PEOPLE[0], "mentee_id": PEOPLE[1]}
    held = {"pair_id": PAIR, "program_id": PROGRAM, "attendees": PEOPLE[:2]}
    answered = {"pair_id": PAIR, "program_id": PROGRAM, "session_id": "ses-pz-0"}
    goods = {
        "upward.programs": [
            *(wire_of(program_created(f"prg-poison-g{n}")) for n in range(3)),
            late["buggy_program"],
        ],
        "upward.participants": [
            *(wire_of(p) for p in people[:-1]),
            with_null_header(wire_of(people[-1])),
            late["joined_late"],
        ],
        "upward.pairs": [good(PairFormed, pair_id=f"pair-poison-{n}", **pair) for n in range(3)],
        "upward.sessions": [
            good(SessionHeld, session_id="ses-pz-0", **held),
            late["cancelled_unknown"],
            good(SessionHeld, session_id="ses-pz-1", **held),
            late["held_v2"],
            good(SessionHeld, session_id="ses-pz-2", **held),
        ],
        "upward.feedback": [
            good(FeedbackSubmitted, request_id=f"fbr-pz-{n}", **answered) for n in range(3)
        ],
    }
    return goods, late


def refusals(late: LateEvents) -> dict[tuple[str, str], str]:
    """(service, event id) -> the reason that service refuses it with, before the fixes."""
    return {
        ("matching", late["joined_late"].event_id): "rejected",
        ("sessions", late["buggy_program"].event_id): "unprocessable",
        ("notifications", late["cancelled_unknown"].event_id): "rejected",
        ("feedback", late["held_v2"].event_id): "unknown_schema_version",
        ("notifications", late["held_v2"].event_id): "unknown_schema_version",
    }


Position = tuple[str, str, int, int]  # (consumer group, physical topic, partition, offset)


def expected_letters(
    platform: PoisonPlatform,
    sent: dict[str, list[Published]],
    poisons: dict[int, Poison],
    late: LateEvents,
) -> tuple[dict[Position, Poison], dict[Position, str]]:
    """Where every dead letter must come from: the poison records (for every group reading
    their topic), and the good events a service refuses, with the reason."""
    refused = refusals(late)
    bad: dict[Position, Poison] = {}
    refused_at: dict[Position, str] = {}
    for topic, published in sent.items():
        for service in platform.subscribers(topic):
            group = platform.group(service)
            for record in published:
                where = (group, record.topic, record.partition, record.offset)
                if id(record.wire) in poisons:
                    bad[where] = poisons[id(record.wire)]
                elif (service, record.wire.event_id) in refused:
                    refused_at[where] = refused[(service, record.wire.event_id)]
    return bad, refused_at


def assert_bounced_back(
    letters: list[DeadLetter], still_bad: dict[Position, Poison], *, replays: int
) -> None:
    """Each still-bad record was replayed ``replays`` times and came back each time: one
    dead letter not yet replayed, the others replayed, all with the reason of its kind."""
    by_position = {position(letter): letter for letter in letters}
    for where, poison in still_bad.items():
        assert by_position[where].replayed, poison.kind
        copies = [
            letter
            for letter in letters
            if (letter.header("consumer.group"), letter.header("original.topic")) == where[:2]
            and (letter.key, letter.value) == (poison.wire.key, poison.wire.value)
        ]
        assert len(copies) == 1 + replays, (where, poison.kind)
        assert [c.replayed for c in copies].count(False) == 1, (where, poison.kind)
        assert {c.reason for c in copies} == {poison.reason}, (where, poison.kind)
        assert {originals(c) for c in copies} == {poison.wire.headers}, (where, poison.kind)


def position(letter: DeadLetter) -> Position:
    return (
        letter.header("consumer.group"),
        letter.header("original.topic"),
        int(letter.header("original.partition")),
        int(letter.header("original.offset")),
    )


def originals(letter: DeadLetter) -> tuple[tuple[str, bytes], ...]:
    return tuple((k, v) for k, v in letter.headers if not k.startswith("dlq."))


async def settled(platform: PoisonPlatform, *, letters: int) -> list[DeadLetter]:
    """Wait until ``letters`` dead letters exist and every group has processed every record."""

    async def look() -> tuple[list[DeadLetter], dict[str, int]]:
        return await dead_letters(platform, TOPICS), await unprocessed(platform, TOPICS)

    _, behind = await eventually(
        look,
        lambda seen: len(seen[0]) >= letters and not any(seen[1].values()),
        timeout=60,
    )
    assert not any(behind.values()), f"records left unprocessed per service: {behind}"
    return await dead_letters(platform, TOPICS)  # complete: every group is caught up


async def inbox(platform: PoisonPlatform, service: str) -> dict[str, int]:
    """The event ids the service applied, with how often each was delivered again."""
    rows = await platform[service].fetch(
        "SELECT event_id, redeliveries FROM kit_inbox WHERE consumer_group = $1",
        platform.group(service),
    )
    return {row["event_id"]: row["redeliveries"] for row in rows}


async def effects(platform: PoisonPlatform) -> dict[str, list[dict[str, Any]]]:
    """What the refused events change in each service's own store."""
    queries = {
        "matching participants": (
            "matching",
            f"SELECT participant_id FROM participants WHERE program_id = '{LATE_PROGRAM}'",
        ),
        "sessions programs": (
            "sessions",
            f"SELECT program_id FROM programs WHERE program_id = '{BUGGY_PROGRAM}'",
        ),
        "feedback held sessions": (
            "feedback",
            "SELECT session_id FROM held_sessions WHERE session_id = 'ses-pz-v2'",
        ),
        "notifications cancellations": (
            "notifications",
            "SELECT recipient_id FROM deliveries WHERE kind = 'session_cancelled'"
            " AND reference_id = 'ses-pz-late' ORDER BY recipient_id",
        ),
        "notifications sessions": (
            "notifications",
            "SELECT session_id FROM sessions WHERE session_id = 'ses-pz-late'",
        ),
    }
    return {
        what: [dict(row) for row in await platform[service].fetch(sql)]
        for what, (service, sql) in queries.items()
    }


def assert_set_aside_once(
    letters: list[DeadLetter], bad: dict[Position, Poison], refused_at: dict[Position, str]
) -> None:
    """One dead letter per record and group, with the expected reason; a poison record's
    dead letter keeps its key, value (cut to the limit when oversized) and headers."""
    found = Counter(position(letter) for letter in letters)
    assert set(found.values()) == {1}, "a record was dead-lettered twice by one group"
    reasons = {position(letter): letter.reason for letter in letters}
    assert reasons == {where: p.reason for where, p in bad.items()} | refused_at
    for letter in letters:
        poison = bad.get(position(letter))
        if poison is None:
            continue
        assert letter.key == poison.wire.key, poison.kind
        assert originals(letter) == poison.wire.headers, poison.kind
        assert letter.dlq_topic == f"{letter.header('original.topic')}.dlq"
        if poison.reason == "oversized":  # cut to the limit, its size recorded
            assert letter.value == poison.wire.value[:MAX_EVENT_BYTES]
            assert letter.header("truncated") == str(len(poison.wire.value))
        else:
            assert letter.value == poison.wire.value, poison.kind


async def assert_good_events_applied(
    platform: PoisonPlatform, goods: dict[str, list[Wire]], refused: dict[tuple[str, str], str]
) -> None:
    """Every good event a service has a handler for (and does not refuse) was applied by
    it, including those behind a poison record in the same partition."""
    for topic, events in goods.items():
        for service in platform.subscribers(topic):
            definition = definition_of(service, platform.settings[service])
            handled = {cls.event_type for cls in definition.handlers}
            applied = await inbox(platform, service)
            for event in events:
                if event.event_type in handled and (service, event.event_id) not in refused:
                    assert event.event_id in applied, (service, topic, event.event_type)


async def test_poison_of_every_kind_is_set_aside_and_a_replay_after_the_fix_applies_once(
    platform: PoisonPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    matching = platform["matching"]
    created = await matching.call(
        "POST", "/programs", ADMIN, program_definition(PROGRAM).model_dump(mode="json")
    )
    assert created.status_code == 201, created.text

    # --- poison of every kind, between good events, on every input topic ----------------
    goods, late = good_events()
    poisons: dict[int, Poison] = {}
    sent: dict[str, list[Published]] = {}
    for topic, events in goods.items():
        kinds = poison_of_every_kind(events[0])
        poisons |= {id(p.wire): p for p in kinds}
        sent[topic] = await publish(
            platform.kafka, platform.topic(topic), interleaved(events, [p.wire for p in kinds])
        )
    bad, refused_at = expected_letters(platform, sent, poisons, late)
    letters = await settled(platform, letters=len(bad) + len(refused_at))
    assert_set_aside_once(letters, bad, refused_at)
    await assert_good_events_applied(platform, goods, refusals(late))
    assert await effects(platform) == {
        "matching participants": [],
        "sessions programs": [],
        "feedback held sessions": [],
        "notifications cancellations": [],
        "notifications sessions": [],
    }

    # --- the fixes --------------------------------------------------------------------
    created = await matching.call(
        "POST", "/programs", ADMIN, program_definition(LATE_PROGRAM).model_dump(mode="json")
    )
    assert created.status_code == 201, created.text
    scheduled = good(
        SessionScheduled,
        pair_id=PAIR,
        program_id=PROGRAM,
        session_id="ses-pz-late",
        mentor_id=PEOPLE[0],
        mentee_id=PEOPLE[1],
    )
    await publish(platform.kafka, platform.topic("upward.sessions"), [scheduled])
    arrived = await eventually(
        partial(inbox, platform, "notifications"), lambda ids: scheduled.event_id in ids
    )
    assert scheduled.event_id in arrived
    # A newer build of feedback and notifications knows SessionHeld v2 (v1 upcast to it).
    monkeypatch.setattr(SessionHeld, "schema_version", 2)
    monkeypatch.setattr(SessionHeld, "upcasters", {1: lambda data: {**data, "room": None}})
    await platform.restart("feedback")
    await platform.restart("notifications")
    await platform.restart("sessions")  # the build without the bug

    # --- replay after the fix -----------------------------------------------------------
    oversized = [where for where, p in bad.items() if p.reason == "oversized"]
    still_bad = {where: p for where, p in bad.items() if p.reason != "oversized"}
    replayed, skipped = await replay(platform)
    assert (replayed, skipped) == (len(letters) - len(oversized), len(oversized))
    after_first = await settled(platform, letters=len(letters) + len(still_bad))
    assert len(after_first) == len(letters) + len(still_bad)
    fixed = await effects(platform)
    assert fixed == {
        "matching participants": [{"participant_id": "emp-pz-late"}],
        "sessions programs": [{"program_id": BUGGY_PROGRAM}],
        "feedback held sessions": [{"session_id": "ses-pz-v2"}],
        "notifications cancellations": [{"recipient_id": p} for p in sorted(PEOPLE[:2])],
        "notifications sessions": [],
    }
    assert_bounced_back(after_first, still_bad, replays=1)
    after_first_at = {position(letter): letter for letter in after_first}
    assert all(after_first_at[where].replayed for where in refused_at)
    assert not any(after_first_at[where].replayed for where in oversized)
    for service, event_id in refusals(late):  # applied once, never redelivered
        assert (await inbox(platform, service)).get(event_id) == (
            None if (service, event_id) == ("notifications", late["held_v2"].event_id) else 0
        )  # notifications has no handler for SessionHeld: once decodable, it is skipped
    for service in ("feedback", "notifications"):  # they applied it the first time
        assert (await inbox(platform, service))[late["buggy_program"].event_id] == 0

    inboxes = {s: await inbox(platform, s) for s in platform.services}
    # --- the operator replays what was fixed again: nothing goes -------------------------
    fixed_reasons = ("--reason", "rejected", "--reason", "unprocessable")
    assert await replay(platform, *fixed_reasons) == (0, len(after_first))
    # --- the operator runs the whole replay again ---------------------------------------
    replayed_again, skipped_again = await replay(platform)
    assert (replayed_again, skipped_again) == (len(still_bad), replayed + len(oversized))
    after_second = await settled(platform, letters=len(letters) + 2 * len(still_bad))
    assert len(after_second) == len(letters) + 2 * len(still_bad)
    assert await effects(platform) == fixed
    assert {s: await inbox(platform, s) for s in platform.services} == inboxes
    assert_bounced_back(after_second, still_bad, replays=2)
