"""Bench: a month backfill at 10,000 subscriptions in bounded memory.

The log source is the aggregate stand-in of ``scale-run`` (the local engine's output is aggregate
rows): every subscription x 2 model keys x every hour of the month (14.4M hourly rows at 10,000
subscriptions).  The backfill queries in chunks sized by result rows (the rollup's target rows
per query), writes each chunk's hours and days, and derives the months once at the end; memory
holds one chunk.  Printed: peak RSS of this process (target ≤ 1 GB), hourly rows written per second,
and the month rows read back and checked against the sums the stand-in's formula implies.

The storage (``BENCH_BACKFILL_STORE``):

- ``sink`` (the default): :mod:`bench.table_sink`, a loopback stand-in in its own process that answers
  the same REST calls (the real SDK and our table code talk to it over HTTP) and counts and drops the
  hourly rows, keeping day and month rows, the period index, marks and state.  It is the default
  because it is the only store with which the bench's own size runs here: Azurite holds ~3 KB per
  entity (14.4M hourly entities: ~43 GB, on a 23 GB machine) and its inserts slow down as its table
  grows (a day at 10,000 subscriptions did not finish in 24 minutes), so on Azurite the bench measures
  the emulator, not this process.  What is measured is this process's memory and throughput; in
  production the storage is another service.  The sink's counts are printed, and the hourly entities
  it received must equal subscriptions x 2 keys x days x 24.
- ``azurite``: the emulator, in memory (every row kept and queryable), for small sizes.

``--tiny``: 20 subscriptions x 2 days.  ``BENCH_BACKFILL_SCALE_SUBSCRIPTIONS`` and
``BENCH_BACKFILL_SCALE_DAYS`` (10,000 x 30) set the size.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Result, azurite, cpu_seconds, fresh_prefix, say, settings_for, workdir
from bench.scale_run import AggregateSource, peak_rss_mb
from bench.usage_rows import MODEL_KEYS, subscription_id

MONTH = datetime(2026, 9, 1, tzinfo=UTC)
STORES = ("sink", "azurite")

Stats = Callable[[], dict[str, Any]] | None
MonthKey = tuple[str, str, str, str]  # subscription, product, model, deployment


@contextlib.contextmanager
def storage(kind: str, folder: Path) -> Iterator[tuple[str, Stats]]:
    """(connection string, the sink's counts or None) of the chosen store, for the bench's duration."""
    if kind == "sink":
        from bench.table_sink import TableSinkProcess

        with TableSinkProcess() as sink:
            yield sink.connection_string, sink.stats
    else:
        with azurite(folder, large=True) as process:
            yield process.connection_string, None


def expected_months(subscriptions: int, days: int) -> dict[MonthKey, tuple[int, int, int, int, int]]:
    """The month rows the stand-in implies, from its formula: hour h of any day gives
    n = 1 + (s*31 + h*7 + k*3) % 97 requests, 900 n prompt, 300 n completion, 1200 n total tokens and
    n // 20 errors; a month of ``days`` days is ``days`` times the sum over the 24 hours."""
    out = {}
    for s in range(subscriptions):
        for k, (model, deployment) in enumerate(MODEL_KEYS):
            per_hour = [1 + (s * 31 + h * 7 + k * 3) % 97 for h in range(24)]
            requests, errors = days * sum(per_hour), days * sum(n // 20 for n in per_hour)
            out[(subscription_id(s), f"product-{s % 7}", model, deployment)] = (
                requests, 900 * requests, 300 * requests, 1200 * requests, errors)
    return out


def month_values(rows: list[Any]) -> dict[MonthKey, tuple[int, int, int, int, int]]:
    """Month rows (``UsageRow``) by key: the counters the stand-in sets (the others must be 0)."""
    out = {}
    for row in rows:
        counters = row.counters.as_dict()
        named = (counters.pop("requests"), counters.pop("prompt_tokens"), counters.pop("completion_tokens"),
                 counters.pop("total_tokens"), counters.pop("error_requests"))
        out[(row.subscription_id, row.key.product_id, row.key.model, row.key.deployment)] = (
            named if not any(counters.values()) else (-1, -1, -1, -1, -1))  # a stray counter: never expected
    return out


def run(tiny: bool = False) -> list[Result]:
    from tqdm import tqdm

    from shared.composition import rollup_service, table_store
    from shared.core.usage import Granularity

    subscriptions = 20 if tiny else int(os.environ.get("BENCH_BACKFILL_SCALE_SUBSCRIPTIONS", "10000"))
    days = 2 if tiny else int(os.environ.get("BENCH_BACKFILL_SCALE_DAYS", "30"))
    kind = os.environ.get("BENCH_BACKFILL_STORE", "sink")
    if kind not in STORES:
        raise SystemExit(f"BENCH_BACKFILL_STORE={kind!r}: one of {', '.join(STORES)}")
    expected_hourly = subscriptions * len(MODEL_KEYS) * days * 24
    with workdir("backfill-scale") as folder, storage(kind, folder) as (connection_string, sink_stats):
        settings = settings_for(folder / "unused.duckdb", connection_string, fresh_prefix())
        source = AggregateSource(subscriptions)
        store = table_store(settings)
        service = rollup_service(settings, source=source, store=store)
        # chunks sized as after a first run: the densest rows per hour are known
        store.record_rows_per_hour("usage-rollup", float(subscriptions * len(MODEL_KEYS)))
        start, end = MONTH, MONTH + timedelta(days=days)
        chunks = service.chunks(start, end)
        rss_before = peak_rss_mb()
        cpu_before, began = cpu_seconds(), time.perf_counter()
        with tqdm(total=len(chunks), unit="chunk", desc="backfill", file=sys.stderr, mininterval=5.0) as bar:
            result = service.backfill(start, end, progress=lambda _: bar.update(1))
        seconds, cpu = time.perf_counter() - began, cpu_seconds() - cpu_before
        peak = peak_rss_mb()  # the backfill's: the read-back below is the check, not the bench
        month_end = MONTH + timedelta(days=1)  # the month rows start in [MONTH, month_end)
        month_rows = store.read_all(Granularity.MONTH, MONTH, month_end)  # from the period index
        # and the usage table's own copies, of a few subscriptions spread over the range
        sampled = sorted({subscription_id(s) for s in range(0, subscriptions, max(1, subscriptions // 10))})
        sampled_rows = [row for sub in sampled for row in store.read(sub, Granularity.MONTH, MONTH, month_end)]
        stats = sink_stats() if sink_stats is not None else None
    say(result.summary())
    hourly = result.hourly_rows_written
    assert hourly == expected_hourly, result.summary()
    found = month_values(month_rows)
    expected = expected_months(subscriptions, days)
    assert len(month_rows) == len(found) == len(expected), (len(month_rows), len(expected))
    wrong = [key for key, values in expected.items() if found.get(key) != values]
    wrong += [key for key, values in month_values(sampled_rows).items() if expected.get(key) != values]
    assert len(sampled_rows) == len(sampled) * len(MODEL_KEYS), len(sampled_rows)
    assert not wrong, f"{len(wrong)} month rows differ from the stand-in's sums, e.g. {wrong[0]} " \
                      f"(expected {expected.get(wrong[0])}, the index has {found.get(wrong[0])})"
    say(f"{subscriptions:,} subscriptions x {days} days in {len(chunks)} chunks on {kind} ({seconds:.0f} s, "
        f"this process's CPU {cpu:.0f} s): "
        f"{hourly / seconds:,.0f} hourly rows/s, peak RSS {peak:.0f} MB (before {rss_before:.0f} MB); "
        f"{len(month_rows):,} month rows read back = the stand-in's sums")
    if stats is not None:
        received = stats["hourly_received"]
        say(f"sink: {received:,} hourly entities received (dropped), kept {stats['kept_by_table']}, "
            f"{stats['transactions']:,} transactions, {stats['requests']:,} requests, "
            f"sink peak RSS {stats['peak_rss_mb']:.0f} MB, sink CPU {stats['cpu_seconds']:.0f} s")
        assert received == expected_hourly, f"the sink received {received:,} hourly entities, not {expected_hourly:,}"
    return [
        Result("backfill at scale, peak RSS", peak, " MB", 1024.0,
               detail=f"{subscriptions:,} subscriptions x {days} days, {len(chunks)} chunks, on {kind}"),
        Result("backfill at scale, hourly rows/s", hourly / seconds, " rows/s",
               detail=f"{hourly:,} hourly + {result.derived_rows_written:,} day/month rows in {seconds:.0f}s"),
    ]
