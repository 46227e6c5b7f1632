"""Templates: every kind renders in English for both sides, respectfully, in local time."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schemas.notifications import NotificationKind
from services.notifications.adapters.templates import TEMPLATES, TemplateRenderer

RENDERER = TemplateRenderer()
LONDON = ZoneInfo("Europe/London")
PARTICIPANT_CONTEXT: dict[str, Any] = {
    "partner_name": "Aisha Rahman",
    "partner_email": "aisha@example.com",
    "program_name": "Digital Fluency",
    "topics": ["Posting on social media"],
    "agenda": ["Posting on social media"],
    "expires_at": "2025-03-04T09:00:00+00:00",
    "starts_at": "2025-03-11T15:00:00+00:00",
    "ends_at": "2025-03-11T16:00:00+00:00",
    "previous_starts_at": "2025-03-10T15:00:00+00:00",
    "sequence": 1,
    "minutes_before": 1440,
    "ending": "closed",
    "reason": "participant_request",
    "feedback_kind": "session",
    "milestone_week": None,
    "due_at": "2025-03-18T16:00:00+00:00",
    "link": "https://app.example/pairs/pair-1",
}
ADMIN_KINDS = {NotificationKind.PAIR_AT_RISK, NotificationKind.PAIR_STALLED}
SENT_KINDS = [
    k
    for k in NotificationKind
    if k not in {NotificationKind.MATCH_RUN_SUMMARY, NotificationKind.ELIGIBILITY}
]
CONDESCENDING = re.compile(
    r"\b(junior|senior|young|younger|old|older|elderly|kid|boss|subordinate|superior|"
    r"simply|obviously|just)\b",
    re.IGNORECASE,
)


def render(kind: NotificationKind, side: str, **extra: Any) -> Any:
    context = PARTICIPANT_CONTEXT | {"side": side} | extra
    if kind in ADMIN_KINDS:
        context = {"program_name": "Digital Fluency", "pair_id": "pair-1", "link": "https://a/x"}
    return RENDERER.render(
        kind.value, locale="en", context=context, recipient_name="Helen Park", zone=LONDON
    )


def test_every_kind_the_service_sends_has_an_english_template() -> None:
    names = {p.stem for p in (TEMPLATES / "en").glob("*.j2") if not p.name.startswith("_")}
    assert {k.value for k in SENT_KINDS} | {"digest"} == names


@pytest.mark.parametrize("kind", SENT_KINDS)
@pytest.mark.parametrize("side", ["mentor", "mentee"])
def test_both_sides_are_addressed_by_name_with_respect(kind: NotificationKind, side: str) -> None:
    message = render(kind, side)
    assert message.text.startswith("Dear Helen Park,\n")
    assert "With thanks" in message.text
    assert message.subject and "\n" not in message.subject
    assert not CONDESCENDING.search(message.text + message.subject), message.text
    assert "<p" in message.html and "Dear Helen Park," in message.html


def test_mentor_and_mentee_read_the_same_courtesy() -> None:
    for kind in (NotificationKind.PAIR_PROPOSED, NotificationKind.PAIR_FORMED):
        mentor, mentee = render(kind, "mentor"), render(kind, "mentee")
        assert mentor.text.splitlines()[0] == mentee.text.splitlines()[0]
        assert mentor.text.splitlines()[-1] == mentee.text.splitlines()[-1]
        assert "voluntary" in render(NotificationKind.PAIR_PROPOSED, side="mentee").text


def test_times_are_shown_in_the_recipients_zone() -> None:
    message = render(NotificationKind.SESSION_INVITE, "mentee")
    assert "Tuesday 11 March 2025, 15:00 (Europe/London)" in message.text
    tokyo = RENDERER.render(
        "session_invite",
        locale="en",
        context=PARTICIPANT_CONTEXT | {"side": "mentor"},
        recipient_name="A",
        zone=ZoneInfo("Asia/Tokyo"),
    )
    assert "Wednesday 12 March 2025, 00:00 (Asia/Tokyo)" in tokyo.text


def test_the_invite_mentions_its_attachment_only_when_there_is_one() -> None:
    plain = render(NotificationKind.SESSION_INVITE, "mentor")
    attached = RENDERER.render(
        "session_invite",
        locale="en",
        context=PARTICIPANT_CONTEXT | {"side": "mentor"},
        recipient_name="A",
        zone=LONDON,
        has_calendar=True,
    )
    assert "attached" not in plain.text and "attached" in attached.text


def test_reminder_says_how_long_before() -> None:
    assert render(NotificationKind.SESSION_REMINDER, "mentor").subject.endswith("in 24 hours")
    assert render(NotificationKind.SESSION_REMINDER, "mentor", minutes_before=90).subject.endswith(
        "in 1 hour 30 minutes"
    )


def test_admin_notice_says_nothing_about_the_people() -> None:
    notice = render(NotificationKind.PAIR_AT_RISK, "mentor")
    assert "pair-1" in notice.text and "https://a/x" in notice.text
    for word in ("Aisha", "mentor", "mentee", "satisfaction", "score", "rematch"):
        assert not re.search(rf"\b{word}\b", notice.text, re.IGNORECASE), word


def test_html_part_escapes_names_and_links_urls() -> None:
    message = RENDERER.render(
        "pair_formed",
        locale="en",
        context=PARTICIPANT_CONTEXT | {"side": "mentee", "partner_name": "<b>Eve</b>"},
        recipient_name="Tom & Jerry",
        zone=LONDON,
    )
    assert "<b>Eve</b>" in message.text and "&lt;b&gt;Eve&lt;/b&gt;" in message.html
    assert "Tom &amp; Jerry" in message.html
    assert '<a href="https://app.example/pairs/pair-1"' in message.html


def test_unknown_locale_falls_back_to_the_default() -> None:
    message = RENDERER.render(
        "pair_ended",
        locale="xx",
        context=PARTICIPANT_CONTEXT | {"side": "mentor"},
        recipient_name="A",
        zone=LONDON,
    )
    assert message.text.startswith("Dear A,")


def test_digest_lists_every_item_once_under_one_greeting() -> None:
    items = [
        render(NotificationKind.PAIR_FORMED, "mentor"),
        render(NotificationKind.PAIR_ENDED, "mentor"),
    ]
    digest = RENDERER.render_digest(items, locale="en", recipient_name="Helen Park", zone=LONDON)
    assert digest.subject == "Your Upward digest: 2 updates"
    assert digest.text.count("Dear Helen Park") == 1
    assert "1. Meet your mentoring partner" in digest.text and "2. Your mentoring" in digest.text
