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
from shared.core.usage import Counters, Granularity, UsageRow, merge, normalize_key, touched_periods
from shared.core.windows import Window, backfill_window, rollup_window, split
from shared.ports import LogSource, UsageRepository, WatermarkRepository
from shared.queries import load

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
        return self._process(backfill_window(start, end), progress)

    def chunks(self, start: datetime, end: datetime) -> list[Window]:
        return list(split(backfill_window(start, end), self.max_chunk))

    def _process(self, window: Window, chunk_done: Progress | None) -> RollupResult:
        """Each chunk: query, upsert its hours, re-derive its days and months, then ``chunk_done``."""
        began = time.monotonic()
        query = load(USAGE_QUERIES[self.usage_source])
        # Each query file gets the values it declares (the body-only query has no usage_source).
        declared = {param.name for param in declared_parameters(query.text)}
        options = {"usage_source": self.usage_source, **self.probe}
        extra = {name: value for name, value in options.items() if name in declared}
        queries = rows_read = hourly_written = derived_written = 0
        for chunk in split(window, self.max_chunk):
            records = self.source.run(query, {"window_start": chunk.start, "window_end": chunk.end, **extra})
            rows = usage_rows(records)
            hourly_written += self.usage.upsert(rows)
            derived_written += self._derive(rows)
            queries += 1
            rows_read += len(records)
            if chunk_done:
                chunk_done(chunk)
        return RollupResult(window, queries, rows_read, hourly_written, derived_written, time.monotonic() - began)

    def _derive(self, hourly: list[UsageRow]) -> int:
        """Recompute the day rows of touched days from stored hours, then month rows from days."""
        written = 0
        days: list[UsageRow] = []
        for subscription, day in sorted(touched_periods(hourly, Granularity.DAY)):
            stored = self.usage.read(subscription, Granularity.HOUR, day, day + timedelta(days=1))
            day_rows = merge(stored, Granularity.DAY)
            written += self.usage.upsert(day_rows)
            days.extend(day_rows)
        for subscription, month in sorted(touched_periods(days, Granularity.MONTH)):
            stored = self.usage.read(subscription, Granularity.DAY, month, _next_month(month))
            written += self.usage.upsert(merge(stored, Granularity.MONTH))
        return written


def _next_month(month: datetime) -> datetime:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)

