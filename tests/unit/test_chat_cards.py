"""Chat messages: quota alerts and probe incidents render through one module, escaped the same way."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from shared.adapters.webhooks import HttpChannel
from shared.core.alerting import THRESHOLD, Alert
from shared.core.quotas import Period
from shared.services.incident_channels import incident_message

HOSTILE = "team-<!channel>&<https://evil.example|click>"


def _alert() -> Alert:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    return Alert(HOSTILE, Period.MONTH, start, datetime(2026, 12, 1, tzinfo=UTC), THRESHOLD, 80, 800, 1000,
                 Decimal("8.00"), None, "USD", 0, Decimal("80.0"), start)


def _slack_texts(payload: dict[str, object]) -> list[str]:
    texts = [str(payload["text"])]
    for block in payload["blocks"]:  # type: ignore[attr-defined]
        texts += [field["text"] for field in block.get("fields", [])]
        texts += [element["text"] for element in block.get("elements", [])]
    return texts


def test_slack_text_is_escaped_for_alerts_and_incidents_alike() -> None:
    from shared.core.chat_cards import render

    alert = HttpChannel("slack", "https://hooks.example/x").payload(_alert())
    incident = render("slack", incident_message({
        "event": "opened", "deployment": HOSTILE, "target": "gw", "openedAt": "2026-11-01T00:00:00Z",
        "recoveredAt": None, "consecutiveFailures": 3, "lastError": "<boom>"}), {})
    for payload in (alert, incident):
        mrkdwn = _slack_texts(payload)
        assert any("&lt;!channel&gt;" in text for text in mrkdwn), mrkdwn
        assert not any("<!channel>" in text or "<https://" in text for text in mrkdwn), mrkdwn
    assert "&lt;boom&gt;" in json.dumps(incident)


def test_teams_cards_carry_names_verbatim_in_one_card_shape() -> None:
    from shared.core.chat_cards import render

    alert = HttpChannel("teams", "https://hooks.example/t").payload(_alert())
    incident = render("teams", incident_message({
        "event": "recovered", "deployment": HOSTILE, "target": "gw", "openedAt": "x", "recoveredAt": "y",
        "consecutiveFailures": 0, "lastError": None}), {})
    for payload in (alert, incident):
        card = payload["attachments"][0]["content"]
        assert card["type"] == "AdaptiveCard" and HOSTILE in json.dumps(card, ensure_ascii=False)
    assert incident["attachments"][0]["content"]["body"][0]["color"] == "Good"
