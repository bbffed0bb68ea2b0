"""Touched marks and the day listing against Azurite: a backfill over a fresh range reads no stored
hours and leaves one mark per (subscription, day) it wrote, naming exactly the subscriptions whose
day rows the usage table holds (and the index's day partition names the same); the marks stay out
of the period reads; the rerun reads each (subscription, day) once per chunk and writes identical
rows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.tables import TableStore
from shared.composition import log_source, table_store
from shared.core.usage import Granularity, UsageRow
from shared.services.rollup import RollupService
from shared.settings import Settings
from shared.tooling.demo import demo_data
from tests.conftest import DEMO_END
from tests.integration.test_rollup import all_entities, write_workspace

DAYS = 2
START = DEMO_END - timedelta(days=DAYS)  # midnight
CHUNK = timedelta(hours=10)  # days split over chunks


class CountingReads:
    """The real store, with its one-subscription hour reads counted."""

    def __init__(self, inner: TableStore) -> None:
        self.inner = inner
        self.hour_reads: list[tuple[str, datetime]] = []

    def read(self, subscription_id: str, granularity: Granularity, start: datetime, end: datetime) -> list[UsageRow]:
        if granularity is Granularity.HOUR:
            self.hour_reads.append((subscription_id, start))
        return self.inner.read(subscription_id, granularity, start, end)

    def upsert(self, rows: Iterable[UsageRow]) -> int:
        return self.inner.upsert(rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def backfill(settings: Settings) -> CountingReads:
    store = table_store(settings)
    counting = CountingReads(store)
    RollupService(log_source(settings), counting, store, lookback=settings.rollup_lookback,
                  ingestion_delay=settings.rollup_ingestion_delay, max_chunk=CHUNK).backfill(START, DEMO_END)
    return counting


def without_timestamps(settings: Settings) -> list[dict[str, object]]:
    return [{k: v for k, v in entity.items() if k != "Timestamp"} for entity in all_entities(settings)]


def test_a_fresh_backfill_reads_no_hours_and_marks_what_it_wrote(settings: Settings) -> None:
    traffic = demo_data.generate(seed=7, days=DAYS, end=DEMO_END, requests_per_hour=12)
    write_workspace(settings.local_workspace_path, traffic)

    first = backfill(settings)
    assert first.hour_reads == []

    store = table_store(settings)
    days = [START + timedelta(days=n) for n in range(DAYS)]
    for day in days:
        with_day_rows = {row.subscription_id for row in store.read_all(Granularity.DAY, day, day + timedelta(days=1))}
        indexed = store.indexed_subscriptions(day)
        assert with_day_rows and indexed is not None, day
        assert store.touched_subscriptions(day) == with_day_rows == indexed
    # the marks are no period rows: every day row read back is a usage table's day row
    usage_day_rows = [e for e in all_entities(settings) if str(e["RowKey"]).startswith("d|")]
    assert len(store.read_all(Granularity.DAY, START, DEMO_END)) == len(usage_day_rows)

    before = without_timestamps(settings)
    second = backfill(settings)
    # stored now: each (subscription, day) read once per chunk touching it
    assert {(subscription, day) for subscription, day in second.hour_reads} == {
        (subscription, day) for day in days for subscription in store.touched_subscriptions(day)}
    assert without_timestamps(settings) == before
