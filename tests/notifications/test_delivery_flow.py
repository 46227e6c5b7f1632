"""Events to messages on a real PostgreSQL, a real SMTP server and a real webhook receiver.

Time is a manual clock; delivery rounds run one at a time. Covered: invites with their
iCalendar part, reminders (sent, moved, cancelled), overdue feedback, quiet hours,
digest, rate limit, chat delivery, redelivery, SMTP outage to NotificationFailed,
restart mid-send, unknown contacts, admin notices and erasure.
"""

from __future__ import annotations

import asyncio
from datetime import time, timedelta

import asyncpg
import pytest
from harness import ADMIN, MENTEE, MENTOR, Harness, participant
from prometheus_client import REGISTRY
from receivers import RunningSmtp, WebhookReceiver, notifications_settings

from schemas.feedback import FeedbackRequested, FeedbackSubmitted, PairAtRisk
from schemas.notifications import NotificationFailed, NotificationSent
from schemas.pairs import PairEnded, PairFormed, PairProposed
from schemas.participants import ErasureCompleted, ParticipantForgotten, ParticipantUpdated
from schemas.programs import ProgramUpdated
from schemas.sessions import PairStalled, SessionCancelled, SessionRescheduled, SessionScheduled
from servicekit.unit_of_work import Rejected
from services.notifications.adapters.channels import MessageChannel, Outgoing, SmtpChannel
from services.notifications.domain.preferences import QuietHours
from upward.stack import free_ports

pytestmark = pytest.mark.integration


@pytest.fixture
def harness(notifications_pool: asyncpg.Pool, smtp_server: RunningSmtp) -> Harness:
    return Harness(notifications_pool, notifications_settings(smtp_port=smtp_server.port))


async def sent(h: Harness) -> list[NotificationSent]:
    return await h.emitted("NotificationSent")  # type: ignore[no-any-return]


async def test_session_invite_reaches_both_people_with_the_ics(
    harness: Harness, smtp_server: RunningSmtp
) -> None:
    await harness.cast()
    event = SessionScheduled.example()
    await harness.apply(event)
    assert await harness.round() == 2
    recipients = sorted(str(m["To"]) for m in smtp_server.inbox.messages)
    assert recipients == [
        f"Aisha Rahman <{MENTOR}@example.com>",
        f"Helen Park <{MENTEE}@example.com>",
    ]
    for message in smtp_server.inbox.messages:
        (invite,) = list(message.iter_attachments())
        assert invite.get_content_type() == "text/calendar"
        assert invite.get_param("method") == "REQUEST"
        assert "UID:ses-7f3a9c-01@upward" in invite.get_content()
    helen = next(m for m in smtp_server.inbox.messages if "Helen" in str(m["To"]))
    assert "Tuesday 11 March 2025, 23:00 (Asia/Hong_Kong)" in str(helen["Subject"])
    notes = await sent(harness)
    assert {(n.recipient_id, n.kind.value, n.reference_id) for n in notes} == {
        (MENTOR, "session_invite", event.session_id),
        (MENTEE, "session_invite", event.session_id),
    }
    message_ids = {str(m["Message-ID"]) for m in smtp_server.inbox.messages}
    assert message_ids == {f"<{n.notification_id}@upward.example>" for n in notes}


async def test_reminders_go_24_hours_and_1_hour_before(
    harness: Harness, smtp_server: RunningSmtp
) -> None:
    await harness.cast()
    event = SessionScheduled.example()
    await harness.apply(event)
    await harness.round()
    harness.clock.set(event.starts_at - timedelta(hours=24, minutes=1))
    assert await harness.round() == 0
    harness.clock.set(event.starts_at - timedelta(hours=24))
    assert await harness.round() == 2
    harness.clock.set(event.starts_at - timedelta(hours=1))
    assert await harness.round() == 2
    subjects = [str(m["Subject"]) for m in smtp_server.inbox.messages[2:]]
    assert sum("in 24 hours" in s for s in subjects) == 2
    assert sum("in 1 hour" in s and "24" not in s for s in subjects) == 2
    assert all(not list(m.iter_attachments()) for m in smtp_server.inbox.messages[2:])


