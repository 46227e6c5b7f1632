"""From events to planned deliveries: recipients, channels, due times, stable ids."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest
from pydantic import ValidationError

from schemas.feedback import FeedbackRequested, PairAtRisk
from schemas.notifications import Channel, NotificationKind
from schemas.pairs import PairEnded, PairEndReason, PairFormed, PairProposed
from schemas.sessions import PairStalled, SessionCancelled, SessionScheduled
from services.notifications.domain import notices
from services.notifications.domain.planning import (
    _NAMESPACE,
    Links,
    Notice,
    ProgramInfo,
    SessionInfo,
    delivery_id,
    plan_deliveries,
    reminder_notices,
)
from services.notifications.domain.preferences import (
    Contact,
    Preferences,
    QuietHours,
    Recipient,
)

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
LINKS = Links(app_url="https://app.example/", admin_url="https://admin.example")
PROGRAM = ProgramInfo(
    program_id="prg-2025-digital",
    name="Digital Fluency",
    admin_ids=["adm-1", "adm-2"],
    reminder_offsets_minutes=[1440, 60],
    topic_titles={"social-media": "Posting on social media"},
)
NAMES = {"emp-10442": "Aisha Rahman", "emp-00231": "Helen Park"}


def audience(
    event: PairProposed | PairFormed | PairEnded | SessionScheduled,
    program: ProgramInfo | None = PROGRAM,
) -> notices.PairAudience:
    return notices.PairAudience(
        mentor_id=event.mentor_id,
        mentee_id=event.mentee_id,
        source_key="evt-1",
        program=program,
        names=NAMES,
        now=NOW,
    )


def recipient(person_id: str = "emp-00231", **prefs: object) -> Recipient:
    contact = Contact(
        person_id=person_id, display_name="Helen Park", email="h@example.com", timezone="UTC"
    )
    return Recipient(person_id=person_id, contact=contact, preferences=Preferences(**prefs))  # type: ignore[arg-type]


def notice(**overrides: object) -> Notice:
    fields: dict[str, object] = {
        "source_key": "evt-1",
        "recipient_id": "emp-00231",
        "kind": NotificationKind.PAIR_FORMED,
        "reference_id": "pair-1",
        "context": {},
        "not_before": NOW,
    }
    return Notice(**(fields | overrides))  # type: ignore[arg-type]


def test_one_delivery_per_chosen_channel_with_stable_ids() -> None:
    person = recipient(channels=["email", "chat"], chat_webhook_url="https://hooks.example/x")
    planned = plan_deliveries(notice(), person, now=NOW)
    assert [p.channel for p in planned] == [Channel.EMAIL, Channel.CHAT]
    assert all(p.due_at == NOW and not p.digest for p in planned)
    again = plan_deliveries(notice(), person, now=NOW + timedelta(hours=1))
    assert [p.delivery_id for p in planned] == [p.delivery_id for p in again]
    assert planned[0].delivery_id == delivery_id("evt-1", "emp-00231", Channel.EMAIL)
    assert planned[0].delivery_id != delivery_id("evt-2", "emp-00231", Channel.EMAIL)


def test_quiet_hours_delay_the_due_time() -> None:
    quiet = QuietHours(start=time(8, 0), end=time(10, 30))
    (planned,) = plan_deliveries(notice(), recipient(quiet_hours=quiet), now=NOW)
    assert planned.due_at == datetime(2025, 3, 3, 10, 30, tzinfo=UTC)


def test_digest_holds_non_urgent_notices_but_never_invites() -> None:
    person = recipient(digest=True, digest_time=time(18, 0))
    (held,) = plan_deliveries(notice(), person, now=NOW)
    assert held.digest and held.due_at == datetime(2025, 3, 3, 18, 0, tzinfo=UTC)
    (urgent,) = plan_deliveries(notice(urgent=True), person, now=NOW)
    assert not urgent.digest and urgent.due_at == NOW


def test_a_future_notice_is_due_at_its_time() -> None:
    later = NOW + timedelta(days=2)
    (planned,) = plan_deliveries(notice(not_before=later), recipient(), now=NOW)
    assert planned.due_at == later


def test_proposal_addresses_both_sides_with_partner_names_and_topic_titles() -> None:
    event = PairProposed.example()
    made = notices.pair_proposed(event, audience(event), links=LINKS)
    by_recipient = {n.recipient_id: n for n in made}
    assert by_recipient[event.mentor_id].context["partner_name"] == "Helen Park"
    assert by_recipient[event.mentor_id].context["side"] == "mentor"
    assert by_recipient[event.mentee_id].context["partner_name"] == "Aisha Rahman"
    assert by_recipient[event.mentee_id].context["topics"] == [
        "Posting on social media",
        "genai-tools",
    ]
    assert by_recipient[event.mentee_id].context["link"] == "https://app.example/pairs/pair-7f3a9c"


def test_introduction_shares_the_partners_email() -> None:
    event = PairFormed.example()
    made = notices.pair_formed(
        event, audience(event), emails={"emp-10442": "aisha@example.com"}, links=LINKS
    )
    mentee = next(n for n in made if n.recipient_id == "emp-00231")
    assert mentee.context["partner_email"] == "aisha@example.com"
    assert mentee.partner_id == "emp-10442"


def test_pair_ended_reasons_never_blame() -> None:
    tones = set()
    for reason in PairEndReason:
        event = PairEnded.example().model_copy(update={"reason": reason})
        made = notices.pair_ended(event, audience(event, program=None))
        tones |= {n.context["ending"] for n in made}
    assert tones == {"completed", "closed", "rearranged"}


def test_admin_notices_carry_nothing_confidential() -> None:
    for event in (PairAtRisk.example(), PairStalled.example()):
        made = notices.pair_needs_attention(
            event, source_key="e", program=PROGRAM, links=LINKS, now=NOW
        )
        assert [n.recipient_id for n in made] == ["adm-1", "adm-2"]
        for n in made:
            assert set(n.context) == {"program_name", "pair_id", "link"}
            assert n.partner_id is None
            flat = repr(n.context)
            for secret in ("emp-10442", "emp-00231", "0.31", "low_satisfaction", "stalled"):
                assert secret not in flat


def test_invites_attach_the_calendar_and_cancellations_cancel() -> None:
    scheduled = SessionScheduled.example()
    made = notices.session_scheduled(scheduled, audience(scheduled))
    assert {n.calendar.method for n in made if n.calendar} == {"REQUEST"}
    assert all(n.urgent and n.calendar and n.calendar.ics == scheduled.ics for n in made)
    session = SessionInfo(
        session_id=scheduled.session_id,
        pair_id=scheduled.pair_id,
        program_id=scheduled.program_id,
        mentor_id=scheduled.mentor_id,
        mentee_id=scheduled.mentee_id,
        starts_at=scheduled.starts_at,
        ends_at=scheduled.ends_at,
    )
    cancelled = notices.session_cancelled(
        SessionCancelled.example(), audience(scheduled, program=None), session=session
    )
    assert {n.calendar.method for n in cancelled if n.calendar} == {"CANCEL"}
    assert {n.recipient_id for n in cancelled} == {scheduled.mentor_id, scheduled.mentee_id}


def test_reminders_per_offset_and_side_skip_the_past() -> None:
    start = NOW + timedelta(hours=10)
    session = SessionInfo("s1", "p1", "prg", "m1", "m2", start, start + timedelta(hours=1))
    made = reminder_notices(session, program=PROGRAM, names={}, offsets_minutes=[1440, 60], now=NOW)
    assert len(made) == 2  # the 24 h reminder is already past
    assert {n.not_before for n in made} == {start - timedelta(minutes=60)}
    assert {n.recipient_id for n in made} == {"m1", "m2"}
    assert {n.cancel_key for n in made} == {"session:s1"}
    assert len({n.source_key for n in made}) == 1  # one key, told apart by recipient


def test_reminder_keys_and_times_are_those_of_the_session_start() -> None:
    start = datetime(2025, 3, 11, 15, 4, 5, tzinfo=UTC)
    session = SessionInfo("s1", "p1", "prg", "m1", "m2", start, start + timedelta(hours=1))
    made = reminder_notices(
        session, program=PROGRAM, names=NAMES, offsets_minutes=[60, 1440, 60], now=NOW
    )
    assert [(n.source_key, n.recipient_id) for n in made] == [
        ("reminder:s1:20250311T150405Z:1440", "m1"),
        ("reminder:s1:20250311T150405Z:60", "m1"),
        ("reminder:s1:20250311T150405Z:1440", "m2"),
        ("reminder:s1:20250311T150405Z:60", "m2"),
    ]
    assert made[0].source_key.split(":")[2] == start.strftime("%Y%m%dT%H%M%SZ")
    assert made[0].context["starts_at"] == "2025-03-11T15:04:05+00:00"
    assert made[1].context["ends_at"] == "2025-03-11T16:04:05+00:00"


@pytest.mark.parametrize("key", ["evt-1", "reminder:s1:20250311T150405Z:60", "é|x", ""])
def test_a_delivery_id_is_the_uuid5_of_its_natural_key(key: str) -> None:
    for channel in Channel:
        expected = uuid.uuid5(_NAMESPACE, f"{key}|emp-1|{channel}")
        assert delivery_id(key, "emp-1", channel) == "ntf-" + expected.hex


def test_feedback_request_plans_an_overdue_reminder_after_the_due_time() -> None:
    event = FeedbackRequested.example()
    request, overdue = notices.feedback_requested(
        event,
        source_key="e",
        program=PROGRAM,
        links=LINKS,
        overdue_after=timedelta(hours=2),
        now=NOW,
    )
    assert request.kind is NotificationKind.FEEDBACK_REQUEST and request.not_before == NOW
    assert overdue.kind is NotificationKind.FEEDBACK_OVERDUE
    assert overdue.not_before == event.due_at + timedelta(hours=2)
    assert overdue.cancel_key == f"feedback:{event.request_id}"
    assert overdue.source_key == f"feedback-overdue:{event.request_id}"


def test_preferences_refuse_chat_without_a_webhook() -> None:
    with pytest.raises(ValidationError, match="chat_webhook_url"):
        Preferences(channels=[Channel.CHAT])
    with pytest.raises(ValidationError, match="not delivered"):
        Preferences(channels=[Channel.CALENDAR])
    with pytest.raises(ValidationError, match="different"):
        QuietHours(start=time(8), end=time(8))


def test_locale_prefers_the_persons_languages_that_have_templates() -> None:
    person = Recipient(
        person_id="p",
        contact=Contact(person_id="p", display_name="P", email="p@x.io", languages=["ur", "en"]),
        preferences=Preferences(),
    )
    assert person.locale(frozenset({"en"}), "en") == "en"
    assert person.locale(frozenset({"en", "ur"}), "en") == "ur"
    override = replace(person, preferences=Preferences(locale="fr"))
    assert override.locale(frozenset({"en", "fr"}), "en") == "fr"
