"""The period index against Azurite: after a rollup and after its rerun, the index holds exactly the
day and month rows of the usage table (same keys turned around, same values); all-subscription day
and month reads go to the index's period partitions, not the usage table; ``chargeback index
rebuild`` restores a damaged index."""

from __future__ import annotations

import urllib.parse
import zlib
from datetime import timedelta
from typing import Any

from azure.data.tables import TableServiceClient

from shared.adapters.tables import TableStore
from shared.adapters.usage_index import COMPLETE, JOIN, META_PARTITION
from shared.adapters.usage_index_rebuild import rebuild
from shared.composition import rollup_service, table_store
from shared.core.usage import Granularity
from shared.settings import Settings
from shared.tooling.cli import main as cli_main
from shared.tooling.demo import demo_data
from tests.conftest import DEMO_END, process_environment
from tests.integration.test_rollup import write_workspace

DAYS = 2
START = DEMO_END - timedelta(days=DAYS)


def entities(store: TableStore, table: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every entity of ``table`` but the index's completeness marker (checked on its own) and the
    touched marks (partitions ``s..|t|<day>``)."""
    client = store.table_client(table)
    return {(e["PartitionKey"], e["RowKey"]): {k: v for k, v in e.items() if k not in ("PartitionKey", "RowKey")}
            for e in client.list_entities()
            if e["PartitionKey"] != META_PARTITION and "|t|" not in e["PartitionKey"]}


def expected_index(store: TableStore) -> dict[tuple[str, str], dict[str, Any]]:
    """The index computed independently from the usage table: day and month rows, keyed by the
    subscription's shard (CRC-32 of its usage PartitionKey, of 16) and the period."""
    out = {}
    for (partition, row), values in entities(store, store.usage_table).items():
        if row.startswith(("d|", "m|")):
            period = "|".join(row.split("|")[:2])
            shard = f"s{zlib.crc32(partition.encode()) % 16:02d}"
            out[(f"{shard}|{period}", f"{partition}{JOIN}{row}")] = values
    return out


def expected_rows(store: TableStore, granularity: Granularity) -> list[dict[str, Any]]:
    code = {Granularity.DAY: "d|", Granularity.MONTH: "m|"}[granularity]
    return [values for (_, row), values in entities(store, store.usage_table).items() if row.startswith(code)]


def rolled_up(settings: Settings) -> TableStore:
    traffic = demo_data.generate(seed=5, days=DAYS, end=DEMO_END, requests_per_hour=12)
    write_workspace(settings.local_workspace_path, traffic)
    rollup_service(settings).backfill(START, DEMO_END)
    return table_store(settings)


def test_index_matches_the_usage_rows_after_a_rollup_and_its_rerun(settings: Settings) -> None:
    store = rolled_up(settings)
    first = entities(store, store.index_table)
    expected = expected_index(store)
    assert len(expected) > 10 and any("|m|" in partition for partition, _ in expected)
    assert len({partition.split("|", 1)[0] for partition, _ in expected}) > 1  # several shards hold them
    assert first == expected
    rollup_service(settings).backfill(START, DEMO_END)
    assert entities(store, store.index_table) == first == expected_index(store)


def test_all_subscription_day_and_month_reads_use_the_index(settings: Settings) -> None:
    store = rolled_up(settings)
    sent: list[str] = []

    def record(request: Any) -> None:
        url = urllib.parse.unquote(request.http_request.url)
        sent.append(url.split("?", 1)[0].rsplit("/", 1)[-1] + " " + url.split("$filter=", 1)[-1].split("&", 1)[0])

    service = TableServiceClient.from_connection_string(str(settings.tables_connection_string),
                                                       raw_request_hook=record)
    watched = TableStore(service, settings.table_prefix, "azurite")
    month = Granularity.MONTH.period_start(START)
    for granularity in (Granularity.DAY, Granularity.MONTH):
        sent.clear()
        rows = watched.read_all(granularity, month, DEMO_END + timedelta(days=1))
        subscriptions = {str(values["SubscriptionId"]) for values in expected_rows(store, granularity)}
        scanned = [row for sub in sorted(subscriptions)
                   for row in store.read(sub, granularity, month, DEMO_END + timedelta(days=1))]
        assert sorted(map(repr, rows)) == sorted(map(repr, scanned)) and rows
        reads = [line for line in sent if line.split(" ")[0].endswith("()")]  # entity queries, not table creation
        assert reads and all(line.startswith(f"{store.index_table}()") for line in reads), sent
        assert all("PartitionKey ge" in line for line in reads), sent


def test_rebuild_restores_a_damaged_index(settings: Settings, capsys: Any) -> None:
    store = rolled_up(settings)
    expected = expected_index(store)
    index = store.table_client(store.index_table)
    (gone_partition, gone_row), *_ = sorted(expected)
    index.delete_entity(gone_partition, gone_row)
    index.upsert_entity({"PartitionKey": gone_partition, "RowKey": "stale row", "Requests": 1})
    month = Granularity.MONTH.period_start(START)
    result = rebuild(store, month, DEMO_END + timedelta(days=1))
    assert result.removed == 1 and result.written == len(expected)
    assert entities(store, store.index_table) == expected
    store.table_client(store.index_table).delete_entity(gone_partition, gone_row)
    with process_environment(settings):
        assert cli_main(["index", "rebuild"]) == 0
    assert f"{len(expected):,} entities written" in capsys.readouterr().out
    assert entities(store, store.index_table) == expected


def test_an_installation_with_history_scans_until_the_index_is_rebuilt(settings: Settings) -> None:
    """A fresh store marks its index complete on its first write; a store that already had usage rows
    when the index arrived must not read a partial index: it scans (same rows) until a full rebuild."""
    store = rolled_up(settings)
    index = store.table_client(store.index_table)
    assert index.get_entity(META_PARTITION, COMPLETE) is not None  # fresh: complete from the first write
    day_rows = sorted(map(repr, store.read_all(Granularity.DAY, START, DEMO_END)))
    # an upgraded installation: history written before the index existed (marker and index rows gone)
    for key in [*entities(store, store.index_table), (META_PARTITION, COMPLETE)]:
        index.delete_entity(*key)
    upgraded = table_store(settings)
    upgraded.upsert(upgraded.read(next(iter(entities(store, store.usage_table)))[0], Granularity.DAY, START,
                                  DEMO_END)[:1])  # a new write after the upgrade: the index stays partial
    assert not upgraded.index_complete()
    assert sorted(map(repr, upgraded.read_all(Granularity.DAY, START, DEMO_END))) == day_rows  # scanned
    rebuild(upgraded)
    assert upgraded.index_complete()
    assert entities(store, store.index_table) == expected_index(store)
    assert sorted(map(repr, upgraded.read_all(Granularity.DAY, START, DEMO_END))) == day_rows
