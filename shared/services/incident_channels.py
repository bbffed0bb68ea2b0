"""Probe incidents through the alert channels (webhook, Teams, Slack), beside the function log.

Every channel is tried; if any failed, the notifier raises so the probe keeps the notification
pending and tries again on its next run (a channel that already accepted it may then see it twice;
receivers can de-duplicate on ``incidentId``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from shared.errors import DeliveryError
from shared.ports import AlertChannel
from shared.services.probe import Incident, LoggingIncidentNotifier

log = logging.getLogger(__name__)


def _iso(value: object) -> str:
    return value.isoformat().replace("+00:00", "Z") if hasattr(value, "isoformat") else "unknown"


def incident_document(incident: Incident, event: str) -> dict[str, Any]:
    ident = hashlib.sha256(f"{incident.deployment}|{_iso(incident.opened_at)}".encode()).hexdigest()[:16]
    return {
        "type": "probe-incident", "event": event, "incidentId": ident, "deployment": incident.deployment,
        "target": incident.target, "openedAt": _iso(incident.opened_at),
        "recoveredAt": _iso(incident.recovered_at) if incident.recovered_at else None,
        "consecutiveFailures": incident.consecutive_failures, "lastError": incident.last_error,
    }


def _title(doc: dict[str, Any]) -> str:
    if doc["event"] == "opened":
        return f"Azure OpenAI probe failing: {doc['deployment']} ({doc['consecutiveFailures']} failed runs)"
    return f"Azure OpenAI probe recovered: {doc['deployment']}"


def render(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    facts = [("Deployment", doc["deployment"]), ("Gateway", doc["target"]), ("Since", doc["openedAt"]),
             ("Last error", doc["lastError"] or "-")]
    if doc["recoveredAt"]:
        facts.append(("Recovered", doc["recoveredAt"]))
    if kind == "teams":
        card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                "version": "1.4", "body": [
                    {"type": "TextBlock", "text": _title(doc), "weight": "Bolder", "size": "Medium", "wrap": True,
                     "color": "Attention" if doc["event"] == "opened" else "Good"},
                    {"type": "FactSet", "facts": [{"title": k, "value": str(v)} for k, v in facts]}]}
        return {"type": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}
    if kind == "slack":
        return {"text": _title(doc), "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _title(doc)[:150]}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in facts]}]}
    return doc


class ChannelIncidentNotifier:
    def __init__(self, channels: Sequence[AlertChannel]) -> None:
        self.channels = list(channels)
        self.log = LoggingIncidentNotifier()

    def opened(self, incident: Incident) -> None:
        self.log.opened(incident)
        self._send(incident_document(incident, "opened"))

    def recovered(self, incident: Incident) -> None:
        self.log.recovered(incident)
        self._send(incident_document(incident, "recovered"))

    def _send(self, doc: dict[str, Any]) -> None:
        failed = []
        for channel in self.channels:
            try:
                channel.post(render(channel.kind, doc))
            except DeliveryError as exc:
                log.error("probe incident %s not delivered to %s: %s", doc["incidentId"], channel.label, exc)
                failed.append(channel.label)
        if failed:
            raise DeliveryError(f"probe incident not delivered to {', '.join(failed)}")
