"""The rollup service on in-memory fakes: which rows it writes for a window, how the watermark
moves, and that a rerun converges to the same rows.  Expected numbers are written out by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.core.usage import Counters, Granularity, UsageKey, UsageRow
from shared.errors import ConcurrentUpdateError
from shared.ports import Watermark
from shared.queries import USAGE_COLUMNS
from shared.services.rollup import WATERMARK_NAME, RollupService
from tests.fakes import FakeClock, FakeLogSource, InMemoryUsageRepository, InMemoryWatermarkRepository

NOW = datetime(2026, 11, 20, 2, 10, tzinfo=UTC)  # window: [2026-11-19 23:00, 2026-11-20 02:00)
A = UsageKey("team-a", "starter", "gpt-4o", "chat")
B = UsageKey("team-b", "starter", "gpt-4o-mini", "mini")


def record(hour: datetime, key: UsageKey, requests: int, prompt: int, completion: int,
           cached: int = 0) -> dict[str, Any]:
    """One result row of the usage query (hour-binned, as the KQL returns it): every count of the
    query's contract present, those not given zero."""
    counts = {name: 0 for name, kind in USAGE_COLUMNS.items() if kind == "long"}
    return {**counts, "PeriodStart": hour, "SubscriptionId": key.subscription_id, "ProductId": key.product_id,
            "Model": key.model, "Deployment": key.deployment, "Requests": requests, "PromptTokens": prompt,
            "CompletionTokens": completion, "TotalTokens": prompt + completion, "CachedTokens": cached}


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


RECORDS = [
    record(at(19, 22), A, 9, 900, 90),  # before the window: never read
    record(at(19, 23), A, 2, 100, 50, cached=40),
    record(at(20, 0), A, 3, 200, 20),
    record(at(20, 1), A, 1, 10, 5),
    record(at(20, 1), B, 4, 400, 100),
    record(at(20, 1), B, 1, 50, 10),  # same key and hour: merged with the row above
    record(at(20, 2), B, 7, 700, 70),  # after the window end (now - delay): the next run's
]


def service(source: FakeLogSource, usage: InMemoryUsageRepository, marks: InMemoryWatermarkRepository,
            clock: FakeClock) -> RollupService:
    return RollupService(source, usage, marks, lookback=timedelta(hours=3), ingestion_delay=timedelta(minutes=10),
                         max_chunk=timedelta(hours=1), clock=clock)


def counters(requests: int, prompt: int, completion: int, cached: int = 0) -> Counters:
    return Counters(requests=requests, prompt_tokens=prompt, completion_tokens=completion,
                    total_tokens=prompt + completion, cached_tokens=cached)


def table(usage: InMemoryUsageRepository, granularity: Granularity) -> dict[tuple[datetime, str], Counters]:
    return {(row.period_start, row.subscription_id): row.counters
            for (g, _, _), row in usage.rows.items() if g is granularity}


def test_a_run_writes_hours_days_and_months_and_advances_the_watermark() -> None:
    source, usage, marks = FakeLogSource(RECORDS), InMemoryUsageRepository(), InMemoryWatermarkRepository()
    result = service(source, usage, marks, FakeClock(NOW)).run()

    assert result.window is not None
    assert (result.window.start, result.window.end) == (at(19, 23), datetime(2026, 11, 20, 2, 0, tzinfo=UTC))
    assert [(p["window_start"], p["window_end"]) for _, p in source.calls] == [
        (at(19, 23), at(20, 0)), (at(20, 0), at(20, 1)), (at(20, 1), at(20, 2))]
    assert (result.queries, result.rows_read, result.hourly_rows_written) == (3, 5, 4)
    assert table(usage, Granularity.HOUR) == {
        (at(19, 23), "team-a"): counters(2, 100, 50, cached=40),
        (at(20, 0), "team-a"): counters(3, 200, 20),
        (at(20, 1), "team-a"): counters(1, 10, 5),
        (at(20, 1), "team-b"): counters(5, 450, 110),
    }
    assert table(usage, Granularity.DAY) == {
        (at(19, 0), "team-a"): counters(2, 100, 50, cached=40),
        (at(20, 0), "team-a"): counters(4, 210, 25),
        (at(20, 0), "team-b"): counters(5, 450, 110),
    }
    november = datetime(2026, 11, 1, tzinfo=UTC)
    assert table(usage, Granularity.MONTH) == {
        (november, "team-a"): counters(6, 310, 75, cached=40),
        (november, "team-b"): counters(5, 450, 110),
    }
    assert result.watermark == marks.get(WATERMARK_NAME).value == datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def test_a_rerun_of_the_same_window_writes_identical_rows() -> None:
    source, usage, marks = FakeLogSource(RECORDS), InMemoryUsageRepository(), InMemoryWatermarkRepository()
    service(source, usage, marks, FakeClock(NOW)).run()
    first, first_mark = dict(usage.rows), marks.get(WATERMARK_NAME)

    again = service(source, usage, marks, FakeClock(NOW)).run()

    assert again.window is not None and again.window.start == at(19, 23)  # lookback re-reads the same hours
    assert usage.rows == first
    assert marks.get(WATERMARK_NAME).value == first_mark.value
    assert marks.get(WATERMARK_NAME).etag != first_mark.etag  # written again, same value


