"""Who may call which sessions endpoint: every endpoint, every kind of caller.

Program prg-a has the pair pair-a (mentor emp-m, mentee emp-e); program prg-b the pair
pair-b (emp-m2, emp-e2); each pair has its first two sessions scheduled. Admin A runs prg-a,
admin B prg-b. A session out of the caller's reach answers 404, as a missing one; admins
never record what happened nor read notes (403); services cannot act on sessions (403).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sessions_harness import START, formed, participant, program, settings

from schemas.base import EventData
from servicekit.clock import ManualClock
from servicekit.runtime import ServiceContext
from servicekit.unit_of_work import unit_of_work
from services.sessions.adapters.repository import PostgresSessionsRepository
from services.sessions.bootstrap import build_definition
from services.sessions.entrypoints.http import routers
from services.sessions.handlers import build_handlers
from services.sessions.service_layer import Dependencies, Policy
from tests.fixtures.authz import Endpoint, api, headers_of, migrated_pool, mismatches

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Seeded:
    """The client and the first session of each pair."""

    client: httpx.AsyncClient
    session_a: str
    session_b: str


def _events() -> list[EventData]:
    found: list[EventData] = []
    for program_id, pair_id, mentor, mentee in (
        ("prg-a", "pair-a", "emp-m", "emp-e"),
        ("prg-b", "pair-b", "emp-m2", "emp-e2"),
    ):
        people = [
            participant(mentor, "Europe/London", role="mentor", program_id=program_id),
            participant(mentee, "Europe/London", role="mentee", program_id=program_id),
        ]
        pair = formed(pair_id, mentor, mentee).model_copy(update={"program_id": program_id})
        found += [program(program_id=program_id), *people, pair]
    return found


@pytest.fixture
async def seeded(fresh_database_url: str) -> AsyncIterator[Seeded]:
    config = settings(database_url=fresh_database_url, calendar_feed_secret="feed-secret")
    pool = await migrated_pool(fresh_database_url, "sessions", build_definition(config).migrations)
    clock = ManualClock(START)
    deps = Dependencies(Policy.from_settings(config), PostgresSessionsRepository)
    handlers = build_handlers(deps)
    try:
        for event in _events():
            async with unit_of_work(pool, source="/test", region="local", clock=clock) as uow:
                await handlers[type(event)](event, uow)
        async with pool.acquire() as conn:
            repo = PostgresSessionsRepository(conn)
            firsts = [(await repo.sessions_of_pair(pair_id=p))[0] for p in ("pair-a", "pair-b")]
        context = ServiceContext(pool, config, clock=clock)
        async with api(routers(context, deps, config), "sessions") as client:
            yield Seeded(client, firsts[0].session_id, firsts[1].session_id)
    finally:
        await pool.close()


M, E, X = "participant:emp-m", "participant:emp-e", "participant:emp-e2"
A = "{session_a}"
HELD = {"attendees": ["emp-m", "emp-e"], "duration_minutes": 45}

TABLE = [
    Endpoint(
        "GET",
        "/sessions",
        [("anonymous", 401), (M, 200), (X, 200), ("admin-a", 200), ("platform-admin", 200)],
        counts={M: 2, X: 2, "admin-a": 2, "platform-admin": 4},
    ),
    Endpoint("GET", "/sessions", [("admin-b", 200), ("service", 403)], counts={"admin-b": 2}),
    Endpoint(
        "GET",
        "/sessions",
        [("admin-b", 200), (X, 200)],
        params={"pair_id": "pair-a"},
        counts={"admin-b": 0, X: 0},
    ),
    Endpoint(
        "GET",
        f"/sessions/{A}",
        [(M, 200), (E, 200), (X, 404), ("admin-a", 200), ("admin-b", 404), ("service", 403)],
    ),
    Endpoint(
        "GET",
        f"/sessions/{A}/invite.ics",
        [(M, 200), (X, 404), ("admin-a", 200), ("admin-b", 404)],
    ),
    Endpoint(
        "GET",
        f"/sessions/{A}/notes",
        [(E, 200), (X, 404), ("admin-a", 403), ("platform-admin", 403)],
    ),
    Endpoint(
        "POST",
        f"/sessions/{A}/held",
        [(X, 404), ("admin-b", 404), ("admin-a", 403), ("service", 403)],
        body=HELD,
    ),
    Endpoint(
        "POST",
        f"/sessions/{A}/missed",
        [(X, 404), ("admin-b", 404), ("admin-a", 403)],
        body={},
    ),
    Endpoint(
        "POST",
        f"/sessions/{A}/reschedule",
        [(X, 404), ("admin-b", 404), ("service", 403), ("admin-a", 200)],
        body={},
    ),
    Endpoint(
        "POST",
        f"/sessions/{A}/cancel",
        [(X, 404), ("admin-b", 404), ("service", 403), (E, 200)],
    ),
    Endpoint(
        "GET",
        "/pairs",
        [(M, 200), (X, 200), ("admin-a", 200), ("admin-b", 200), ("platform-admin", 200)],
        counts={M: 1, X: 1, "admin-a": 1, "admin-b": 1, "platform-admin": 2},
    ),
    Endpoint(
        "GET",
        "/pairs",
        [("admin-b", 200), ("service", 403)],
        params={"program_id": "prg-a"},
        counts={"admin-b": 0},
    ),
    Endpoint(
        "GET",
        "/me/calendar-feed",
        [("anonymous", 401), (M, 200), ("admin-a", 403), ("service", 403)],
    ),
    Endpoint("GET", "/healthz", [("anonymous", 200)]),
]


@pytest.mark.parametrize("endpoint", TABLE, ids=[f"{i}-{e.id}" for i, e in enumerate(TABLE)])
async def test_each_caller_gets_what_the_table_says(seeded: Seeded, endpoint: Endpoint) -> None:
    path = endpoint.path.replace(A, seeded.session_a)
    concrete = Endpoint(
        endpoint.method, path, endpoint.expect, endpoint.body, endpoint.params, endpoint.counts
    )
    assert await mismatches(seeded.client, concrete) == []


async def test_a_participant_cannot_read_another_participants_feed(seeded: Seeded) -> None:
    mine = await seeded.client.get("/me/calendar-feed", headers=headers_of(M))
    token = httpx.URL(mine.json()["url"]).params["token"]
    other = await seeded.client.get("/participants/emp-e2/calendar.ics", params={"token": token})
    own = await seeded.client.get("/participants/emp-m/calendar.ics", params={"token": token})
    assert other.status_code == 403 and own.status_code == 200
