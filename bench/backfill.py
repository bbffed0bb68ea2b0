"""Bench 7: backfill throughput, workspace -> rollup -> Azurite, with a progress bar.

200 subscriptions, 10,000 gateway requests a day (+ their LLM-log rows) in office hours
(09:00-17:00 UTC), each subscription on one deployment.  7 days by default (~2 minutes);
``BENCH_BACKFILL_DAYS=30`` runs the whole month (~9 minutes here: Table Storage round trips,
~1,200 per day-chunk, dominate).
``RollupService.backfill`` over the month in ``ROLLUP_MAX_CHUNK_HOURS`` (24 h) chunks, a tqdm bar
advanced by its progress callback; time split into log queries vs Table Storage (hourly upserts +
day/month derivation, which reads the stored hours back per subscription-day).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import Result, azurite, fresh_prefix, say, settings_for, workdir
from bench.data import Spec, build_workspace

MONTH = datetime(2026, 9, 1, tzinfo=UTC)


class TimedSource:
    """The log source, timing each query (what the rollup spends in the workspace)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0

    def describe(self) -> str:
        return str(self.inner.describe())

    def run(self, query: Any, parameters: Any) -> Any:
        began = time.perf_counter()
        try:
            return self.inner.run(query, parameters)
        finally:
            self.seconds += time.perf_counter() - began


def run(tiny: bool = False) -> list[Result]:
    from tqdm import tqdm

    from shared.adapters.local_workspace import LocalWorkspaceSource
    from shared.composition import rollup_service, table_store

    days = 2 if tiny else int(os.environ.get("BENCH_BACKFILL_DAYS", "7"))
    subscriptions = 5 if tiny else 200
    per_day = 1_000 if tiny else 10_000
    specs = [Spec(per_day, MONTH + timedelta(days=d, hours=9), 8, subscriptions, seed=10 + d,
                  models_per_subscription=1) for d in range(days)]
    with workdir("backfill") as folder, azurite(folder) as process:
        path = folder / "workspace.duckdb"
        began = time.perf_counter()
        gateway, llm = build_workspace(path, specs)
        say(f"workspace: {gateway:,} gateway + {llm:,} LLM-log rows, {days} days x 8 office hours, "
            f"{subscriptions} subscriptions, in {time.perf_counter() - began:.1f}s")
        settings = settings_for(path, process.connection_string, fresh_prefix())
        source = TimedSource(LocalWorkspaceSource(path))
        service = rollup_service(settings, source=source, store=table_store(settings))
        start, end = MONTH, MONTH + timedelta(days=days)
        chunks = service.chunks(start, end)
        began = time.perf_counter()
        with tqdm(total=len(chunks), unit="chunk", desc="backfill", file=sys.stderr, mininterval=1.0) as bar:
            result = service.backfill(start, end, progress=lambda _: bar.update(1))
        seconds = time.perf_counter() - began
    written = result.hourly_rows_written + result.derived_rows_written
    storage = seconds - source.seconds
    say(result.summary())
    say(f"{gateway / seconds:,.0f} requests/s end to end; {written / seconds:,.0f} usage rows/s written; "
        f"queries {source.seconds:.1f}s ({source.seconds / seconds:.0%}), Table Storage {storage:.1f}s "
        f"({storage / seconds:.0%}: {result.hourly_rows_written:,} hourly rows upserted, "
        f"{result.derived_rows_written:,} day/month rows derived: whole days from the chunk, months once at the end)")
    return [
        Result("backfill throughput (requests/s, end to end)", gateway / seconds, "/s",
               detail=f"{gateway:,} requests, {days} days x {subscriptions} subscriptions in {seconds:.1f}s; "
                      f"{written / seconds:,.0f} usage rows/s written"),
        Result("backfill, Table Storage share of time", storage / seconds, "",
               detail=f"queries {source.seconds:.1f}s vs storage {storage:.1f}s"),
    ]
