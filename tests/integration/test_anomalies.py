"""Spend anomalies end to end on Azurite: synthetic day histories written as stored day rows, the
scheduled alert run records and delivers an anomaly exactly once per subscription-day, and
``GET /api/anomalies`` lists it for the callers who may see it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shared.composition import alert_service, table_store
from shared.core.alerting import ANOMALY
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow
from shared.settings import Settings
from tests.fakes import RecordingChannel
from tests.usage_support import Api

TODAY = datetime(2026, 11, 30, tzinfo=UTC)
NOW = TODAY + timedelta(hours=12)
OUTPUT_PRICE = Decimal("10.00")  # gpt-4o output per 1M tokens in the shipped price file


def day_row(subscription: str, day: datetime, dollars: Decimal) -> UsageRow:
    tokens = int(dollars * 1_000_000 / OUTPUT_PRICE)  # only output tokens: cost = tokens × 10 / 1M
    return UsageRow(Granularity.DAY, day, UsageKey(subscription, "p", "gpt-4o", "gpt-4o"),
                    Counters(requests=10, completion_tokens=tokens, total_tokens=tokens))


def histories() -> list[UsageRow]:
    rows = []
    usual = [Decimal("10.00"), Decimal("11.00"), Decimal("9.00"), Decimal("10.50"), Decimal("9.50")]
    for back in range(1, 41):
        day = TODAY - timedelta(days=back)
        rows.append(day_row("team-spike", day, usual[back % 5]))
        growth = (Decimal("10") * Decimal("1.03") ** (40 - back)).quantize(Decimal("0.01"))
        rows.append(day_row("team-growth", day, growth))
        if back <= 3:
            rows.append(day_row("team-new", day, Decimal("1.00")))
    rows.append(day_row("team-spike", TODAY, Decimal("50.00")))  # five times its usual day
    rows.append(day_row("team-growth", TODAY, (Decimal("10") * Decimal("1.03") ** 40).quantize(Decimal("0.01"))))
    rows.append(day_row("team-new", TODAY, Decimal("500.00")))  # new: no normal yet
    return rows


def run_alerts(settings: Settings, channel: RecordingChannel) -> str:
    result = alert_service(settings, channels=[channel], clock=lambda: NOW).run()
    result.raise_for_errors()
    return result.summary()


def test_a_spike_alarms_once_slow_growth_and_a_new_subscription_do_not(settings: Settings) -> None:
    table_store(settings).upsert(histories())
    channel = RecordingChannel()
    summary = run_alerts(settings, channel)
    anomalies = [a for a in channel.sent if a.kind == ANOMALY]
    assert [(a.subscription_id, a.period_start) for a in anomalies] == [("team-spike", TODAY)], summary
    sent = anomalies[0]
    assert sent.cost == Decimal("50.00")
    assert sent.baseline_cost == Decimal("10.00")  # median of the 28 days before
    assert sent.anomaly_limit == Decimal("10.00") + 4 * Decimal("1.4826") * Decimal("0.50")
    assert "1 spend anomalies" in summary

    # a rerun of the same day (and a later, larger cost) never alarms twice
    table_store(settings).upsert([day_row("team-spike", TODAY, Decimal("80.00"))])
    run_alerts(settings, channel)
    assert len([a for a in channel.sent if a.kind == ANOMALY]) == 1


def test_the_api_lists_anomalies_in_the_callers_scope(settings: Settings) -> None:
    table_store(settings).upsert(histories())
    run_alerts(settings, RecordingChannel())
    api = Api(settings, now=NOW)
    body = api.get("/api/anomalies", {"from": "2026-11-01", "to": "2026-11-30"}).json()
    assert [(a["subscriptionId"], a["periodStart"], a["cost"], a["baselineCost"]) for a in body["anomalies"]] == [
        ("team-spike", "2026-11-30T00:00:00Z", "50.00", "10.00")]
    assert api.get("/api/anomalies", {"subscription": "team-growth"}).json()["anomalies"] == []
    assert api.get("/api/anomalies", {"from": "2026-12-01", "to": "2026-11-01"}).status_code == 400
