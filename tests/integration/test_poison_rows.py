"""Poison rows never stall the rollup and nothing is lost.

Requests naming deployments Table Storage cannot store as-is (over the property limit, U+2028 and
U+2029, key characters, two long names sharing a prefix) are counted under their storable names;
a row the service still refuses (a loopback proxy in front of Azurite refuses it, as the service
would) is quarantined with its reason, the window completes, one alert is recorded, and a later run
writes it once the service takes it.  Totals are checked against ``tests/expected.py``.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.tables import TableStore
from shared.composition import rollup_service, table_store
from shared.core.keys import MAX_NAME_UTF16, partition_key, storable_name
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow
from shared.errors import StorageError
from shared.services.rollup import WATERMARK_NAME
from shared.settings import Settings
from shared.tooling.azurite_process import AzuriteProcess
from shared.tooling.demo import demo_data
from tests.conftest import DEMO_END, make_settings
from tests.expected import FIELDS, expected_hourly, rollup_to
from tests.integration.test_rollup import stored, write_workspace
from tests.table_proxy import TableProxy, table_proxy

NOW = DEMO_END + timedelta(minutes=5)
LOOKBACK = str(26 * 60)
HOSTILE_DEPLOYMENTS = [
    "x" * 40_000,  # over the 32K-character property limit
    "dep\u2028line\u2029para",
    "A" * 5000 + "-one",  # two long names sharing their first 5,000 characters
    "A" * 5000 + "-two",
    "dep/with#bad?chars\\and\x01control\x7f",
]
Expected = dict[tuple[datetime, str, str, str, str], dict[str, int]]


def poisoned(seed: int, names: list[str], every: int = 3) -> demo_data.DemoTraffic:
    """A day of demo traffic where some requests logged by the LLM log carry the hostile deployment names."""
    traffic = demo_data.generate(seed=seed, days=1, end=DEMO_END, requests_per_hour=25)
    correlations = sorted({row["CorrelationId"] for row in traffic.llm})
    renamed = {correlation: names[index % len(names)] for index, correlation in enumerate(correlations[::every])}
    for row in traffic.llm:
        if row["CorrelationId"] in renamed:
            row["DeploymentName"] = renamed[row["CorrelationId"]]
    return traffic


def as_stored(expected: Expected) -> Expected:
    """The oracle's rows under the names storage holds (the naming rule is tested on its own below)."""
    out: dict[tuple[datetime, str, str, str, str], dict[str, int]] = {}
    for (start, subscription, product, model, deployment), counters in expected.items():
        key = (start, subscription, product, model, storable_name(deployment))
        slot = out.setdefault(key, dict.fromkeys(FIELDS, 0))
        for name, value in counters.items():
            slot[name] += value
    return out


def totals_by_subscription(rows: Expected) -> dict[str, dict[str, int]]:
    sums: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for key, counters in rows.items():
        for name, value in counters.items():
            sums[key[1]][name] += value
    return dict(sums)


def run(settings: Settings) -> Any:
    service = rollup_service(settings.with_overrides(ROLLUP_LOOKBACK_MINUTES=LOOKBACK))
    service.clock = lambda: NOW
    return service.run()


def test_unstorable_names_are_counted_under_storable_ones_and_the_window_completes(settings: Settings) -> None:
    traffic = poisoned(7, HOSTILE_DEPLOYMENTS)
    write_workspace(settings.local_workspace_path, traffic)
    result = run(settings)
    store = table_store(settings)
    assert store.get(WATERMARK_NAME).value == DEMO_END and result.quarantined == 0
    expected = expected_hourly(traffic.gateway, traffic.llm, DEMO_END - timedelta(days=1), DEMO_END)
    assert {k[4] for k in expected} >= set(HOSTILE_DEPLOYMENTS)  # the poison really was in the logs
    got = stored(settings, Granularity.HOUR)
    # Nothing lost: per subscription, every counter equals the oracle's, whatever the names became.
    assert totals_by_subscription(got) == totals_by_subscription(expected)
    assert got == as_stored(expected)
    assert stored(settings, Granularity.DAY) == rollup_to(as_stored(expected), "day")
    assert stored(settings, Granularity.MONTH) == rollup_to(as_stored(expected), "month")
    # The two long twins stay two rows; the shortened names carry the full names' hashes.
    deployments = {k[4] for k in got}
    for name in HOSTILE_DEPLOYMENTS[:1] + HOSTILE_DEPLOYMENTS[2:4]:
        digest = hashlib.sha256(name.encode()).hexdigest()
        shortened = [d for d in deployments if d.endswith(f"[sha256:{digest}]")]
        assert len(shortened) == 1 and len(shortened[0]) <= MAX_NAME_UTF16
    assert "dep\u2028line\u2029para" in deployments and HOSTILE_DEPLOYMENTS[4] in deployments  # stored as they are
    entities = list(store.table_client(store.usage_table).list_entities())
    marked = [e for e in entities if e.get("NameTruncated")]
    assert marked and all(f"Deployment:{hashlib.sha256(n.encode()).hexdigest()}" in {e["FullNameHash"] for e in marked}
                          for n in HOSTILE_DEPLOYMENTS[:1] + HOSTILE_DEPLOYMENTS[2:4])


