"""Who may call which feedback endpoint: every endpoint, every kind of caller.

Program prg-a has the pair pair-a (pair-a-mentor, pair-a-mentee), whose held session
asked both for feedback; the mentee has answered. Program prg-b exists with no pairs.
Admin A runs prg-a, admin B prg-b. Requests and answers are their author's alone:
anyone else gets 404, as for a missing one. Admins read only aggregates of their own
programs (403 otherwise); services read neither.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from schemas.base import EventData
from schemas.pairs import PairFormed
from schemas.primitives import PairingMode
from schemas.programs import ProgramCreated
from schemas.sessions import SessionHeld
from servicekit.clock import ManualClock
from servicekit.runtime import ServiceContext
from servicekit.settings import settings_for
from servicekit.unit_of_work import unit_of_work
from services.feedback.adapters.repository import PostgresFeedbackStore
from services.feedback.bootstrap import MIGRATIONS, FeedbackServiceSettings
from services.feedback.entrypoints.http import routes
from services.feedback.handlers import handler_table
from tests.fixtures.authz import Endpoint, api, headers_of, migrated_pool, mismatches

pytestmark = pytest.mark.integration
START = datetime(2025, 3, 3, 9, tzinfo=UTC)
MENTOR, MENTEE = "participant:pair-a-mentor", "participant:pair-a-mentee"
STRANGER = "participant:someone-else"
GOOD = {"ratings": {"satisfaction": 5, "usefulness": 4, "comfort": 5, "progress": 4}}


@dataclass(frozen=True)
class Seeded:
    """The client and the two requests (the mentee's is answered)."""

    client: httpx.AsyncClient
    mentor_request: str
    mentee_request: str


def _events() -> list[EventData]:
    programs = [
        ProgramCreated.model_validate(
            ProgramCreated.example().model_dump(mode="json") | {"program_id": p}
        )
        for p in ("prg-a", "prg-b")
    ]
    pair = PairFormed(
        pair_id="pair-a",
        program_id="prg-a",
        mentor_id="pair-a-mentor",
        mentee_id="pair-a-mentee",
        topics=["social-media"],
        mode=PairingMode.BATCH,
    )
    session = SessionHeld(
        pair_id="pair-a",
        program_id="prg-a",
        session_id="ses-a1",
        sequence=1,
        held_at=START + timedelta(days=1),
        duration_minutes=60,
        attendees=["pair-a-mentor", "pair-a-mentee"],
    )
    return [*programs, pair, session]


@pytest.fixture
async def seeded(fresh_database_url: str) -> AsyncIterator[Seeded]:
    settings = settings_for("feedback", FeedbackServiceSettings)(
        service_name="feedback", database_url=fresh_database_url
    )
    pool = await migrated_pool(fresh_database_url, "feedback", MIGRATIONS)
    clock = ManualClock(START + timedelta(days=1, hours=2))
    handlers = handler_table(PostgresFeedbackStore)
    try:
        for event in _events():
            async with unit_of_work(pool, source="/test", region="local", clock=clock) as uow:
                await handlers[type(event)](event, uow)
        context = ServiceContext(pool, settings, clock=clock)
        async with api(routes(context), "feedback") as client:
            ids = {}
            for who in (MENTOR, MENTEE):
                [request] = (await client.get("/feedback/requests", headers=headers_of(who))).json()
                ids[who] = request["request_id"]
            answered = await client.post(
                f"/feedback/requests/{ids[MENTEE]}/answer", json=GOOD, headers=headers_of(MENTEE)
            )
            assert answered.status_code == 201, answered.text
            yield Seeded(client, ids[MENTOR], ids[MENTEE])
    finally:
        await pool.close()


MINE, THEIRS = "{mentor_request}", "{mentee_request}"
OUTCOMES_READERS = [
    ("anonymous", 401),
    (MENTEE, 403),
    ("service", 403),
    ("admin-b", 403),
    ("admin-a", 200),
    ("platform-admin", 200),
]

TABLE = [
    Endpoint(
        "GET",
        "/feedback/requests",
        [("anonymous", 401), (MENTOR, 200), (STRANGER, 200), ("admin-a", 403), ("service", 403)],
        counts={MENTOR: 1, STRANGER: 0},
    ),
    Endpoint(
        "POST",
        f"/feedback/requests/{MINE}/answer",
        [(MENTEE, 404), (STRANGER, 404), ("admin-a", 403), ("service", 403), (MENTOR, 201)],
        body=GOOD,
    ),
    Endpoint(
        "GET",
        "/feedback/answers",
        [(MENTEE, 200), (MENTOR, 200), ("admin-a", 403), ("platform-admin", 403)],
        counts={MENTEE: 1, MENTOR: 0},
    ),
    Endpoint(
        "GET",
        f"/feedback/answers/{THEIRS}",
        [(MENTEE, 200), (MENTOR, 404), (STRANGER, 404), ("admin-a", 403), ("service", 403)],
    ),
    Endpoint("GET", "/programs/prg-a/outcomes", OUTCOMES_READERS),
    Endpoint("GET", "/programs/prg-a/outcomes.csv", OUTCOMES_READERS),
    Endpoint("GET", "/programs/prg-a/live", OUTCOMES_READERS),
    Endpoint(
        "GET",
        "/programs/prg-b/outcomes",
        [("admin-a", 403), ("admin-b", 200), ("platform-admin", 200)],
    ),
    Endpoint("GET", "/programs/prg-none/outcomes", [("admin-a", 403), ("platform-admin", 404)]),
    Endpoint("GET", "/healthz", [("anonymous", 200)]),
]


@pytest.mark.parametrize("endpoint", TABLE, ids=[f"{i}-{e.id}" for i, e in enumerate(TABLE)])
async def test_each_caller_gets_what_the_table_says(seeded: Seeded, endpoint: Endpoint) -> None:
    path = endpoint.path.replace(MINE, seeded.mentor_request).replace(THEIRS, seeded.mentee_request)
    concrete = Endpoint(
        endpoint.method, path, endpoint.expect, endpoint.body, endpoint.params, endpoint.counts
    )
    assert await mismatches(seeded.client, concrete) == []


async def test_outcomes_are_aggregates_suppressed_below_k(seeded: Seeded) -> None:
    """One answer is fewer than k people: an admin of the program sees nothing of it."""
    answer = await seeded.client.get("/programs/prg-a/outcomes", headers=headers_of("admin-a"))
    body = answer.json()
    assert body["k_anonymity"] >= 2
    assert all(c["answers"] is None or c["answers"]["people"] == 0 for c in body["feedback"])
    assert "comment" not in answer.text and "pair-a-mentee" not in answer.text
