"""Bench: a month backfill at 10,000 subscriptions in bounded memory.

The log source is the aggregate stand-in of ``scale-run`` (the local engine's output is aggregate
rows): every subscription x 2 model keys x every hour of the month (14.4M hourly rows at 10,000
subscriptions).  The backfill queries in chunks sized by result rows (the rollup's target rows
per query), writes each chunk's hours and days, and derives the months once at the end; memory
holds one chunk.  Printed: peak RSS (target ≤ 1 GB) and hourly rows written per second.

``--tiny``: 20 subscriptions x 2 days.  ``BENCH_BACKFILL_SCALE_SUBSCRIPTIONS`` and
``BENCH_BACKFILL_SCALE_DAYS`` (10,000 x 30) set the size.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta

from bench.common import Result, azurite, fresh_prefix, say, settings_for, workdir
from bench.scale_run import AggregateSource, peak_rss_mb
from bench.usage_rows import MODEL_KEYS

MONTH = datetime(2026, 9, 1, tzinfo=UTC)


def run(tiny: bool = False) -> list[Result]:
    from tqdm import tqdm

    from shared.composition import rollup_service, table_store

    subscriptions = 20 if tiny else int(os.environ.get("BENCH_BACKFILL_SCALE_SUBSCRIPTIONS", "10000"))
    days = 2 if tiny else int(os.environ.get("BENCH_BACKFILL_SCALE_DAYS", "30"))
    with workdir("backfill-scale") as folder, azurite(folder, large=True) as process:
        settings = settings_for(folder / "unused.duckdb", process.connection_string, fresh_prefix())
        source = AggregateSource(subscriptions)
        store = table_store(settings)
        service = rollup_service(settings, source=source, store=store)
        # chunks sized as after a first run: the densest rows per hour are known
        store.record_rows_per_hour("usage-rollup", float(subscriptions * len(MODEL_KEYS)))
        start, end = MONTH, MONTH + timedelta(days=days)
        chunks = service.chunks(start, end)
        rss_before = peak_rss_mb()
        began = time.perf_counter()
        with tqdm(total=len(chunks), unit="chunk", desc="backfill", file=sys.stderr, mininterval=5.0) as bar:
            result = service.backfill(start, end, progress=lambda _: bar.update(1))
        seconds = time.perf_counter() - began
    say(result.summary())
    hourly = result.hourly_rows_written
    assert hourly == subscriptions * len(MODEL_KEYS) * days * 24, result.summary()
    say(f"{subscriptions:,} subscriptions x {days} days in {len(chunks)} chunks: "
        f"{hourly / seconds:,.0f} hourly rows/s, "
        f"peak RSS {peak_rss_mb():.0f} MB (before {rss_before:.0f} MB)")
    return [
        Result("backfill at scale, peak RSS", peak_rss_mb(), " MB", 1024.0,
               detail=f"{subscriptions:,} subscriptions x {days} days, {len(chunks)} chunks"),
        Result("backfill at scale, hourly rows/s", hourly / seconds, " rows/s",
               detail=f"{hourly:,} hourly + {result.derived_rows_written:,} day/month rows in {seconds:.0f}s"),
    ]
