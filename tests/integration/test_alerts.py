"""Quota alerts: forecast math, threshold sequences, the outbox (exactly once, crash, retries),
channel payloads on a real local HTTP receiver, enforcement through a fake port, and the hooks
after the rollup (CLI and timer) — all on Azurite."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.apim_management import ArmSubscriptionControl, DryRunSubscriptionControl
from shared.composition import alert_outbox, alert_service, quota_store, subscription_control, table_store
from shared.core.quotas import make_quota
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow
from shared.errors import AlertRunError, EnforcementError
from shared.services.alerts import AlertService
from shared.settings import Settings
from shared.tooling.cli import main
from tests.billing_support import Receiver, call, expected_cost, with_prices
from tests.conftest import process_environment
from tests.fakes import FakeClock, FakeControl, FakeCredential

APIM_ID = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim1"


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def billing(settings: Settings, tmp_path: Path) -> Settings:
    # Quota alert sequences only: spend anomalies (tests/integration/test_anomalies.py) would add
    # their own alert where a day jumps.
    return with_prices(settings, tmp_path).with_overrides(ANOMALY_DETECTION="false")


def set_day(settings: Settings, sub: str, day: int, tokens: int, model: str = "alpha-2026-08-01",
            completion: int = 0) -> None:
    """The day row the rollup would (re)compute: replaced, like a rollup rerun over that day."""
    row = UsageRow(Granularity.DAY, datetime(2026, 11, day, tzinfo=UTC), UsageKey(sub, "p", model, "d"),
                   Counters(requests=1, prompt_tokens=tokens - completion, completion_tokens=completion,
                            total_tokens=tokens))
    table_store(settings).upsert([row])


def service(settings: Settings, clock: FakeClock, sleeps: list[float] | None = None, **kwargs: Any) -> AlertService:
    return alert_service(settings, clock=clock, sleep=(sleeps if sleeps is not None else []).append,
                         backoff=timedelta(seconds=1), **kwargs)


def thresholds(bodies: list[Any]) -> list[tuple[str, str, Any]]:
    return sorted((b["subscriptionId"], b["period"], b["kind"] if b["kind"] == "forecast" else b["threshold"])
                  for b in bodies)


# -- threshold sequences ----------------------------------------------------------------------------
def test_thresholds_fire_once_each_over_several_rollups(billing: Settings, receiver: Receiver) -> None:
    settings = billing.with_overrides(ALERT_WEBHOOK_URLS=receiver.url("/hook"))
    quota_store(settings).put(make_quota("team-a", "month", 1_000_000))
    quota_store(settings).put(make_quota("*", "month", None, "1.00"))  # default, by cost (EUR)
    clock = FakeClock(datetime(2026, 11, 28, 12, tzinfo=UTC))  # late in the month: no forecast in play
    steps: list[tuple[list[tuple[str, int, int]], list[tuple[str, str, Any]]]] = [
        ([("team-a", 3, 400_000)], []),  # 40 %: below every threshold
        ([("team-a", 3, 500_000)], [("team-a", "month", 50)]),  # exactly 50 %
        ([("team-a", 27, 350_000)], [("team-a", "month", 80)]),  # 85 %: only the new threshold
        ([], []),  # nothing changed: nothing again
        ([("team-a", 28, 350_000)], [("team-a", "month", 100)]),  # 120 %
        ([("team-a", 28, 900_000)], []),  # further up: every threshold already alerted
    ]
    seen = 0
    for changes, expected in steps:
        for sub, day, tokens in changes:
            set_day(settings, sub, day, tokens)
        result = service(settings, clock).run()
        assert result.errors == []
        new = receiver.bodies("/hook")[seen:]
        seen += len(new)
        assert thresholds(new) == expected
    # team-b under the default cost quota: 1M prompt x 0.15 + 0.8M completion x 0.60 = 0.63 EUR = 63 %
    set_day(settings, "team-b", 10, 1_800_000, model="alpha-mini-2026-07-18", completion=800_000)
    set_day(settings, "unattributed", 10, 10**9)  # no default quota for calls without a subscription
    service(settings, clock).run()
    new = receiver.bodies("/hook")[seen:]
    assert thresholds(new) == [("team-b", "month", 50)]
    assert new[0]["percent"] == "63.0" and Decimal(new[0]["cost"]) == expected_cost(1_000_000, 0, 800_000,
                                                                                   ("0.15", "0.075", "0.60"))
    assert new[0]["costLimit"] == "1.00" and new[0]["currency"] == "EUR" and new[0]["tokenLimit"] is None
    listed = call(settings, "GET", "/api/alerts", now=clock.now, params={"subscription": "team-a"}).json()["alerts"]
    assert sorted(a["threshold"] for a in listed) == [50, 80, 100]
    assert all(a["status"] == "sent" and a["attempts"] == 1 and a["lastError"] == "" for a in listed)
    assert len({b["alertId"] for b in receiver.bodies("/hook")}) == len(receiver.bodies("/hook")) == 4


def test_forecast_alert_once_per_period(billing: Settings, receiver: Receiver) -> None:
    settings = billing.with_overrides(ALERT_WEBHOOK_URLS=receiver.url("/hook"))
    quota_store(settings).put(make_quota("team-c", "month", 1_000_000))
    set_day(settings, "team-c", 2, 400_000)
    # data up to Nov 11 12:00: 40 % in 10.5 of 30 days -> 114.3 %, 100 % on Nov 1 + 26.25 days
    clock = FakeClock(datetime(2026, 11, 11, 12, 5, tzinfo=UTC))
    service(settings, clock).run()
    [body] = receiver.bodies("/hook")
    assert body["kind"] == "forecast" and body["threshold"] == 100
    assert body["percent"] == "40.0" and body["projectedPercent"] == "114.3"
    assert body["projectedAt"] == "2026-11-27T06:00:00Z"
    set_day(settings, "team-c", 11, 50_000)
    clock.now += timedelta(days=1)
    service(settings, clock).run()
    assert len(receiver.bodies("/hook")) == 1  # the forecast for November is not repeated


# -- the outbox: crash, retries, channels -----------------------------------------------------------
class Killed(BaseException):
    """A process dying (not an error the service handles)."""


class DiesBeforeFirstSend:
    """Wraps a real channel; the first send dies before anything leaves the process."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.label, self.armed = inner, inner.label, True

    def send(self, alert: Any) -> None:
        if self.armed:
            self.armed = False
            raise Killed()
        self.inner.send(alert)


