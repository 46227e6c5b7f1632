"""Who may call which notifications endpoint: every endpoint, every kind of caller.

The mentor and the mentee of the schema examples have a session scheduled in prg-a, so
each has deliveries planned; admin A runs prg-a, admin B prg-b. People reach only their
own preferences and contact; services anyone's; admins list the deliveries (no content)
of people with sessions in a program they run, a platform admin anyone's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from harness import ADMIN, MENTEE, MENTOR, Harness
from receivers import notifications_settings

from schemas.programs import ProgramCreated
from schemas.sessions import SessionScheduled
from servicekit.runtime import ServiceContext
from services.notifications.adapters.repository import PostgresNotificationsRepository
from services.notifications.entrypoints.http import build_routers
from tests.fixtures.authz import Endpoint, api, mismatches

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(notifications_pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    harness = Harness(notifications_pool, notifications_settings())
    program = ProgramCreated.example().model_copy(update={"program_id": "prg-a"})
    await harness.apply(program)
    await harness.cast()
    await harness.apply(SessionScheduled.example().model_copy(update={"program_id": "prg-a"}))
    assert await harness.deliveries(recipient_id=MENTEE)
    context = ServiceContext(notifications_pool, notifications_settings(), clock=harness.clock)
    routers = build_routers(PostgresNotificationsRepository)(context)
    async with api(routers, "notifications") as client:
        yield client


ME, OTHER = f"participant:{MENTEE}", f"participant:{MENTOR}"
CONTACT = {"display_name": "Sam Admin", "email": "sam@example.com"}
PREFERENCES = {"channels": ["email"], "digest": True}
SELF_OR_SERVICE = [
    ("anonymous", 401),
    (OTHER, 403),
    ("admin-a", 403),
    ("platform-admin", 403),
    ("service", 200),
    (ME, 200),
]

TABLE = [
    Endpoint("GET", f"/preferences/{MENTEE}", SELF_OR_SERVICE),
    Endpoint("PUT", f"/preferences/{MENTEE}", SELF_OR_SERVICE, body=PREFERENCES),
    Endpoint("GET", f"/contacts/{MENTEE}", SELF_OR_SERVICE),
    Endpoint(
        "PUT",
        f"/contacts/{MENTEE}",
        [(ME, 403), ("admin-a", 403), ("platform-admin", 403), ("service", 200)],
        body=CONTACT,
    ),
    Endpoint(
        "PUT",
        f"/contacts/{ADMIN}",
        [(ME, 403), ("admin-a", 403), ("service", 200)],
        body=CONTACT,
    ),
    Endpoint(
        "GET",
        "/deliveries",
        [
            ("anonymous", 401),
            (OTHER, 403),
            ("admin-b", 403),
            ("admin-a", 200),
            ("platform-admin", 200),
            ("service", 200),
            (ME, 200),
        ],
        params={"recipient_id": MENTEE},
    ),
    Endpoint(
        "GET",
        "/deliveries",
        [("admin-a", 403), ("platform-admin", 200)],
        params={"recipient_id": "emp-nobody"},
        counts={"platform-admin": 0},
    ),
    Endpoint("GET", "/healthz", [("anonymous", 200)]),
]


@pytest.mark.parametrize("endpoint", TABLE, ids=[f"{i}-{e.id}" for i, e in enumerate(TABLE)])
async def test_each_caller_gets_what_the_table_says(
    client: httpx.AsyncClient, endpoint: Endpoint
) -> None:
    assert await mismatches(client, endpoint) == []
