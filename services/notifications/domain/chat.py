"""Chat webhook payloads: Slack incoming webhooks and Microsoft Teams (Adaptive Card).

Both carry the message id, stable across attempts, so a receiver (or a bot in between)
can drop a copy posted twice: Slack in the message ``metadata``, Teams as the ``id`` of
the card's container. The HTTP request also carries it as ``Idempotency-Key``.
"""

from __future__ import annotations

from typing import Any

SLACK_TEXT_MAX = 3000
SLACK_HEADER_MAX = 150


def slack_escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(
    *, message_id: str, kind: str, title: str, text: str, link: str | None
) -> dict[str, Any]:
    """A Slack incoming-webhook payload: ``text`` (fallback) plus Block Kit ``blocks``."""
    body = slack_escape(text)[:SLACK_TEXT_MAX]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:SLACK_HEADER_MAX]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": body}},
    ]
    if link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in Upward"},
                        "url": link,
                    }
                ],
            }
        )
    return {
        "text": f"{slack_escape(title)}\n{body}",
        "blocks": blocks,
        "metadata": {
            "event_type": "upward_notification",
            "event_payload": {"message_id": message_id, "kind": kind},
        },
    }


def teams_payload(*, message_id: str, title: str, text: str, link: str | None) -> dict[str, Any]:
    """A Teams webhook payload: a message with one Adaptive Card (version 1.4) attachment."""
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "fallbackText": title,
        "body": [
            {
                "type": "Container",
                "id": message_id,
                "items": [
                    {
                        "type": "TextBlock",
                        "text": title,
                        "weight": "Bolder",
                        "size": "Medium",
                        "wrap": True,
                    },
                    {"type": "TextBlock", "text": text, "wrap": True},
                ],
            }
        ],
    }
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open in Upward", "url": link}]
    return {
        "type": "message",
        "summary": title,
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }
