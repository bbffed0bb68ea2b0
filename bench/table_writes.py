"""Bench 4: 10,000 hourly usage rows to Azurite, batched transactions vs one upsert per entity.

``TableStore.replace_entities`` groups rows by partition (subscription) and writes transactions of
100 entities with ``shared.adapters.table_batch`` (several in flight); the baseline calls
``table_client.upsert_entity`` once per entity (same entities, same REPLACE mode).  For reference,
the SDK's own ``submit_transaction`` writes the same transactions one after another.  Rows: 50
subscriptions x 2 model keys x 100 hours = 10,000.  The candidates run alternately in halves into
separate tables, so load hits all alike.

Then the Python CPU of one transaction (``time.process_time`` of this process), on the loopback table
sink (``bench/table_sink.py``, its own process, so only our side is counted): the store's path
(``table_batch.operation`` for each entity, then ``submit_operations``, through the client
``composition.table_store`` builds) vs the SDK's own ``submit_transaction`` on the same client, for
transactions of 100 hourly rows (a partition's hours in a backfill) and of 6 (a scheduled run: 3
hours x 2 keys), alternated round by round.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from itertools import groupby

from bench.common import Result, azurite, fresh_prefix, say, settings_for, table_service, workdir
from bench.usage_rows import hours, rows


def run(tiny: bool = False) -> list[Result]:
    return [*throughput(tiny), *transaction_cpu(tiny)]


def throughput(tiny: bool) -> list[Result]:
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


def transaction_cpu(tiny: bool) -> list[Result]:
    from azure.data.tables import UpdateMode

    from bench.table_sink import TableSinkProcess
    from shared.adapters.table_batch import operation, submit_operations
    from shared.adapters.table_rest import endpoints
    from shared.adapters.tables import usage_entity
    from shared.composition import table_store
    from shared.core.usage import Granularity

    start = datetime(2026, 11, 1, tzinfo=UTC)
    shapes = {100: (4 if tiny else 30, 50), 6: (20 if tiny else 200, 3)}  # entities -> (subscriptions, hours)
    rounds = 2 if tiny else 4  # the first warms up (connections, caches) and is not counted
    milliseconds: dict[tuple[str, int], float] = {}
    with workdir("transaction-cpu") as folder, TableSinkProcess() as sink:
        store = table_store(settings_for(folder / "unused.duckdb", sink.connection_string, fresh_prefix()))
        table = store.table(store.usage_table)
        _, table_url, _ = endpoints(table)

        def ours(chunk: list[dict[str, object]]) -> None:
            assert submit_operations(table, [operation(table_url, entity) for entity in chunk]) == len(chunk)

        def sdks(chunk: list[dict[str, object]]) -> None:
            table.submit_transaction([("upsert", entity, {"mode": UpdateMode.REPLACE}) for entity in chunk])

        for size, (subscriptions, hour_count) in shapes.items():
            entities = [usage_entity(row)
                        for row in rows(Granularity.HOUR, range(subscriptions), hours(start, hour_count))]
            chunks = [list(partition) for _, partition in groupby(entities, key=lambda e: e["PartitionKey"])]
            assert all(len(chunk) == size for chunk in chunks)
            spent = {"ours": 0.0, "sdk": 0.0}
            for round_number in range(rounds):
                order = [("ours", ours), ("sdk", sdks)]
                for name, write in order if round_number % 2 == 0 else order[::-1]:
                    began = time.process_time()
                    for chunk in chunks:
                        write(chunk)
                    if round_number:
                        spent[name] += time.process_time() - began
            for name, seconds in spent.items():
                milliseconds[(name, size)] = 1000 * seconds / ((rounds - 1) * len(chunks))
        stats = sink.stats()
    say(f"Python CPU per transaction on the table sink (this process; the sink counted {stats['transactions']:,} "
        f"transactions): 100 entities ours {milliseconds[('ours', 100)]:.2f} ms vs the SDK's "
        f"{milliseconds[('sdk', 100)]:.2f} ms; 6 entities ours {milliseconds[('ours', 6)]:.2f} ms vs the SDK's "
        f"{milliseconds[('sdk', 6)]:.2f} ms")
    return [Result("transaction CPU, 100 entities (table sink)", milliseconds[("ours", 100)], " ms",
                   detail=f"the SDK's submit_transaction {milliseconds[('sdk', 100)]:.2f} ms "
                          f"({milliseconds[('sdk', 100)] / milliseconds[('ours', 100)]:.1f}x ours); 6 entities: ours "
                          f"{milliseconds[('ours', 6)]:.2f} ms, the SDK's {milliseconds[('sdk', 6)]:.2f} ms")]
