"""Probe incidents through the alert channels (webhook, Teams, Slack), beside the function log.

Every channel is tried; if any failed, the notifier raises so the probe keeps the notification
pending and tries again on its next run (a channel that already accepted it may then see it twice;
receivers can de-duplicate on ``incidentId``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.core.chat_cards import ChatMessage, render
from shared.core.moments import iso
from shared.errors import DeliveryError
from shared.ports import AlertChannel
from shared.services.probe import Incident, LoggingIncidentNotifier

log = logging.getLogger(__name__)


def _iso(moment: datetime | None) -> str:
    return iso(moment) or "unknown"


def incident_document(incident: Incident, event: str) -> dict[str, Any]:
    ident = hashlib.sha256(f"{incident.deployment}|{_iso(incident.opened_at)}".encode()).hexdigest()[:16]
    return {
        "type": "probe-incident", "event": event, "incidentId": ident, "deployment": incident.deployment,
        "target": incident.target, "openedAt": _iso(incident.opened_at),
        "recoveredAt": _iso(incident.recovered_at) if incident.recovered_at else None,
        "consecutiveFailures": incident.consecutive_failures, "lastError": incident.last_error,
    }


def incident_message(doc: dict[str, Any]) -> ChatMessage:
    if doc["event"] == "opened":
        heading = f"Azure OpenAI probe failing: {doc['deployment']} ({doc['consecutiveFailures']} failed runs)"
    else:
        heading = f"Azure OpenAI probe recovered: {doc['deployment']}"
    facts = [("Deployment", doc["deployment"]), ("Gateway", doc["target"]), ("Since", doc["openedAt"]),
             ("Last error", doc["lastError"] or "-")]
    if doc["recoveredAt"]:
        facts.append(("Recovered", doc["recoveredAt"]))
    return ChatMessage(heading, [(name, str(value)) for name, value in facts],
                       "Attention" if doc["event"] == "opened" else "Good")


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
                channel.post(render(channel.kind, incident_message(doc), doc))
            except DeliveryError as exc:
                log.error("probe incident %s not delivered to %s: %s", doc["incidentId"], channel.label, exc)
                failed.append(channel.label)
        if failed:
            raise DeliveryError(f"probe incident not delivered to {', '.join(failed)}")
