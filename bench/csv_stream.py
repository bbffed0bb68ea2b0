"""Bench 8: the usage CSV streamed from Azurite with memory independent of the range; JSON pages resume.

Loaded with the batched writer (``TableStore.upsert``): hourly rows of one model key for
``BENCH_CSV_SUBSCRIPTIONS`` subscriptions (default 200) over ``BENCH_CSV_DAYS`` days (default 365:
a year, 1.75M rows).  Azurite answers every page of a query by scanning its whole table and
sorting every remaining match, so one cross-partition read of a year (1,750 pages, each sorting up
to 1.75M entities) takes hours here; ``BENCH_CSV_NAMED=1`` names every subscription in the request
(``subscription=`` takes up to 200), so the report reads partition by partition and Azurite sorts
one subscription's rows per page.  ``BENCH_CSV_DAYS=30`` runs in minutes, and running two sizes
shows the growth does not follow the range.

Measured through the ASGI app (raw ASGI calls, so each streamed piece is seen as it is sent):
``GET /api/usage?granularity=hour&format=csv`` for every subscription — the process's peak RSS
growth while streaming (sampled every 20 ms against the RSS before the request; target ≤ 100 MB),
rows/s and the pieces sent; then JSON paging of the same range (``pageSize=1000``): the first page
(one pass for the totals) and the following pages (each from its token's continuation).
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
import urllib.parse
from collections.abc import MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import BENCH_API_KEY, Result, azurite, fresh_prefix, percentile, say, settings_for, workdir
from bench.usage_rows import hours, rows, subscription_id

START = datetime(2025, 1, 1, tzinfo=UTC)
ONE_KEY = (("gpt-4o-2024-08-06", "gpt-4o"),)


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """The highest RSS seen while the block runs (a sampling thread)."""

    def __init__(self, every: float = 0.02) -> None:
        self.every, self.peak, self._stop = every, 0, threading.Event()

    def __enter__(self) -> PeakRss:
        self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def stream(app: Any, query: dict[str, str]) -> tuple[int, int, int]:
    """(status, bytes, pieces) of one GET /api/usage, each body piece dropped once counted."""
    counted = {"bytes": 0, "pieces": 0, "status": 0}
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/api/usage", "raw_path": b"/api/usage", "root_path": "",
             "query_string": urllib.parse.urlencode(query).encode(), "server": ("bench", 80), "client": ("c", 1),
             "headers": [(b"host", b"bench"), (b"x-api-key", BENCH_API_KEY.encode())]}

    async def call() -> None:
        done, asked = asyncio.Event(), False

        async def receive() -> dict[str, Any]:
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                counted["status"] = message["status"]
            elif message["type"] == "http.response.body":
                counted["bytes"] += len(message.get("body", b""))
                counted["pieces"] += 1
                if not message.get("more_body"):
                    done.set()

        await app(scope, receive, send)

    asyncio.run(call())
    return counted["status"], counted["bytes"], counted["pieces"]


def run(tiny: bool = False) -> list[Result]:
    import httpx

    from shared.adapters.tables import TableStore
    from shared.api.app import AppContext, create_app
    from shared.core.usage import Granularity

    subscriptions = 3 if tiny else int(os.environ.get("BENCH_CSV_SUBSCRIPTIONS", "200"))
    days = 2 if tiny else int(os.environ.get("BENCH_CSV_DAYS", "365"))
    starts = hours(START, days * 24)
    end = START + timedelta(days=days)
    with workdir("csv-stream") as folder, azurite(folder, large=True) as process:
        from azure.data.tables import TableServiceClient

        store = TableStore(TableServiceClient.from_connection_string(process.connection_string), fresh_prefix(),
                           "azurite")
        began, loaded = time.perf_counter(), 0
        for first in range(0, subscriptions, 5):  # five subscriptions' rows at a time: bounded bench memory
            batch = list(rows(Granularity.HOUR, range(first, min(first + 5, subscriptions)), starts, ONE_KEY))
            loaded += store.upsert(batch)  # a reset transaction is sent again by the store
        load_seconds = time.perf_counter() - began
        say(f"loaded {loaded:,} hour rows ({subscriptions} subscriptions x {days} days) in {load_seconds:.0f}s "
            f"({loaded / load_seconds:,.0f} rows/s)")

        settings = settings_for(folder / "unused.duckdb", process.connection_string, store.usage_table[:-5])
        app = create_app(AppContext(lambda: settings, store_factory=lambda _: store))
        window = {"from": START.date().isoformat(), "to": end.isoformat().replace("+00:00", "Z"),
                  "granularity": "hour"}
        if os.environ.get("BENCH_CSV_NAMED") == "1":
            window["subscription"] = ",".join(subscription_id(s) for s in range(subscriptions))
        stream(app, {**window, "to": (START + timedelta(hours=1)).isoformat(), "format": "csv"})  # warm-up
        gc.collect()
        baseline = rss_bytes()
        began = time.perf_counter()
        with PeakRss() as peak:
            status, size, pieces = stream(app, {**window, "format": "csv"})
        seconds = time.perf_counter() - began
        assert status == 200, status
        growth_mb = (peak.peak - baseline) / 1e6
        say(f"CSV: {loaded:,} rows, {size / 1e6:,.1f} MB in {pieces:,} pieces, {seconds:.1f}s; "
            f"RSS {baseline / 1e6:.0f} MB before, peak {peak.peak / 1e6:.0f} MB")

        async def paging() -> tuple[float, list[float], int]:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                                         headers={"x-api-key": BENCH_API_KEY}) as client:
                params = {**window, "pageSize": "1000"}
                began = time.perf_counter()
                body = (await client.get("/api/usage", params=params)).json()
                first = time.perf_counter() - began
                following: list[float] = []
                while body["next"] and len(following) < 20:
                    began = time.perf_counter()
                    body = (await client.get("/api/usage", params={**params, "next": body["next"]})).json()
                    following.append(time.perf_counter() - began)
                return first, following, len(body["rows"])

        first_page, following, _ = asyncio.run(paging())
        later = percentile(following, 50) if following else first_page
        say(f"JSON pages of 1,000: first {first_page:.2f}s (one pass for totals), following p50 {later * 1000:.0f} ms "
            f"over {len(following)} pages")
    return [
        Result("csv-stream peak RSS growth", growth_mb, " MB", 100.0,
               detail=f"{loaded:,} hour rows ({subscriptions} subscriptions x {days} days) streamed; "
                      f"{size / 1e6:,.1f} MB of CSV in {pieces:,} pieces"),
        Result("csv-stream rows/s", loaded / seconds, " rows/s", higher=True,
               detail=f"{seconds:.1f}s for {loaded:,} rows, Azurite's paging included "
                      f"({'partition by partition' if 'subscription' in window else 'across partitions'})"),
        Result("usage JSON following page p50", later * 1000, " ms",
               detail=f"first page {first_page:.2f}s (the whole range once, for totals); {len(following)} pages"),
    ]
