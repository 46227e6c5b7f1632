"""Erasure proven end to end: the four services, the real broker, the real databases.

One pair goes through join, pair formed, two held sessions with private notes, feedback
with comments and calendar invites sent by e-mail. Then the mentor asks to be forgotten
(``POST .../forget`` on matching). Once all four services have answered ErasureCompleted,
every text, json, array and bytea column of every table of every service's database
(found through information_schema, the kit's outbox and inbox included) is scanned for
the mentor's name, e-mail, notes and comments: nothing is left, while the mentee's own
data and the anonymous counts (pair, held sessions, feedback answers) remain.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from schemas.participants import ErasureCompleted
from schemas.primitives import PairingMode
from tests.e2e.four_services import Platform, mentions, running_platform
from tests.fixtures.infra import PostgresServerInfo
from tests.integration.kafka_io import eventually
from tests.matching.matching_service_fixtures import mentee, mentor, program_definition
from tests.notifications.receivers import RunningSmtp
from upward.identity import Identity, participant

pytestmark = pytest.mark.integration

START = datetime(2025, 3, 3, 8, tzinfo=UTC)  # the example program's first day
PROGRAM = "prg-e2e"
ADMIN = Identity("admin", "emp-00017", (PROGRAM,))
FORGOTTEN, KEPT = "emp-zq-1", "emp-hp-2"
NAME, EMAIL = "Zelda Quixote", "zelda.quixote@example.com"
PARTNER_NAME, PARTNER_EMAIL = "Helen Parkinson", "helen.parkinson@example.com"
MENTOR_NOTE = "Zelda's own notes: nervous about the reorg"
MENTEE_NOTE = f"Great session, {NAME} showed me TikTok analytics"
MENTOR_COMMENT = "Zelda-comment: my mentee interrupts a lot"
MENTEE_COMMENT = "Mentee comment: the reverse format works"
SECRETS = (NAME, EMAIL, "Zelda", "Quixote", MENTOR_NOTE, MENTOR_COMMENT)


@pytest.fixture
async def platform(
    postgres: PostgresServerInfo, kafka_bootstrap: str, smtp_server: RunningSmtp
) -> AsyncIterator[Platform]:
    async with running_platform(
        postgres=postgres, kafka=kafka_bootstrap, smtp=smtp_server, start=START
    ) as running:
        yield running


async def test_a_forgotten_participant_leaves_nothing_personal_in_any_service(
    platform: Platform,
) -> None:
    pair_id = await form_pair(platform)
    sessions = await hold_two_sessions(platform)
    await answer_feedback(platform)
    await send_invites(platform, after=sessions[1]["starts_at"])
    await assert_the_scan_sees(platform)

    forget = await platform["matching"].call(
        "POST", f"/programs/{PROGRAM}/participants/{FORGOTTEN}/forget", participant(FORGOTTEN)
    )
    assert forget.status_code == 202, forget.text
    assert forget.json()["event_type"] == "upward.ParticipantForgotten"
    confirmations = await erasure_confirmations(platform)
    assert set(confirmations) == {"matching", "sessions", "feedback", "notifications"}
    assert all(c.records_erased > 0 for c in confirmations.values()), confirmations

    leftovers = [
        (service, table, column, secret)
        for service, values in (await platform.text_columns()).items()
        for table, column, text in values
        for secret in SECRETS
        if mentions(text, secret)
    ]
    assert leftovers == []
    await assert_the_partner_and_the_counts_remain(platform, pair_id)


async def form_pair(platform: Platform) -> str:
    """Program, both people joined by themselves, a manual pair both accept (the program
    does not pair continuously, which would propose the two as soon as both joined)."""
    matching = platform["matching"]
    definition = program_definition(PROGRAM, pairing_modes=[PairingMode.MANUAL])
    created = await matching.call("POST", "/programs", ADMIN, definition.model_dump(mode="json"))
    assert created.status_code == 201, created.text
    people = [
        mentor(FORGOTTEN, PROGRAM, display_name=NAME, email=EMAIL),
        mentee(KEPT, PROGRAM, display_name=PARTNER_NAME, email=PARTNER_EMAIL),
    ]
    for person in people:
        path = f"/programs/{PROGRAM}/participants"
        joined = await matching.call(
            "POST", path, participant(person.participant_id), person.model_dump(mode="json")
        )
        assert joined.status_code == 202, joined.text
        who = participant(person.participant_id)
        known = await eventually(
            partial(matching.call, "GET", f"{path}/{person.participant_id}", who),
            lambda answer: answer.status_code == 200,
        )
        assert known.status_code == 200, known.text
    proposed = await matching.call(
        "POST",
        f"/programs/{PROGRAM}/manual-pairs",
        ADMIN,
        {"mentor_id": FORGOTTEN, "mentee_id": KEPT, "reason": "asked to work together"},
    )
    assert proposed.status_code == 201, proposed.text
    pair_id: str = proposed.json()["pair_id"]
    for person_id in (FORGOTTEN, KEPT):
        accepted = await matching.call("POST", f"/pairs/{pair_id}/accept", participant(person_id))
        assert accepted.status_code == 200, accepted.text
    return pair_id


async def hold_two_sessions(platform: Platform) -> list[dict[str, Any]]:
    """The pair's first two sessions take place; each side writes notes on one."""
    sessions = platform["sessions"]

    async def scheduled() -> list[dict[str, Any]]:
        answer = await sessions.call("GET", "/sessions", participant(KEPT))
        return answer.json() if answer.status_code == 200 else []  # type: ignore[no-any-return]

    found = await eventually(scheduled, lambda s: len(s) >= 2)
    assert len(found) >= 2, found
    found = sorted(found, key=lambda s: s["number"])[:2]
    for session, (author, notes) in zip(
        found, [(FORGOTTEN, MENTOR_NOTE), (KEPT, MENTEE_NOTE)], strict=True
    ):
        started = datetime.fromisoformat(session["starts_at"]) + timedelta(minutes=5)
        await sessions.move_clock(started)
        held = await sessions.call(
            "POST",
            f"/sessions/{session['session_id']}/held",
            participant(author),
            {"attendees": [FORGOTTEN, KEPT], "duration_minutes": 60, "notes": notes},
        )
        assert held.status_code == 200, held.text
    return found