async def test_rescheduling_moves_reminders_and_cancelling_drops_them(
    harness: Harness, smtp_server: RunningSmtp
) -> None:
    await harness.cast()
    scheduled = SessionScheduled.example()
    await harness.apply(scheduled)
    moved = SessionRescheduled.example()
    await harness.apply(moved)
    await harness.round()
    kinds = sorted(str(m["X-Upward-Notification-Kind"]) for m in smtp_server.inbox.messages)
    assert kinds == ["session_invite"] * 2 + ["session_update"] * 2
    new_day_before = moved.starts_at - timedelta(hours=24)
    harness.clock.set(new_day_before)
    assert await harness.round() == 2  # the 24 h reminders of the new time
    reminders = await harness.deliveries(kind="session_reminder")
    by_due = {(r["due_at"], r["status"]) for r in reminders}
    assert by_due == {
        (scheduled.starts_at - timedelta(hours=24), "cancelled"),
        (scheduled.starts_at - timedelta(hours=1), "cancelled"),
        (new_day_before, "sent"),
        (moved.starts_at - timedelta(hours=1), "pending"),
    }
    await harness.apply(SessionCancelled.example())
    harness.clock.set(moved.starts_at)
    assert await harness.round() == 2
    cancels = smtp_server.inbox.messages[-2:]
    assert all("cancelled" in str(m["Subject"]) for m in cancels)
    assert {next(iter(m.iter_attachments())).get_param("method") for m in cancels} == {"CANCEL"}
    assert await harness.deliveries(kind="session_reminder", status="pending") == []


async def test_overdue_feedback_reminder_unless_answered(
    harness: Harness, smtp_server: RunningSmtp
) -> None:
    await harness.cast()
    asked = FeedbackRequested.example()
    answered = asked.model_copy(update={"request_id": "fbr-answered"})
    await harness.apply(asked)
    await harness.apply(answered)
    await harness.apply(
        FeedbackSubmitted.example().model_copy(update={"request_id": "fbr-answered"})
    )
    assert await harness.round() == 2
    harness.clock.set(asked.due_at + timedelta(minutes=1))
    assert await harness.round() == 1
    overdue = smtp_server.inbox.messages[-1]
    assert "gentle reminder" in str(overdue["Subject"])
    statuses = {
        r["reference_id"]: r["status"] for r in await harness.deliveries(kind="feedback_overdue")
    }
    assert statuses == {asked.request_id: "sent", "fbr-answered": "cancelled"}


async def test_quiet_hours_delay_a_message_until_they_end(
    harness: Harness, smtp_server: RunningSmtp
) -> None:
    await harness.cast()
    # 09:00 UTC is 17:00 in Hong Kong: Helen's quiet hours (16:00-08:00 local) hold it.
    await harness.set_preferences(MENTEE, quiet_hours=QuietHours(start=time(16), end=time(8)))
    await harness.apply(PairFormed.example())
    assert await harness.round() == 1
    assert [str(m["To"]).split()[0] for m in smtp_server.inbox.messages] == ["Aisha"]
    (held,) = await harness.deliveries(recipient_id=MENTEE)
    assert held["status"] == "pending"
    assert held["due_at"] == harness.clock.now() + timedelta(hours=15)  # 08:00 in Hong Kong
    assert await harness.advance(timedelta(hours=14, minutes=59)) == 0
    assert await harness.advance(timedelta(minutes=1)) == 1
    assert "Helen" in str(smtp_server.inbox.messages[-1]["To"])


async def test_quiet_hours_set_after_planning_still_hold_the_message(
    harness: Harness, smtp_server: RunningSmtp
) -> None:
    await harness.cast()
    await harness.apply(PairFormed.example())
    await harness.set_preferences(MENTEE, quiet_hours=QuietHours(start=time(16), end=time(8)))
    assert await harness.round() == 1
    (held,) = await harness.deliveries(recipient_id=MENTEE)
    assert held["status"] == "pending" and held["attempts"] == 0
    assert held["due_at"] == harness.clock.now() + timedelta(hours=15)


async def test_digest_gathers_non_urgent_messages_but_not_invites(
    harness: Harness, smtp_server: RunningSmtp
) -> None:
    await harness.cast()
    await harness.set_preferences(MENTOR, digest=True, digest_time=time(18, 0), timezone="UTC")
    await harness.apply(PairProposed.example())
    await harness.apply(PairFormed.example())
    await harness.apply(SessionScheduled.example())
    await harness.round()
    to_aisha = [m for m in smtp_server.inbox.messages if "Aisha" in str(m["To"])]
    assert [str(m["X-Upward-Notification-Kind"]) for m in to_aisha] == ["session_invite"]
    await harness.advance(timedelta(hours=9))  # 18:00 UTC
    digest = [m for m in smtp_server.inbox.messages if "Aisha" in str(m["To"])][-1]
    assert str(digest["Subject"]) == "Your Upward digest: 2 updates"
    assert str(digest["Message-ID"]).startswith("<dig-")
    text = digest.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "mentoring pairing is proposed" in text and "Meet your mentoring partner" in text
    kinds = [n.kind.value for n in await sent(harness) if n.recipient_id == MENTOR]
    assert sorted(kinds) == ["pair_formed", "pair_proposed", "session_invite"]


