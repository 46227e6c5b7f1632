"""Chat webhook payloads as documented in docs/notifications.md."""

from __future__ import annotations

from services.notifications.domain.chat import slack_payload, teams_payload


def test_slack_payload_has_text_blocks_and_the_message_id() -> None:
    payload = slack_payload(
        message_id="ntf-1", kind="pair_formed", title="Hello", text="a < b & c", link="https://x/y"
    )
    assert payload["text"] == "Hello\na &lt; b &amp; c"
    assert [b["type"] for b in payload["blocks"]] == ["header", "section", "actions"]
    assert payload["blocks"][1]["text"] == {"type": "mrkdwn", "text": "a &lt; b &amp; c"}
    assert payload["blocks"][2]["elements"][0]["url"] == "https://x/y"
    assert payload["metadata"]["event_payload"] == {"message_id": "ntf-1", "kind": "pair_formed"}


def test_slack_payload_without_link_has_no_button() -> None:
    payload = slack_payload(message_id="m", kind="k", title="T" * 300, text="x", link=None)
    assert [b["type"] for b in payload["blocks"]] == ["header", "section"]
    assert len(payload["blocks"][0]["text"]["text"]) == 150


def test_teams_payload_is_an_adaptive_card_message() -> None:
    payload = teams_payload(message_id="ntf-2", title="Hello", text="Body", link="https://x/y")
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    container = card["body"][0]
    assert container["id"] == "ntf-2"
    assert [i["text"] for i in container["items"]] == ["Hello", "Body"]
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open in Upward", "url": "https://x/y"}
    ]
