"""Fixtures of the notifications tests: real SMTP and webhook receivers, a migrated database."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from http.server import ThreadingHTTPServer

import asyncpg
import pytest
from receivers import (
    RunningSmtp,
    SmtpCertificates,
    WebhookReceiver,
    handler_for,
    make_certificates,
    start_smtp,
)

from servicekit import db
from services.notifications.bootstrap import MIGRATIONS
from upward.stack import free_ports


@pytest.fixture
def smtp_server_with_auth() -> Iterator[RunningSmtp]:
    controller, running = start_smtp(require_auth=True)
    yield running
    controller.stop()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(port=free_ports(1)[0])
    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), handler_for(receiver))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture
async def notifications_pool(fresh_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh database with the kit's and the service's migrations applied."""
    pool = await db.create_pool(fresh_database_url, max_size=12)
    await db.apply_migrations(pool, "servicekit", db.KIT_MIGRATIONS)
    await db.apply_migrations(pool, "notifications", MIGRATIONS)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def smtp_certificates(tmp_path_factory: pytest.TempPathFactory) -> SmtpCertificates:
    """A throwaway CA and a server certificate for 127.0.0.1, made once per run."""
    return make_certificates(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def smtp_server_starttls(smtp_certificates: SmtpCertificates) -> Iterator[RunningSmtp]:
    """An SMTP server that refuses mail until the client has switched to TLS (STARTTLS)."""
    controller, running = start_smtp(starttls=smtp_certificates.server)
    yield running
    controller.stop()


@pytest.fixture
def smtp_server_implicit_tls(smtp_certificates: SmtpCertificates) -> Iterator[RunningSmtp]:
    """An SMTP server that speaks TLS from the first byte (SMTPS)."""
    controller, running = start_smtp(implicit_tls=smtp_certificates.server)
    yield running
    controller.stop()
