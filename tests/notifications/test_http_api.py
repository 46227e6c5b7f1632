"""The HTTP API on a real database: preferences, the contact directory, deliveries, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from harness import MENTEE, MENTOR, START, Harness
from receivers import notifications_settings

from schemas.pairs import PairFormed
from servicekit.clock import ManualClock
from servicekit.http import create_http_app, health_router
from servicekit.runtime import ServiceContext
from services.notifications.adapters.repository import PostgresNotificationsRepository
from services.notifications.entrypoints.http import build_routers
from tests.fixtures import tokens

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(notifications_pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    context = ServiceContext(notifications_pool, notifications_settings(), clock=ManualClock(START))
    app = create_http_app(
        title="Upward notifications",
        version="test",
        routers=build_routers(PostgresNotificationsRepository)(context),
        operations=health_router(liveness=lambda: True, readiness={}),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notifications") as c:
        yield c


def who(role: str, subject: str) -> dict[str, str]:
    return tokens.unchecked(role, subject) if role != "admin" else tokens.admin(subject)


async def test_openapi_lists_the_services_paths(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert {"/preferences/{person_id}", "/contacts/{person_id}", "/deliveries"} <= set(
        document["paths"]
    )
    assert {"get", "put"} <= set(document["paths"]["/preferences/{person_id}"])
    schema = document["components"]["schemas"]["Preferences"]
    assert {"channels", "quiet_hours", "digest", "chat_webhook_url"} <= set(schema["properties"])


async def test_identity_headers_are_required(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/preferences/{MENTEE}")
    assert response.status_code == 401 and "Bearer" in response.json()["detail"]
    assert (await client.get(f"/preferences/{MENTEE}", headers=who("ceo", "x"))).status_code == 401


async def test_defaults_then_changes_are_read_back(client: httpx.AsyncClient) -> None:
    me = who("participant", MENTEE)
    default = (await client.get(f"/preferences/{MENTEE}", headers=me)).json()
    assert default["preferences"]["channels"] == ["email"]
    assert (
        default["preferences"]["quiet_hours"] is None and default["preferences"]["digest"] is False
    )
    wanted = {
        "channels": ["email", "chat"],
        "chat_webhook_url": "https://hooks.example.com/T1/B2",
        "chat_format": "teams",
        "quiet_hours": {"start": "21:30:00", "end": "07:00:00"},
        "digest": True,
        "digest_time": "17:45:00",
        "timezone": "Asia/Hong_Kong",
    }
    put = await client.put(f"/preferences/{MENTEE}", headers=me, json=wanted)
    assert put.status_code == 200
    read = (await client.get(f"/preferences/{MENTEE}", headers=me)).json()["preferences"]
    assert {k: read[k] for k in wanted} == wanted


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"channels": ["chat"]}, "chat_webhook_url"),
        ({"channels": ["pigeon"]}, "channels"),
        ({"quiet_hours": {"start": "08:00", "end": "08:00"}}, "different"),
        ({"timezone": "Mars/Olympus"}, "time zone"),
        ({"chat_webhook_url": "ftp://files.example.com/x"}, "chat_webhook_url"),
        ({"unknown": 1}, "unknown"),
    ],
)
async def test_bad_preferences_are_refused_with_a_reason(
    client: httpx.AsyncClient, body: dict[str, object], reason: str
) -> None:
    response = await client.put(
        f"/preferences/{MENTEE}", headers=who("participant", MENTEE), json=body
    )
    assert response.status_code == 422
    assert reason in response.text


async def test_participants_reach_only_their_own(client: httpx.AsyncClient) -> None:
    other = who("participant", MENTOR)
    assert (await client.get(f"/preferences/{MENTEE}", headers=other)).status_code == 403
    put = await client.put(f"/preferences/{MENTEE}", headers=other, json={})
    assert put.status_code == 403
    service = who("service", "hr-bot")
    assert (await client.get(f"/preferences/{MENTEE}", headers=service)).status_code == 200


async def test_admins_register_their_own_contact(client: httpx.AsyncClient) -> None:
    body = {"display_name": "Sam Admin", "email": "sam@example.com", "timezone": "Europe/Paris"}
    admin = who("admin", "adm-1")
    assert (await client.put("/contacts/adm-1", headers=admin, json=body)).status_code == 200
    read = (await client.get("/contacts/adm-1", headers=admin)).json()
    assert read == body | {"person_id": "adm-1", "languages": ["en"]}
    assert (await client.put("/contacts/adm-2", headers=admin, json=body)).status_code == 403
    participant = who("participant", "adm-3")
    assert (await client.put("/contacts/adm-3", headers=participant, json=body)).status_code == 403
    bad = await client.put("/contacts/adm-1", headers=admin, json=body | {"email": "nope"})
    assert bad.status_code == 422
    assert (await client.get("/contacts/adm-9", headers=who("service", "s"))).status_code == 404


async def test_deliveries_list_kinds_and_status_without_content(
    client: httpx.AsyncClient, notifications_pool: asyncpg.Pool
) -> None:
    h = Harness(notifications_pool, notifications_settings())
    await h.cast()
    await h.apply(PairFormed.example())
    response = await client.get(
        "/deliveries", params={"recipient_id": MENTEE}, headers=who("participant", MENTEE)
    )
    (row,) = response.json()
    assert row["kind"] == "pair_formed" and row["status"] == "pending"
    assert row["channel"] == "email" and "context" not in row
    forbidden = await client.get(
        "/deliveries", params={"recipient_id": MENTEE}, headers=who("participant", MENTOR)
    )
    assert forbidden.status_code == 403
    as_admin = await client.get(
        "/deliveries", params={"recipient_id": MENTEE}, headers=who("admin", "adm-1")
    )
    assert as_admin.status_code == 200 and len(as_admin.json()) == 1
