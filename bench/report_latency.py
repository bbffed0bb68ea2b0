"""Bench 5: report latency through the ASGI app (httpx ASGITransport) over Azurite.

Loaded, for 1,000 subscriptions x 2 model keys: month rows for the 12 months of 2026 (24,000) and
day rows for every day of March 2026 (62,000); hourly rows for March 2026 for 5 of the
subscriptions (7,440).  Hourly rows for every subscription and month (17.5M with 2 keys) would take
days to load at Azurite's ~1,000 rows/s.  A one-subscription read is a single-partition RowKey
range query, so in Azure its cost depends on the rows it returns, not on the other partitions;
Azurite scans its in-memory collection, which the 93,440-entity table exercises.

Measured: p50/p99 of ``GET /api/usage`` for one subscription-month of day rows (62 rows) and of
hourly rows (1,488 rows), and the whole-month report of every subscription
(``granularity=month&format=csv``, 2,000 rows).  Each filter sent to the table service is
recorded (``raw_request_hook``) and printed: the usage read, plus what the costing adds.
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

    with workdir("report") as folder, azurite(folder) as process:
        from azure.data.tables import TableServiceClient

        service = TableServiceClient.from_connection_string(process.connection_string, raw_request_hook=record)
        prefix = fresh_prefix()
        store = TableStore(service, prefix, "azurite")
        store.upsert([])
        began = time.perf_counter()
        total = 0
        for _, batch in load:
            total += store.upsert(batch)  # transactions of 100 per partition (threads did not help: GIL-bound)
        load_seconds = time.perf_counter() - began
        say(f"loaded {total:,} usage rows ({', '.join(f'{len(b):,} {g}' for g, b in load)}) in {load_seconds:.1f}s "
            f"({total / load_seconds:,.0f} rows/s)")

        settings = settings_for(folder / "unused.duckdb", process.connection_string, prefix)
        app = create_app(AppContext(lambda: settings, store_factory=lambda _: store))
        target = subscription_id(min(3, hourly_subscriptions - 1))
        cases = {
            "one subscription-month, daily": (f"/api/usage?subscription={target}&from=2026-03-01&to=2026-03-31"
                                              "&granularity=day", 10 if tiny else 200),
            "one subscription-month, hourly": (f"/api/usage?subscription={target}&from=2026-03-01&to=2026-03-31"
                                               "&granularity=hour", 3 if tiny else 20),
            "all subscriptions, month CSV": ("/api/usage?from=2026-03-01&to=2026-03-31&granularity=month&format=csv",
                                             2),
        }
        latencies: dict[str, list[float]] = {}
        sizes: dict[str, int] = {}
        filters: dict[str, str] = {}

        async def measure() -> None:
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
                    sizes[name] = (len(response.json()["rows"]) if "json" in response.headers["content-type"]
                                   else response.text.count("\n") - 1)
                    filters[name] = " | ".join(sent)

        asyncio.run(measure())
    results = []
    for name, times in latencies.items():
        p50, p99 = percentile(times, 50) * 1000, percentile(times, 99) * 1000
        say(f"{name}: {sizes[name]:,} rows, p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(times)} requests; "
            f"filter sent: {filters[name]}")
        target_ms = 50.0 if name == "one subscription-month, daily" else None
        results.append(Result(f"report p99, {name}", p99, " ms", target_ms,
                              detail=f"p50 {p50:.1f} ms; {sizes[name]:,} rows; table of {total:,} entities"))
    one = percentile(latencies["one subscription-month, daily"], 50)
    everything = percentile(latencies["all subscriptions, month CSV"], 50)
    results.append(Result("report p50, all subscriptions month CSV / one subscription-month", everything / one, "x",
                          detail=f"{everything * 1000:.0f} ms vs {one * 1000:.1f} ms"))
    results.append(Result("report load rate (TableStore.upsert)", total / load_seconds, " rows/s",
                          detail=f"{total:,} rows in {load_seconds:.1f}s"))
    return results