def test_a_day_the_window_covers_in_part_keeps_its_stored_hours() -> None:
    usage, marks = InMemoryUsageRepository(), InMemoryWatermarkRepository()
    earlier = UsageRow(Granularity.HOUR, at(19, 10), A, counters(5, 1_000, 300))
    usage.upsert([earlier, replace(earlier, granularity=Granularity.DAY, period_start=at(19, 0))])  # as a run stores it
    service(FakeLogSource(RECORDS), usage, marks, FakeClock(NOW)).run()
    # 2026-11-19: the stored 10:00 hour plus the fresh 23:00 hour (the window holds only the latter).
    assert table(usage, Granularity.DAY)[(at(19, 0), "team-a")] == counters(7, 1_100, 350, cached=40)


def test_the_watermark_moves_per_chunk_and_a_later_run_resumes_from_it() -> None:
    source, usage, marks = FakeLogSource(RECORDS), InMemoryUsageRepository(), InMemoryWatermarkRepository()
    seen: list[datetime] = []
    service(source, usage, marks, FakeClock(NOW)).run(progress=lambda chunk: seen.append(chunk.end))
    assert seen == [at(20, 0), at(20, 1), at(20, 2)]

    clock = FakeClock(NOW + timedelta(hours=1))  # an hour later: [02:00 - 3 h, 03:00)
    later = service(source, usage, marks, clock).run()
    assert later.window is not None and (later.window.start, later.window.end) == (at(19, 23), at(20, 3))
    assert table(usage, Granularity.HOUR)[(at(20, 2), "team-b")] == counters(7, 700, 70)
    assert marks.get(WATERMARK_NAME).value == at(20, 3)


def test_an_empty_window_queries_nothing_and_stores_no_watermark() -> None:
    marks, source = InMemoryWatermarkRepository(), FakeLogSource(RECORDS)
    # No lookback and now - delay on a whole hour: [02:00, 02:00) is empty.
    rollup = RollupService(source, InMemoryUsageRepository(), marks, lookback=timedelta(0),
                           ingestion_delay=timedelta(minutes=10), max_chunk=timedelta(hours=1), clock=FakeClock(NOW))
    result = rollup.run()
    assert result.window is None and source.calls == [] and result.watermark is None
    assert marks.get(WATERMARK_NAME).etag is None


def test_a_backfill_leaves_the_watermark_alone() -> None:
    source, usage, marks = FakeLogSource(RECORDS), InMemoryUsageRepository(), InMemoryWatermarkRepository()
    result = service(source, usage, marks, FakeClock(NOW)).backfill(at(19, 22), at(19, 23))
    assert result.rows_read == 1 and result.watermark is None
    assert table(usage, Granularity.HOUR) == {(at(19, 22), "team-a"): counters(9, 900, 90)}
    assert marks.get(WATERMARK_NAME).value is None


def test_a_concurrent_watermark_change_stops_the_run() -> None:
    class RacingWatermarks(InMemoryWatermarkRepository):
        """Another run advances the watermark between this run's read and its write."""

        def advance(self, name: str, previous: Watermark, value: datetime) -> Watermark:
            super().advance(name, self.get(name), value)
            return super().advance(name, previous, value)

    with pytest.raises(ConcurrentUpdateError):
        service(FakeLogSource(RECORDS), InMemoryUsageRepository(), RacingWatermarks(), FakeClock(NOW)).run()
