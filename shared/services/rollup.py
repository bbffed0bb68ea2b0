"""The rollup job: query the log source for a window, upsert hourly rows, derive day and month
rows for the touched periods, then advance the watermark.

Crash safety comes from the order: the watermark moves only after every write succeeded, and every
write is an idempotent replace of a row computed from complete inputs, so a rerun of the same
window (after a crash or concurrently) converges to the same rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core.kql import declared_parameters
from shared.core.months import next_month
from shared.core.usage import Counters, Granularity, UsageRow, merge, normalize_key, touched_periods
from shared.core.windows import Window, backfill_window, rollup_window, split
from shared.ports import LogSource, UsageRepository, WatermarkRepository
from shared.queries import load
from shared.services import telemetry

WATERMARK_NAME = "usage-rollup"
USAGE_QUERIES = {"llmlog": "usage_by_subscription", "auto": "usage_by_subscription",
                 "gatewaybody": "usage_from_gateway_body"}  # the body-only query needs no LLM-log table
Progress = Callable[[Window], None]


@dataclass(frozen=True)
class RollupResult:
    window: Window | None
    queries: int = 0
    rows_read: int = 0
    hourly_rows_written: int = 0
    derived_rows_written: int = 0
    seconds: float = 0.0
    watermark: datetime | None = None
    requests: int = 0  # gateway requests in the rows read
    unmetered_requests: int = 0  # ... of which without token counts

    def summary(self) -> str:
        if self.window is None:
            return "nothing to roll up yet (window empty)"
        return (f"window {self.window.start.isoformat()} .. {self.window.end.isoformat()}: "
                f"{self.queries} queries, {self.rows_read} rows read, {self.hourly_rows_written} hourly + "
                f"{self.derived_rows_written} day/month rows written in {self.seconds:.2f}s")


def usage_rows(records: list[dict[str, Any]]) -> list[UsageRow]:
    """Query records -> hourly rows (merged, in case two records normalize to one key)."""
    rows = [
        UsageRow(Granularity.HOUR, Granularity.HOUR.period_start(r["PeriodStart"]),
                 normalize_key(r["SubscriptionId"], r["ProductId"], r["Model"], r["Deployment"]),
                 Counters(requests=r["Requests"], prompt_tokens=r["PromptTokens"],
                          completion_tokens=r["CompletionTokens"], total_tokens=r["TotalTokens"],
                          cached_tokens=r["CachedTokens"], streamed_requests=r["StreamedRequests"],
                          error_requests=r["ErrorRequests"], unmetered_requests=r["UnmeteredRequests"],
                          unmetered_streamed=r["UnmeteredStreamed"], unmetered_truncated=r["UnmeteredTruncated"]))
        for r in records
    ]
    return merge(rows, Granularity.HOUR)


class RollupService:
    def __init__(self, source: LogSource, usage: UsageRepository, watermarks: WatermarkRepository, *,
                 lookback: timedelta, ingestion_delay: timedelta, max_chunk: timedelta,
                 usage_source: str = "auto", probe_subscription: str = "",
                 probe_header: str = "x-chargeback-probe",
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.source = source
        self.usage = usage
        self.watermarks = watermarks
        self.lookback = lookback
        self.ingestion_delay = ingestion_delay
        self.max_chunk = max_chunk
        self.usage_source = usage_source
        self.probe = {"probe_subscription": probe_subscription, "probe_header": probe_header}
        self.clock = clock

    def run(self, progress: Progress | None = None) -> RollupResult:
        """The scheduled run: ``[watermark - lookback, now - delay)``.

        The watermark moves after each chunk is completely written, so a long catch-up that hits
        the function timeout keeps what it finished and the next run resumes from there.
        """
        mark = self.watermarks.get(WATERMARK_NAME)
        window = rollup_window(self.clock(), mark.value, self.lookback, self.ingestion_delay)
        if window is None:
            return RollupResult(None, watermark=mark.value)

        def advance(chunk: Window) -> None:
            nonlocal mark
            mark = self.watermarks.advance(WATERMARK_NAME, mark, chunk.end)
            if progress:
                progress(chunk)

        result = self._process(window, advance)
        return replace(result, watermark=mark.value)

    def backfill(self, start: datetime, end: datetime, progress: Progress | None = None) -> RollupResult:
        """An explicit range (rows older than the lookback); the watermark is left alone."""
        return self._process(backfill_window(start, end), progress, months_per_chunk=False)

    def chunks(self, start: datetime, end: datetime) -> list[Window]:
        return list(split(backfill_window(start, end), self.max_chunk))

    def _process(self, window: Window, chunk_done: Progress | None, *,
                 months_per_chunk: bool = True) -> RollupResult:
        """Each chunk: query, upsert its hours, re-derive its days (and months), then ``chunk_done``.

        The scheduled run derives months per chunk, because its watermark moves per chunk; a
        backfill (no watermark: a failed one is simply rerun) derives each touched month once, at
        the end, instead of once per chunk.
        """
        began = time.monotonic()
        query = load(USAGE_QUERIES[self.usage_source])
        # Each query file gets the values it declares (the body-only query has no usage_source).
        declared = {param.name for param in declared_parameters(query.text)}
        options = {"usage_source": self.usage_source, **self.probe}
        extra = {name: value for name, value in options.items() if name in declared}
        queries = rows_read = hourly_written = derived_written = requests = unmetered = 0
        months: set[tuple[str, datetime]] = set()
        for chunk in split(window, self.max_chunk):
            with telemetry.span("rollup.chunk", {"chunk.start": chunk.start.isoformat(),
                                                 "chunk.end": chunk.end.isoformat()}) as span:
                records = self.source.run(query, {"window_start": chunk.start, "window_end": chunk.end, **extra})
                rows = usage_rows(records)
                requests += sum(row.counters.requests for row in rows)
                unmetered += sum(row.counters.unmetered_requests for row in rows)
                day_rows = self._derive_days(rows, chunk)
                # One write for both: a subscription's hours and days share its partition, so they go
                # in the same transactions (one round trip per subscription and chunk, not two).
                self.usage.upsert(rows + day_rows)
                hourly_written += len(rows)
                derived_written += len(day_rows)
                touched = touched_periods(day_rows, Granularity.MONTH)
                if months_per_chunk:
                    derived_written += self._derive_months(touched)
                else:
                    months |= touched
                queries += 1
                rows_read += len(records)
                span.set("rows_read", len(records))
                span.set("hourly_rows_written", len(rows))
                if chunk_done:
                    chunk_done(chunk)
        derived_written += self._derive_months(months)
        return RollupResult(window, queries, rows_read, hourly_written, derived_written, time.monotonic() - began,
                            requests=requests, unmetered_requests=unmetered)

    def _derive_days(self, hourly: list[UsageRow], chunk: Window) -> list[UsageRow]:
        """Day rows of the days ``hourly`` (the chunk's fresh hours, not yet written) touches.

        A day the chunk covers entirely is summed from the chunk's own hours (the query just
        recomputed all of them); a day it covers in part is summed from its stored hours, each
        replaced by the chunk's fresh version where there is one (what storage holds once the
        chunk is written).
        """
        fresh: dict[tuple[str, datetime], list[UsageRow]] = {}
        for row in hourly:
            fresh.setdefault((row.subscription_id, Granularity.DAY.period_start(row.period_start)), []).append(row)
        days: list[UsageRow] = []
        for (subscription, day), rows in sorted(fresh.items(), key=lambda item: item[0]):
            if not (chunk.start <= day and day + timedelta(days=1) <= chunk.end):
                stored = self.usage.read(subscription, Granularity.HOUR, day, day + timedelta(days=1))
                by_key = {(row.period_start, row.key): row for row in stored}
                by_key.update({(row.period_start, row.key): row for row in rows})
                rows = list(by_key.values())
            days.extend(merge(rows, Granularity.DAY))
        return days

    def _derive_months(self, months: set[tuple[str, datetime]]) -> int:
        """Month rows recomputed from the stored day rows of each touched (subscription, month)."""
        month_rows: list[UsageRow] = []
        for subscription, month in sorted(months):
            stored = self.usage.read(subscription, Granularity.DAY, month, next_month(month))
            month_rows.extend(merge(stored, Granularity.MONTH))
        return self.usage.upsert(month_rows)

