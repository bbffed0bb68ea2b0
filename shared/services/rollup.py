"""The rollup job: query the log source for a window, upsert hourly rows, derive day and month
rows for the touched periods, then advance the watermark.

Crash safety comes from the order: the watermark moves only after every write succeeded, and every
write is an idempotent replace of a row computed from complete inputs, so a rerun of the same
window (after a crash) converges to the same rows.

One writer at a time: a run (scheduled or backfill) holds the writer lease (``WriterLease``) and
confirms it before every chunk it writes, so a run whose query is older than another run's rows can
never overwrite them.  Rows Table Storage refuses are quarantined by the store and retried by the
next runs; they never stop the window (``QuarantineRepository``).

A chunk is written a batch of subscriptions at a time, and the reads of the next batch (stored
hours of partly covered days, days of touched months) run while the previous batch's writes are in
flight (:mod:`shared.services.write_behind`); the watermark still moves only once every write of
the chunk succeeded.  A month that many subscriptions touch (``MONTH_INDEX_THRESHOLD``) is summed
instead from the period index's day partitions, in one read for all of them before the chunk is
written, the (subscription, day)s the chunk rewrites kept apart (``RollupUsageRepository.month_parts``):
each subscription's month rows then go in the same write as its hours and days (one transaction,
not two), summed as storage will hold them once that write is done.

Chunks are sized by result rows: the previous run's densest rows per hour of log decide how many
hours one query covers (about ``TARGET_ROWS``, far under Log Analytics' 500,000-row / ~64 MB cap,
at most ``max_chunk``), and a partial result halves the chunk and asks again, down to one hour.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

from shared.core.keys import storable_key
from shared.core.kql import declared_parameters
from shared.core.months import next_month
from shared.core.usage import (
    Counters,
    Granularity,
    UsageRow,
    merge,
    month_after_write,
    normalize_key,
    touched_periods,
)
from shared.core.windows import HOUR, Window, backfill_window, floor_hour, rollup_window, split
from shared.errors import PartialResultError
from shared.ports import (
    LogSource,
    QuarantineRepository,
    QuarantineRetry,
    RollupState,
    RollupUsageRepository,
    WatermarkRepository,
    WriterLease,
)
from shared.queries import Query, load
from shared.services import telemetry
from shared.services.stored_hours import StoredHours
from shared.services.write_behind import WriteBehind

WATERMARK_NAME = "usage-rollup"
USAGE_QUERIES = {"llmlog": "usage_by_subscription", "auto": "usage_by_subscription",
                 "gatewaybody": "usage_from_gateway_body"}  # the body-only query needs no LLM-log table
Progress = Callable[[Window], None]
READS_IN_FLIGHT = 8  # per-subscription reads of the derive step in flight at once
READ_AHEAD = 256  # ... and read ahead of their use (memory: that many subscriptions' rows)
WRITE_BATCH = 1_000  # subscriptions per write: the next batch is read while this one is written
TARGET_ROWS = 200_000  # result rows per query: 40 % of Log Analytics' 500,000-row cap
# A month with at least this many subscriptions to recompute is summed from the period index: a query
# per day partition, ~1,000 day rows a page, every subscription's rows whether asked for or not.  One
# subscription's own read is one round trip.  At the scale this tool is built for (10,000 subscriptions
# x 2 keys x 31 days = 620,000 day rows: ~620 pages + 31 queries) the index read is fewer round trips
# than 1,000 single reads whatever share of the subscriptions a run touched; with fewer to recompute,
# single reads may be the fewer, and they are few anyway.
MONTH_INDEX_THRESHOLD = 1_000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RollupResult:
    window: Window | None
    queries: int = 0
    rows_read: int = 0
    hourly_rows_written: int = 0
    derived_rows_written: int = 0
    seconds: float = 0.0
    watermark: datetime | None = None
    quarantined: int = 0  # rows kept in quarantine after the run (refused by Table Storage)
    retried: QuarantineRetry | None = None  # the quarantine retry this run began with
    requests: int = 0  # gateway requests in the rows read
    unmetered_requests: int = 0  # ... of which without token counts

    def summary(self) -> str:
        if self.window is None:
            return "nothing to roll up yet (window empty)"
        text = (f"window {self.window.start.isoformat()} .. {self.window.end.isoformat()}: "
                f"{self.queries} queries, {self.rows_read} rows read, {self.hourly_rows_written} hourly + "
                f"{self.derived_rows_written} day/month rows written in {self.seconds:.2f}s")
        if self.retried is not None and self.retried.written:
            text += f"; {self.retried.written} quarantined rows written on retry"
        if self.quarantined:
            text += f"; {self.quarantined} rows in quarantine (refused by Table Storage, retried each run)"
        return text


def usage_rows(records: list[dict[str, Any]], merge_apim_services: bool = False) -> list[UsageRow]:
    """Query records -> hourly rows (merged, in case two records normalize to one key).

    Each row keeps the APIM service the query named (``ApimService``), so two gateways' subscriptions
    of the same name stay two rows; with ``merge_apim_services`` every row's service is ``""`` and
    the gateways' rows of one key are summed into one.  Each row keeps the service tier too
    (``ServiceTier``: ``"priority"`` rows apart from the rest, as they are billed by other meters).
    """
    rows = [
        UsageRow(Granularity.HOUR, Granularity.HOUR.period_start(r["PeriodStart"]),
                 normalize_key(r["SubscriptionId"], r["ProductId"], r["Model"], r["Deployment"],
                               "" if merge_apim_services else r.get("ApimService"), r.get("ServiceTier")),
                 Counters(requests=r["Requests"], prompt_tokens=r["PromptTokens"],
                          completion_tokens=r["CompletionTokens"], total_tokens=r["TotalTokens"],
                          cached_tokens=r["CachedTokens"], streamed_requests=r["StreamedRequests"],
                          error_requests=r["ErrorRequests"], unmetered_requests=r["UnmeteredRequests"],
                          unmetered_streamed=r["UnmeteredStreamed"], unmetered_truncated=r["UnmeteredTruncated"],
                          reasoning_tokens=r["ReasoningTokens"], audio_prompt_tokens=r["AudioPromptTokens"],
                          cached_audio_tokens=r["CachedAudioTokens"],
                          audio_completion_tokens=r["AudioCompletionTokens"],
                          cache_write_tokens=r["CacheWriteTokens"]))
        for r in records
    ]
    # Names as they are stored (too long or invalid ones shortened): two names that shorten alike
    # are one row, summed, and a row read back has the very key it was written with.
    return merge([replace(row, key=storable_key(row.key)) for row in rows], Granularity.HOUR)


class RollupService:
    def __init__(self, source: LogSource, usage: RollupUsageRepository, watermarks: WatermarkRepository, *,
                 lookback: timedelta, ingestion_delay: timedelta, max_chunk: timedelta,
                 usage_source: str = "auto", probe_subscription: str = "",
                 probe_header: str = "x-chargeback-probe", merge_apim_services: bool = False,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 lease: WriterLease | None = None, quarantine: QuarantineRepository | None = None,
                 state: RollupState | None = None, on_quarantine: Callable[[int], None] | None = None,
                 target_rows: int = TARGET_ROWS, write_batch: int = WRITE_BATCH,
                 month_index_threshold: int = MONTH_INDEX_THRESHOLD) -> None:
        self.source = source
        self.usage = usage
        self.watermarks = watermarks
        self.lookback = lookback
        self.ingestion_delay = ingestion_delay
        self.max_chunk = max_chunk
        self.usage_source = usage_source
        self.probe = {"probe_subscription": probe_subscription, "probe_header": probe_header}
        self.merge_apim_services = merge_apim_services
        self.clock = clock
        self.lease, self.quarantine, self.state = lease, quarantine, state
        self.on_quarantine = on_quarantine  # told the quarantine count after each run (the alert)
        self.target_rows = target_rows
        self.write_batch = max(1, write_batch)
        self.month_index_threshold = max(1, month_index_threshold)
        self._densest = 0.0  # result rows per hour of log, the most any chunk of this run saw

    def run(self, progress: Progress | None = None) -> RollupResult:
        """The scheduled run: ``[watermark - lookback, now - delay)``.

        The watermark moves after each chunk is completely written, so a long catch-up that hits
        the function timeout keeps what it finished and the next run resumes from there.
        """
        with self._writer() as retried:
            mark = self.watermarks.get(WATERMARK_NAME)
            window = rollup_window(self.clock(), mark.value, self.lookback, self.ingestion_delay)
            if window is None:
                return RollupResult(None, watermark=mark.value, retried=retried)

            def advance(chunk: Window) -> None:
                nonlocal mark
                mark = self.watermarks.advance(WATERMARK_NAME, mark, chunk.end)
                if progress:
                    progress(chunk)

            result = self._process(window, advance)
            return replace(result, watermark=mark.value, quarantined=self._after_quarantine(), retried=retried)

    def backfill(self, start: datetime, end: datetime, progress: Progress | None = None) -> RollupResult:
        """An explicit range (rows older than the lookback); the watermark is left alone."""
        with self._writer() as retried:
            result = self._process(backfill_window(start, end), progress, months_per_chunk=False)
            return replace(result, quarantined=self._after_quarantine(), retried=retried)

    def chunks(self, start: datetime, end: datetime) -> list[Window]:
        """The chunks a backfill plans (a partial result may split one further)."""
        return list(split(backfill_window(start, end), timedelta(hours=self._chunk_hours())))

    # -- one writer, quarantine, chunk size -------------------------------------------------------
    @contextmanager
    def _writer(self) -> Iterator[QuarantineRetry | None]:
        """Hold the writer lease for the run; begin by sending quarantined rows again."""
        if self.lease is not None:
            self.lease.acquire()
        try:
            retried = self.quarantine.retry_quarantined() if self.quarantine is not None else None
            if retried is not None and retried.kept:
                log.warning("quarantine retry: %d kept, %d written now, %d still refused", retried.kept,
                            retried.written, retried.still_refused)
            if retried is not None and retried.usage_rows:
                self._derive_again(retried.usage_rows)
            self._densest = 0.0
            yield retried
            if self.state is not None and self._densest:
                self.state.record_rows_per_hour(WATERMARK_NAME, self._densest)
        finally:
            if self.lease is not None:
                self.lease.release()

    def _derive_again(self, written: tuple[UsageRow, ...]) -> None:
        """Days and months over rows the quarantine just let through (their sums left them out)."""
        days = {(row.subscription_id, Granularity.DAY.period_start(row.period_start))
                for row in written if row.granularity is Granularity.HOUR}
        day_rows = [day_row for subscription, day in sorted(days)
                    for day_row in merge(self.usage.read(subscription, Granularity.HOUR, day, day + timedelta(days=1)),
                                         Granularity.DAY)]
        self._confirm_writer()
        self.usage.upsert(day_rows)
        self._derive_months(touched_periods([*day_rows, *written], Granularity.MONTH))

    def _confirm_writer(self) -> None:
        if self.lease is not None:
            self.lease.confirm()

    def _after_quarantine(self) -> int:
        if self.quarantine is None:
            return 0
        count = self.quarantine.quarantined_count()
        if self.on_quarantine is not None:
            self.on_quarantine(count)
        return count

    def _chunk_hours(self) -> int:
        """Hours per query: ``target_rows`` at the last run's densest rate, within 1..max_chunk."""
        cap = max(1, int(self.max_chunk / HOUR))
        density = self.state.rows_per_hour(WATERMARK_NAME) if self.state is not None else None
        if not density or density <= 0:
            return cap
        return max(1, min(cap, int(self.target_rows // density)))

    def _read_chunks(self, window: Window, query: Query,
                     extra: Mapping[str, object]) -> Iterator[tuple[Window, list[dict[str, Any]]]]:
        """Consecutive hour-aligned chunks of ``window`` with their query results; a partial
        result halves the chunk and asks again (one hour is the least: beyond, the run fails)."""
        hours = self._chunk_hours()
        cursor = window.start
        while cursor < window.end:
            chunk = Window(cursor, min(floor_hour(cursor) + hours * HOUR, window.end))
            self._confirm_writer()  # renewed before a query that may be long
            try:
                records = self.source.run(query, {"window_start": chunk.start, "window_end": chunk.end, **extra})
            except PartialResultError as exc:
                span = math.ceil((chunk.end - floor_hour(chunk.start)) / HOUR)  # the last chunk may be shorter
                if span <= 1:
                    raise PartialResultError(
                        f"the log source answered only part of the single hour {chunk.start.isoformat()} .. "
                        f"{chunk.end.isoformat()} even after narrowing the chunk to one hour; nothing of that hour "
                        f"was written and the watermark stays before it ({exc})") from exc
                hours = max(1, min(hours, span) // 2)
                log.warning("partial result for %s .. %s: asking again in chunks of %d hour(s)",
                            chunk.start.isoformat(), chunk.end.isoformat(), hours)
                continue
            buckets = max(1, math.ceil((chunk.end - floor_hour(chunk.start)) / HOUR))
            self._densest = max(self._densest, len(records) / buckets)
            yield chunk, records
            cursor = chunk.end

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
        stored = StoredHours(self.usage)  # which subscriptions' hours need reading, day by day
        for chunk, records in self._read_chunks(window, query, extra):
            stored.forget_before(Granularity.DAY.period_start(chunk.start))
            with telemetry.span("rollup.chunk", {"chunk.start": chunk.start.isoformat(),
                                                 "chunk.end": chunk.end.isoformat()}) as span:
                rows = usage_rows(records, self.merge_apim_services)
                requests += sum(row.counters.requests for row in rows)
                unmetered += sum(row.counters.unmetered_requests for row in rows)
                days, touched, month_rows = self._write_chunk(rows, chunk, months_per_chunk, stored)
                hourly_written += len(rows)
                derived_written += days + month_rows
                months |= touched
                queries += 1
                rows_read += len(records)
                span.set("rows_read", len(records))
                span.set("hourly_rows_written", len(rows))
                if chunk_done:
                    chunk_done(chunk)
        if not months_per_chunk:
            derived_written += self._derive_months(months)
        return RollupResult(window, queries, rows_read, hourly_written, derived_written, time.monotonic() - began,
                            requests=requests, unmetered_requests=unmetered)

    def _write_chunk(self, hourly: list[UsageRow], chunk: Window, with_months: bool,
                     stored: StoredHours) -> tuple[int, set[tuple[str, datetime]], int]:
        """The chunk's hours, their days and (``with_months``) months written, a batch of
        ``write_batch`` subscriptions at a time, each batch's reads overlapping the writes of the
        batch before (:class:`WriteBehind`).  Returns (day rows written, the (subscription, month)
        pairs touched, month rows written); returns only once every write succeeded.

        A subscription's hours and days share its partition: they go in one write (one round trip
        per subscription and chunk, not two).  A month with at least ``month_index_threshold``
        subscriptions in the chunk is read from the period index first, the days the chunk rewrites
        kept apart (:meth:`_month_parts`), so its month rows join that write too, as storage will
        hold them after it.  Other months are read from the subscription's stored days once that
        write is done, while the next batch's is in flight.  Before a batch is handed over, its
        (subscription, day)s are marked touched (:mod:`shared.services.stored_hours`).
        """
        by_subscription: dict[str, list[UsageRow]] = {}
        for row in hourly:
            by_subscription.setdefault(row.subscription_id, []).append(row)
        subscriptions = sorted(by_subscription)
        days_written = folded_written = 0
        months = touched_periods(hourly, Granularity.MONTH)  # the months of the day rows derived below
        parts = self._month_parts(months, hourly) if with_months else {}
        month_writes: list[Future[int]] = []
        # the writer lease is confirmed before each write, in the writing thread: a run that lost it
        # stops before writing
        with WriteBehind[UsageRow](self.usage.upsert, self._confirm_writer) as writes:
            previous: tuple[Future[int], set[tuple[str, datetime]]] | None = None
            for first in range(0, len(subscriptions), self.write_batch):
                batch = [row for sub in subscriptions[first:first + self.write_batch] for row in by_subscription[sub]]
                day_rows, emptied = self._derive_days(batch, chunk, stored)  # reads, while the last batch is written
                folded = _folded_months(parts, day_rows)
                stored.mark(touched_periods(batch, Granularity.DAY))  # stored before any of their hours
                written = writes.submit(batch + emptied + day_rows + folded)
                days_written += len(day_rows)
                folded_written += len(folded)
                touched = {pair for pair in touched_periods(day_rows, Granularity.MONTH) if pair[1] not in parts}
                if with_months and previous is not None and previous[1]:
                    month_writes.append(self._write_months(writes, *previous))
                previous = (written, touched)
            if with_months and previous is not None and previous[1]:
                month_writes.append(self._write_months(writes, *previous))
            writes.drain()
        return days_written, months, folded_written + sum(write.result() for write in month_writes)

    def _month_parts(self, months: set[tuple[str, datetime]], hourly: list[UsageRow]) -> dict[datetime, _MonthParts]:
        """The months with at least ``month_index_threshold`` subscriptions among ``months``, read from
        the period index before the chunk is written: every stored day row of those subscriptions,
        summed but for the (subscription, day)s the chunk rewrites (kept as stored).  A month whose
        index is not complete is left out (read a subscription at a time, after the write)."""
        days = touched_periods(hourly, Granularity.DAY)
        found: dict[datetime, _MonthParts] = {}
        for month in sorted(self._summed_months(months)):
            subscriptions = frozenset(subscription for subscription, at in months if at == month)
            apart = frozenset(pair for pair in days if Granularity.MONTH.period_start(pair[1]) == month)
            parts = self.usage.month_parts(month, subscriptions, apart)
            if parts is not None:
                found[month] = _MonthParts(_by_subscription(parts.sums), _by_subscription(parts.apart))
        return found

    def _write_months(self, writes: WriteBehind[UsageRow], days_written: Future[int],
                      touched: set[tuple[str, datetime]]) -> Future[int]:
        """The months of a batch whose days are being written: read once they are stored."""
        days_written.result()  # its days stored (a failed write raises here: nothing derived from it)
        return writes.submit(self._month_rows(touched))

    def _derive_days(self, hourly: list[UsageRow], chunk: Window,
                     stored: StoredHours) -> tuple[list[UsageRow], list[UsageRow]]:
        """Day rows of the days ``hourly`` (the chunk's fresh hours, not yet written) touches, and
        the stored hours of those days to be emptied.

        The chunk's hours are the truth: a day is summed from its stored hours outside the chunk (none
        when the chunk covers it whole) and the chunk's fresh hours inside it (what storage holds once
        the chunk is written).  A stored hour inside the chunk under a key the query no longer returns
        (a row stored before the APIM service was part of the key, say) is stale: it is written again
        with zero counts (emptied), so neither that day nor any hourly read counts its requests twice.
        Scheduled runs and backfills alike, whether the chunk covers the day whole or in part, so any
        window rerun converges to the query's rows.  Only the (subscription, day)s the chunk returns:
        a subscription the query returns nothing for that day keeps its stored hours (logs past
        retention must not empty the rows they made).

        A (subscription, day)'s stored hours are read only when ``stored`` says it may hold hours
        from before this run; otherwise it holds none but this run's, whose day sums ``stored``
        carries from the day's earlier chunks (a fresh range: no read at all).
        """
        fresh: dict[tuple[str, datetime], list[UsageRow]] = {}
        for row in hourly:
            fresh.setdefault((row.subscription_id, Granularity.DAY.period_start(row.period_start)), []).append(row)
        to_read = {pair for pair in fresh if stored.may_hold(*pair)}
        # read ahead, in the order of the loop below
        stored_hours = self._read_each([(subscription, Granularity.HOUR, day, day + timedelta(days=1))
                                        for subscription, day in sorted(to_read)])
        # Every hour the chunk touches was recomputed whole (its first hour starts the chunk; its
        # last, partial one holds at least what an earlier, shorter run stored).
        first_hour = floor_hour(chunk.start)
        days: list[UsageRow] = []
        emptied: list[UsageRow] = []
        for pair, rows in sorted(fresh.items(), key=lambda item: item[0]):
            if pair not in to_read:  # no hours but this run's earlier chunks' (none inside this chunk)
                day_rows = merge([*stored.carried(*pair), *rows], Granularity.DAY)
                stored.carry(*pair, day_rows)
                days.extend(day_rows)
                continue
            hours = next(stored_hours)
            recomputed = {(row.period_start, row.key) for row in rows}
            outside = [row for row in hours if not first_hour <= row.period_start < chunk.end]
            stale = [replace(row, counters=Counters()) for row in hours
                     if first_hour <= row.period_start < chunk.end and (row.period_start, row.key) not in recomputed
                     and row.counters != Counters()]
            emptied.extend(stale)
            # an emptied hour stays in the sum (as zero), so its key's day row is recomputed, not left stale
            days.extend(merge(outside + stale + rows, Granularity.DAY))
        return days, emptied

    def _read_each(self, reads: list[tuple[str, Granularity, datetime, datetime]]) -> Iterator[list[UsageRow]]:
        """One-subscription reads, up to ``READS_IN_FLIGHT`` at a time, yielded in the order given:
        each is a round trip that mostly waits on the service, so at 10,000 subscriptions one after
        the other they would be most of a run.  At most ``READ_AHEAD`` results are held at once."""
        with ThreadPoolExecutor(max_workers=READS_IN_FLIGHT) as pool:
            for first in range(0, len(reads), READ_AHEAD):
                yield from pool.map(lambda read: self.usage.read(*read), reads[first:first + READ_AHEAD])

    def _month_rows(self, months: set[tuple[str, datetime]]) -> list[UsageRow]:
        """Month rows recomputed from the stored day rows of each touched (subscription, month)."""
        month_rows: list[UsageRow] = []
        reads = [(subscription, Granularity.DAY, month, next_month(month)) for subscription, month in sorted(months)]
        for stored in self._read_each(reads):
            month_rows.extend(merge(stored, Granularity.MONTH))
        return month_rows

    def _summed_months(self, months: set[tuple[str, datetime]]) -> set[datetime]:
        """The months with at least ``month_index_threshold`` subscriptions among ``months``."""
        subscriptions = Counter(month for _, month in months)
        return {month for month, count in subscriptions.items() if count >= self.month_index_threshold}

    def _derive_months(self, months: set[tuple[str, datetime]]) -> int:
        """Month rows recomputed from the stored days of these (subscription, month)s and written,
        ``write_batch`` subscriptions' months at a time.  Returns the month rows written.

        A month with at least ``month_index_threshold`` subscriptions is summed in one read of the
        period index (``month_sums``); the rest, and every month while the index is not complete,
        by :meth:`_month_rows`, each batch read while the one before is written."""
        alone = set(months)
        with WriteBehind[UsageRow](self.usage.upsert, self._confirm_writer) as writes:
            for month in sorted(self._summed_months(months)):
                subscriptions = frozenset(subscription for subscription, at in months if at == month)
                summed = self.usage.month_sums(month, subscriptions)
                if summed is None:  # the index is not complete: read a subscription at a time
                    continue
                alone -= {(subscription, month) for subscription in subscriptions}
                for batch in _subscription_batches(summed, self.write_batch):
                    writes.submit(batch)
            ordered = sorted(alone)
            for first in range(0, len(ordered), self.write_batch):
                month_rows = self._month_rows(set(ordered[first:first + self.write_batch]))
                if month_rows:
                    writes.submit(month_rows)
            return writes.drain()



@dataclass(frozen=True)
class _MonthParts:
    """A month's :class:`MonthParts`, by subscription (stored name)."""

    sums: dict[str, list[UsageRow]]
    apart: dict[str, list[UsageRow]]


def _by_subscription(rows: list[UsageRow]) -> dict[str, list[UsageRow]]:
    grouped: dict[str, list[UsageRow]] = {}
    for row in rows:
        grouped.setdefault(row.subscription_id, []).append(row)
    return grouped


def _folded_months(parts: dict[datetime, _MonthParts], day_rows: list[UsageRow]) -> list[UsageRow]:
    """The month rows of ``day_rows``' (subscription, month)s read by :meth:`RollupService._month_parts`,
    as storage holds them once these day rows are written (:func:`month_after_write`)."""
    if not parts:
        return []
    written: dict[tuple[str, datetime], list[UsageRow]] = {}
    for row in day_rows:  # under stored names already (usage_rows), as the index answers
        month = Granularity.MONTH.period_start(row.period_start)
        if month in parts:
            written.setdefault((row.subscription_id, month), []).append(row)
    return [row for (subscription, month), rows in sorted(written.items())
            for row in month_after_write(parts[month].sums.get(subscription, []),
                                         parts[month].apart.get(subscription, []), rows)]


def _subscription_batches(rows: list[UsageRow], size: int) -> Iterator[list[UsageRow]]:
    """``rows`` (grouped by subscription) in runs of ``size`` subscriptions."""
    batch: list[UsageRow] = []
    subscriptions = 0
    for _, group in groupby(rows, key=lambda row: row.subscription_id):
        if subscriptions == size:
            yield batch
            batch, subscriptions = [], 0
        batch.extend(group)
        subscriptions += 1
    if batch:
        yield batch
