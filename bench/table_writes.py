"""Bench 4: 10,000 hourly usage rows to Azurite, batched transactions vs one upsert per entity.

``TableStore.replace_entities`` groups rows by partition (subscription) and writes transactions of
100 entities with ``shared.adapters.table_batch`` (several in flight); the baseline calls
``table_client.upsert_entity`` once per entity (same entities, same REPLACE mode).  For reference,
the SDK's own ``submit_transaction`` writes the same transactions one after another.  Rows: 50
subscriptions x 2 model keys x 100 hours = 10,000.  The candidates run alternately in halves into
separate tables, so load hits all alike.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from itertools import groupby

from bench.common import Result, azurite, fresh_prefix, say, table_service, workdir
from bench.usage_rows import hours, rows


def run(tiny: bool = False) -> list[Result]:
    from azure.data.tables import UpdateMode

    from shared.adapters.tables import MAX_TRANSACTION, TableStore, usage_entity
    from shared.core.usage import Granularity

    subscriptions = 2 if tiny else 25  # per half: 2 x 25 subscriptions x 2 keys x 100 hours = 10,000 rows
    start = datetime(2026, 11, 1, tzinfo=UTC)
    per_subscription = 25 if tiny else 100
    halves = [list(rows(Granularity.HOUR, range(h * subscriptions, (h + 1) * subscriptions),
                        hours(start, per_subscription))) for h in range(2)]
    total = sum(len(h) for h in halves)
    names = ("batched", "single", "sdk-batched")
    with workdir("writes") as folder, azurite(folder) as process:
        service = table_service(process.connection_string)
        stores = {name: TableStore(service, fresh_prefix(), "azurite") for name in names}
        # Tables created here, outside the timing.
        clients = {name: service.create_table_if_not_exists(store.usage_table) for name, store in stores.items()}
        stores["batched"].upsert([])  # TableStore's own create-if-missing check, also outside the timing
        seconds = dict.fromkeys(names, 0.0)
        for half in halves:
            # The same entities for all (building them from rows is not the write strategy).
            entities = [usage_entity(row) for row in half]
            began = time.perf_counter()
            written = stores["batched"].replace_entities(stores["batched"].usage_table, entities)
            seconds["batched"] += time.perf_counter() - began
            assert written == len(half)
            began = time.perf_counter()
            for entity in entities:
                clients["single"].upsert_entity(entity, mode=UpdateMode.REPLACE)
            seconds["single"] += time.perf_counter() - began
            began = time.perf_counter()
            for _, partition in groupby(entities, key=lambda e: e["PartitionKey"]):
                chunk = list(partition)
                for at in range(0, len(chunk), MAX_TRANSACTION):
                    clients["sdk-batched"].submit_transaction(
                        [("upsert", e, {"mode": UpdateMode.REPLACE}) for e in chunk[at:at + MAX_TRANSACTION]])
            seconds["sdk-batched"] += time.perf_counter() - began
        stored = {name: sum(1 for _ in client.list_entities(select=["RowKey"])) for name, client in clients.items()}
    assert stored == dict.fromkeys(names, total), stored
    rate = {name: total / s for name, s in seconds.items()}
    say(f"{total:,} rows each way ({len(halves)} alternating halves): batched {seconds['batched']:.2f}s "
        f"({rate['batched']:,.0f} rows/s, {total // 100} transactions of 100), single {seconds['single']:.2f}s "
        f"({rate['single']:,.0f} rows/s, {total:,} requests); the SDK's own transactions "
        f"{seconds['sdk-batched']:.2f}s ({rate['sdk-batched']:,.0f} rows/s)")
    return [Result("table writes, batched / single (throughput)", rate["batched"] / rate["single"], "x", 4.0,
                   higher=True, detail=f"batched {rate['batched']:,.0f} rows/s vs single {rate['single']:,.0f} "
                                       f"rows/s; SDK submit_transaction {rate['sdk-batched']:,.0f} rows/s "
                                       f"({rate['sdk-batched'] / rate['single']:.1f}x single)")]
