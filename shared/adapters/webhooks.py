"""Alert channels over HTTPS (httpx): generic JSON webhook, Microsoft Teams, Slack.

Each channel POSTs one JSON document and raises :class:`DeliveryError` when it is not accepted
(retriable for timeouts, connection errors, 408/429/5xx).  URLs are secrets (they carry the
webhook's signature): they are never logged or put in an error message — a channel is known by its
label (``teams-1a2b3c4d``, a digest of the URL).  httpx's own request log line contains the URL, so
its request lines are filtered out.  Payloads hold usage numbers only, never prompt text.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

import httpx

from shared.core.alerting import FORECAST, Alert, alert_document, facts, title
from shared.errors import DeliveryError


class _NoRequestLines(logging.Filter):
    """httpx logs every request with its full URL at INFO: keep only its warnings and errors,
    whatever level an operator sets (a filter, unlike a level, is not undone by configuration)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


_httpx_log = logging.getLogger("httpx")
if not any(isinstance(f, _NoRequestLines) for f in _httpx_log.filters):
    _httpx_log.addFilter(_NoRequestLines())

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def teams_message(alert: Alert) -> dict[str, Any]:
    """A message with one Adaptive Card (incoming webhook and Workflows 'post to a channel')."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": title(alert), "weight": "Bolder", "size": "Medium", "wrap": True,
             "color": "Attention" if alert.kind == FORECAST or alert.threshold >= 100 else "Warning"},
            {"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in facts(alert)]},
            {"type": "TextBlock", "text": f"Alert id {alert.alert_id}", "isSubtle": True, "size": "Small",
             "wrap": True},
        ],
    }
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}]}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(alert: Alert) -> dict[str, Any]:
    heading = title(alert)
    fields = [{"type": "mrkdwn", "text": f"*{name}*\n{_slack_escape(value)}"} for name, value in facts(alert)][:10]
    return {
        "text": _slack_escape(heading),  # the notification / fallback text
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": heading[:150]}},
            {"type": "section", "fields": fields},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"alert id `{alert.alert_id}`"}]},
        ],
    }


RENDER: dict[str, Callable[[Alert], dict[str, Any]]] = {
    "webhook": alert_document, "teams": teams_message, "slack": slack_message}


class HttpChannel:
    """POSTs the kind's rendering of an alert as JSON to one URL."""

    def __init__(self, kind: str, url: str, transport: httpx.BaseTransport | None = None) -> None:
        if kind not in RENDER:
            raise ValueError(f"unknown channel kind {kind!r}")
        self.kind = kind
        self._url = url
        self._transport = transport
        self._label = f"{kind}-{hashlib.sha256(url.encode()).hexdigest()[:8]}"

    @property
    def label(self) -> str:
        return self._label

    def __repr__(self) -> str:  # never the URL
        return f"HttpChannel({self._label})"

    def payload(self, alert: Alert) -> dict[str, Any]:
        return RENDER[self.kind](alert)

    def send(self, alert: Alert) -> None:
        self.post(self.payload(alert))

    def post(self, body: dict[str, Any]) -> None:
        """POST one JSON document; :class:`DeliveryError` (URL-free) when it is not accepted."""
        try:
            with httpx.Client(timeout=TIMEOUT, follow_redirects=False, transport=self._transport) as client:
                response = client.post(self._url, json=body, headers={"User-Agent": "apim-chargeback-alerts"})
        except httpx.TimeoutException:
            raise DeliveryError(f"{self._label}: timed out") from None
        except httpx.HTTPError as exc:  # connection refused, DNS, TLS...: the type only, the text has the URL
            raise DeliveryError(f"{self._label}: {type(exc).__name__}") from None
        status = response.status_code
        if 200 <= status < 300:
            return
        retriable = status in (408, 429) or status >= 500
        raise DeliveryError(f"{self._label}: HTTP {status}", retriable=retriable)


def channels_from(webhooks: tuple[str, ...], teams: tuple[str, ...], slack: tuple[str, ...],
                  transport: httpx.BaseTransport | None = None) -> list[HttpChannel]:
    return ([HttpChannel("webhook", url, transport) for url in webhooks]
            + [HttpChannel("teams", url, transport) for url in teams]
            + [HttpChannel("slack", url, transport) for url in slack])