def test_crash_between_record_and_send_is_delivered_once_later(billing: Settings, receiver: Receiver) -> None:
    settings = billing.with_overrides(ALERT_WEBHOOK_URLS=receiver.url("/hook"))
    quota_store(settings).put(make_quota("team-a", "month", 1_000_000))
    set_day(settings, "team-a", 3, 850_000)  # 50 % and 80 % due
    clock = FakeClock(datetime(2026, 11, 28, 12, tzinfo=UTC))
    from shared.composition import alert_channels

    real = alert_channels(settings)
    with pytest.raises(Killed):
        service(settings, clock, channels=[DiesBeforeFirstSend(real[0])]).run()
    assert receiver.bodies("/hook") == []
    entries = alert_outbox(settings).list_alerts("team-a", None, 10)
    assert sorted(e.status for e in entries) == ["pending", "pending"]  # recorded before any send
    # the next run (same minute) delivers the alert nobody holds; the claimed one waits for its lease
    first = service(settings, clock).run()
    assert first.recorded == 0 and first.delivered == 1
    clock.now += timedelta(minutes=6)  # the dead run's lease (5 min) has expired
    second = service(settings, clock).run()
    assert second.delivered == 1
    assert service(settings, clock).run().delivered == 0
    assert thresholds(receiver.bodies("/hook")) == [("team-a", "month", 50), ("team-a", "month", 80)]
    entries = alert_outbox(settings).list_alerts("team-a", "sent", 10)
    assert sorted(e.attempts for e in entries) == [1, 2]


