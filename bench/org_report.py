"""Bench: the all-subscriptions month CSV (``GET /api/usage?granularity=month&format=csv``), with two
months vs two years of history stored.

Two stores on one Azurite, the same subscriptions (2 model keys each): one holding 2 months of month
and day rows, the other 24 months; both written with the batched writer (``TableStore.upsert``,
which writes the index and the months' report generations too).  Then, as a scheduled run does
after writing, the month is rendered once and kept (``shared.services.month_csv.keep_months``:
one index partition read, priced and written; its time is printed); the measured requests are
served as kept (checked: the kept version is the same after them), so their latency follows
neither the history nor, much, the subscriptions.  Measured: p99 of each and their ratio.

Sizes: ``--tiny`` 100 subscriptions, month rows only (2 vs 24 months); otherwise
``BENCH_ORG_SUBSCRIPTIONS`` (10,000) with month rows for every month and day rows for
``BENCH_ORG_DAY_MONTHS`` of them (default all), the long history ``BENCH_ORG_LONG_MONTHS`` (24). Two
years of day rows at 10,000 subscriptions are 14.6M usage entities (29M with the index): at
Azurite's few thousand rows/s that load takes hours, so lower it on a shared machine and say so.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bench.common import BENCH_API_KEY, Result, azurite, fresh_prefix, percentile, say, settings_for, workdir
from bench.usage_rows import days, rows

if TYPE_CHECKING:
    from shared.adapters.tables import TableStore

LAST_MONTH = datetime(2026, 10, 1, tzinfo=UTC)  # the month read; history runs back from it
URL = "/api/usage?from=2026-10-01&to=2026-10-31&granularity=month&format=csv"


def month_starts(count: int) -> list[datetime]:
    starts, year, month = [], LAST_MONTH.year, LAST_MONTH.month
    for _ in range(count):
        starts.append(datetime(year, month, 1, tzinfo=UTC))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return sorted(starts)


def days_of(month: datetime) -> list[datetime]:
    following = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
    return days(month, (following - month).days)


def load(store: TableStore, subscriptions: int, months: int, day_months: int) -> int:
    from shared.core.usage import Granularity

    written = 0
    starts = month_starts(months)
    written += store.upsert(rows(Granularity.MONTH, range(subscriptions), starts))
    for month in starts[len(starts) - day_months:]:
        written += store.upsert(rows(Granularity.DAY, range(subscriptions), days_of(month)))
    return written


def run(tiny: bool = False) -> list[Result]:
    import httpx
    from azure.data.tables import TableServiceClient

    from shared.adapters.tables import TableStore
    from shared.api.app import AppContext, create_app
    from shared.composition import month_report_keeper

    subscriptions = 100 if tiny else int(os.environ.get("BENCH_ORG_SUBSCRIPTIONS", "10000"))
    long_history = 24 if tiny else int(os.environ.get("BENCH_ORG_LONG_MONTHS", "24"))
    histories = {"2 months": 2, f"{long_history} months": long_history}
    day_months = 0 if tiny else int(os.environ.get("BENCH_ORG_DAY_MONTHS", "24"))
    repeats = 5 if tiny else 30
    latencies: dict[str, list[float]] = {}
    renders: dict[str, float] = {}
    sizes: dict[str, int] = {}
    with workdir("org-report") as folder, azurite(folder, large=not tiny) as process:
        for name, months in histories.items():
            # a client (connection pool) per store: Azurite closes idle keep-alive sockets, and a
            # transaction POST on a socket it just closed is not retried
            service = TableServiceClient.from_connection_string(process.connection_string)
            prefix = fresh_prefix()
            store = TableStore(service, prefix, "azurite")
            began = time.perf_counter()
            total = load(store, subscriptions, months, min(day_months, months))
            seconds = time.perf_counter() - began
            say(f"{name}: {total:,} usage rows ({subscriptions:,} subscriptions x 2 keys, month rows for {months} "
                f"months, day rows for {min(day_months, months)}) + their index copies in {seconds:.0f}s "
                f"({2 * total / seconds:,.0f} entities/s)")
            settings = settings_for(folder / "unused.duckdb", process.connection_string, prefix)
            began = time.perf_counter()
            rendered = month_report_keeper(settings, store)([LAST_MONTH])
            renders[name] = time.perf_counter() - began
            assert rendered == [f"{LAST_MONTH:%Y-%m}"], rendered
            kept = _kept_version(store)
            say(f"{name}: month rendered and kept in {renders[name]:.1f}s")
            app = create_app(AppContext(lambda s=settings: s, store_factory=lambda _, st=store: st))  # type: ignore[misc]

            async def measure(app: object = app, name: str = name) -> None:
                transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
                async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                             headers={"x-api-key": BENCH_API_KEY}) as client:
                    await client.get(URL)  # warm-up
                    times = []
                    for _ in range(repeats):
                        began = time.perf_counter()
                        response = await client.get(URL)
                        times.append(time.perf_counter() - began)
                        assert response.status_code == 200, response.text
                    latencies[name] = times
                    sizes[name] = response.text.count("\n") - 1
                    say(f"{name}: p50 {percentile(times, 50) * 1000:.0f} ms, p99 {percentile(times, 99) * 1000:.0f} ms "
                        f"over {len(times)} requests ({sizes[name]:,} rows, {len(response.content):,} bytes)")

            asyncio.run(measure())
            assert _kept_version(store) == kept, "a request rendered the month again instead of serving it kept"
    results = []
    for name, times in latencies.items():
        p50, p99 = percentile(times, 50) * 1000, percentile(times, 99) * 1000
        say(f"{name} of history: month CSV of {sizes[name]:,} rows, p50 {p50:.0f} ms, p99 {p99:.0f} ms "
            f"over {len(times)} requests")
        results.append(Result(f"org month CSV p99, {name} of history", p99, " ms", 300.0,
                              detail=f"p50 {p50:.0f} ms; {sizes[name]:,} rows; {subscriptions:,} subscriptions"))
    for name, seconds in renders.items():
        results.append(Result(f"org month CSV rendered and kept once (after a run), {name} of history", seconds, " s",
                              detail=f"{sizes[name]:,} rows; {subscriptions:,} subscriptions"))
    short, long = (percentile(latencies[name], 50) for name in histories)
    results.append(Result(f"org month CSV p50, {long_history} months / 2 months of history", long / short, "x", 1.2,
                          detail=f"{long * 1000:.0f} ms vs {short * 1000:.0f} ms"))
    return results


def _kept_version(store: TableStore) -> str:
    from shared.adapters.month_report_tables import reports_table_name
    from shared.services.month_csv import REPORT

    table = store.table_client(reports_table_name(store.prefix))
    return str(table.get_entity(f"{REPORT}|{LAST_MONTH:%Y-%m}", "current")["WriteId"])
