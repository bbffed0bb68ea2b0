"""Chunks sized by result rows, not by hand.

A local source that enforces a (small) result-row cap the way Log Analytics enforces its 500,000
rows: above the cap it answers a partial result (``PartialResultError``).  The rollup halves the
chunk and asks again, remembers the rows per hour it saw, and the next run sizes its chunks from
them so no query hits the cap at all.  Totals are checked against ``tests/expected.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.composition import rollup_service, table_store
from shared.core.usage import Granularity
from shared.errors import PartialResultError
from shared.ports import LogSource
from shared.queries import Query
from shared.services.rollup import WATERMARK_NAME, RollupService
from shared.settings import Settings
from shared.tooling.demo import demo_data
from tests.conftest import DEMO_END
from tests.expected import expected_hourly, rollup_to
from tests.integration.test_rollup import stored, write_workspace

DAYS = 1
START = DEMO_END - timedelta(days=DAYS)


class RowCapped:
    """A log source answering at most ``cap`` result rows; more is a partial result, as in Azure."""

    def __init__(self, inner: LogSource, cap: int) -> None:
        self.inner, self.cap = inner, cap
        self.asked: list[tuple[datetime, datetime, int]] = []  # (start, end, rows) of every query

    def run(self, query: Query, parameters: Mapping[str, object]) -> list[dict[str, Any]]:
        records = self.inner.run(query, parameters)
        start, end = parameters["window_start"], parameters["window_end"]
        assert isinstance(start, datetime) and isinstance(end, datetime)
        self.asked.append((start, end, len(records)))
        if len(records) > self.cap:
            raise PartialResultError(f"{len(records)} result rows, over the cap of {self.cap}")
        return records

    def describe(self) -> str:
        return self.inner.describe()

    def answered(self) -> list[tuple[datetime, datetime, int]]:
        return [asked for asked in self.asked if asked[2] <= self.cap]


@pytest.fixture(scope="module")
def traffic() -> demo_data.DemoTraffic:
    return demo_data.generate(seed=5, days=DAYS, end=DEMO_END, requests_per_hour=30)


def capped_service(settings: Settings, cap: int, **overrides: str) -> tuple[RollupService, RowCapped]:
    svc = rollup_service(settings.with_overrides(**overrides))
    source = RowCapped(svc.source, cap)
    svc.source = source
    svc.target_rows = cap
    svc.clock = lambda: DEMO_END + timedelta(minutes=5)
    return svc, source


def test_a_partial_result_halves_the_chunk_and_the_next_run_sizes_chunks_from_rows_per_hour(
        settings: Settings, traffic: demo_data.DemoTraffic) -> None:
    write_workspace(settings.local_workspace_path, traffic)
    expected = expected_hourly(traffic.gateway, traffic.llm, START, DEMO_END)
    hourly = {start: sum(1 for key in expected if key[0] == start) for start in {key[0] for key in expected}}
    cap = 4 * max(hourly.values())  # several hours fit, a day does not
    assert sum(hourly.values()) > cap
    first, source = capped_service(settings, cap)  # ROLLUP_MAX_CHUNK_HOURS: the default 24
    first.backfill(START, DEMO_END)
    assert stored(settings, Granularity.HOUR) == expected  # nothing lost to the partial answers
    assert stored(settings, Granularity.DAY) == rollup_to(expected, "day")
    assert stored(settings, Granularity.MONTH) == rollup_to(expected, "month")
    refused = [asked for asked in source.asked if asked[2] > cap]
    assert refused and refused[0][1] - refused[0][0] == timedelta(hours=24)  # tried the whole day first
    assert all(end - start <= timedelta(hours=12) for start, end, _ in source.answered())
    # the densest rate any answered chunk saw is kept for the next run
    densest = max(rows / ((end - start) / timedelta(hours=1)) for start, end, rows in source.answered())
    assert table_store(settings).rows_per_hour(WATERMARK_NAME) == pytest.approx(densest)

    second, source = capped_service(settings, cap)
    planned = int(cap // densest)
    assert 1 <= planned < 24
    assert second.chunks(START, DEMO_END)[0].end - START == timedelta(hours=planned)
    second.backfill(START, DEMO_END)
    assert all(rows <= cap for _, _, rows in source.asked)  # sized right: no partial result at all
    assert all(end - start == timedelta(hours=planned) for start, end, _ in source.asked[:-1])
    assert stored(settings, Granularity.HOUR) == expected


def test_the_chunk_never_exceeds_rollup_max_chunk_hours(settings: Settings, traffic: demo_data.DemoTraffic) -> None:
    write_workspace(settings.local_workspace_path, traffic)
    svc, source = capped_service(settings, 10**9, ROLLUP_MAX_CHUNK_HOURS="5")
    table_store(settings).record_rows_per_hour(WATERMARK_NAME, 0.5)  # a quiet history would allow far more
    svc.backfill(START, DEMO_END)
    assert max(end - start for start, end, _ in source.asked) == timedelta(hours=5)


def test_one_hour_over_the_cap_fails_naming_the_hour_and_keeps_the_watermark(
        settings: Settings, traffic: demo_data.DemoTraffic) -> None:
    write_workspace(settings.local_workspace_path, traffic)
    svc, source = capped_service(settings, 1, ROLLUP_LOOKBACK_MINUTES="180")
    with pytest.raises(PartialResultError, match=r"single hour 2026-11-19T21:00:00\+00:00 \.\. 2026-11-19T22:00"):
        svc.run()
    assert [end - start for start, end, _ in source.asked] == [timedelta(hours=3), timedelta(hours=1)]
    assert table_store(settings).get(WATERMARK_NAME).value is None
    assert stored(settings, Granularity.HOUR) == {}