async def answer_feedback(platform: Platform) -> None:
    """Both sides answer the request of the first held session, with a comment."""
    feedback = platform["feedback"]
    for person_id, comment in ((FORGOTTEN, MENTOR_COMMENT), (KEPT, MENTEE_COMMENT)):

        async def requests(who: str = person_id) -> list[dict[str, Any]]:
            answer = await feedback.call("GET", "/feedback/requests", participant(who))
            return answer.json() if answer.status_code == 200 else []  # type: ignore[no-any-return]

        found = await eventually(requests, lambda r: any(map(_open_session_request, r)))
        request = next(filter(_open_session_request, found), None)
        assert request is not None, f"no session feedback request reached {person_id}: {found}"
        await feedback.move_clock(datetime.fromisoformat(request["requested_at"]))
        ratings = {"satisfaction": 4, "usefulness": 4, "comfort": 5, "progress": 3}
        answered = await feedback.call(
            "POST",
            f"/feedback/requests/{request['request_id']}/answer",
            participant(person_id),
            {"ratings": ratings, "comment": comment},
        )
        assert answered.status_code == 201, answered.text


def _open_session_request(request: dict[str, Any]) -> bool:
    return request["kind"] == "session" and request["status"] == "open"


async def send_invites(platform: Platform, *, after: str) -> None:
    """The notifications service's delivery round sends the calendar invites to both."""
    notifications = platform["notifications"]
    when = datetime.fromisoformat(after)

    async def sent_to_both() -> set[str]:
        nonlocal when
        when += timedelta(minutes=1)
        await notifications.move_clock(when)
        rows = await notifications.fetch(
            "SELECT DISTINCT recipient_id FROM deliveries"
            " WHERE status = 'sent' AND calendar_ics IS NOT NULL"
        )
        return {r["recipient_id"] for r in rows}

    recipients = await eventually(sent_to_both, lambda r: r >= {FORGOTTEN, KEPT})
    assert recipients >= {FORGOTTEN, KEPT}


