"""Who may call which matching endpoint: every endpoint, every kind of caller.

Program prg-a has mentors m-1 and m-2, mentees e-1 and e-2, and a pair (m-1, e-1) that e-1 asked
for; prg-b has mentor m-9 and mentee e-9. Admin A runs prg-a, admin B prg-b; the
platform admin runs both. Pairs and runs out of reach answer 404 (their ids reveal
nothing); programs out of an admin's claim answer 403 with the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from matching_service_fixtures import mentee, mentor, program_definition

from servicekit.runtime import ServiceContext
from servicekit.settings import settings_for
from servicekit.unit_of_work import unit_of_work
from services.matching import handlers
from services.matching.adapters.repository import PostgresMatchingRepository
from services.matching.bootstrap import DEFINITION
from services.matching.entrypoints.http import routes
from services.matching.settings import MatchingSettings
from tests.fixtures.authz import CALLERS, Endpoint, api, migrated_pool, mismatches

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Seeded:
    """The client and the ids the tables need."""

    client: httpx.AsyncClient
    pair_id: str
    run_id: str


async def _seed(settings: MatchingSettings, context: ServiceContext) -> str:
    async with unit_of_work(context.pool, source="/test", region="local") as uow:
        repo = PostgresMatchingRepository(uow.conn)
        for program_id in ("prg-a", "prg-b"):
            await handlers.create_program(
                program_definition(program_id), by="adm-root", uow=uow, repo=repo
            )
        for joined in (
            mentor("m-1", "prg-a"),
            mentor("m-2", "prg-a"),
            mentee("e-1", "prg-a"),
            mentee("e-2", "prg-a"),
            mentor("m-9", "prg-b"),
            mentee("e-9", "prg-b"),
        ):
            await handlers.record_participant_joined(joined, uow, repo)
        pair = await handlers.request_self_match(
            "prg-a", mentee_id="e-1", mentor_id="m-1", uow=uow, repo=repo
        )
    return pair.pair_id


@pytest.fixture
async def seeded(fresh_database_url: str) -> AsyncIterator[Seeded]:
    settings = settings_for("matching", MatchingSettings)(
        service_name="matching", database_url=fresh_database_url
    )
    assert isinstance(settings, MatchingSettings)
    pool = await migrated_pool(fresh_database_url, "matching", DEFINITION.migrations)
    try:
        context = ServiceContext(pool, settings)
        pair_id = await _seed(settings, context)
        async with api(routes(PostgresMatchingRepository)(context), "matching") as client:
            started = await client.post(
                "/programs/prg-b/match-runs",
                json={"dry_run": True},
                headers={"Authorization": _root()},
            )
            assert started.status_code == 201, started.text
            yield Seeded(client, pair_id, started.json()["run_id"])
    finally:
        await pool.close()


def _root() -> str:
    return CALLERS["platform-admin"]["Authorization"]


PROFILE = mentee("e-1", "prg-a").model_dump(mode="json")
P1, P2, M1 = "participant:e-1", "participant:e-2", "participant:m-1"
PAIR, RUN = "{pair}", "{run}"
EVERYONE_READS = [
    ("anonymous", 401),
    (P1, 200),
    ("admin-a", 200),
    ("admin-b", 200),
    ("service", 200),
]

TABLE = [
    Endpoint("GET", "/programs", EVERYONE_READS),
    Endpoint("GET", "/programs/prg-a", EVERYONE_READS),
    Endpoint(
        "POST",
        "/programs",
        [("anonymous", 401), (P1, 403), ("admin-a", 403), ("platform-admin", 201)],
        body=program_definition("prg-c").model_dump(mode="json"),
    ),
    Endpoint(
        "PUT",
        "/programs/prg-a",
        [(P1, 403), ("admin-b", 403), ("admin-a", 200)],
        body=program_definition("prg-a", name="Renamed").model_dump(mode="json"),
    ),
    Endpoint(
        "POST",
        "/programs/prg-a/close",
        [(P1, 403), ("admin-b", 403), ("admin-a", 200)],
        body={"reason": "completed"},
    ),
    Endpoint(
        "GET",
        "/programs/prg-a/audit",
        [(P1, 403), ("admin-b", 403), ("admin-a", 200), ("service", 200)],
    ),
    Endpoint(
        "POST",
        "/programs/prg-a/participants",
        [(P2, 403), ("admin-b", 403), ("participant:m-5", 202)],
        body=mentor("m-5", "prg-a").model_dump(mode="json"),
    ),
    Endpoint(
        "GET",
        "/programs/prg-a/participants",
        [(P1, 403), ("admin-b", 403), ("admin-a", 200), ("platform-admin", 200)],
        counts={"admin-a": 4},
    ),
    Endpoint(
        "GET",
        "/programs/prg-a/participants/e-1",
        [(P1, 200), (P2, 403), ("admin-b", 403), ("admin-a", 200), ("service", 200)],
    ),
    Endpoint(
        "PUT",
        "/programs/prg-a/participants/e-1",
        [(P2, 403), ("admin-b", 403), (P1, 202)],
        body=PROFILE,
    ),
    Endpoint(
        "POST",
        "/programs/prg-a/participants/e-1/leave",
        [(P2, 403), ("admin-b", 403), (P1, 202)],
        body={},
    ),
    Endpoint(
        "POST",
        "/programs/prg-a/participants/e-1/screening",
        [(P1, 403), ("admin-b", 403), ("admin-a", 202)],
        body={"outcome": "passed"},
    ),
    Endpoint(
        "POST",
        "/programs/prg-a/participants/e-1/training",
        [(P1, 403), ("admin-b", 403), ("admin-a", 202)],
        body={"course_id": "crs-1"},
    ),
    Endpoint(
        "POST",
        "/programs/prg-a/participants/e-1/forget",
        [("anonymous", 401), (P2, 403), ("admin-b", 403), (P1, 202)],
    ),
    Endpoint(
        "POST",
        "/programs/prg-a/participants/e-2/forget",
        [("service", 202), ("admin-a", 202)],
    ),
    Endpoint(
        "POST",
        "/programs/prg-a/match-runs",
        [(P1, 403), ("admin-b", 403), ("admin-a", 201)],
        body={"dry_run": True},
    ),
    Endpoint("GET", f"/match-runs/{RUN}", [(P1, 403), ("admin-a", 404), ("admin-b", 200)]),
    Endpoint("POST", f"/match-runs/{RUN}/discard", [(P1, 403), ("admin-a", 404), ("admin-b", 200)]),
    Endpoint("POST", f"/match-runs/{RUN}/publish", [(P1, 403), ("admin-a", 404), ("admin-b", 200)]),
    Endpoint(
        "GET",
        "/programs/prg-a/proposals",
        [(P1, 200), (P2, 200), ("admin-b", 403), ("admin-a", 200)],
        counts={P1: 1, P2: 0, "admin-a": 1},
    ),
    Endpoint(
        "GET",
        "/programs/prg-a/pairs",
        [(P1, 200), (P2, 200), ("admin-b", 403), ("admin-a", 200), ("service", 200)],
        counts={P1: 1, P2: 0, "admin-a": 1, "service": 1},
    ),
    Endpoint(
        "GET",
        f"/pairs/{PAIR}",
        [(P1, 200), (M1, 200), (P2, 404), ("admin-b", 404), ("admin-a", 200), ("service", 200)],
    ),
    Endpoint(
        "GET",
        f"/pairs/{PAIR}/explanation",
        [(P1, 200), (P2, 404), ("admin-b", 404), ("admin-a", 200)],
    ),
    Endpoint("POST", f"/pairs/{PAIR}/accept", [(P2, 404), ("admin-a", 403), (M1, 200)]),
    Endpoint("POST", f"/pairs/{PAIR}/decline", [(P2, 404), ("admin-a", 403), (M1, 200)]),
    Endpoint(
        "POST", f"/pairs/{PAIR}/end", [(P2, 404), ("admin-b", 404), ("admin-a", 409)], body={}
    ),
    Endpoint(
        "POST",
        f"/pairs/{PAIR}/veto",
        [(P1, 403), ("admin-b", 404), ("admin-a", 200)],
        body={"reason": "conflict of interest"},
    ),
    Endpoint(
        "POST",
        "/programs/prg-a/self-match-requests",
        [("admin-a", 403), ("service", 403), (P2, 201)],
        body={"mentor_id": "m-2"},
    ),
    Endpoint(
        "POST",
        "/programs/prg-a/manual-pairs",
        [(P1, 403), ("admin-b", 403), ("admin-a", 201)],
        body={"mentor_id": "m-2", "mentee_id": "e-2", "reason": "asked for"},
    ),
    Endpoint(
        "POST",
        "/programs/prg-a/vetoes",
        [(P1, 403), ("admin-b", 403), ("admin-a", 201)],
        body={"mentor_id": "m-1", "mentee_id": "e-2", "reason": "same team"},
    ),
    Endpoint("GET", "/healthz", [("anonymous", 200)]),
    Endpoint("GET", "/metrics", [("anonymous", 200)]),
]


@pytest.mark.parametrize("endpoint", TABLE, ids=[e.id for e in TABLE])
async def test_each_caller_gets_what_the_table_says(seeded: Seeded, endpoint: Endpoint) -> None:
    path = endpoint.path.replace(PAIR, seeded.pair_id).replace(RUN, seeded.run_id)
    concrete = Endpoint(
        endpoint.method, path, endpoint.expect, endpoint.body, endpoint.params, endpoint.counts
    )
    assert await mismatches(seeded.client, concrete) == []
