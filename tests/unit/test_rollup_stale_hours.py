"""The chunk's fresh hours are the truth, for the scheduled run and a backfill alike, whether a chunk
covers a day whole or in part: a stored hour inside the chunk under a key the query no longer
returns (stored before the APIM service was part of the key) is written again with zero counts, and
the day and month rows count each request once.  On in-memory fakes; numbers written out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.core.usage import Counters, Granularity, UsageKey, UsageRow
from shared.ports import Watermark
from shared.services.rollup import WATERMARK_NAME, RollupService
from tests.fakes import FakeClock, FakeLogSource, InMemoryUsageRepository, InMemoryWatermarkRepository
from tests.unit.test_rollup_service import counters, record

DAY = datetime(2026, 11, 19, tzinfo=UTC)
NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
OLD = UsageKey("team-a", "starter", "gpt-4o", "chat")  # as stored before the service dimension
WEST, EAST = (UsageKey("team-a", "starter", "gpt-4o", "chat", service) for service in ("apim-weu", "apim-eus"))
OTHER = UsageKey("team-b", "starter", "gpt-4o", "chat")  # a subscription the query returns nothing for


def with_service(row: dict[str, Any], key: UsageKey) -> dict[str, Any]:
    return {**row, "ApimService": key.apim_service}


# the same traffic as the stored rows, now per service: 5 + 3 requests at 05:00, 2 at 17:00
RECORDS = [with_service(record(DAY + timedelta(hours=5), WEST, 5, 500, 50), WEST),
           with_service(record(DAY + timedelta(hours=5), EAST, 3, 300, 30), EAST),
           with_service(record(DAY + timedelta(hours=17), EAST, 2, 200, 20), EAST)]


def stored_before_upgrade() -> InMemoryUsageRepository:
    usage = InMemoryUsageRepository()
    hours = [UsageRow(Granularity.HOUR, DAY + timedelta(hours=5), OLD, counters(8, 800, 80)),
             UsageRow(Granularity.HOUR, DAY + timedelta(hours=17), OLD, counters(2, 200, 20)),
             UsageRow(Granularity.HOUR, DAY + timedelta(hours=9), OTHER, counters(4, 40, 4))]
    usage.upsert([*hours,
                  UsageRow(Granularity.DAY, DAY, OLD, counters(10, 1000, 100)),
                  UsageRow(Granularity.DAY, DAY, OTHER, counters(4, 40, 4)),
                  UsageRow(Granularity.MONTH, NOVEMBER, OLD, counters(10, 1000, 100)),
                  UsageRow(Granularity.MONTH, NOVEMBER, OTHER, counters(4, 40, 4))])
    return usage


def rows(usage: InMemoryUsageRepository, granularity: Granularity) -> dict[tuple[datetime, UsageKey], Counters]:
    return {(at, key): row.counters for (g, at, key), row in usage.rows.items() if g is granularity}


def run(path: str, chunk_hours: int, usage: InMemoryUsageRepository) -> None:
    # scheduled: the watermark at 03:00 the next day, a 27-hour lookback: the window starts at DAY 00:00
    now = DAY + timedelta(days=1, hours=3, minutes=10)
    marks = InMemoryWatermarkRepository()
    marks.values[WATERMARK_NAME] = Watermark(DAY + timedelta(days=1, hours=3), "etag-0")
    service = RollupService(FakeLogSource(RECORDS), usage, marks, lookback=timedelta(hours=27),
                            ingestion_delay=timedelta(minutes=10), max_chunk=timedelta(hours=chunk_hours),
                            clock=FakeClock(now))
    if path == "scheduled":
        result = service.run()
        assert result.window is not None and result.window.start == DAY
    else:
        service.backfill(DAY, DAY + timedelta(days=1))


@pytest.mark.parametrize("chunk_hours", [24, 6])  # the day whole in one chunk, or in four
@pytest.mark.parametrize("path", ["scheduled", "backfill"])
def test_service_less_hours_are_emptied_and_nothing_counts_twice(path: str, chunk_hours: int) -> None:
    usage = stored_before_upgrade()
    run(path, chunk_hours, usage)

    assert rows(usage, Granularity.HOUR) == {
        (DAY + timedelta(hours=5), WEST): counters(5, 500, 50),
        (DAY + timedelta(hours=5), EAST): counters(3, 300, 30),
        (DAY + timedelta(hours=17), EAST): counters(2, 200, 20),
        (DAY + timedelta(hours=5), OLD): Counters(),  # emptied
        (DAY + timedelta(hours=17), OLD): Counters(),  # emptied
        # a subscription the query returned nothing for keeps its rows (logs past retention empty nothing)
        (DAY + timedelta(hours=9), OTHER): counters(4, 40, 4)}
    for granularity, start in ((Granularity.DAY, DAY), (Granularity.MONTH, NOVEMBER)):
        assert rows(usage, granularity) == {(start, WEST): counters(5, 500, 50), (start, EAST): counters(5, 500, 50),
                                            (start, OLD): Counters(), (start, OTHER): counters(4, 40, 4)}, granularity

    # a rerun changes nothing
    before = dict(usage.rows)
    run(path, chunk_hours, usage)
    assert usage.rows == before
