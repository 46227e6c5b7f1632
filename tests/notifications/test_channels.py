"""The channels against real receivers: aiosmtpd for e-mail, a local HTTP server for chat."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from receivers import RunningSmtp, SmtpCertificates, WebhookReceiver, notifications_settings

from schemas.sessions import SessionCancelled, SessionScheduled
from services.notifications.adapters.channels import Outgoing, SmtpChannel, WebhookChannel
from services.notifications.adapters.templates import TemplateRenderer
from services.notifications.domain.delivery import SendError
from services.notifications.domain.planning import CalendarPart
from services.notifications.domain.preferences import ChatFormat, Contact, Preferences
from upward.stack import free_ports

CONTACT = Contact(person_id="emp-00231", display_name="Helen Park", email="helen.park@example.com")
WHEN = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
RENDERED = TemplateRenderer().render(
    "session_invite",
    locale="en",
    context={
        "side": "mentee",
        "partner_name": "Aisha Rahman",
        "program_name": "Digital Fluency",
        "starts_at": "2025-03-11T15:00:00+00:00",
        "ends_at": "2025-03-11T16:00:00+00:00",
        "sequence": 1,
        "agenda": ["Posting on social media"],
        "link": "https://app.example/pairs/pair-1",
    },
    recipient_name="Helen Park",
    zone=ZoneInfo("Europe/London"),
    has_calendar=True,
)


def outgoing(calendar: CalendarPart | None = None, **prefs: object) -> Outgoing:
    return Outgoing(
        message_id="ntf-abc123",
        kind="session_invite",
        contact=CONTACT,
        preferences=Preferences(**prefs),  # type: ignore[arg-type]
        rendered=RENDERED,
        calendar=calendar,
        sent_at=WHEN,
    )


async def test_email_arrives_with_headers_both_parts_and_the_invite(
    smtp_server: RunningSmtp,
) -> None:
    ics = SessionScheduled.example().ics
    channel = SmtpChannel(notifications_settings(smtp_port=smtp_server.port))
    await channel.send(outgoing(CalendarPart(ics, "REQUEST")))
    (message,) = smtp_server.inbox.messages
    assert smtp_server.inbox.envelopes == [("no-reply@upward.example", ["helen.park@example.com"])]
    assert message["From"] == "Upward <no-reply@upward.example>"
    assert message["To"] == "Helen Park <helen.park@example.com>"
    assert message["Subject"] == RENDERED.subject
    assert message["Message-ID"] == "<ntf-abc123@upward.example>"
    assert message["Date"] == "Mon, 03 Mar 2025 09:00:00 +0000"
    assert message["Auto-Submitted"] == "auto-generated"
    body = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert body is not None and body.get_content().replace("\r\n", "\n") == RENDERED.text
    assert html is not None and "<h1" in html.get_content()
    (invite,) = list(message.iter_attachments())
    assert invite.get_content_type() == "text/calendar"
    assert invite.get_param("method") == "REQUEST"
    assert invite.get_filename() == "invite.ics"
    assert invite.get_content().replace("\r\n", "\n") == ics.replace("\r\n", "\n")


async def test_cancellation_is_attached_with_method_cancel(smtp_server: RunningSmtp) -> None:
    ics = SessionCancelled.example().ics
    await SmtpChannel(notifications_settings(smtp_port=smtp_server.port)).send(
        outgoing(CalendarPart(ics, "CANCEL"))
    )
    (invite,) = list(smtp_server.inbox.messages[0].iter_attachments())
    assert invite.get_param("method") == "CANCEL" and "METHOD:CANCEL" in invite.get_content()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_smtp_auth_is_used_when_configured(smtp_server_with_auth: RunningSmtp) -> None:
    port = smtp_server_with_auth.port
    good = notifications_settings(smtp_port=port, smtp_username="upward", smtp_password="s3cret")
    await SmtpChannel(good).send(outgoing())
    assert smtp_server_with_auth.inbox.logins == ["upward"]
    anonymous = notifications_settings(smtp_port=port)
    with pytest.raises(SendError) as refused:
        await SmtpChannel(anonymous).send(outgoing())
    assert refused.value.code == "smtp_530" and refused.value.transient
    assert len(smtp_server_with_auth.inbox.messages) == 1


@pytest.mark.parametrize(
    ("mode", "server"), [("starttls", "smtp_server_starttls"), ("tls", "smtp_server_implicit_tls")]
)
async def test_tls_with_the_servers_certificate_checked(
    mode: str, server: str, smtp_certificates: SmtpCertificates, request: pytest.FixtureRequest
) -> None:
    running: RunningSmtp = request.getfixturevalue(server)
    settings = notifications_settings(
        smtp_port=running.port, smtp_tls=mode, smtp_cert_bundle=smtp_certificates.ca_file
    )
    await SmtpChannel(settings).send(outgoing())
    assert running.inbox.encrypted == [True]
    assert running.inbox.messages[0]["Message-ID"] == "<ntf-abc123@upward.example>"


async def test_a_server_requiring_starttls_refuses_plain_text(
    smtp_server_starttls: RunningSmtp,
) -> None:
    plain = notifications_settings(smtp_port=smtp_server_starttls.port, smtp_tls="none")
    with pytest.raises(SendError) as refused:
        await SmtpChannel(plain).send(outgoing())
    assert refused.value.code == "smtp_530" and refused.value.transient
    assert smtp_server_starttls.inbox.messages == []


async def test_an_untrusted_certificate_is_refused_unless_checks_are_off(
    smtp_server_starttls: RunningSmtp,
) -> None:
    port = smtp_server_starttls.port
    checked = notifications_settings(smtp_port=port, smtp_tls="starttls")
    with pytest.raises(SendError) as untrusted:
        await SmtpChannel(checked).send(outgoing())
    assert untrusted.value.code == "smtp_tls" and untrusted.value.transient
    assert "CERTIFICATE_VERIFY_FAILED" in str(untrusted.value)
    assert smtp_server_starttls.inbox.messages == []
    unchecked = notifications_settings(
        smtp_port=port, smtp_tls="starttls", smtp_validate_certs=False
    )
    await SmtpChannel(unchecked).send(outgoing())
    assert smtp_server_starttls.inbox.encrypted == [True]


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("Rahman, Aisha", '"Rahman, Aisha" <helen.park@example.com>'),
        ("Helen\r\nBcc: intruder@example.com", "Helen Bcc: intruder@example.com"),
    ],
)
async def test_names_cannot_add_recipients_or_headers(
    smtp_server: RunningSmtp, name: str, header: str
) -> None:
    contact = CONTACT.model_copy(update={"display_name": name})
    message = replace(outgoing(), contact=contact)
    await SmtpChannel(notifications_settings(smtp_port=smtp_server.port)).send(message)
    (received,) = smtp_server.inbox.messages
    assert smtp_server.inbox.envelopes == [("no-reply@upward.example", ["helen.park@example.com"])]
    assert [a.addr_spec for a in received["To"].addresses] == ["helen.park@example.com"]
    assert header in str(received["To"])
    assert received["Bcc"] is None


async def test_an_address_that_cannot_be_written_is_a_permanent_failure(
    smtp_server: RunningSmtp,
) -> None:
    contact = CONTACT.model_copy(update={"email": "a,b@example.com"})
    with pytest.raises(SendError) as refused:
        await SmtpChannel(notifications_settings(smtp_port=smtp_server.port)).send(
            replace(outgoing(), contact=contact)
        )
    assert refused.value.code == "invalid_address" and not refused.value.transient
    assert smtp_server.inbox.messages == []


async def test_refused_message_is_a_permanent_failure(smtp_server: RunningSmtp) -> None:
    smtp_server.inbox.reply = "550 5.1.1 mailbox unavailable"
    with pytest.raises(SendError) as refused:
        await SmtpChannel(notifications_settings(smtp_port=smtp_server.port)).send(outgoing())
    assert refused.value.code == "smtp_550" and not refused.value.transient


async def test_busy_server_is_a_transient_failure(smtp_server: RunningSmtp) -> None:
    smtp_server.inbox.reply = "451 4.3.0 try again later"
    with pytest.raises(SendError) as busy:
        await SmtpChannel(notifications_settings(smtp_port=smtp_server.port)).send(outgoing())
    assert busy.value.code == "smtp_451" and busy.value.transient


async def test_server_down_is_a_transient_failure() -> None:
    closed = free_ports(1)[0]
    with pytest.raises(SendError) as down:
        await SmtpChannel(notifications_settings(smtp_port=closed)).send(outgoing())
    assert down.value.code == "smtp_unreachable" and down.value.transient


async def test_slack_webhook_receives_the_documented_payload(
    webhook_receiver: WebhookReceiver,
) -> None:
    channel = WebhookChannel(notifications_settings())
    await channel.send(outgoing(channels=["chat"], chat_webhook_url=webhook_receiver.url()))
    (call,) = webhook_receiver.calls
    assert call.path == "/hooks/team"
    assert call.headers["Idempotency-Key"] == "ntf-abc123"
    assert call.headers["Content-Type"] == "application/json"
    assert call.body["text"].startswith(RENDERED.subject)
    assert call.body["blocks"][0]["text"]["text"] == RENDERED.subject
    assert call.body["metadata"]["event_payload"]["message_id"] == "ntf-abc123"
    assert "Dear" not in call.body["blocks"][1]["text"]["text"]


async def test_teams_webhook_receives_an_adaptive_card(webhook_receiver: WebhookReceiver) -> None:
    prefs = {
        "channels": ["chat"],
        "chat_webhook_url": webhook_receiver.url("/teams"),
        "chat_format": ChatFormat.TEAMS,
    }
    await WebhookChannel(notifications_settings()).send(outgoing(**prefs))
    (call,) = webhook_receiver.calls
    card = call.body["attachments"][0]["content"]
    assert call.body["type"] == "message" and card["type"] == "AdaptiveCard"
    assert card["body"][0]["id"] == "ntf-abc123"


@pytest.mark.parametrize(("status", "transient"), [(500, True), (429, True), (404, False)])
async def test_webhook_errors_are_classified(
    webhook_receiver: WebhookReceiver, status: int, transient: bool
) -> None:
    webhook_receiver.statuses = [status]
    with pytest.raises(SendError) as failed:
        await WebhookChannel(notifications_settings()).send(
            outgoing(channels=["chat"], chat_webhook_url=webhook_receiver.url())
        )
    assert failed.value.code == f"webhook_{status}" and failed.value.transient is transient


async def test_webhook_host_outside_the_allow_list_is_refused(
    webhook_receiver: WebhookReceiver,
) -> None:
    channel = WebhookChannel(notifications_settings(webhook_allowed_hosts=["hooks.slack.com"]))
    with pytest.raises(SendError, match="webhook_host_not_allowed"):
        await channel.send(outgoing(channels=["chat"], chat_webhook_url=webhook_receiver.url()))
    assert webhook_receiver.calls == []
