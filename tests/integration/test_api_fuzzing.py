"""Schemathesis against each service's OpenAPI document, in process, on a real PostgreSQL.

Every operation of the four services gets generated requests (valid and invalid) with the
platform administrator's credentials from :func:`upward.identity.auth_headers` (the one
place the credentials are decided). Checks: no 5xx, and every response conforms to the
documented schema. The app is reached through schemathesis' in-process ASGI client; its
database pool is opened in the app's lifespan, on the loop that serves the requests.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.python import asgi

from servicekit import db
from servicekit.clock import SystemClock
from servicekit.http import create_http_app, health_router
from servicekit.runtime import ServiceContext, ServiceDefinition
from servicekit.settings import ServiceSettings
from tests.fixtures.infra import PostgresServerInfo
from upward.deploy import settings_class
from upward.identity import PLATFORM_ADMIN, auth_headers
from upward.stack.process import run_sync

pytestmark = pytest.mark.integration

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
CHECKS = [not_a_server_error, response_schema_conformance]
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def definition_of(name: str, service_settings: ServiceSettings) -> ServiceDefinition:
    """The service's definition, built the way its ``__main__`` builds it."""
    if name == "matching":
        from services.matching.bootstrap import DEFINITION as matching

        return matching
    if name == "feedback":
        from services.feedback.bootstrap import DEFINITION as feedback

        return feedback
    if name == "sessions":
        from services.sessions.bootstrap import build_definition

        return build_definition(service_settings)  # type: ignore[arg-type]
    from services.notifications.bootstrap import definition

    return definition(service_settings)  # type: ignore[arg-type]


class ServiceApp:
    """An ASGI app that opens the service's store at lifespan startup, then serves its API."""

    def __init__(self, name: str, database_url: str) -> None:
        # The sessions calendar feed answers 503 until a deployment gives it its secret.
        self.settings = settings_class(name)(
            service_name=name,
            database_url=database_url,
            calendar_feed_secret="fuzzing-calendar-feed-secret",
        )
        self.definition = definition_of(name, self.settings)
        self.pool: asyncpg.Pool | None = None
        self.app: FastAPI | None = None

    async def _start(self) -> None:
        url = self.settings.database_url.get_secret_value()
        self.pool = await db.create_pool(url, min_size=1, max_size=4)
        await db.apply_migrations(self.pool, "servicekit", db.KIT_MIGRATIONS)
        await db.apply_migrations(self.pool, self.definition.name, self.definition.migrations)
        context = ServiceContext(self.pool, self.settings, None, SystemClock())
        self.app = create_http_app(
            title=f"Upward {self.definition.name}",
            version=self.definition.version,
            routers=list(self.definition.routers(context)),
            operations=health_router(liveness=lambda: True, readiness={}),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            assert self.app is not None, "lifespan startup did not run"
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pool is not None:
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def service_schema(postgres: PostgresServerInfo, name: str) -> Iterator[Any]:
    """The service's OpenAPI schema over its in-process app, on a new database."""
    database = f"fuzz_{name}_{uuid.uuid4().hex[:8]}"
    url = run_sync(lambda: postgres.create_database(database))
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", ServiceApp(name, url))
    finally:
        asgi.shutdown_lifespans()  # closes the pool before the database goes
        run_sync(lambda: postgres.drop_database(database))


@pytest.fixture(params=["matching", "sessions", "feedback", "notifications"])
def api(request: pytest.FixtureRequest, postgres: PostgresServerInfo) -> Iterator[Any]:
    yield from service_schema(postgres, request.param)


def operation_failures(operation: Any) -> list[str]:
    """Fuzz one operation; the failure found (hypothesis shrinks it), if any."""

    @FUZZ
    @given(case=operation.as_strategy())
    def fuzz(case: Any) -> None:
        case.call_and_validate(headers=auth_headers(PLATFORM_ADMIN), checks=CHECKS)

    try:
        fuzz()
    except Exception as exc:  # one failure per operation, all reported together
        return [f"{operation.label}: {exc}"]
    return []


def test_every_operation_survives_fuzzing(api: Any) -> None:
    operations = [result.ok() for result in api.get_all_operations()]
    assert operations, "the OpenAPI document lists no operation"
    failures = [failure for operation in operations for failure in operation_failures(operation)]
    assert not failures, "\n\n".join(failures)
