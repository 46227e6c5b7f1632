"""Real receivers for the notifications tests: an SMTP server and a webhook endpoint.

An aiosmtpd server on a free port (it can refuse messages or require AUTH) and a small
threaded HTTP server that records every POST and answers with the status codes it is
given. Both listen on 127.0.0.1 only. Also: the service's settings for tests.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from servicekit.settings import settings_for
from services.notifications.settings import NotificationsSettings
from upward.stack import free_ports


@dataclass
class SmtpInbox:
    """What the test SMTP server received, and how it answers."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    reply: str | None = None
    """When set (e.g. ``"550 5.1.1 mailbox unavailable"``), DATA is refused with it."""
    logins: list[str] = field(default_factory=list)
    encrypted: list[bool] = field(default_factory=list)
    """Per message received: whether its session was under TLS."""

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.reply is not None:
            return self.reply
        content = envelope.original_content or b""
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        implicit = server.transport.get_extra_info("ssl_object") is not None
        self.encrypted.append(session.ssl is not None or implicit)
        return "250 OK"

    def authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == b"s3cret"
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok)

    def by_message_id(self) -> dict[str, list[EmailMessage]]:
        found: dict[str, list[EmailMessage]] = {}
        for m in self.messages:
            found.setdefault(str(m["Message-ID"]), []).append(m)
        return found


@dataclass
class RunningSmtp:
    inbox: SmtpInbox
    port: int


def start_smtp(
    *,
    require_auth: bool = False,
    inbox: SmtpInbox | None = None,
    starttls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
) -> tuple[Controller, RunningSmtp]:
    """An SMTP server on a free port: plain, or requiring STARTTLS, or implicit TLS."""
    inbox = inbox or SmtpInbox()
    port = free_ports(1)[0]
    options: dict[str, Any] = {}
    if require_auth:
        options = {"authenticator": inbox.authenticate, "auth_require_tls": False}
        options["auth_required"] = True
    if starttls is not None:
        options |= {"tls_context": starttls, "require_starttls": True}
    if implicit_tls is not None:
        options["ssl_context"] = implicit_tls
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    return controller, RunningSmtp(inbox, port)


@dataclass(frozen=True)
class SmtpCertificates:
    """A throwaway CA (its PEM file) and a server TLS context for 127.0.0.1 it signed."""

    ca_file: str
    server: ssl.SSLContext


def make_certificates(directory: Path) -> SmtpCertificates:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    ca_file = directory / "upward-test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return SmtpCertificates(str(ca_file), server)


@dataclass
class WebhookCall:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class WebhookReceiver:
    """Records POSTs; answers with ``statuses`` in order, then 200."""

    port: int
    calls: list[WebhookCall] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def url(self, path: str = "/hooks/team") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
            receiver.calls.append(WebhookCall(self.path, dict(self.headers.items()), body))
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"no")

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def notifications_settings(**overrides: Any) -> NotificationsSettings:
    """Settings for tests: plain SMTP on 127.0.0.1, quick retries, no ambient env."""
    values: dict[str, Any] = {
        "service_name": "notifications",
        "database_url": "postgresql://unused",
        "smtp_host": "127.0.0.1",
        "smtp_tls": "none",
        "smtp_timeout_s": 5.0,
        "delivery_interval_s": 3600.0,
        "delivery_max_attempts": 3,
        "delivery_initial_backoff_s": 60.0,
        "delivery_max_backoff_s": 600.0,
        "delivery_lease_s": 300.0,
        "mail_from": "Upward <no-reply@upward.example>",
        "app_url": "https://app.upward.example",
        "admin_url": "https://admin.upward.example",
    }
    settings = settings_for("notifications", base=NotificationsSettings)(**(values | overrides))
    assert isinstance(settings, NotificationsSettings)
    return settings
