"""Every chat message the app sends (quota alerts, probe incidents), built in one place.

A message is a title, facts and an optional footnote; each channel kind renders it its own way:
Microsoft Teams as one Adaptive Card (incoming webhook and Workflows 'post to a channel'), Slack as
Block Kit with ``mrkdwn`` text escaped (``&``, ``<``, ``>``: otherwise a deployment or subscription
name could form a link or a mention).  The generic webhook gets the event's own JSON document.
Messages hold usage numbers and names only, never prompt text, keys or URLs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
SLACK_HEADER_MAX = 150  # Block Kit's limit for a header's plain text
SLACK_FIELDS_MAX = 10  # ... and for a section's fields


@dataclass(frozen=True)
class ChatMessage:
    title: str
    facts: Sequence[tuple[str, str]]
    color: str  # Adaptive Card colour of the title: Attention, Warning, Good
    footnote: str | None = None  # e.g. the alert id receivers de-duplicate on


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def teams_message(message: ChatMessage) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium", "wrap": True,
         "color": message.color},
        {"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in message.facts]},
    ]
    if message.footnote:
        body.append({"type": "TextBlock", "text": message.footnote, "isSubtle": True, "size": "Small", "wrap": True})
    card = {"$schema": CARD_SCHEMA, "type": "AdaptiveCard", "version": "1.4", "body": body}
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}]}


def slack_message(message: ChatMessage) -> dict[str, Any]:
    fields = [{"type": "mrkdwn", "text": f"*{slack_escape(name)}*\n{slack_escape(value)}"}
              for name, value in message.facts][:SLACK_FIELDS_MAX]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": message.title[:SLACK_HEADER_MAX]}},
        {"type": "section", "fields": fields},
    ]
    if message.footnote:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(message.footnote)}]})
    return {"text": slack_escape(message.title), "blocks": blocks}  # text: the notification / fallback


def render(kind: str, message: ChatMessage, document: dict[str, Any]) -> dict[str, Any]:
    """What a channel of ``kind`` POSTs: the card for Teams and Slack, ``document`` for a webhook."""
    if kind == "teams":
        return teams_message(message)
    if kind == "slack":
        return slack_message(message)
    if kind == "webhook":
        return document
    raise ValueError(f"unknown channel kind {kind!r}")