async def test_rate_limit_delays_the_excess_and_drops_nothing(
    notifications_pool: asyncpg.Pool, smtp_server: RunningSmtp
) -> None:
    h = Harness(
        notifications_pool,
        notifications_settings(smtp_port=smtp_server.port, rate_limit_per_hour=2),
    )
    await h.cast()
    for n in range(3):
        request = FeedbackRequested.example().model_copy(update={"request_id": f"fbr-{n}"})
        await h.apply(request)
        h.clock.advance(timedelta(minutes=1))
    assert await h.round() == 2
    (waiting,) = await h.deliveries(kind="feedback_request", status="pending")
    assert waiting["due_at"] == h.clock.now() + timedelta(hours=1)
    assert await h.advance(timedelta(minutes=59)) == 0
    assert await h.advance(timedelta(minutes=1)) == 1
    assert len(smtp_server.inbox.messages) == 3


async def test_chat_and_email_for_a_person_who_chose_both(
    harness: Harness, smtp_server: RunningSmtp, webhook_receiver: WebhookReceiver
) -> None:
    await harness.cast()
    await harness.set_preferences(
        MENTEE, channels=["email", "chat"], chat_webhook_url=webhook_receiver.url()
    )
    await harness.apply(SessionScheduled.example())
    await harness.round()
    (call,) = webhook_receiver.calls
    assert call.body["blocks"][0]["text"]["text"].startswith("Mentoring session with Aisha")
    assert "attached" not in call.body["text"]
    chat_sent = [n for n in await sent(harness) if n.channel.value == "chat"]
    assert [n.recipient_id for n in chat_sent] == [MENTEE]
    assert call.headers["Idempotency-Key"] == chat_sent[0].notification_id
    assert len(smtp_server.inbox.messages) == 2


async def test_a_redelivered_event_sends_nothing_twice(
    harness: Harness, smtp_server: RunningSmtp
) -> None:
    await harness.cast()
    event = await harness.apply(PairFormed.example())
    await harness.round()
    await harness.apply(PairFormed.example(), event=event)  # same envelope, e.g. inbox lost
    await harness.apply(SessionScheduled.example())
    again = await harness.apply(SessionScheduled.example())  # another event, same reminders
    await harness.round()
    await harness.apply(SessionScheduled.example(), event=again)
    await harness.advance(timedelta(days=30))
    by_id = smtp_server.inbox.by_message_id()
    assert all(len(copies) == 1 for copies in by_id.values())
    kinds = sorted(str(m["X-Upward-Notification-Kind"]) for m in smtp_server.inbox.messages)
    assert kinds.count("pair_formed") == 2
    assert kinds.count("session_reminder") == 4  # two sides x (24 h, 1 h), once
    notes = await sent(harness)
    assert len(notes) == len(smtp_server.inbox.messages)


async def test_smtp_outage_is_retried_with_backoff_then_reported_failed(
    notifications_pool: asyncpg.Pool,
) -> None:
    down = free_ports(1)[0]
    h = Harness(notifications_pool, notifications_settings(smtp_port=down, delivery_max_attempts=3))
    await h.cast()
    await h.apply(PairFormed.example())
    assert await h.round() == 2
    rows = await h.deliveries()
    assert {(r["status"], r["attempts"], r["last_error"]) for r in rows} == {
        ("pending", 1, "smtp_unreachable")
    }
    assert {r["due_at"] for r in rows} == {h.clock.now() + timedelta(minutes=1)}
    assert await h.advance(timedelta(seconds=59)) == 0
    assert await h.advance(timedelta(seconds=1)) == 2
    assert {r["due_at"] for r in await h.deliveries()} == {h.clock.now() + timedelta(minutes=2)}
    assert await h.emitted("NotificationFailed") == []
    assert await h.advance(timedelta(minutes=2)) == 2
    failed: list[NotificationFailed] = await h.emitted("NotificationFailed")
    assert {(f.recipient_id, f.error_code, f.attempts, f.final) for f in failed} == {
        (MENTOR, "smtp_unreachable", 3, True),
        (MENTEE, "smtp_unreachable", 3, True),
    }
    assert {r["status"] for r in await h.deliveries()} == {"failed"}
    assert await h.advance(timedelta(days=1)) == 0
    assert await h.emitted("NotificationSent") == []


async def test_an_outage_that_ends_in_time_delivers_once(
    notifications_pool: asyncpg.Pool, smtp_server: RunningSmtp
) -> None:
    down = free_ports(1)[0]
    h = Harness(notifications_pool, notifications_settings(smtp_port=down))
    await h.cast()
    await h.apply(PairFormed.example())
    await h.round()
    h.worker = h.new_worker([SmtpChannel(notifications_settings(smtp_port=smtp_server.port))])
    assert await h.advance(timedelta(minutes=1)) == 2
    assert len(smtp_server.inbox.messages) == 2
    assert {r["attempts"] for r in await h.deliveries(status="sent")} == {2}
    assert await h.emitted("NotificationFailed") == []


async def test_a_refused_address_fails_at_once(harness: Harness, smtp_server: RunningSmtp) -> None:
    await harness.cast()
    smtp_server.inbox.reply = "550 5.1.1 mailbox unavailable"
    await harness.apply(PairFormed.example())
    await harness.round()
    failed = await harness.emitted("NotificationFailed")
    assert {(f.error_code, f.attempts) for f in failed} == {("smtp_550", 1)}


class CrashAfterSending(MessageChannel):
    """Sends for real, then dies before the worker can record it (a SIGKILL mid-send)."""

    def __init__(self, real: MessageChannel) -> None:
        self.channel = real.channel
        self._real = real

    async def send(self, outgoing: Outgoing) -> None:
        await self._real.send(outgoing)
        raise asyncio.CancelledError("the process died")


class CrashBeforeSending(MessageChannel):
    """Dies after the claim committed, before anything went out."""

    def __init__(self, real: MessageChannel) -> None:
        self.channel = real.channel

    async def send(self, outgoing: Outgoing) -> None:
        raise asyncio.CancelledError("the process died")


async def test_restart_after_send_before_mark_resends_with_the_same_message_id(
    harness: Harness, smtp_server: RunningSmtp
) -> None:
    await harness.cast()
    await harness.apply(PairFormed.example())
    smtp = SmtpChannel(harness.settings)
    harness.worker = harness.new_worker([CrashAfterSending(smtp)])
    with pytest.raises(asyncio.CancelledError):
        await harness.round()
    assert {r["status"] for r in await harness.deliveries()} == {"sending"}
    harness.worker = harness.new_worker([smtp])  # the restarted process
    assert await harness.advance(timedelta(minutes=4)) == 0  # lease still held
    assert await harness.advance(timedelta(minutes=1)) == 2
    copies = smtp_server.inbox.by_message_id()
    assert len(copies) == 2 and all(len(c) == 2 for c in copies.values())
    assert len(await sent(harness)) == 2  # NotificationSent once per delivery
    assert {r["attempts"] for r in await harness.deliveries(status="sent")} == {2}


async def test_restart_after_claim_before_send_sends_once(
    harness: Harness, smtp_server: RunningSmtp
) -> None:
    await harness.cast()
    await harness.apply(PairFormed.example())
    smtp = SmtpChannel(harness.settings)
    harness.worker = harness.new_worker([CrashBeforeSending(smtp)])
    with pytest.raises(asyncio.CancelledError):
        await harness.round()
    harness.worker = harness.new_worker([smtp])
    assert await harness.advance(timedelta(minutes=5)) == 2
    assert len(smtp_server.inbox.messages) == 2
    assert len(await sent(harness)) == 2


async def test_a_message_that_keeps_killing_the_worker_ends_failed(
    notifications_pool: asyncpg.Pool, smtp_server: RunningSmtp
) -> None:
    settings = notifications_settings(smtp_port=smtp_server.port, delivery_max_attempts=2)
    h = Harness(notifications_pool, settings)
    await h.cast()
    await h.apply(PairFormed.example())
    for _ in range(2):
        h.worker = h.new_worker([CrashBeforeSending(SmtpChannel(settings))])
        with pytest.raises(asyncio.CancelledError):
            await h.advance(timedelta(minutes=5))
    h.worker = h.new_worker()
    await h.advance(timedelta(minutes=5))
    failed = await h.emitted("NotificationFailed")
    assert {(f.error_code, f.attempts) for f in failed} == {("interrupted", 2)}
    assert smtp_server.inbox.messages == []


