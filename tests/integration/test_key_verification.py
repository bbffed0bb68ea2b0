"""Every lookup through a key checks the stored name: a record filed under another name's key
(what a key collision would look like) never answers for it.  Such records are written here by hand,
under the victim's key with the intruder's name, since the key rule itself makes real collisions
infeasible (tests/unit/test_storable_names.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.adapters.access_tables import ACCESS, grant_entity
from shared.adapters.alert_outbox import ALERTS, alert_entity
from shared.adapters.probe_tables import attempt_entity, probe_partition
from shared.adapters.quota_tables import QUOTAS, quota_entity
from shared.adapters.tables import usage_entity
from shared.composition import access_store, alert_outbox, probe_store, quota_store, table_store
from shared.core.access import READER, Grant
from shared.core.keys import partition_key
from shared.core.probe import ProbeAttempt
from shared.core.quotas import Period, Quota
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow
from shared.services.quarantine_alarm import quarantine_alert
from shared.settings import Settings

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def filed_under(entity: dict[str, Any], key: str) -> dict[str, Any]:
    return {**entity, "PartitionKey": key}


def test_usage_rows_answer_only_for_their_subscription(settings: Settings) -> None:
    store = table_store(settings)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    intruder = UsageRow(Granularity.MONTH, start, UsageKey("team-b", "", "m", "d"), Counters(requests=7))
    store.replace_entities(store.usage_table, [filed_under(usage_entity(intruder), partition_key("team-a"))])
    assert store.read("team-a", Granularity.MONTH, start, start + timedelta(days=30)) == []


def test_access_grants_answer_only_for_their_principal(settings: Settings) -> None:
    store = access_store(settings)
    entity = grant_entity(Grant("mallory@example.com", READER, frozenset({"*"})), NOW)
    table = table_store(settings).table(settings.table_prefix + ACCESS)
    table.upsert_entity(filed_under(entity, partition_key("alice@example.com")))
    assert store.get("alice@example.com") is None
    assert store.lookup(["alice@example.com"]) == []


def test_quotas_answer_only_for_their_subscription(settings: Settings) -> None:
    table = table_store(settings).table(settings.table_prefix + QUOTAS)
    table.upsert_entity(filed_under(quota_entity(Quota("team-b", Period.DAY, max_tokens=1), NOW),
                                    partition_key("team-a")))
    assert quota_store(settings).for_subscription("team-a") == []


def test_probe_attempts_answer_only_for_their_deployment(settings: Settings) -> None:
    store = probe_store(settings)
    attempt = ProbeAttempt(NOW, "dep-b", "plain", True, 200, 12.5, "run-1")  # type: ignore[arg-type]
    store.add([])
    table = table_store(settings).table(store.probes_table)
    table.upsert_entity(filed_under(attempt_entity(attempt), probe_partition("dep-a")))
    assert store.attempts(["dep-a"], NOW - timedelta(hours=1), NOW + timedelta(hours=1)) == []


def test_alerts_answer_only_for_their_subscription(settings: Settings) -> None:
    alert = quarantine_alert(3, NOW, NOW)
    table = table_store(settings).table(settings.table_prefix + ALERTS)
    table.upsert_entity(filed_under(alert_entity(alert, NOW), partition_key("team-a")))
    assert alert_outbox(settings).list_alerts("team-a", None, 10) == []
    assert alert.cost == Decimal(0)