def test_channel_payloads_and_a_failing_channel(billing: Settings, receiver: Receiver,
                                                caplog: pytest.LogCaptureFixture) -> None:
    settings = billing.with_overrides(ALERT_WEBHOOK_URLS=receiver.url("/hook"),
                                      ALERT_TEAMS_URLS=receiver.url("/teams"),
                                      ALERT_SLACK_URLS=f"{receiver.url('/slack-down')},{receiver.url('/slack')}")
    receiver.status["/slack-down"] = 503
    quota_store(settings).put(make_quota("team-a", "month", 1_000_000, "100"))
    set_day(settings, "team-a", 3, 900_000)  # 90 % of the token limit
    clock = FakeClock(datetime(2026, 11, 28, 12, tzinfo=UTC))
    sleeps: list[float] = []
    with caplog.at_level(logging.DEBUG):
        result = service(settings, clock, sleeps).run()
    assert result.delivered == 0 and result.failed == 2
    with pytest.raises(AlertRunError, match="slack-"):
        result.raise_for_errors()
    # the failing channel was tried 3 times with exponential backoff (injected sleep), per alert
    assert len(receiver.bodies("/slack-down")) == 6 and sleeps == [1.0, 2.0, 1.0, 2.0]
    # ... and did not keep the others from getting each alert once
    assert thresholds(receiver.bodies("/hook")) == [("team-a", "month", 50), ("team-a", "month", 80)]
    assert len(receiver.bodies("/teams")) == len(receiver.bodies("/slack")) == 2
    entries = alert_outbox(settings).list_alerts(None, "failed", 10)
    assert len(entries) == 2
    for entry in entries:
        assert entry.attempts == 1 and "HTTP 503" in entry.last_error and "slack-" in entry.last_error
        assert len(entry.delivered) == 3
    # no URL (a secret) in logs or stored errors
    base = receiver.url("")  # http://127.0.0.1:<port>; Azurite's own URL does appear in SDK debug logs
    assert base not in caplog.text and "slack-down" not in caplog.text and "/teams" not in caplog.text
    assert any("slack-" in r.getMessage() and "HTTP 503" in r.getMessage() for r in caplog.records)
    assert all("127.0.0.1" not in e.last_error for e in entries)

    # Teams: an Adaptive Card message; Slack: text + blocks; webhook: the JSON document
    teams = receiver.bodies("/teams")[0]
    assert teams["type"] == "message"
    [attachment] = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["type"] == "TextBlock" and "team-a" in card["body"][0]["text"]
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Subscription"] == "team-a" and facts["Tokens"].startswith("900,000 of 1,000,000")
    slack = receiver.bodies("/slack")[0]
    assert slack["text"].startswith("Quota alert: team-a reached") and slack["blocks"][0]["type"] == "header"
    assert any("*Used*" in field["text"] for field in slack["blocks"][1]["fields"])
    hook = receiver.bodies("/hook")[0]
    assert hook["type"] == "chargeback.quota.alert" and hook["tokens"] == 900_000 and hook["tokenLimit"] == 1_000_000
    text = json.dumps(receiver.bodies("/hook") + receiver.bodies("/teams") + receiver.bodies("/slack"))
    assert "prompt" not in text.lower() and "key" not in text.lower()

    # the channel recovers: the next run sends to it alone, nobody gets a duplicate
    receiver.status["/slack-down"] = 200
    clock.now += timedelta(minutes=15)
    again = service(settings, clock).run()
    assert again.delivered == 2 and again.errors == []
    assert len(receiver.bodies("/slack-down")) == 8
    assert len(receiver.bodies("/hook")) == len(receiver.bodies("/teams")) == len(receiver.bodies("/slack")) == 2
    statuses = call(settings, "GET", "/api/alerts", now=clock.now, params={"status": "sent"}).json()["alerts"]
    assert len(statuses) == 2 and all(a["attempts"] == 2 and len(a["deliveredChannels"]) == 4 for a in statuses)


