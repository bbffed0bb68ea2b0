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
from typing import Any

import httpx

from shared.core.alerting import ANOMALY, FORECAST, Alert, alert_document, facts, title
from shared.core.chat_cards import ChatMessage, render
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
KINDS = ("webhook", "teams", "slack")


def alert_message(alert: Alert) -> ChatMessage:
    color = "Attention" if alert.kind in (FORECAST, ANOMALY) or alert.threshold >= 100 else "Warning"
    return ChatMessage(title(alert), facts(alert), color, footnote=f"Alert id {alert.alert_id}")


class HttpChannel:
    """POSTs the kind's rendering of an alert as JSON to one URL."""

    def __init__(self, kind: str, url: str, transport: httpx.BaseTransport | None = None) -> None:
        if kind not in KINDS:
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
        return render(self.kind, alert_message(alert), alert_document(alert))

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
