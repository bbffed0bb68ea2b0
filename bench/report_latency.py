"""Bench 5: report latency through the ASGI app (httpx ASGITransport) over Azurite.

Loaded, for 1,000 subscriptions x 2 model keys: month rows for the 12 months of 2026 (24,000) and
day rows for every day of March 2026 (62,000); hourly rows for March 2026 for 5 of the
subscriptions (7,440).  Hourly rows for every subscription and month (17.5M with 2 keys) would take
days to load at Azurite's ~1,000 rows/s.  A one-subscription read is a single-partition RowKey
range query, so in Azure its cost depends on the rows it returns, not on the other partitions;
Azurite scans its in-memory collection, which the 93,440-entity table exercises.

The costing is the deployment-aware engine's, not a model-name table's: the catalog holds the
``gpt-4o`` deployment (gpt-4o 2024-08-06, GlobalStandard in eastus2), ``gpt-4o-mini`` stays
uncatalogued (model-name fallback), and a negotiated 10 % discount on every meter family (``*|*``)
is in force from 1 January, so every cost goes through the retail meters, the catalog, the fallback
and the override.

Measured: p50/p99 of ``GET /api/usage`` for one subscription-month of day rows (62 rows) and of
hourly rows (1,488 rows), and the whole-month report of every subscription
(``granularity=month&format=csv``, 2,000 rows; target 0.5 s).  Then the deployment moves to
DataZoneStandard on 15 March and the month CSV is measured again with a fresh app: March's month
rows of that key are priced from their 31,000 day rows (read from the table, then priced once per
stretch), which is what a change inside a month costs (no target: the day rows must be read).
Each filter sent to the table service is recorded (``raw_request_hook``) and printed.  Azurite runs
in memory for the full size (its periodic save to disk stalls it under load: reset connections).
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from bench.common import BENCH_API_KEY, Result, azurite, fresh_prefix, percentile, say, settings_for, workdir
from bench.usage_rows import days, hours, months, rows, subscription_id

YEAR = 2026
MONTH_START = datetime(YEAR, 3, 1, tzinfo=UTC)
SKU_CHANGE = datetime(YEAR, 3, 15, tzinfo=UTC)
CSV_TARGET_MS = 500.0
LOAD_CHUNK = 20_000
CHANGED_CSV = "all subscriptions, month CSV, SKU change inside the month"


def seed_pricing(settings: Any, store: Any) -> None:
    """The catalog and negotiated rate the costing prices with (see the module text)."""
    from shared.composition import rate_overrides

    add_version(settings, store, "GlobalStandard", datetime(YEAR - 1, 12, 1, tzinfo=UTC))
    rate_overrides(settings, store).put_override(make_override_text("*", "*", f"{YEAR}-01-01", "10"))


def add_version(settings: Any, store: Any, sku: str, moment: datetime) -> None:
    from shared.composition import deployment_store
    from shared.core.deployments import Deployment, Source

    deployment_store(settings, store).add(Deployment("gpt-4o", "bench-account", "gpt-4o", "2024-08-06", sku,
                                                     "eastus2", None, moment, Source.MANUAL))


def make_override_text(model: str, deployment_type: str, day: str, discount: str) -> Any:
    from shared.core.rate_overrides import make_override

    return make_override(model, deployment_type, day, discount, {}, "bench")


def _check_priced(text: str, types: tuple[str, ...]) -> None:
    """The CSV's costs came through the engine: every row priced by the override, gpt-4o-mini reported
    uncatalogued, gpt-4o priced by the meters of ``types`` (a bench that priced nothing would be fast)."""
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and all(row["costBasis"] == "override" and float(row["cost"]) > 0 for row in rows), rows[:2]
    mini = [row for row in rows if row["deployment"] == "gpt-4o-mini"]
    full = [row for row in rows if row["deployment"] == "gpt-4o"]
    assert mini and all(row["uncatalogued"] == "gpt-4o-mini" for row in mini), mini[:1]
    columns = {"global": "costGlobal", "datazone": "costDataZone"}
    assert full and all((float(row[columns[t]]) > 0) == (t in types) for row in full for t in columns), full[:1]


def run(tiny: bool = False) -> list[Result]:
    import httpx

    from shared.adapters.tables import TableStore
    from shared.api.app import AppContext, create_app
    from shared.core.usage import Granularity

    subscriptions = 5 if tiny else 1_000
    hourly_subscriptions = 2 if tiny else 5
    hourly_hours = 48 if tiny else 31 * 24
    load = [
        ("month", list(rows(Granularity.MONTH, range(subscriptions), months(YEAR)))),
        ("day", list(rows(Granularity.DAY, range(subscriptions), days(MONTH_START, 31)))),
        ("hour", list(rows(Granularity.HOUR, range(hourly_subscriptions), hours(MONTH_START, hourly_hours)))),
    ]
    sent: list[str] = []

    def record(request: Any) -> None:
        url = request.http_request.url
        if "$filter" in url:
            sent.append(urllib.parse.unquote(url.split("$filter=", 1)[1].split("&", 1)[0]))

    with workdir("report") as folder, azurite(folder, large=not tiny) as process:
        from azure.data.tables import TableServiceClient

        service = TableServiceClient.from_connection_string(process.connection_string, raw_request_hook=record)
        prefix = fresh_prefix()
        store = TableStore(service, prefix, "azurite")
        store.upsert([])
        began = time.perf_counter()
        total = 0
        for _, batch in load:
            for at in range(0, len(batch), LOAD_CHUNK):  # bounded: a failure names a chunk, not the whole load
                total += store.upsert(batch[at:at + LOAD_CHUNK])  # transactions of 100 per partition
        load_seconds = time.perf_counter() - began
        say(f"loaded {total:,} usage rows ({', '.join(f'{len(b):,} {g}' for g, b in load)}) in {load_seconds:.1f}s "
            f"({total / load_seconds:,.0f} rows/s)")

        settings = settings_for(folder / "unused.duckdb", process.connection_string, prefix)
        seed_pricing(settings, store)
        app = create_app(AppContext(lambda: settings, store_factory=lambda _: store))
        month_csv = "/api/usage?from=2026-03-01&to=2026-03-31&granularity=month&format=csv"
        target = subscription_id(min(3, hourly_subscriptions - 1))
        cases = {
            "one subscription-month, daily": (f"/api/usage?subscription={target}&from=2026-03-01&to=2026-03-31"
                                              "&granularity=day", 10 if tiny else 200),
            "one subscription-month, hourly": (f"/api/usage?subscription={target}&from=2026-03-01&to=2026-03-31"
                                               "&granularity=hour", 3 if tiny else 20),
            "all subscriptions, month CSV": (month_csv, 3 if tiny else 7),
        }
        latencies: dict[str, list[float]] = {}
        sizes: dict[str, int] = {}
        filters: dict[str, str] = {}

        async def measure(app: Any, cases: dict[str, tuple[str, int]], types: tuple[str, ...]) -> None:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                         headers={"x-api-key": BENCH_API_KEY}) as client:
                for name, (url, count) in cases.items():
                    await client.get(url)  # warm-up (first request builds the store's table client)
                    times = []
                    for _ in range(count):
                        sent.clear()
                        began = time.perf_counter()
                        response = await client.get(url)
                        times.append(time.perf_counter() - began)
                        assert response.status_code == 200, response.text
                    latencies[name] = times
                    if "format=csv" in url:
                        _check_priced(response.text, types)
                    sizes[name] = (len(response.json()["rows"]) if "json" in response.headers["content-type"]
                                   else response.text.count("\n") - 1)
                    filters[name] = " | ".join(sent)

        asyncio.run(measure(app, cases, ("global",)))
        # The deployment moves to Data Zone inside the month: a fresh app (its pricing is read anew).
        add_version(settings, store, "DataZoneStandard", SKU_CHANGE)
        changed = create_app(AppContext(lambda: settings, store_factory=lambda _: store))
        asyncio.run(measure(changed, {CHANGED_CSV: (month_csv, 3 if tiny else 5)}, ("global", "datazone")))
    results = []
    for name, times in latencies.items():
        p50, p99 = percentile(times, 50) * 1000, percentile(times, 99) * 1000
        say(f"{name}: {sizes[name]:,} rows, p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(times)} requests; "
            f"filter sent: {filters[name]}")
        target_ms = {"one subscription-month, daily": 50.0, "all subscriptions, month CSV": CSV_TARGET_MS}.get(name)
        if name == "all subscriptions, month CSV":
            results.append(Result(f"report p50, {name}", p50, " ms", CSV_TARGET_MS,
                                  detail=f"{sizes[name]:,} rows, deployment-aware costing"))
        results.append(Result(f"report p99, {name}", p99, " ms", target_ms,
                              detail=f"p50 {p50:.1f} ms; {sizes[name]:,} rows; table of {total:,} entities"))
    one = percentile(latencies["one subscription-month, daily"], 50)
    everything = percentile(latencies["all subscriptions, month CSV"], 50)
    results.append(Result("report p50, all subscriptions month CSV / one subscription-month", everything / one, "x",
                          detail=f"{everything * 1000:.0f} ms vs {one * 1000:.1f} ms"))
    results.append(Result("report load rate (TableStore.upsert)", total / load_seconds, " rows/s",
                          detail=f"{total:,} rows in {load_seconds:.1f}s"))
    return results