def outbox_alerts(settings: Settings, kind: str) -> list[dict[str, Any]]:
    store = table_store(settings)
    name = settings.table_prefix + "alerts"
    if name not in store.table_names():
        return []
    return [dict(e) for e in store.table_client(name).list_entities() if e.get("Kind") == kind]


def test_a_row_the_service_refuses_is_quarantined_alerted_once_and_written_later(
        tmp_path: Path, azurite: AzuriteProcess, caplog: pytest.LogCaptureFixture) -> None:
    traffic = poisoned(11, ["poison-deployment"], every=40)
    with table_proxy(azurite.port) as proxy:
        settings = make_settings(tmp_path / "ws.duckdb", proxy.connection_string(azurite.connection_string))
        write_workspace(settings.local_workspace_path, traffic)
        expected = expected_hourly(traffic.gateway, traffic.llm, DEMO_END - timedelta(days=1), DEMO_END)
        clean = {k: v for k, v in expected.items() if k[4] != "poison-deployment"}
        assert len(clean) < len(expected)
        proxy.refuse_marker = b'"poison-deployment"'
        with caplog.at_level(logging.ERROR):
            first = run(settings)
        store = table_store(settings)
        # The window completed and the watermark moved; every other row is written.
        assert store.get(WATERMARK_NAME).value == DEMO_END
        assert stored(settings, Granularity.HOUR) == clean
        assert stored(settings, Granularity.DAY) == rollup_to(clean, "day")
        poison = {k: v for k, v in expected.items() if k[4] == "poison-deployment"}
        # every refused hour and day row of the poison deployment (its month rows are derived from
        # stored days, so they are simply not there yet); copies in other tables (the period
        # index) are refused and kept the same way
        kept = store.quarantine.entries()
        in_usage = [e for e in kept if e.table_name == store.usage_table]
        assert len(in_usage) == len(poison) + len(rollup_to(poison, "day"))
        assert first.quarantined == store.quarantined_count() == len(kept)
        assert "PropertyValueInvalid" in caplog.text
        assert len(outbox_alerts(settings, "quarantine")) == 1
        second = run(settings)  # still refused: kept, and no second alert for the same incident
        assert second.quarantined == first.quarantined and len(outbox_alerts(settings, "quarantine")) == 1
        proxy.refuse_marker = None
        third = run(settings)  # the service takes them now: written, cleared, sums complete
        assert third.retried is not None and third.retried.written == first.quarantined
        assert third.quarantined == store.quarantined_count() == 0
        assert stored(settings, Granularity.HOUR) == expected
        assert stored(settings, Granularity.DAY) == rollup_to(expected, "day")
        assert stored(settings, Granularity.MONTH) == rollup_to(expected, "month")
        assert len(outbox_alerts(settings, "quarantine")) == 1


def test_a_kept_copy_never_overwrites_a_newer_write(settings: Settings) -> None:
    store = table_store(settings)
    table = settings.table_prefix + "kept"
    old = {"PartitionKey": "p", "RowKey": "r", "Version": 1}
    store.quarantine.put(table, old, "refused earlier")
    assert store.quarantined_count() == 1
    assert store.replace_entities(table, [{"PartitionKey": "p", "RowKey": "r", "Version": 2}]) == 1
    assert store.quarantined_count() == 0  # the newer write cleared the kept copy
    store.retry_quarantined()
    assert store.table_client(table).get_entity("p", "r")["Version"] == 2


def test_entities_breaking_a_limit_are_kept_aside_with_the_reason(settings: Settings) -> None:
    store = table_store(settings)
    table = settings.table_prefix + "limits"
    good: dict[str, Any] = {"PartitionKey": "p", "RowKey": "good", "Text": "\u2028\u2029" + "é" * 32_000}
    bad: list[dict[str, Any]] = [
        {"PartitionKey": "p", "RowKey": "long-string", "Text": "x" * 32_769},
        {"PartitionKey": "p", "RowKey": "lone", "Text": "a\ud800b"},
        {"PartitionKey": "p", "RowKey": "slash/key"},
        {"PartitionKey": "p", "RowKey": "k" * 513},
        {"PartitionKey": "p", "RowKey": "too-many", **{f"P{i}": i for i in range(253)}},
        {"PartitionKey": "p", "RowKey": "too-big", **{f"S{i}": "y" * 30_000 for i in range(20)}},
    ]
    assert store.replace_entities(table, [good, *bad]) == 1
    kept = {entry.entity["RowKey"]: entry.reason for entry in store.quarantine.entries() if entry.entity}
    assert set(kept) == {e["RowKey"] for e in bad}
    assert "32,769 UTF-16" in kept["long-string"] and "surrogate" in kept["lone"]
    assert "U+002F" in kept["slash/key"] and "513 UTF-16" in kept["k" * 513]
    assert "properties" in kept["too-many"] and "bytes" in kept["too-big"]
    assert store.table_client(table).get_entity("p", "good")["Text"] == good["Text"]