def test_not_retried_on_a_client_error_and_given_up_after_max_rounds(billing: Settings, receiver: Receiver) -> None:
    settings = billing.with_overrides(ALERT_WEBHOOK_URLS=receiver.url("/gone"))
    receiver.status["/gone"] = 404
    quota_store(settings).put(make_quota("team-a", "month", 100))
    set_day(settings, "team-a", 3, 60)
    clock = FakeClock(datetime(2026, 11, 28, 12, tzinfo=UTC))
    for _ in range(7):
        service(settings, clock, max_rounds=3).run()
        clock.now += timedelta(minutes=15)
    assert len(receiver.bodies("/gone")) == 3  # one try per round (404 is not retried), 3 rounds, then stop
    [entry] = alert_outbox(settings).list_alerts("team-a", None, 10)
    assert entry.status == "failed" and entry.attempts == 3 and "HTTP 404" in entry.last_error


def test_no_channel_configured_keeps_alerts_pending(billing: Settings, receiver: Receiver) -> None:
    quota_store(billing).put(make_quota("team-a", "month", 100))
    set_day(billing, "team-a", 3, 60)
    clock = FakeClock(datetime(2026, 11, 28, 12, tzinfo=UTC))
    result = service(billing, clock).run()
    assert result.recorded == 1 and result.waiting == 1 and result.errors == []
    later = service(billing.with_overrides(ALERT_WEBHOOK_URLS=receiver.url("/hook")), clock).run()
    assert later.delivered == 1 and len(receiver.bodies("/hook")) == 1


# -- enforcement ------------------------------------------------------------------------------------
def test_enforcement_suspends_at_100_and_reactivates(billing: Settings) -> None:
    settings = billing.with_overrides(ENFORCEMENT_MODE="on", APIM_RESOURCE_ID=APIM_ID)
    quota_store(settings).put(make_quota("*", "day", 1_000))
    quota_store(settings).put(make_quota("team-b", "month", 5_000))
    set_day(settings, "team-a", 28, 1_500)  # over its (default) day quota today
    set_day(settings, "team-b", 3, 6_000)  # over its month quota
    set_day(settings, "team-c", 28, 500)  # under
    set_day(settings, "unattributed", 28, 10**6)  # never enforced
    fake = FakeControl(failing={"team-x"})
    clock = FakeClock(datetime(2026, 11, 28, 12, tzinfo=UTC))
    result = service(settings, clock, control=fake).run()
    assert fake.calls == [("team-a", "suspended"), ("team-b", "suspended")]
    assert result.suspended == ["team-a", "team-b"]
    service(settings, clock, control=fake).run()
    assert len(fake.calls) == 2  # already suspended: not again
    quota_store(settings).put(make_quota("team-b", "month", 10_000))  # quota raised
    service(settings, clock, control=fake).run()
    assert fake.calls[2:] == [("team-b", "active")]
    clock.now = datetime(2026, 11, 29, 0, 10, tzinfo=UTC)  # a new day: team-a's day usage starts at 0
    result = service(settings, clock, control=fake).run()
    assert fake.calls[3:] == [("team-a", "active")] and result.reactivated == ["team-a"]
    # an APIM failure is reported (fails the run) without blocking the rest
    set_day(settings, "team-x", 29, 2_000)
    set_day(settings, "team-y", 29, 2_000)
    result = service(settings, clock, control=fake).run()
    assert ("team-y", "suspended") in fake.calls and "suspend team-x" in " ".join(result.errors)
    with pytest.raises(AlertRunError, match="team-x"):
        result.raise_for_errors()


def test_enforcement_dry_run_only_logs(billing: Settings, caplog: pytest.LogCaptureFixture) -> None:
    settings = billing.with_overrides(ENFORCEMENT_MODE="dryrun")
    assert isinstance(subscription_control(settings), DryRunSubscriptionControl)
    assert subscription_control(billing) is None  # off: nothing is built
    on = billing.with_overrides(ENFORCEMENT_MODE="on", APIM_RESOURCE_ID=APIM_ID)
    assert isinstance(subscription_control(on, credential=object()), ArmSubscriptionControl)
    quota_store(settings).put(make_quota("*", "day", 1_000))
    set_day(settings, "team-a", 28, 1_500)
    clock = FakeClock(datetime(2026, 11, 28, 12, tzinfo=UTC))
    with caplog.at_level(logging.WARNING):
        service(settings, clock).run()
        service(settings, clock).run()
        clock.now = datetime(2026, 11, 29, 0, 10, tzinfo=UTC)
        service(settings, clock).run()
    assert caplog.text.count("would set APIM subscription team-a to suspended") == 1
    assert caplog.text.count("would set APIM subscription team-a to active") == 1


def test_arm_adapter_request(receiver: Receiver) -> None:
    credential = FakeCredential("arm-token")
    control = ArmSubscriptionControl(APIM_ID, credential, endpoint=receiver.url(""))
    control.set_state("team a/1", "suspended")
    method, path, headers, body = receiver.requests[0]
    assert method == "PATCH"
    assert path == f"{APIM_ID}/subscriptions/team%20a%2F1?api-version=2022-08-01"
    assert body == {"properties": {"state": "suspended"}}
    assert headers["Authorization"] == "Bearer arm-token" and headers["If-Match"] == "*"
    assert credential.scopes == [("https://management.azure.com/.default",)]
    receiver.status[f"{APIM_ID}/subscriptions/missing"] = 404
    with pytest.raises(EnforcementError, match="not found"):
        control.set_state("missing", "active")
    with pytest.raises(ValueError):
        control.set_state("team-a", "deleted")


# -- after the rollup: CLI and timer -----------------------------------------------------------------
def test_cli_rollup_then_alerts_end_to_end(settings: Settings, tmp_path: Path, receiver: Receiver,
                                           capsys: pytest.CaptureFixture[str],
                                           caplog: pytest.LogCaptureFixture) -> None:
    values = {**settings._values, "LOCAL_WORKSPACE_PATH": "ws/demo.duckdb", "ALERT_WEBHOOK_URLS": receiver.url("/h")}
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": values}))
    assert main(["--settings", str(path), "demo-data", "--days", "1"]) == 0
    assert main(["--settings", str(path), "quota", "set", "*", "--period", "month", "--tokens", "1"]) == 0
    with caplog.at_level(logging.DEBUG, logger="httpx"):
        assert main(["--settings", str(path), "rollup"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert receiver.url("") not in caplog.text + captured.err  # httpx would log the URL at INFO
    assert "quota alerts" in out and "delivered" in out
    bodies = receiver.bodies("/h")
    subs = {b["subscriptionId"] for b in bodies}
    assert subs and "unattributed" not in subs
    assert sorted(b["threshold"] for b in bodies) == sorted([50, 80, 100] * len(subs))
    assert main(["--settings", str(path), "rollup"]) == 0  # again: no duplicates
    assert len(receiver.bodies("/h")) == len(bodies)
    assert main(["--settings", str(path), "alerts", "list", "--status", "sent"]) == 0
    assert capsys.readouterr().out.count(" sent ") == len(bodies)
    assert main(["--settings", str(path), "alerts", "list", "--status", "lost"]) == 2


def test_timer_fails_visibly_after_the_rollup_completed(settings: Settings,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    from azure.functions.timer import TimerRequest

    from shared.tooling.demo.demo_run import write_demo_workspace
    from shared.triggers import rollup_timer

    now = datetime.now(UTC)
    write_demo_workspace(settings.local_workspace_path, seed=3, days=1, end=now + timedelta(hours=1))
    # the blueprint's function itself: indexing function_app twice in one process is refused
    rollup = rollup_timer.rollup._function.get_user_function()
    with process_environment(settings.with_overrides(ALERT_THRESHOLDS="fifty")), caplog.at_level("INFO"), \
            pytest.raises(Exception, match="ALERT_THRESHOLDS"):
        rollup(TimerRequest())
    assert "rollup done:" in caplog.text and "quota alerts failed" in caplog.text
    assert table_store(settings).get("usage-rollup").value is not None  # the rollup's watermark moved
