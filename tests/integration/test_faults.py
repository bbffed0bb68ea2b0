"""Faults survived: storage killed mid-write, a throttled / partial / slow log source, and two
rollups at once.  Each test would fail if the promise it names broke."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.log_analytics import LogAnalyticsSource
from shared.composition import rollup_service, table_store
from shared.core.usage import Granularity, UsageRow
from shared.errors import ChargebackError, LogSourceError, PartialResultError, StorageError
from shared.services.rollup import WATERMARK_NAME, RollupService
from shared.settings import Settings
from shared.tooling.azurite_process import AzuriteProcess
from shared.tooling.demo import demo_data
from tests.conftest import DEMO_END, make_settings
from tests.expected import expected_hourly, rollup_to
from tests.fakes import FakeCredential
from tests.integration.test_log_analytics import ROW, FakeWorkspace, table
from tests.integration.test_log_analytics import workspace as workspace
from tests.integration.test_rollup import stored, write_workspace

NOW = DEMO_END + timedelta(minutes=5)


@pytest.fixture(scope="module")
def traffic() -> demo_data.DemoTraffic:
    return demo_data.generate(seed=31, days=1, end=DEMO_END, requests_per_hour=25)


@pytest.fixture
def own_azurite(tmp_path: Path) -> Iterator[AzuriteProcess]:
    """An Azurite of this test's own, so killing it harms nobody else."""
    process = AzuriteProcess(tmp_path / "azurite").start()
    yield process
    process.stop()


class KillsStorage:
    """A real store whose storage process is SIGKILLed before its ``after``-th write."""

    def __init__(self, inner: Any, azurite: AzuriteProcess, after: int) -> None:
        self.inner, self.azurite, self.left = inner, azurite, after

    def upsert(self, rows: Iterable[UsageRow]) -> int:
        if self.left == 0:
            self.azurite.stop(graceful=False)
        self.left -= 1
        return int(self.inner.upsert(rows))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_storage_killed_mid_rollup_then_rerun_gives_uninterrupted_totals(
        own_azurite: AzuriteProcess, tmp_path: Path, traffic: demo_data.DemoTraffic) -> None:
    settings = make_settings(tmp_path / "ws.duckdb", own_azurite.connection_string,
                             ROLLUP_LOOKBACK_MINUTES=str(26 * 60), ROLLUP_MAX_CHUNK_HOURS="6")
    write_workspace(settings.local_workspace_path, traffic)
    real = table_store(settings)
    base = rollup_service(settings)
    killing = RollupService(base.source, KillsStorage(real, own_azurite, after=4), real,
                            lookback=base.lookback, ingestion_delay=base.ingestion_delay,
                            max_chunk=base.max_chunk, clock=lambda: NOW)
    with pytest.raises(StorageError):
        killing.run()
    own_azurite.start()  # same port, same data folder: whatever it had persisted survives
    rerun = rollup_service(settings)
    rerun.clock = lambda: NOW
    result = rerun.run()
    assert result.window is not None
    expected = expected_hourly(traffic.gateway, traffic.llm, DEMO_END - timedelta(days=1), DEMO_END)
    assert stored(settings, Granularity.HOUR) == expected
    assert stored(settings, Granularity.DAY) == rollup_to(expected, "day")
    assert stored(settings, Granularity.MONTH) == rollup_to(expected, "month")
    assert table_store(settings).get(WATERMARK_NAME).value == DEMO_END


def la_source(server: FakeWorkspace, retries: int, read_timeout: float = 10) -> LogAnalyticsSource:
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    return LogAnalyticsSource("ws", endpoint, 30, FakeCredential(),
                              client_options={"retry_total": retries, "retry_backoff_factor": 0.05,
                                              "retry_backoff_max": 0.2, "read_timeout": read_timeout},
                              query_options={"enforce_https": False})


