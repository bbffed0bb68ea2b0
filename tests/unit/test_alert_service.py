"""The alert service on in-memory fakes: due alerts recorded once, delivered with retries,
enforcement suspending and reactivating.  Shares, costs and forecasts are worked out by hand in
the comments; the service's own arithmetic is never reused to compute what is expected."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from shared.core.alerting import FAILED, FORECAST, SENT, THRESHOLD
from shared.core.pricing import Price, PriceTable
from shared.core.quotas import Period, make_quota
from shared.core.usage import UNATTRIBUTED, Counters, Granularity, UsageKey, UsageRow
from shared.errors import DeliveryError
from shared.services.alerts import AlertService
from tests.fakes import (
    FakeClock,
    FakeControl,
    InMemoryAlertOutbox,
    InMemoryEnforcementLedger,
    InMemoryQuotaRepository,
    InMemoryUsageRepository,
    RecordingChannel,
    RecordingSleep,
)

# 12:05 with a 5-minute ingestion delay: data up to 12:00, half of the day, 27.5 of November's 30 days.
NOW = datetime(2026, 11, 28, 12, 5, tzinfo=UTC)
DELAY = timedelta(minutes=5)
PRICES = PriceTable("USD", (Price("gpt-4o", date(2026, 1, 1), Decimal("2.50"), Decimal("1.25"), Decimal("10.00")),))


def day_row(subscription: str, day: int, prompt: int, completion: int) -> UsageRow:
    key = UsageKey(subscription, "starter", "gpt-4o", "chat")
    counters = Counters(requests=1, prompt_tokens=prompt, completion_tokens=completion,
                        total_tokens=prompt + completion)
    return UsageRow(Granularity.DAY, datetime(2026, 11, day, tzinfo=UTC), key, counters)


def service(usage: InMemoryUsageRepository, quotas: InMemoryQuotaRepository, outbox: InMemoryAlertOutbox,
            channels: list[RecordingChannel], clock: FakeClock, *, enforcement_mode: str = "off",
            control: FakeControl | None = None, ledger: InMemoryEnforcementLedger | None = None,
            sleep: RecordingSleep | None = None, backoff: timedelta = timedelta(seconds=1)) -> AlertService:
    return AlertService(usage, quotas, outbox, channels, lambda: PRICES, thresholds=(50, 80, 100),
                        ingestion_delay=DELAY, enforcement_mode=enforcement_mode, control=control, ledger=ledger,
                        clock=clock, sleep=sleep or RecordingSleep(), backoff=backoff)


def kinds(outbox: InMemoryAlertOutbox) -> set[tuple[str, str, str, int]]:
    return {(e.alert.subscription_id, e.alert.period.value, e.alert.kind, e.alert.threshold)
            for e in outbox.entries.values()}


def test_due_alerts_are_recorded_once_and_delivered_once() -> None:
    usage = InMemoryUsageRepository()
    usage.upsert([
        # team-a: 600 + 250 = 850 tokens today of a 1,000-token day quota (85 %: the 50 and 80 % alerts);
        # at half the day that projects to 170 %: a forecast.  Month: 2,000 + 850 = 2,850 of 10,000
        # (28.5 %, projected 28.5 * 30 / 27.5 = 31.1 %): nothing.
        day_row("team-a", 3, 1_500, 500), day_row("team-a", 28, 600, 250),
        # team-b: 100,000 prompt tokens at 2.50 / 1M = 0.25 plus 50,000 completion at 10.00 / 1M = 0.50,
        # 0.75 of a 1.00 day cost quota (75 %: the 50 % alert), projecting to 150 %: a forecast.
        day_row("team-b", 28, 100_000, 50_000),
    ])
    quotas = InMemoryQuotaRepository([make_quota("team-a", "day", 1_000), make_quota("team-a", "month", 10_000),
                                      make_quota("team-b", "day", cost="1.00")])
    outbox, channel, clock = InMemoryAlertOutbox(), RecordingChannel(), FakeClock(NOW)

    result = service(usage, quotas, outbox, [channel], clock).run()

    assert kinds(outbox) == {("team-a", "day", THRESHOLD, 50), ("team-a", "day", THRESHOLD, 80),
                             ("team-a", "day", FORECAST, 100), ("team-b", "day", THRESHOLD, 50),
                             ("team-b", "day", FORECAST, 100)}
    assert (result.periods, result.recorded, result.delivered, result.failed) == (4, 5, 5, 0)
    assert result.as_of == datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert {e.status for e in outbox.entries.values()} == {SENT}
    by_kind = {(a.subscription_id, a.kind, a.threshold): a for a in channel.sent}
    team_a = by_kind[("team-a", THRESHOLD, 80)]
    assert (team_a.tokens, team_a.max_tokens, team_a.percent) == (850, 1_000, Decimal("85.0"))
    assert by_kind[("team-a", FORECAST, 100)].projected_percent == Decimal("170.0")
    # 0.85 of the quota reached in 12 hours: 100 % after 43,200 s / 0.85 = 50,823.5294117... s,
    # 14:07:03.529412 to the nearest microsecond.
    assert by_kind[("team-a", FORECAST, 100)].projected_at == datetime(2026, 11, 28, 14, 7, 3, 529412, tzinfo=UTC)
    team_b = by_kind[("team-b", THRESHOLD, 50)]
    assert (team_b.cost, team_b.max_cost, team_b.percent, team_b.currency) == (
        Decimal("0.75"), Decimal("1.00"), Decimal("75.0"), "USD")

    clock.advance(timedelta(minutes=15))
    again = service(usage, quotas, outbox, [channel], clock).run()
    assert (again.recorded, again.delivered) == (0, 0)
    assert len(channel.sent) == 5


def test_a_retriable_failure_is_retried_with_backoff_and_a_refusal_is_not() -> None:
    usage = InMemoryUsageRepository()
    usage.upsert([day_row("team-a", 28, 400, 200)])  # 600 of 1,000 at half the day: 50 % only (projects 120 %)
    quotas = InMemoryQuotaRepository([make_quota("team-a", "day", 1_000)])
    outbox, sleep = InMemoryAlertOutbox(), RecordingSleep()
    flaky = RecordingChannel("flaky", failures=[DeliveryError("HTTP 503"), DeliveryError("HTTP 503")])
    refusing = RecordingChannel("refusing", failures=[DeliveryError("HTTP 400", retriable=False)])

    result = service(usage, quotas, outbox, [flaky, refusing], FakeClock(NOW), sleep=sleep,
                     backoff=timedelta(seconds=2)).run()

    # The 50 % alert and the forecast (120 %), delivered in row-key order: forecast first.  For it
    # flaky fails twice (waits 2 s, then 4 s) and takes the third attempt; refusing says no once,
    # not retried: the alert fails this round.  The 50 % alert then goes through both at once.
    assert (result.recorded, result.delivered, result.failed) == (2, 1, 1)
    assert sleep.waits == [2.0, 4.0]
    assert [a.kind for a in flaky.sent] == [FORECAST, THRESHOLD] and [a.kind for a in refusing.sent] == [THRESHOLD]
    status = {e.alert.kind: (e.status, e.attempts, e.delivered) for e in outbox.entries.values()}
    assert status == {FORECAST: (FAILED, 1, frozenset({"webhook:flaky"})),
                      THRESHOLD: (SENT, 1, frozenset({"webhook:flaky", "webhook:refusing"}))}


def test_no_channel_leaves_alerts_waiting() -> None:
    usage = InMemoryUsageRepository()
    usage.upsert([day_row("team-a", 28, 1_000, 0)])  # 100 % of the day quota: 50, 80 and 100 % alerts
    quotas = InMemoryQuotaRepository([make_quota("team-a", "day", 1_000)])
    result = service(usage, quotas, InMemoryAlertOutbox(), [], FakeClock(NOW)).run()
    assert (result.recorded, result.waiting, result.delivered) == (3, 3, 0)


def test_enforcement_suspends_over_quota_teams_and_reactivates_them_in_a_new_period() -> None:
    usage = InMemoryUsageRepository()
    usage.upsert([day_row("team-a", 28, 1_200, 300),  # 1,500 of 1,000: over
                  day_row("team-b", 28, 400, 0),  # 400: under
                  day_row(UNATTRIBUTED, 28, 10**6, 0)])  # no one to suspend
    quotas = InMemoryQuotaRepository([make_quota("*", "day", 1_000), make_quota(UNATTRIBUTED, "day", 1)])
    control, ledger, clock = FakeControl(), InMemoryEnforcementLedger(), FakeClock(NOW)

    def run() -> list[str]:
        result = service(usage, quotas, InMemoryAlertOutbox(), [], clock, enforcement_mode="on",
                         control=control, ledger=ledger).run()
        assert result.errors == []
        return result.suspended + result.reactivated

    assert run() == ["team-a"]
    assert control.calls == [("team-a", "suspended")]
    assert ledger.suspended() == {"team-a": "on"}
    assert run() == []  # already suspended in this mode: no second call

    clock.advance(timedelta(days=1))  # a new day without usage: under quota again
    assert run() == ["team-a"]
    assert control.calls == [("team-a", "suspended"), ("team-a", "active")]
    assert ledger.suspended() == {}


def test_a_failing_control_is_reported_and_the_ledger_stays_unchanged() -> None:
    usage = InMemoryUsageRepository()
    usage.upsert([day_row("team-x", 28, 2_000, 0)])
    quotas = InMemoryQuotaRepository([make_quota("team-x", "day", 1_000)])
    ledger = InMemoryEnforcementLedger()
    result = service(usage, quotas, InMemoryAlertOutbox(), [], FakeClock(NOW), enforcement_mode="on",
                     control=FakeControl(failing={"team-x"}), ledger=ledger).run()
    assert result.suspended == [] and ledger.suspended() == {}
    assert len(result.errors) == 1 and "suspend team-x" in result.errors[0]


def test_enforcement_needs_a_control_and_a_ledger() -> None:
    with pytest.raises(ValueError, match="control and a ledger"):
        service(InMemoryUsageRepository(), InMemoryQuotaRepository(), InMemoryAlertOutbox(), [], FakeClock(NOW),
                enforcement_mode="on")


def test_a_quota_period_label_is_the_period_start() -> None:
    usage = InMemoryUsageRepository()
    usage.upsert([day_row("team-a", 28, 1_000, 0)])
    outbox = InMemoryAlertOutbox()
    service(usage, InMemoryQuotaRepository([make_quota("team-a", "month", 1_000)]), outbox, [],
            FakeClock(NOW)).run()
    assert {e.alert.period_label for e in outbox.entries.values()} == {"2026-11"}
    assert {e.alert.period for e in outbox.entries.values()} == {Period.MONTH}