async def assert_the_scan_sees(platform: Platform) -> None:
    """Before erasure, the scan finds the person in every service (it can fail)."""
    columns = await platform.text_columns()
    expected = {
        "matching": (NAME, EMAIL),
        "sessions": (NAME, EMAIL, MENTOR_NOTE, "Zelda"),
        "feedback": (MENTOR_COMMENT,),
        "notifications": (NAME, EMAIL),
    }
    for service, secrets in expected.items():
        for secret in secrets:
            assert any(mentions(text, secret) for _, _, text in columns[service]), (
                f"{service} should hold {secret!r} before the erasure"
            )


async def erasure_confirmations(platform: Platform) -> dict[str, ErasureCompleted]:
    """ErasureCompleted of the forgotten person, by service, once all four answered."""

    async def confirmations() -> dict[str, ErasureCompleted]:
        events = await platform.events("upward.participants", at_least=1)
        return {
            e.service.value: e
            for e in events
            if isinstance(e, ErasureCompleted) and e.participant_id == FORGOTTEN
        }

    return await eventually(confirmations, lambda found: len(found) == 4, timeout=60)


async def assert_the_partner_and_the_counts_remain(platform: Platform, pair_id: str) -> None:
    """The mentee keeps their data; the pair, sessions and answers are still counted."""
    matching, sessions = platform["matching"], platform["sessions"]
    feedback, notifications = platform["feedback"], platform["notifications"]
    kept = await matching.fetch(
        "SELECT profile->>'display_name' AS name FROM participants WHERE participant_id = $1", KEPT
    )
    assert [r["name"] for r in kept] == [PARTNER_NAME]
    pairs = await matching.fetch("SELECT mentor_id, mentee_id FROM pairs")
    assert [(r["mentor_id"], r["mentee_id"]) for r in pairs] == [(f"erased:{pair_id}", KEPT)]

    assert await sessions.fetch("SELECT 1 FROM participants WHERE email = $1", PARTNER_EMAIL)
    held = await sessions.fetch("SELECT count(*) AS n FROM sessions WHERE status = 'held'")
    assert held[0]["n"] == 2
    notes = await sessions.fetch("SELECT author_id, body FROM session_notes")
    assert [(r["author_id"], r["body"]) for r in notes] == [
        (KEPT, "Great session, (erased) showed me TikTok analytics")
    ]

    answers = await feedback.fetch(
        "SELECT a.comment FROM feedback_answers a JOIN feedback_requests r USING (request_id)"
        " ORDER BY a.comment NULLS FIRST"
    )
    assert [r["comment"] for r in answers] == [None, MENTEE_COMMENT]
    totals = await feedback.fetch("SELECT sum(responses) AS n FROM rating_contributions")
    assert totals[0]["n"] == 2

    contact = await notifications.fetch("SELECT email FROM contacts WHERE person_id = $1", KEPT)
    assert [r["email"] for r in contact] == [PARTNER_EMAIL]
    invites = await notifications.fetch(
        "SELECT calendar_ics FROM deliveries WHERE recipient_id = $1 AND status = 'sent'"
        " AND calendar_ics IS NOT NULL",
        KEPT,
    )
    assert invites and all(mentions(r["calendar_ics"], PARTNER_EMAIL) for r in invites)
    gone = await notifications.fetch(
        "SELECT kind, status FROM deliveries WHERE recipient_id = $1", FORGOTTEN
    )
    assert [dict(r) for r in gone] == []  # late events (sessions cancelled) plan nothing