class BrokenFor(MessageChannel):
    """A bug that strikes one person's messages only; the others go out for real."""

    def __init__(self, real: MessageChannel, person_id: str) -> None:
        self.channel = real.channel
        self._real = real
        self._person_id = person_id

    async def send(self, outgoing: Outgoing) -> None:
        if outgoing.contact.person_id == self._person_id:
            raise RuntimeError("a bug")
        await self._real.send(outgoing)


async def test_a_crash_on_one_message_spares_the_others_and_ends_reported(
    harness: Harness, smtp_server: RunningSmtp
) -> None:
    await harness.cast()
    await harness.apply(PairFormed.example())
    harness.worker = harness.new_worker([BrokenFor(SmtpChannel(harness.settings), MENTOR)])
    assert await harness.round() == 2
    assert [str(m["To"]).split()[0] for m in smtp_server.inbox.messages] == ["Helen"]
    assert [n.recipient_id for n in await sent(harness)] == [MENTEE]
    (held,) = await harness.deliveries(recipient_id=MENTOR)
    assert (held["status"], held["attempts"], held["last_error"]) == (
        "pending",
        1,
        "internal_error",
    )
    await harness.advance(timedelta(minutes=1))
    await harness.advance(timedelta(minutes=2))
    failed = await harness.emitted("NotificationFailed")
    assert {(f.recipient_id, f.error_code, f.attempts) for f in failed} == {
        (MENTOR, "internal_error", 3)
    }


async def test_unknown_contact_is_retried_then_reported(harness: Harness) -> None:
    await harness.apply(PairFormed.example())  # nobody's contact is known
    for _ in range(3):
        await harness.advance(timedelta(hours=1))
    failed = await harness.emitted("NotificationFailed")
    assert {(f.recipient_id, f.error_code, f.attempts) for f in failed} == {
        (MENTOR, "no_contact", 3),
        (MENTEE, "no_contact", 3),
    }


async def test_admin_notice_for_an_unknown_program_is_rejected(harness: Harness) -> None:
    with pytest.raises(Rejected, match="unknown program"):
        await harness.apply(PairAtRisk.example())


async def test_admin_notice_waits_for_the_admins_contact_and_says_nothing_confidential(
    harness: Harness, smtp_server: RunningSmtp
) -> None:
    await harness.cast()
    await harness.apply(PairAtRisk.example())
    await harness.round()
    (row,) = await harness.deliveries(recipient_id=ADMIN)
    assert (row["status"], row["last_error"]) == ("pending", "no_contact")
    async with harness.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO contacts VALUES ($1, 'Sam Admin', 'sam@example.com', 'UTC', '{en}',"
            " 'directory', now())",
            ADMIN,
        )
    await harness.advance(timedelta(minutes=1))
    (notice,) = smtp_server.inbox.messages
    text = notice.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "pair-7f3a9c" in text and "https://admin.upward.example/programs/" in text
    for secret in ("Aisha", "Helen", MENTOR, MENTEE, "0.31", "satisfaction", "rematch"):
        assert secret not in text and secret not in str(notice["Subject"])


async def test_a_stalled_pair_is_told_to_the_admins_without_the_reason(
    harness: Harness, smtp_server: RunningSmtp
) -> None:
    await harness.cast()
    await harness.apply(participant(ADMIN, "Sam Admin", "UTC"))
    await harness.apply(PairStalled.example())
    await harness.round()
    (notice,) = smtp_server.inbox.messages
    assert str(notice["To"]).startswith("Sam Admin")
    assert "has not been meeting" in str(notice["Subject"])
    text = notice.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    for secret in ("Aisha", "Helen", MENTOR, MENTEE, "missed", "42"):
        assert secret not in text and secret not in str(notice["Subject"])


async def test_a_pair_ending_tells_both_people_without_blame(
    harness: Harness, smtp_server: RunningSmtp
) -> None:
    await harness.cast()
    await harness.apply(PairEnded.example())  # at_risk_rematch, ended by an admin
    assert await harness.round() == 2
    for message in smtp_server.inbox.messages:
        assert "has ended" in str(message["Subject"])
        text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        assert "will be in touch" in text and "risk" not in text
    assert {n.kind.value for n in await sent(harness)} == {"pair_ended"}


