"""The rollup reads a (subscription, day)'s stored hours only when the day's listing (touched marks,
the period index's day rows) says it may hold some: a backfill over a fresh range reads none, days
split over chunks included, and writes the same rows as a run that reads every one; stored data is
still read, so a changed key empties its stale hours; and a run that crashed after writing hours but
before their day rows left marks, so the next run reads those hours.  On in-memory fakes; numbers
written out by hand."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from shared.core.usage import Counters, Granularity, UsageKey, UsageRow
from shared.errors import StorageError
from shared.services.rollup import RollupService
from tests.fakes import FakeClock, FakeLogSource, InMemoryUsageRepository, InMemoryWatermarkRepository
from tests.unit.test_rollup_service import counters, record

DAY = datetime(2026, 11, 18, tzinfo=UTC)
DAYS = [DAY, DAY + timedelta(days=1)]
NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
HOURS = (0, 5, 11, 17, 23)  # chunks of 10 hours split each day: 00-10, 10-20, 20-06, ...
TEAMS = ("team-0", "team-1", "team-2")


def key(team: str, model: str = "gpt-4o") -> UsageKey:
    return UsageKey(team, "starter", model, "chat")


def traffic(model_of_team_0: str = "gpt-4o") -> list[dict[str, object]]:
    """Team n: 1 + n requests of 100 prompt and 10 completion tokens each, in every hour of HOURS."""
    return [record(day + timedelta(hours=hour), key(team, model_of_team_0 if team == "team-0" else "gpt-4o"),
                   1 + n, 100 * (1 + n), 10 * (1 + n))
            for day in DAYS for hour in HOURS for n, team in enumerate(TEAMS)]


def backfill(usage: InMemoryUsageRepository, records: list[dict[str, object]], chunk_hours: int = 10) -> None:
    RollupService(FakeLogSource(records), usage, InMemoryWatermarkRepository(), lookback=timedelta(hours=3),
                  ingestion_delay=timedelta(minutes=10), max_chunk=timedelta(hours=chunk_hours),
                  clock=FakeClock(DAY + timedelta(days=5))).backfill(DAY, DAY + timedelta(days=2))


def hour_reads(usage: InMemoryUsageRepository) -> list[tuple[str, datetime]]:
    return [(subscription, start) for subscription, granularity, start, _ in usage.read_calls
            if granularity is Granularity.HOUR]


def table(usage: InMemoryUsageRepository, granularity: Granularity) -> dict[tuple[datetime, UsageKey], Counters]:
    return {(at, k): row.counters for (g, at, k), row in usage.rows.items() if g is granularity}


@pytest.mark.parametrize("chunk_hours", [10, 24])  # days split over chunks, or a day per chunk
def test_a_fresh_range_is_written_without_reading_any_stored_hours(chunk_hours: int) -> None:
    usage = InMemoryUsageRepository()
    backfill(usage, traffic(), chunk_hours)

    assert hour_reads(usage) == []
    assert usage.touched == {(team, day) for team in TEAMS for day in DAYS}  # marked before their hours
    per_day = {team: counters(5 * (1 + n), 500 * (1 + n), 50 * (1 + n)) for n, team in enumerate(TEAMS)}
    assert table(usage, Granularity.DAY) == {(day, key(team)): c for team, c in per_day.items() for day in DAYS}
    assert table(usage, Granularity.MONTH) == {(NOVEMBER, key(team)): c + c for team, c in per_day.items()}
    assert len(table(usage, Granularity.HOUR)) == len(TEAMS) * len(DAYS) * len(HOURS)

    # the same rows as a run that cannot trust the index (reads every (subscription, day) it touches)
    reading = InMemoryUsageRepository()
    reading.index_complete = False
    backfill(reading, traffic(), chunk_hours)
    assert reading.rows == usage.rows
    assert set(hour_reads(reading)) == {(team, day) for team in TEAMS for day in DAYS}


def test_a_rerun_with_a_changed_key_reads_the_stored_hours_and_empties_the_stale_ones() -> None:
    usage = InMemoryUsageRepository()
    backfill(usage, traffic())
    first_reads = len(usage.read_calls)
    # team-0's requests now resolve to another model (their LLM-log rows arrived late)
    backfill(usage, traffic(model_of_team_0="gpt-4o-mini"))

    assert {subscription for subscription, _ in hour_reads(usage)} == set(TEAMS)  # stored: read
    assert len(usage.read_calls) > first_reads
    hours = table(usage, Granularity.HOUR)
    for day in DAYS:
        for hour in HOURS:
            assert hours[(day + timedelta(hours=hour), key("team-0"))] == Counters()  # emptied
            assert hours[(day + timedelta(hours=hour), key("team-0", "gpt-4o-mini"))] == counters(1, 100, 10)
        assert table(usage, Granularity.DAY)[(day, key("team-0"))] == Counters()
        assert table(usage, Granularity.DAY)[(day, key("team-0", "gpt-4o-mini"))] == counters(5, 500, 50)
    assert table(usage, Granularity.MONTH)[(NOVEMBER, key("team-0", "gpt-4o-mini"))] == counters(10, 1000, 100)
    assert table(usage, Granularity.MONTH)[(NOVEMBER, key("team-0"))] == Counters()


class HoursThenCrash(InMemoryUsageRepository):
    """A store whose process dies in the middle of its first write: the hours of it are stored, its
    day rows (and so their index entries) are not."""

    def __init__(self) -> None:
        super().__init__()
        self.crashed = False

    def upsert(self, rows: Iterable[UsageRow]) -> int:
        batch = list(rows)
        if not self.crashed:
            self.crashed = True
            super().upsert(row for row in batch if row.granularity is Granularity.HOUR)
            raise StorageError("simulated crash between the hours and the day rows")
        return super().upsert(batch)


def test_hours_a_crashed_run_left_without_day_rows_are_read_and_emptied_by_the_next_run() -> None:
    usage = HoursThenCrash()
    with pytest.raises(StorageError, match="simulated"):
        backfill(usage, traffic(), chunk_hours=24)
    left = table(usage, Granularity.HOUR)
    assert left and not table(usage, Granularity.DAY)  # hours with no day row, so no index entry
    assert {(k.subscription_id, DAY) for _, k in left} <= usage.touched  # but their marks were stored first

    backfill(usage, traffic(model_of_team_0="gpt-4o-mini"), chunk_hours=24)
    assert ("team-0", DAY) in hour_reads(usage)
    hours = table(usage, Granularity.HOUR)
    assert all(hours[(DAY + timedelta(hours=hour), key("team-0"))] == Counters() for hour in HOURS)
    # each request counted once: 5 hours x 2 days x (1 + 2 + 3) requests
    assert sum(c.requests for c in hours.values()) == 60
    assert sum(c.requests for c in table(usage, Granularity.DAY).values()) == 60
    assert sum(c.requests for c in table(usage, Granularity.MONTH).values()) == 60


class RefusesMarks(InMemoryUsageRepository):
    def mark_touched(self, days: Iterable[tuple[str, datetime]]) -> int:
        return 0  # every mark kept aside


def test_a_mark_the_store_does_not_take_stops_the_run_before_its_hours() -> None:
    usage = RefusesMarks()
    with pytest.raises(StorageError, match="touched marks"):
        backfill(usage, traffic())
    assert usage.rows == {}