def service_over(source: LogAnalyticsSource, settings: Settings) -> RollupService:
    store = table_store(settings)
    return RollupService(source, store, store, lookback=timedelta(hours=2), ingestion_delay=timedelta(minutes=5),
                         max_chunk=timedelta(hours=24), clock=lambda: NOW)


THROTTLED = (429, {"error": {"code": "ThrottledError", "message": "too many requests"}}, {"Retry-After": "1"}, 0.0)


def test_throttling_is_retried_honouring_retry_after(workspace: FakeWorkspace, settings: Settings) -> None:
    workspace.reply = {"tables": [table([ROW])]}
    workspace.script = [THROTTLED, THROTTLED]
    began = time.monotonic()
    result = service_over(la_source(workspace, retries=3), settings).run()
    assert len(workspace.requests) == 3
    assert time.monotonic() - began >= 2.0  # waited the two Retry-After seconds
    assert result.rows_read == 1 and table_store(settings).get(WATERMARK_NAME).value == NOW - timedelta(minutes=5)


@pytest.mark.parametrize("fault", ["throttled", "partial", "timeout"])
def test_failed_run_keeps_watermark_and_next_run_catches_up(workspace: FakeWorkspace, settings: Settings,
                                                            fault: str) -> None:
    workspace.reply = {"tables": [table([ROW])]}
    if fault == "throttled":
        workspace.script = [THROTTLED] * 3
        source, expected_error = la_source(workspace, retries=2), LogSourceError
    elif fault == "partial":
        # partial for the whole 3-hour window and again for its first hour: the rollup narrows the
        # chunk once, then fails naming the hour
        workspace.script = [(200, {"tables": [table([ROW])], "error": {"code": "PartialError", "message": "cut"}},
                             {}, 0.0)] * 2
        source, expected_error = la_source(workspace, retries=2), PartialResultError
    else:
        workspace.script = [(200, {"tables": [table([ROW])]}, {}, 2.0)] * 2
        source, expected_error = la_source(workspace, retries=1, read_timeout=0.5), LogSourceError
    began = time.monotonic()
    with pytest.raises(expected_error):
        service_over(source, settings).run()
    assert time.monotonic() - began < 15  # bounded
    store = table_store(settings)
    assert store.get(WATERMARK_NAME).value is None
    assert stored(settings, Granularity.HOUR) == {}
    time.sleep(0.1 if fault != "timeout" else 2.0)  # let the slow fake finish its sleeps
    workspace.script = []
    result = service_over(la_source(workspace, retries=2), settings).run()
    assert result.rows_read == 1 and store.get(WATERMARK_NAME).value == NOW - timedelta(minutes=5)
    assert sum(c["total_tokens"] for c in stored(settings, Granularity.HOUR).values()) == 50


def test_two_rollups_at_once_do_not_double_count(settings: Settings, traffic: demo_data.DemoTraffic) -> None:
    write_workspace(settings.local_workspace_path, traffic)
    errors: list[Exception] = []
    barrier = threading.Barrier(2)

    def one_run() -> None:
        svc = rollup_service(settings.with_overrides(ROLLUP_LOOKBACK_MINUTES=str(26 * 60),
                                                     ROLLUP_MAX_CHUNK_HOURS="4"))
        svc.clock = lambda: NOW
        barrier.wait()
        try:
            svc.run()
        except ChargebackError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # whichever lost an ETag race stopped; nothing was counted twice
    assert all("concurrent" in str(e) for e in errors)
    expected = expected_hourly(traffic.gateway, traffic.llm, DEMO_END - timedelta(days=1), DEMO_END)
    got = stored(settings, Granularity.HOUR)
    if errors:  # the loser stopped early; a catch-up run completes the window
        svc = rollup_service(settings.with_overrides(ROLLUP_LOOKBACK_MINUTES=str(26 * 60)))
        svc.clock = lambda: NOW
        svc.run()
        got = stored(settings, Granularity.HOUR)
    assert got == expected
    assert stored(settings, Granularity.DAY) == rollup_to(expected, "day")
