"""The rollup against real components: a DuckDB workspace through duckdb-kql, and Azurite."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.adapters import local_workspace
from shared.composition import rollup_service, table_store
from shared.core.usage import Granularity, UsageRow
from shared.errors import ConcurrentUpdateError, StorageError, StorageUnavailableError
from shared.services.rollup import WATERMARK_NAME, RollupService
from shared.settings import Settings
from shared.tooling.azurite_process import AzuriteProcess
from shared.tooling.demo import demo_data
from tests.conftest import DEMO_END
from tests.expected import expected_hourly, rollup_to

DAYS = 2
START = DEMO_END - timedelta(days=DAYS)


@pytest.fixture(scope="module")
def traffic() -> demo_data.DemoTraffic:
    return demo_data.generate(seed=11, days=DAYS, end=DEMO_END, requests_per_hour=25)


def write_workspace(path: Path, traffic: demo_data.DemoTraffic) -> None:
    con = local_workspace.connect(path)
    try:
        local_workspace.create_tables(con)
        local_workspace.insert_rows(con, "ApiManagementGatewayLogs", traffic.gateway)
        local_workspace.insert_rows(con, "ApiManagementGatewayLlmLog", traffic.llm)
    finally:
        con.close()


@pytest.fixture
def loaded(settings: Settings, traffic: demo_data.DemoTraffic) -> Settings:
    write_workspace(settings.local_workspace_path, traffic)
    return settings


def as_map(rows: Iterable[UsageRow]) -> dict[tuple[datetime, str, str, str, str], dict[str, int]]:
    return {(r.period_start, r.key.subscription_id, r.key.product_id, r.key.model, r.key.deployment):
            r.counters.as_dict() for r in rows}


def stored(settings: Settings, granularity: Granularity) -> dict[tuple[datetime, str, str, str, str], dict[str, int]]:
    rows = table_store(settings).read_all(granularity, START - timedelta(days=40), DEMO_END + timedelta(days=40))
    return as_map(rows)


def all_entities(settings: Settings) -> list[dict[str, object]]:
    store = table_store(settings)
    client = store.table_client(store.usage_table)
    return sorted(({k: getattr(v, "value", v) for k, v in e.items()} for e in client.list_entities()),
                  key=lambda e: (str(e["PartitionKey"]), str(e["RowKey"])))


def service(settings: Settings, now: datetime, **kwargs: object) -> RollupService:
    svc = rollup_service(settings, **kwargs)  # type: ignore[arg-type]
    svc.clock = lambda: now
    return svc


def test_backfill_totals_equal_independent_computation(loaded: Settings, traffic: demo_data.DemoTraffic) -> None:
    result = service(loaded, DEMO_END).backfill(START, DEMO_END)
    expected = expected_hourly(traffic.gateway, traffic.llm, START, DEMO_END)
    assert stored(loaded, Granularity.HOUR) == expected
    assert stored(loaded, Granularity.DAY) == rollup_to(expected, "day")
    assert stored(loaded, Granularity.MONTH) == rollup_to(expected, "month")
    assert result.rows_read == len(expected) == result.hourly_rows_written
    assert result.queries == DAYS  # 24-hour chunks
    # the demo traffic exercises every bucket the rules promise
    subs = {k[1] for k in expected}
    assert "unattributed" in subs
    assert sum(c["unmetered_requests"] for c in expected.values()) > 0
    assert sum(c["error_requests"] for c in expected.values()) > 0
    assert sum(c["streamed_requests"] for c in expected.values()) > 0
    assert any(row["SequenceNumber"] > 0 for row in traffic.llm)  # chunked LLM-log rows counted once


def test_rerun_gives_identical_rows(loaded: Settings) -> None:
    svc = service(loaded, DEMO_END)
    svc.backfill(START, DEMO_END)
    first = all_entities(loaded)
    svc.backfill(START, DEMO_END)
    svc.backfill(START + timedelta(hours=5), START + timedelta(hours=30))  # overlapping window
    second = all_entities(loaded)
    strip = [{k: v for k, v in e.items() if k != "Timestamp"} for e in first]
    assert strip == [{k: v for k, v in e.items() if k != "Timestamp"} for e in second]
    assert len(first) > 100


def test_scheduled_run_moves_watermark_and_picks_up_late_rows(settings: Settings,
                                                              traffic: demo_data.DemoTraffic) -> None:
    cutoff = DEMO_END - timedelta(minutes=30)
    late = [g for g in traffic.gateway if g["TimeGenerated"] >= DEMO_END - timedelta(minutes=50)]
    on_time = demo_data.DemoTraffic([g for g in traffic.gateway if g not in late], traffic.llm)
    write_workspace(settings.local_workspace_path, on_time)
    svc = service(settings, cutoff + timedelta(minutes=5))
    first = svc.run()
    store = table_store(settings)
    assert first.window is not None and first.window.end == cutoff
    assert store.get(WATERMARK_NAME).value == cutoff
    # rows for the last hour arrive late (ingestion delay); still inside the lookback
    con = local_workspace.connect(settings.local_workspace_path)
    local_workspace.insert_rows(con, "ApiManagementGatewayLogs", [g for g in late if g["TimeGenerated"] < DEMO_END])
    con.close()
    svc.clock = lambda: DEMO_END + timedelta(minutes=5)
    second = svc.run()
    assert second.window is not None and second.window.start == DEMO_END - timedelta(hours=3)
    assert store.get(WATERMARK_NAME).value == DEMO_END
    expected = expected_hourly(traffic.gateway, traffic.llm, second.window.start, DEMO_END)
    got = stored(settings, Granularity.HOUR)
    assert {k: v for k, v in got.items() if k[0] >= second.window.start} == expected
    # The partly covered day was re-summed from its stored hours with the late ones replaced.
    assert stored(settings, Granularity.DAY) == rollup_to(got, "day")


def test_nothing_to_do_leaves_watermark(settings: Settings, traffic: demo_data.DemoTraffic) -> None:
    write_workspace(settings.local_workspace_path, traffic)
    svc = service(settings, DEMO_END)
    svc.run()
    mark = table_store(settings).get(WATERMARK_NAME)
    svc.lookback = timedelta(0)
    result = svc.run()  # same instant: window is [hour of end, end) — recomputes the partial hour
    assert table_store(settings).get(WATERMARK_NAME).value == mark.value
    assert result.watermark == mark.value


class FailingAfter:
    """A real store that dies after ``budget`` upserts, like a process killed mid-write."""

    def __init__(self, inner, budget: int) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.budget = inner, budget

    def upsert(self, rows: Iterable[UsageRow]) -> int:
        if self.budget == 0:
            raise StorageError("simulated crash")
        self.budget -= 1
        return int(self.inner.upsert(rows))

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


class FailingFrom(FailingAfter):
    """A real store that dies when asked to write an hour at or after ``cutoff``."""

    def __init__(self, inner, cutoff: datetime) -> None:  # type: ignore[no-untyped-def]
        super().__init__(inner, budget=-1)
        self.cutoff = cutoff

    def upsert(self, rows: Iterable[UsageRow]) -> int:
        rows = list(rows)
        if any(r.granularity is Granularity.HOUR and r.period_start >= self.cutoff for r in rows):
            raise StorageError("simulated crash")
        return int(self.inner.upsert(rows))


def test_crash_mid_write_then_rerun_completes_without_double_counting(
        loaded: Settings, traffic: demo_data.DemoTraffic, azurite: AzuriteProcess) -> None:
    now = DEMO_END + timedelta(minutes=5)
    real = table_store(loaded)
    crashing = FailingAfter(real, budget=1)  # the first chunk's hours and days (one write), then dies
    svc = RollupService(rollup_service(loaded).source, crashing, real, lookback=timedelta(hours=30),
                        ingestion_delay=timedelta(minutes=5), max_chunk=timedelta(hours=6), clock=lambda: now)
    with pytest.raises(StorageError, match="simulated"):
        svc.run()
    assert real.get(WATERMARK_NAME).value is None  # did not move
    partial = stored(loaded, Granularity.HOUR)
    assert partial  # some rows were written before the crash
    rerun = service(loaded, now)
    rerun.lookback = timedelta(hours=30)
    rerun.max_chunk = timedelta(hours=6)
    result = rerun.run()
    assert result.window is not None
    expected = expected_hourly(traffic.gateway, traffic.llm, result.window.start, DEMO_END)
    assert stored(loaded, Granularity.HOUR) == expected
    assert stored(loaded, Granularity.DAY) == rollup_to(expected, "day")


def test_concurrent_watermark_update_is_refused(loaded: Settings) -> None:
    store = table_store(loaded)
    before = store.get(WATERMARK_NAME)
    store.advance(WATERMARK_NAME, before, DEMO_END)
    with pytest.raises(ConcurrentUpdateError):
        store.advance(WATERMARK_NAME, before, DEMO_END + timedelta(hours=1))  # stale read: refused
    current = store.get(WATERMARK_NAME)
    store.advance(WATERMARK_NAME, current, DEMO_END + timedelta(hours=1))
    stale = current
    with pytest.raises(ConcurrentUpdateError):
        store.advance(WATERMARK_NAME, stale, DEMO_END + timedelta(hours=2))
    assert store.get(WATERMARK_NAME).value == DEMO_END + timedelta(hours=1)


def test_unreachable_storage_fails_clearly_and_keeps_watermark(loaded: Settings, azurite) -> None:  # type: ignore[no-untyped-def]
    from shared.tooling.azurite_process import free_port

    dead = loaded.with_overrides(TABLES_CONNECTION_STRING=azurite.connection_string.replace(
        f":{azurite.port}/", f":{free_port()}/"))
    with pytest.raises(StorageUnavailableError, match="unreachable"):
        service(dead, DEMO_END).run()
    assert table_store(loaded).get(WATERMARK_NAME).value is None


def test_missing_workspace_is_a_clear_error(settings: Settings) -> None:
    from shared.errors import LogSourceError

    with pytest.raises(LogSourceError, match="demo-data"):
        service(settings, DEMO_END).run()
    assert table_store(settings).get(WATERMARK_NAME).value is None


def test_big_counters_survive_int64(settings: Settings) -> None:
    from shared.core.usage import Counters, UsageKey

    row = UsageRow(Granularity.MONTH, datetime(2026, 11, 1, tzinfo=UTC), UsageKey("big", "", "m", "d"),
                   Counters(requests=3, total_tokens=9_000_000_000))
    store = table_store(settings)
    store.upsert([row])
    assert store.read("big", Granularity.MONTH, row.period_start, row.period_start + timedelta(days=31)) == [row]
    assert asdict(row)  # plain data


def test_catch_up_keeps_finished_chunks_when_a_later_chunk_fails(loaded: Settings,
                                                                 traffic: demo_data.DemoTraffic) -> None:
    """A long catch-up that dies part-way keeps the watermark at the last complete chunk."""
    real = table_store(loaded)
    crashing = FailingFrom(real, DEMO_END - timedelta(hours=10))  # dies in the 4th of 5 chunks
    svc = RollupService(rollup_service(loaded).source, crashing, real, lookback=timedelta(hours=30),
                        ingestion_delay=timedelta(0), max_chunk=timedelta(hours=6), clock=lambda: DEMO_END)
    with pytest.raises(StorageError, match="simulated"):
        svc.run()
    mark = real.get(WATERMARK_NAME).value
    window_start = DEMO_END - timedelta(hours=30)
    assert mark == window_start + timedelta(hours=18)  # three complete 6-hour chunks
    # everything before the watermark is already complete
    expected = expected_hourly(traffic.gateway, traffic.llm, window_start, mark)
    assert {k: v for k, v in stored(loaded, Granularity.HOUR).items() if k[0] < mark} == expected
    # the next run resumes from the watermark and finishes the rest
    resumed = service(loaded, DEMO_END + timedelta(minutes=5)).run()
    assert resumed.window is not None and resumed.window.start == mark - timedelta(hours=2)
    assert real.get(WATERMARK_NAME).value == DEMO_END
    everything = expected_hourly(traffic.gateway, traffic.llm, window_start, DEMO_END)
    assert stored(loaded, Granularity.HOUR) == everything
