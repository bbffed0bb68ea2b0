"""One alert per quarantine incident: recorded in the outbox when the quarantine first holds rows,
never again while it stays non-empty, a new one after it emptied and filled again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.adapters.webhooks import HttpChannel
from shared.core.alerting import QUARANTINE, alert_document, facts, title
from shared.services.quarantine_alarm import PIPELINE, QuarantineAlarm
from tests.fakes import FakeClock, InMemoryAlertOutbox

T0 = datetime(2026, 11, 20, 9, 15, 30, tzinfo=UTC)


class InMemoryIncidents:
    def __init__(self) -> None:
        self.since: datetime | None = None

    def open_since(self) -> datetime | None:
        return self.since

    def open(self, now: datetime) -> datetime:
        if self.since is None:
            self.since = now
        return self.since

    def close(self) -> None:
        self.since = None


def test_exactly_one_alert_per_incident() -> None:
    clock, outbox, incidents = FakeClock(T0), InMemoryAlertOutbox(), InMemoryIncidents()
    alarm = QuarantineAlarm(incidents, outbox, clock=clock)
    alarm(0)
    assert outbox.entries == {}
    alarm(3)
    clock.now += timedelta(minutes=15)
    alarm(5)  # same incident, more rows: no second alert
    alarm(5)
    assert len(outbox.entries) == 1
    (entry,) = outbox.entries.values()
    assert entry.alert.kind == QUARANTINE and entry.alert.subscription_id == PIPELINE
    assert entry.alert.tokens == 3 and entry.alert.period_start == T0
    assert "3 rows refused by Table Storage" in title(entry.alert)
    assert ("Rows in quarantine", "3") in facts(entry.alert)
    assert alert_document(entry.alert)["type"] == "chargeback.pipeline.quarantine"
    alarm(0)  # emptied: the incident ends
    assert incidents.since is None
    clock.now += timedelta(minutes=15)
    alarm(1)  # a new incident, later the same day: a new alert
    assert len(outbox.entries) == 2


def test_a_quarantine_alert_renders_for_every_channel_kind() -> None:
    outbox, incidents = InMemoryAlertOutbox(), InMemoryIncidents()
    QuarantineAlarm(incidents, outbox, clock=lambda: T0)(2)
    (entry,) = outbox.entries.values()
    for kind in ("webhook", "teams", "slack"):
        body = HttpChannel(kind, "https://hooks.example/x").payload(entry.alert)
        assert "rows refused by Table Storage" in str(body)
