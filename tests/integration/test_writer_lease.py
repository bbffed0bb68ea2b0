"""One writer at a time: overlapping rollups never lose usage.

Run A's query is held (a log source that answers, then waits) while run B starts.  While A holds
the lease, B waits its bounded time and gives up with a clear error, writing nothing; if A stalls
past its lease, B takes over and completes the window, and A stops before writing its older counts.
Either way the stored totals equal a clean run's, computed by ``tests/expected.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from shared.adapters import local_workspace
from shared.adapters.run_lease import TableLease
from shared.composition import rollup_service, table_store
from shared.core.usage import Granularity
from shared.errors import ChargebackError, LeaseHeldError, LeaseLostError
from shared.ports import LogSource
from shared.queries import Query
from shared.services.rollup import WATERMARK_NAME, RollupService
from shared.settings import Settings
from shared.tooling.demo import demo_data
from tests.conftest import DEMO_END
from tests.expected import expected_hourly, rollup_to
from tests.integration.test_rollup import stored, write_workspace

NOW = DEMO_END + timedelta(minutes=5)


class HeldQuery:
    """Answers its first query, then holds it until released: run A's query still in flight."""

    def __init__(self, inner: LogSource) -> None:
        self.inner = inner
        self.answered, self.release = threading.Event(), threading.Event()
        self.calls = 0

    def run(self, query: Query, parameters: Mapping[str, object]) -> list[dict[str, Any]]:
        records = self.inner.run(query, parameters)
        self.calls += 1
        if self.calls == 1:
            self.answered.set()
            assert self.release.wait(timeout=120)
        return records

    def describe(self) -> str:
        return self.inner.describe()


def service(settings: Settings, source: LogSource | None = None) -> RollupService:
    svc = rollup_service(settings.with_overrides(ROLLUP_LOOKBACK_MINUTES=str(26 * 60)), source=source)
    svc.clock = lambda: NOW
    return svc


def lease_of(svc: RollupService) -> TableLease:
    assert isinstance(svc.lease, TableLease)
    return svc.lease


def split_late(traffic: demo_data.DemoTraffic) -> tuple[demo_data.DemoTraffic, list[dict[str, Any]]]:
    """The day's traffic without its last hour's gateway rows (they arrive late), and those rows."""
    late = [g for g in traffic.gateway if g["TimeGenerated"] >= DEMO_END - timedelta(minutes=50)]
    on_time = demo_data.DemoTraffic([g for g in traffic.gateway if g not in late], traffic.llm)
    return on_time, late


def in_thread(svc: RollupService) -> tuple[threading.Thread, list[BaseException]]:
    failures: list[BaseException] = []

    def target() -> None:
        try:
            svc.run()
        except ChargebackError as exc:
            failures.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, failures


def test_a_second_run_waits_then_gives_up_clearly_while_the_first_holds_the_lease(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    traffic = demo_data.generate(seed=41, days=1, end=DEMO_END, requests_per_hour=20)
    write_workspace(settings.local_workspace_path, traffic)
    first = service(settings)
    held = HeldQuery(first.source)
    first.source = held
    thread, failures = in_thread(first)
    try:
        assert held.answered.wait(timeout=120)
        second = service(settings)
        lease_of(second).wait = timedelta(seconds=1)
        began = time.monotonic()
        with caplog.at_level(logging.WARNING), pytest.raises(LeaseHeldError, match="concurrent rollups are refused"):
            second.run()
        assert 1.0 <= time.monotonic() - began < 10  # waited, bounded
        assert lease_of(first).owner in caplog.text and "waiting up to" in caplog.text
        assert stored(settings, Granularity.HOUR) == {}  # B wrote nothing
    finally:
        held.release.set()
        thread.join(timeout=120)
    assert failures == []
    expected = expected_hourly(traffic.gateway, traffic.llm, DEMO_END - timedelta(days=1), DEMO_END)
    assert stored(settings, Granularity.HOUR) == expected
    assert stored(settings, Granularity.DAY) == rollup_to(expected, "day")
    state = table_store(settings).table_client(settings.table_prefix + "state")
    assert [e["RowKey"] for e in state.query_entities("PartitionKey eq 'lease'")] == []  # released on exit


def test_a_run_that_lost_its_lease_stops_before_overwriting_the_newer_run(settings: Settings) -> None:
    """The reproduction: A's query returns without late rows, B finishes the window with them,
    then A resumes.  Without the lease A overwrote B's rows with its older counts for good."""
    traffic = demo_data.generate(seed=43, days=1, end=DEMO_END, requests_per_hour=25)
    on_time, late = split_late(traffic)
    write_workspace(settings.local_workspace_path, on_time)
    first = service(settings)
    lease_of(first).duration = timedelta(seconds=1)  # A stalls past its lease while its query is held
    held = HeldQuery(first.source)
    first.source = held
    thread, failures = in_thread(first)
    try:
        assert held.answered.wait(timeout=120)
        con = local_workspace.connect(settings.local_workspace_path)
        local_workspace.insert_rows(con, "ApiManagementGatewayLogs", late)  # ingested after A's query
        con.close()
        time.sleep(1.5)
        second = service(settings)
        result = second.run()  # takes the expired lease, completes the window with the late rows
        assert result.window is not None and result.hourly_rows_written > 0
    finally:
        held.release.set()
        thread.join(timeout=120)
    assert len(failures) == 1 and isinstance(failures[0], LeaseLostError)
    assert "stops before writing" in str(failures[0])
    expected = expected_hourly(traffic.gateway, traffic.llm, DEMO_END - timedelta(days=1), DEMO_END)
    assert sum(v["requests"] for v in expected.values()) > sum(
        v["requests"] for v in expected_hourly(on_time.gateway, on_time.llm, DEMO_END - timedelta(days=1),
                                               DEMO_END).values())  # the late rows matter
    assert stored(settings, Granularity.HOUR) == expected
    assert stored(settings, Granularity.DAY) == rollup_to(expected, "day")
    assert stored(settings, Granularity.MONTH) == rollup_to(expected, "month")
    assert table_store(settings).get(WATERMARK_NAME).value == DEMO_END


def test_the_lease_is_taken_by_exactly_one_of_two_racing_runs(settings: Settings) -> None:
    store = table_store(settings)
    leases = [TableLease(store, "race", wait=timedelta(seconds=0)) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def take(lease: TableLease) -> None:
        barrier.wait()
        try:
            lease.acquire()
            outcomes.append("taken")
        except LeaseHeldError:
            outcomes.append("refused")

    threads = [threading.Thread(target=take, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["refused", "taken"]
    holder = next(lease for lease in leases if lease._etag is not None)
    holder.confirm()  # renews
    holder.release()
    other = TableLease(store, "race", wait=timedelta(seconds=0))
    other.acquire()  # free again once released
    with pytest.raises(LeaseLostError):
        holder.confirm()
