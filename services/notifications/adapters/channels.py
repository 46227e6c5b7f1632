"""Delivery channels: e-mail over SMTP (aiosmtplib) and chat webhooks (httpx).

A channel either accepts a message or raises :class:`SendError` saying whether the
failure is transient (try again later) or permanent. Every message carries its stable
id: the e-mail ``Message-ID`` header, the webhook ``Idempotency-Key`` header and a field
of the JSON payload, so receivers can drop a copy sent twice.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from email import errors
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import urlsplit

import aiosmtplib
import httpx

from schemas.notifications import Channel
from services.notifications.adapters.templates import Rendered
from services.notifications.domain.chat import slack_payload, teams_payload
from services.notifications.domain.delivery import SendError
from services.notifications.domain.planning import CalendarPart
from services.notifications.domain.preferences import ChatFormat, Contact, Preferences
from services.notifications.settings import NotificationsSettings


@dataclass(frozen=True)
class Outgoing:
    """Everything a channel needs to deliver one message."""

    message_id: str
    kind: str
    contact: Contact
    preferences: Preferences
    rendered: Rendered
    calendar: CalendarPart | None
    sent_at: datetime


class MessageChannel(ABC):
    """Delivers messages on one channel."""

    channel: Channel

    @abstractmethod
    async def send(self, outgoing: Outgoing) -> None:
        """Deliver ``outgoing`` or raise :class:`SendError`."""


def one_line(text: str) -> str:
    """``text`` on one line: control characters (a CR or LF in a name) become spaces."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def recipient_address(contact: Contact) -> Address:
    """``Name <address>``, quoted as needed (``"Rahman, Aisha" <…>``); a permanent
    ``invalid_address`` error when the address cannot be written in a header."""
    try:
        return Address(display_name=one_line(contact.display_name), addr_spec=contact.email)
    except (ValueError, IndexError, errors.HeaderParseError) as exc:
        raise SendError("invalid_address", transient=False, detail=str(exc)) from exc


def build_email(outgoing: Outgoing, *, sender: str, domain: str) -> EmailMessage:
    """The MIME message: text and HTML alternatives, plus the invite when there is one."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient_address(outgoing.contact)
    message["Subject"] = one_line(outgoing.rendered.subject)
    message["Date"] = format_datetime(outgoing.sent_at)
    message["Message-ID"] = f"<{outgoing.message_id}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Upward-Notification-Kind"] = outgoing.kind
    message.set_content(outgoing.rendered.text)
    message.add_alternative(outgoing.rendered.html, subtype="html")
    if outgoing.calendar is not None:
        method = outgoing.calendar.method
        message.add_attachment(
            outgoing.calendar.ics,
            subtype="calendar",
            filename="cancel.ics" if method == "CANCEL" else "invite.ics",
            params={"method": method},
        )
    return message


_AUTH_CODES = frozenset({530, 534, 535, 538})
"""Authentication replies: a configuration problem an operator can fix, so retried."""


def smtp_error(exc: Exception) -> SendError:
    """Classify an SMTP failure: 5xx replies are permanent (except AUTH), the rest transient."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    code = getattr(exc, "code", None)
    if isinstance(exc, aiosmtplib.SMTPResponseException) and isinstance(code, int):
        permanent = 500 <= code < 600 and code not in _AUTH_CODES
        return SendError(f"smtp_{code}", transient=not permanent, detail=str(exc))
    if isinstance(exc, ssl.SSLError):  # e.g. an untrusted certificate: an operator's fix
        return SendError("smtp_tls", transient=True, detail=str(exc))
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return SendError("smtp_timeout", transient=True, detail=str(exc))
    return SendError("smtp_unreachable", transient=True, detail=str(exc))


class SmtpChannel(MessageChannel):
    """E-mail over SMTP, with STARTTLS or implicit TLS and optional AUTH."""

    channel = Channel.EMAIL

    def __init__(self, settings: NotificationsSettings) -> None:
        self._s = settings
        self._local_hostname: str | None = None

    async def _helo_name(self) -> str:
        """This host's name for EHLO (what aiosmtplib would look up), looked up once."""
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    async def send(self, outgoing: Outgoing) -> None:
        """Hand the message to the SMTP server."""
        s = self._s
        message = build_email(outgoing, sender=s.mail_from, domain=s.message_domain)
        try:
            await aiosmtplib.send(
                message,
                sender=parseaddr(s.mail_from)[1],
                recipients=[outgoing.contact.email],
                hostname=s.smtp_host,
                port=s.smtp_port,
                local_hostname=await self._helo_name(),
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                use_tls=s.smtp_tls == "tls",
                start_tls=s.smtp_tls == "starttls",
                validate_certs=s.smtp_validate_certs,
                cert_bundle=s.smtp_cert_bundle,
                timeout=s.smtp_timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise smtp_error(exc) from exc


class WebhookChannel(MessageChannel):
    """Chat messages posted to the person's incoming webhook (Slack or Teams JSON)."""

    channel = Channel.CHAT

    def __init__(self, settings: NotificationsSettings) -> None:
        self._s = settings

    async def send(self, outgoing: Outgoing) -> None:
        """POST the payload; 2xx is success, 408/429/5xx and network errors are transient."""
        url = self._url(outgoing.preferences)
        headers = {"Idempotency-Key": outgoing.message_id, "User-Agent": "Upward-Notifications"}
        try:
            async with httpx.AsyncClient(timeout=self._s.webhook_timeout_s) as client:
                response = await client.post(url, json=chat_payload(outgoing), headers=headers)
        except httpx.HTTPError as exc:
            raise SendError("webhook_unreachable", transient=True, detail=repr(exc)) from exc
        if response.is_success:
            return
        status = response.status_code
        transient = status in (408, 425, 429) or status >= 500
        raise SendError(f"webhook_{status}", transient=transient, detail=response.text[:200])

    def _url(self, preferences: Preferences) -> str:
        url = preferences.chat_webhook_url
        if url is None:
            raise SendError("no_webhook_url", transient=False)
        allowed = self._s.webhook_allowed_hosts
        if allowed and urlsplit(url).hostname not in allowed:
            raise SendError("webhook_host_not_allowed", transient=False)
        return url


def chat_payload(outgoing: Outgoing) -> dict[str, object]:
    """The JSON body for the person's chat format."""
    rendered = outgoing.rendered
    if outgoing.preferences.chat_format is ChatFormat.TEAMS:
        return teams_payload(
            message_id=outgoing.message_id,
            title=rendered.subject,
            text=rendered.content,
            link=rendered.link,
        )
    return slack_payload(
        message_id=outgoing.message_id,
        kind=outgoing.kind,
        title=rendered.subject,
        text=rendered.content,
        link=rendered.link,
    )
