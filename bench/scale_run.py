"""Bench: one scheduled rollup run at 10,000 active subscriptions, end to end on Azurite.

Each subscription has 2 model/deployment keys active in every hour of a 3-hour window: 60,000
hourly rows, their day rows and month rows.  The day's stored hours are read only for subscriptions
the day's listing names (none on this fresh range: ``shared.services.stored_hours``); the month rows
are summed from the period index's day partitions, a query per day of the month, once every day row
is stored (``MONTH_INDEX_THRESHOLD`` subscriptions or more; ``--tiny``'s 100 read their days one
subscription at a time).  The log source is a stand-in that answers the usage query with those
aggregate rows directly (what the local engine's query returns), so the bench measures the rollup
itself and Table Storage.

Printed: wall time of the run (target ≤ 60 s), usage rows written per second, and the process's
peak RSS (target ≤ 500 MB; Azurite runs in its own process and is not counted).  ``--tiny``: 100
subscriptions.  ``BENCH_SCALE_SUBSCRIPTIONS`` overrides the size.  ``BENCH_SCALE_STORE=sink`` runs it
against :mod:`bench.table_sink` instead of Azurite (the hourly rows counted and dropped, everything
else kept): what the run costs this process when the store is not the emulator.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import Result, fresh_prefix, say, settings_for, workdir
from bench.usage_rows import MODEL_KEYS, subscription_id

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # window [12:00, 15:00): mid-day, mid-month
HOURS = 3
COUNTERS = ("CachedTokens", "StreamedRequests", "UnmeteredRequests", "UnmeteredStreamed", "UnmeteredTruncated",
            "ReasoningTokens", "AudioPromptTokens", "CachedAudioTokens", "AudioCompletionTokens", "CacheWriteTokens")


class AggregateSource:
    """``LogSource`` answering every usage query with the aggregate rows of its window: each
    subscription x model key x hour, deterministic counters."""

    def __init__(self, subscriptions: int) -> None:
        self.subscriptions = subscriptions
        self.seconds = 0.0

    def describe(self) -> str:
        return f"aggregate stand-in ({self.subscriptions:,} subscriptions x {len(MODEL_KEYS)} keys)"

    def run(self, query: Any, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        began = time.perf_counter()
        start, end = parameters["window_start"], parameters["window_end"]
        hour = start.replace(minute=0, second=0, microsecond=0)
        records = []
        while hour < end:
            for s in range(self.subscriptions):
                for k, (model, deployment) in enumerate(MODEL_KEYS):
                    n = 1 + (s * 31 + hour.hour * 7 + k * 3) % 97
                    records.append({"PeriodStart": hour, "SubscriptionId": subscription_id(s),
                                    "ProductId": f"product-{s % 7}", "Model": model, "Deployment": deployment,
                                    "Requests": n, "PromptTokens": n * 900, "CompletionTokens": n * 300,
                                    "TotalTokens": n * 1200, "ErrorRequests": n // 20,
                                    **dict.fromkeys(COUNTERS, 0)})
            hour += timedelta(hours=1)
        self.seconds += time.perf_counter() - began
        return records


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run(tiny: bool = False) -> list[Result]:
    from bench.backfill_scale import STORES, storage
    from shared.composition import rollup_service, table_store
    from shared.core.usage import Granularity

    subscriptions = 100 if tiny else int(os.environ.get("BENCH_SCALE_SUBSCRIPTIONS", "10000"))
    kind = os.environ.get("BENCH_SCALE_STORE", "azurite")
    if kind not in STORES:
        raise SystemExit(f"BENCH_SCALE_STORE={kind!r}: one of {', '.join(STORES)}")
    with workdir("scale-run") as folder, storage(kind, folder) as (connection_string, _):
        settings = settings_for(folder / "unused.duckdb", connection_string, fresh_prefix())
        source = AggregateSource(subscriptions)
        store = table_store(settings)
        service = rollup_service(settings, source=source, store=store)
        # the scheduled run's window, [now - 3 h, now): first run (no watermark), no ingestion delay
        service.clock, service.lookback, service.ingestion_delay = (lambda: NOW), timedelta(hours=HOURS), timedelta()
        rss_before = peak_rss_mb()
        began = time.perf_counter()
        result = service.run()
        seconds = time.perf_counter() - began
        month = store.read_all(Granularity.MONTH, NOW.replace(day=1, hour=0), NOW + timedelta(days=1))
    written = result.hourly_rows_written + result.derived_rows_written
    say(result.summary())
    say(f"{subscriptions:,} subscriptions: {result.hourly_rows_written:,} hourly + {result.derived_rows_written:,} "
        f"day/month rows in {seconds:.1f}s (log stand-in {source.seconds:.1f}s); month rows read back: {len(month):,}; "
        f"peak RSS {peak_rss_mb():.0f} MB (before the run {rss_before:.0f} MB)")
    expected_hourly = subscriptions * len(MODEL_KEYS) * HOURS
    assert result.hourly_rows_written == expected_hourly, result.summary()
    assert len(month) == subscriptions * len(MODEL_KEYS), len(month)
    return [
        Result("scale run wall time", seconds, " s", 60.0,
               detail=f"{subscriptions:,} subscriptions x {len(MODEL_KEYS)} keys x {HOURS} h: {written:,} rows"),
        Result("scale run rows written", written / seconds, " rows/s", detail=f"{written:,} rows in {seconds:.1f}s"),
        Result("scale run peak RSS", peak_rss_mb(), " MB", 500.0, detail=f"{rss_before:.0f} MB before the run"),
    ]

