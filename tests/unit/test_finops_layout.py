"""Pure rules of the FinOps outputs: which blobs are a month's export run, how a container URL is read,
and the chargeback grouped by cost center (sums worked out by hand)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from shared.adapters.cost_export_blobs import CostExportStoreError, container_address
from shared.core.cost_centers import SubscriptionDirectory, SubscriptionInfo
from shared.core.export_layout import ExportBlob, month_export_blobs
from shared.core.pricing import Cost
from shared.core.usage import Counters
from shared.services.cost_center_report import chargeback_by_cost_center
from shared.services.costing import Chargeback, ChargebackLine

NOV = date(2026, 11, 1)


def blob(name: str, minute: int) -> ExportBlob:
    return ExportBlob(name, datetime(2026, 11, 20, 3, minute, tzinfo=UTC))


def names(blobs: list[ExportBlob]) -> list[str]:
    return [b.name for b in blobs]


def test_the_latest_run_of_each_export_is_read_and_nothing_else() -> None:
    blobs = [
        blob("costs/focus/20261101-20261130/run-a/part_0_0001.csv", 1),
        blob("costs/focus/20261101-20261130/run-a/part_1_0001.csv", 2),
        blob("costs/focus/20261101-20261130/run-b/part_0_0001.csv", 9),  # the daily run written last
        blob("costs/focus/20261101-20261130/run-b/manifest.json", 10),
        blob("costs/focus/20261001-20261031/run-c/part_0_0001.csv", 30),  # October
        blob("costs/focus/20261101-20261115/run-d/part_0_0001.csv", 40),  # a partial one-time export
        blob("costs/actual/20261101-20261130/actual_abc.csv.gz", 5),  # another export, not partitioned
        blob("costs/actual/20261101-20261130/actual_def.csv.gz", 7),
        blob("costs/readme.txt", 50),
    ]
    assert names(month_export_blobs(blobs, NOV)) == ["costs/actual/20261101-20261130/actual_def.csv.gz",
                                                     "costs/focus/20261101-20261130/run-b/part_0_0001.csv"]
    assert month_export_blobs(blobs, date(2026, 9, 1)) == []


def test_a_partial_range_is_read_when_it_is_all_there_is_and_bad_dates_are_not_ranges() -> None:
    blobs = [blob("e/x/20261101-20261115/r/part.parquet", 1), blob("e/x/20261131-20261201/r/part.csv", 2),
             blob("e/x/20261102-20261130/r/part.csv", 3)]
    assert names(month_export_blobs(blobs, NOV)) == ["e/x/20261101-20261115/r/part.parquet"]


@pytest.mark.parametrize(("url", "account", "container", "folder", "emulator"), [
    ("https://acct.blob.core.windows.net/exports", "https://acct.blob.core.windows.net", "exports", "", False),
    ("https://acct.blob.core.windows.net/exports/costs/focus/", "https://acct.blob.core.windows.net", "exports",
     "costs/focus", False),
    ("http://127.0.0.1:10000/devstoreaccount1/exports/dir", "http://127.0.0.1:10000/devstoreaccount1", "exports",
     "dir", True),
])
def test_container_urls(url: str, account: str, container: str, folder: str, emulator: bool) -> None:
    address = container_address(url)
    assert (address.account_url, address.container, address.folder, address.emulator) == (
        account, container, folder, emulator)


def test_a_url_without_a_container_is_refused() -> None:
    with pytest.raises(CostExportStoreError):
        container_address("https://acct.blob.core.windows.net/")


def test_chargeback_by_cost_center_sums_members_and_keeps_idle_capacity_apart() -> None:
    def line(sub: str, requests: int, amount: str, deployment: str = "") -> ChargebackLine:
        return ChargebackLine(sub, Counters(requests=requests), Cost(Decimal(amount)), deployment)

    report = Chargeback(datetime(2026, 11, 1, tzinfo=UTC), "USD", "test", (
        line("team-a", 2, "1.10"), line("team-b", 3, "2.25"), line("team-c", 1, "0.05"), line("stranger", 4, "9"),
        line("unallocated-capacity", 0, "30", "ptu-east")))
    directory = SubscriptionDirectory([
        SubscriptionInfo("TEAM-A", cost_center="CC-1", owner="alice"),
        SubscriptionInfo("team-b", cost_center="CC-1", owner="bob"),
        SubscriptionInfo("team-c", cost_center="CC-0")])
    lines = chargeback_by_cost_center(report, directory)
    assert [(x.cost_center, x.subscriptions, x.owners, x.counters.requests, x.cost.amount) for x in lines] == [
        ("CC-0", ("team-c",), (), 1, Decimal("0.05")),
        ("CC-1", ("team-a", "team-b"), ("alice", "bob"), 5, Decimal("3.35")),
        ("unassigned", ("stranger",), (), 4, Decimal("9")),
        ("unallocated-capacity", ("ptu-east",), (), 0, Decimal("30"))]
    assert sum(x.cost.amount for x in lines) == report.total_cost.amount
