"""A backfill over days rolled up before the APIM service was part of the usage key.

Those days hold service-less rows (service ""); the backfill recomputes them per service from two
gateways' logs (same-named subscriptions, through the real query into Azurite).  Whatever the chunk
size (whole days per chunk or parts of days), the chunk's fresh hours are the truth: the service-less
rows are written again with zero counts, every counted row equals the independent oracle's per
service (tests/expected.py, by_service), no request is counted twice, and a second backfill changes
nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shared.core.usage import Granularity
from shared.settings import Settings
from shared.tooling.demo import demo_data
from tests.conftest import DEMO_END
from tests.expected import expected_hourly, rollup_to
from tests.integration.test_apim_services import EAST, SERVICES, WEST, on_service, stored
from tests.integration.test_rollup import all_entities, service, write_workspace

DAYS = 2
START = DEMO_END - timedelta(days=DAYS)  # midnight: the backfill covers whole days


@pytest.fixture(scope="module")
def traffic() -> demo_data.DemoTraffic:
    west = on_service(demo_data.generate(seed=31, days=DAYS, end=DEMO_END, requests_per_hour=12), WEST)
    east = on_service(demo_data.generate(seed=32, days=DAYS, end=DEMO_END, requests_per_hour=12), EAST)
    return demo_data.DemoTraffic(west.gateway + east.gateway, west.llm + east.llm)


@pytest.fixture
def loaded(settings: Settings, traffic: demo_data.DemoTraffic) -> Settings:
    write_workspace(settings.local_workspace_path, traffic)
    return settings


def counted(rows: dict[tuple[Any, ...], dict[str, int]]) -> dict[tuple[Any, ...], dict[str, int]]:
    return {key: counters for key, counters in rows.items() if any(counters.values())}


def without_timestamps(settings: Settings) -> list[dict[str, object]]:
    return [{k: v for k, v in entity.items() if k != "Timestamp"} for entity in all_entities(settings)]


@pytest.mark.parametrize("chunk_hours", [24, 48, 5], ids=["a-day-per-chunk", "two-days-per-chunk", "parts-of-days"])
def test_backfill_over_service_less_days_counts_each_request_once(loaded: Settings, traffic: demo_data.DemoTraffic,
                                                                   chunk_hours: int) -> None:
    before_upgrade = loaded.with_overrides(APIM_SERVICES_MERGED="true", ROLLUP_MAX_CHUNK_HOURS=str(chunk_hours))
    service(before_upgrade, DEMO_END).backfill(START, DEMO_END)
    assert {key[-1] for key in stored(loaded, Granularity.HOUR)} == {""}

    upgraded = service(loaded.with_overrides(ROLLUP_MAX_CHUNK_HOURS=str(chunk_hours)), DEMO_END)
    chunks = upgraded.chunks(START, DEMO_END)
    whole_days = [c for c in chunks if c.start.hour == 0 and (c.end - c.start) % timedelta(days=1) == timedelta(0)]
    assert (whole_days == chunks) == (chunk_hours % 24 == 0)  # the case the test is about, or its contrast
    upgraded.backfill(START, DEMO_END)

    expected = expected_hourly(traffic.gateway, traffic.llm, START, DEMO_END, by_service=True)
    assert {key[-1] for key in expected} == SERVICES
    for granularity, oracle in ((Granularity.HOUR, expected), (Granularity.DAY, rollup_to(expected, "day")),
                                (Granularity.MONTH, rollup_to(expected, "month"))):
        rows = stored(loaded, granularity)
        assert counted(rows) == oracle, granularity
        # what no longer counts is the service-less rows of before, emptied
        emptied = rows.keys() - oracle.keys()
        assert emptied and {key[-1] for key in emptied} == {""}, granularity
    # no request twice: the month rows' requests are the gateway's rows, counted here without the oracle
    in_window = [g for g in traffic.gateway if START <= g["TimeGenerated"] < DEMO_END]
    assert sum(c["requests"] for c in stored(loaded, Granularity.MONTH).values()) == len(in_window)
    assert sum(c["requests"] for c in stored(loaded, Granularity.DAY).values()) == len(in_window)

    # a second backfill of the same window changes nothing
    before = without_timestamps(loaded)
    service(loaded.with_overrides(ROLLUP_MAX_CHUNK_HOURS=str(chunk_hours)), DEMO_END).backfill(START, DEMO_END)
    assert without_timestamps(loaded) == before