@contextmanager
def proxied_table(tmp_path: Path, azurite: AzuriteProcess, name: str) -> Iterator[tuple[TableProxy, TableStore, str]]:
    """A store whose Table Storage calls pass through a misbehaving proxy, and a fresh table of it."""
    with table_proxy(azurite.port) as proxy:
        settings = make_settings(tmp_path / "ws.duckdb", proxy.connection_string(azurite.connection_string))
        store = table_store(settings)
        table = settings.table_prefix + name
        store.table(table)
        yield proxy, store, table


def test_transactions_split_by_bytes_as_well_as_count(tmp_path: Path, azurite: AzuriteProcess) -> None:
    with proxied_table(tmp_path, azurite, "bytes") as (proxy, store, table):
        # 100 entities of one partition, ~62 KB of JSON each: over 4 MiB as one transaction
        entities = [{"PartitionKey": "p", "RowKey": f"{n:03d}", "Text": "z" * 31_000, "More": "w" * 31_000}
                    for n in range(100)]
        assert store.replace_entities(table, entities) == 100
        assert len(proxy.batches) >= 2 and all(len(body) <= 4 * 1024 * 1024 for body in proxy.batches)
        assert sum(1 for _ in store.table_client(table).list_entities(select=["RowKey"])) == 100


def test_an_unexpected_answer_falls_back_once_to_the_sdk(tmp_path: Path, azurite: AzuriteProcess,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    with proxied_table(tmp_path, azurite, "fallback") as (proxy, store, table):
        entities = [{"PartitionKey": "p", "RowKey": f"{n}", "N": n} for n in range(10)]
        proxy.garble_batches = 1
        with caplog.at_level(logging.WARNING):
            assert store.replace_entities(table, entities) == 10
        assert len(proxy.batches) == 2  # ours, answered with a page; then the SDK's, once
        assert "through the SDK's submit_transaction" in caplog.text and "HTTP 200 text/html" in caplog.text
        assert sorted(e["N"] for e in store.table_client(table).list_entities()) == list(range(10))
        proxy.garble_batches = 2  # the SDK gets the page too: a failure, not a silent success
        with pytest.raises(StorageError):
            store.replace_entities(table, entities)
        assert len(proxy.batches) == 4


def test_a_lookup_through_a_key_answers_only_for_its_own_name(settings: Settings) -> None:
    store = table_store(settings)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    long_one, long_two = "S" * 300 + "-one", "S" * 300 + "-two"
    forged = partition_key(long_one)  # a short name spelled like the long one's key
    lone = "team\udc00x"
    names = [long_one, long_two, forged, lone, "y" * 50_000]
    rows = [UsageRow(Granularity.MONTH, start, UsageKey(name, "", "m", "d"), Counters(requests=n + 1))
            for n, name in enumerate(names)]
    store.upsert(rows)
    assert len({partition_key(name) for name in names}) == len(names)
    for n, name in enumerate(names):
        got = store.read(name, Granularity.MONTH, start, start + timedelta(days=30))
        assert [row.counters.requests for row in got] == [n + 1]
        assert got[0].key.subscription_id == storable_name(name)


@pytest.mark.parametrize("mode", ["reset_batches", "reset_batches_after_commit"])
def test_a_transaction_whose_connection_resets_is_sent_again(tmp_path: Path, azurite: AzuriteProcess,
                                                             caplog: pytest.LogCaptureFixture, mode: str) -> None:
    """A reset before Azurite saw the transaction, or after it committed it (the answer lost): the
    replace is sent again and the table holds exactly the entities, once each."""
    with proxied_table(tmp_path, azurite, "resets") as (proxy, store, table):
        entities = [{"PartitionKey": "p", "RowKey": f"{n:02d}", "N": n} for n in range(20)]
        setattr(proxy, mode, 2)
        with caplog.at_level(logging.WARNING):
            assert store.replace_entities(table, entities) == 20
        assert len(proxy.batches) == 3  # two reset, the third answered
        assert caplog.text.count("lost its connection") == 2
        assert sorted(e["N"] for e in store.table_client(table).list_entities()) == list(range(20))
        setattr(proxy, mode, 4)  # every attempt reset: the store says so, it does not pretend
        with pytest.raises(StorageError):
            store.replace_entities(table, entities)
        assert len(proxy.batches) == 7