def _counted(name: str, channel: str, kind: str) -> float:
    labels = {"channel": channel, "kind": kind}
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_metrics_count_sent_and_failed_notifications(
    harness: Harness, smtp_server: RunningSmtp
) -> None:
    sent_before = _counted("upward_notifications_sent_total", "email", "pair_formed")
    failed_before = _counted("upward_notifications_failed_total", "email", "pair_proposed")
    await harness.cast()
    await harness.apply(PairFormed.example())
    await harness.round()
    smtp_server.inbox.reply = "550 5.1.1 mailbox unavailable"
    await harness.apply(PairProposed.example())
    await harness.apply(FeedbackRequested.example())  # its overdue reminder stays pending
    await harness.round()
    assert _counted("upward_notifications_sent_total", "email", "pair_formed") == sent_before + 2
    failed = _counted("upward_notifications_failed_total", "email", "pair_proposed")
    assert failed == failed_before + 2
    assert REGISTRY.get_sample_value("upward_notifications_pending") == 1


async def test_forgotten_participant_is_erased_and_named_nowhere(
    harness: Harness, smtp_server: RunningSmtp
) -> None:
    await harness.cast()
    await harness.set_preferences(MENTOR, digest=True)
    await harness.apply(PairFormed.example())
    await harness.apply(ParticipantForgotten.example())  # the mentor, emp-10442
    (done,) = await harness.emitted("ErasureCompleted")
    assert isinstance(done, ErasureCompleted)
    assert done.participant_id == MENTOR and done.records_erased >= 3
    assert await harness.deliveries(recipient_id=MENTOR) == []
    count = await harness.pool.fetchval(
        "SELECT count(*) FROM contacts WHERE person_id = $1", MENTOR
    )
    assert count == 0
    await harness.round()
    (message,) = smtp_server.inbox.messages
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Aisha" not in text and "@example.com" not in text.replace(f"{MENTEE}@example.com", "")
    assert "your mentoring partner" in text


async def test_a_forgotten_participant_leaves_the_partners_invite_and_gets_nothing_later(
    harness: Harness,
) -> None:
    await harness.cast()
    example = SessionScheduled.example()
    attendee = f"ATTENDEE;CN=Aisha Rahman:mailto:{MENTOR}@example.com\r\nEND:VEVENT"
    named = example.model_copy(update={"ics": example.ics.replace("END:VEVENT", attendee)})
    await harness.apply(named)
    await harness.apply(ParticipantForgotten.example())  # the mentor, emp-10442
    (invite,) = await harness.deliveries(recipient_id=MENTEE, kind="session_invite")
    assert "(erased)" in invite["calendar_ics"]
    assert "Aisha" not in invite["calendar_ics"] and MENTOR not in invite["calendar_ics"]
    assert invite["context"].count("Aisha") == 0
    await harness.apply(SessionCancelled.example())  # late: the pair ended on the erasure
    await harness.apply(participant(MENTOR, "Aisha Rahman", "Europe/London"))  # in flight
    assert await harness.deliveries(recipient_id=MENTOR) == []
    assert await harness.deliveries(recipient_id=MENTEE, kind="session_cancelled")
    known = await harness.pool.fetchval(
        "SELECT count(*) FROM contacts WHERE person_id = $1", MENTOR
    )
    assert known == 0


async def test_new_reminder_offsets_replan_future_sessions(harness: Harness) -> None:
    await harness.cast()
    event = SessionScheduled.example()
    await harness.apply(event)
    update = ProgramUpdated.example().model_copy(
        update={"reminder_offsets_minutes": [120], "changed_fields": ["reminder_offsets_minutes"]}
    )
    await harness.apply(update)
    pending = await harness.deliveries(kind="session_reminder", status="pending")
    assert {r["due_at"] for r in pending} == {event.starts_at - timedelta(minutes=120)}
    assert len(pending) == 2
    assert len(await harness.deliveries(kind="session_reminder", status="cancelled")) == 4


async def test_a_changed_address_is_used_for_messages_not_sent_yet(
    harness: Harness, smtp_server: RunningSmtp
) -> None:
    await harness.cast()
    await harness.apply(PairFormed.example())
    moved = ParticipantUpdated.model_validate(
        participant(MENTEE, "Helen Park", "Asia/Hong_Kong").model_dump()
        | {"email": "helen@new.example.com", "changed_fields": ["email"]}
    )
    await harness.apply(moved)
    await harness.round()
    assert "Helen Park <helen@new.example.com>" in {
        str(m["To"]) for m in smtp_server.inbox.messages
    }
