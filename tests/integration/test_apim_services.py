"""Several gateways in one workspace: the logs of two APIM services, both with subscriptions of the same
names, rolled up through the real query (DuckDB + duckdb-kql) into Azurite.

Kept apart, every row equals the independent oracle's per service (tests/expected.py, by_service); with
APIM_SERVICES_MERGED the two gateways' rows of one key are summed; the usage and chargeback reports
carry ``apimService`` and never sum two services' subscriptions; rows stored before the service was a
dimension (service "") are emptied, not counted twice, when the lookback recomputes their hours.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest

from shared.composition import table_store
from shared.core.usage import Granularity, UsageRow
from shared.settings import Settings
from shared.tooling.demo import demo_data
from tests.conftest import DEMO_END
from tests.expected import FIELDS, expected_hourly, rollup_to
from tests.integration.test_rollup import all_entities, service, write_workspace
from tests.usage_support import Api

START = DEMO_END - timedelta(days=1)
# As Azure writes them (lower-cased) and as another writer might (mixed case): one service each.
WEST = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg-weu/"
        "providers/microsoft.apimanagement/service/apim-weu")
EAST = ("/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG-EUS/"
        "PROVIDERS/Microsoft.ApiManagement/service/APIM-EUS")
SERVICES = {"apim-weu", "apim-eus"}


def on_service(traffic: demo_data.DemoTraffic, resource_id: str) -> demo_data.DemoTraffic:
    return demo_data.DemoTraffic([{**g, "_ResourceId": resource_id} for g in traffic.gateway],
                                 [{**r, "_ResourceId": resource_id} for r in traffic.llm])


@pytest.fixture(scope="module")
def traffic() -> demo_data.DemoTraffic:
    """Two gateways' logs (different requests, the same subscription names) in one workspace."""
    west = on_service(demo_data.generate(seed=21, days=1, end=DEMO_END, requests_per_hour=20), WEST)
    east = on_service(demo_data.generate(seed=22, days=1, end=DEMO_END, requests_per_hour=20), EAST)
    shared = ({g["ApimSubscriptionId"] for g in west.gateway} & {g["ApimSubscriptionId"] for g in east.gateway}) - {""}
    assert len(shared) >= 3  # the point of the test: same-named subscriptions on both gateways
    return demo_data.DemoTraffic(west.gateway + east.gateway, west.llm + east.llm)


@pytest.fixture
def loaded(settings: Settings, traffic: demo_data.DemoTraffic) -> Settings:
    write_workspace(settings.local_workspace_path, traffic)
    return settings


def by_service(rows: list[UsageRow]) -> dict[tuple[Any, ...], dict[str, int]]:
    out = {}
    for r in rows:
        key = (r.period_start, r.key.subscription_id, r.key.product_id, r.key.model, r.key.deployment,
               r.key.apim_service)
        assert key not in out
        out[key] = r.counters.as_dict()
    return out


def stored(settings: Settings, granularity: Granularity) -> dict[tuple[Any, ...], dict[str, int]]:
    rows = table_store(settings).read_all(granularity, START - timedelta(days=40), DEMO_END + timedelta(days=40))
    return by_service(rows)


def summed(rows: dict[tuple[Any, ...], dict[str, int]], width: int) -> dict[tuple[Any, ...], dict[str, int]]:
    """Rows summed over the key elements past ``width`` (e.g. the service)."""
    out: dict[tuple[Any, ...], dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for key, counters in rows.items():
        for name, value in counters.items():
            out[key[:width]][name] += value
    return dict(out)


def test_two_gateways_same_named_subscriptions_are_kept_apart(loaded: Settings,
                                                              traffic: demo_data.DemoTraffic) -> None:
    service(loaded, DEMO_END).backfill(START, DEMO_END)
    expected = expected_hourly(traffic.gateway, traffic.llm, START, DEMO_END, by_service=True)
    assert {key[-1] for key in expected} == SERVICES
    assert stored(loaded, Granularity.HOUR) == expected
    assert stored(loaded, Granularity.DAY) == rollup_to(expected, "day")
    assert stored(loaded, Granularity.MONTH) == rollup_to(expected, "month")
    # the split is real: some subscription has the same hour, product, model and deployment on both
    assert {key[:5] for key in expected if key[-1] == "apim-weu"} & {key[:5] for key in expected
                                                                     if key[-1] == "apim-eus"}
    # each service's requests are its own gateway rows, counted here without the oracle's rules
    month = stored(loaded, Granularity.MONTH)
    for name, resource in (("apim-weu", WEST), ("apim-eus", EAST)):
        own = [g for g in traffic.gateway if g["_ResourceId"] == resource and START <= g["TimeGenerated"] < DEMO_END]
        assert sum(c["requests"] for key, c in month.items() if key[-1] == name) == len(own)


def test_merged_services_sum_the_gateways_rows(loaded: Settings, traffic: demo_data.DemoTraffic) -> None:
    merged = loaded.with_overrides(APIM_SERVICES_MERGED="true")
    service(merged, DEMO_END).backfill(START, DEMO_END)
    expected = expected_hourly(traffic.gateway, traffic.llm, START, DEMO_END)  # every service summed
    hours = stored(merged, Granularity.HOUR)
    assert {key[-1] for key in hours} == {""}
    assert summed(hours, 5) == expected
    assert summed(stored(merged, Granularity.MONTH), 5) == rollup_to(expected, "month")
    # and that differs from keeping them apart: some keys hold both gateways' requests
    apart = expected_hourly(traffic.gateway, traffic.llm, START, DEMO_END, by_service=True)
    assert len(apart) > len(expected)


def test_reports_carry_the_service_and_never_sum_two_services(loaded: Settings,
                                                              traffic: demo_data.DemoTraffic) -> None:
    service(loaded, DEMO_END).backfill(START, DEMO_END)
    expected = rollup_to(expected_hourly(traffic.gateway, traffic.llm, START, DEMO_END, by_service=True), "month")
    per_subscription: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for key, counters in expected.items():  # (month, subscription, product, model, deployment, service)
        for name, value in counters.items():
            per_subscription[(key[1], key[5])][name] += value
    api = Api(loaded, now=DEMO_END)
    month = [("from", "2026-11-01"), ("to", "2026-11-30"), ("granularity", "month")]

    body = api.get("/api/usage", [*month, ("groupBy", "subscription"), ("pageSize", "5000")]).json()
    got = {(r["subscriptionId"], r["apimService"]): r["requests"] for r in body["rows"]}
    assert got == {key: c["requests"] for key, c in per_subscription.items()}
    by_gateway = api.get("/api/usage", [*month, ("groupBy", "apimService")]).json()["rows"]
    assert {r["apimService"]: r["totalTokens"] for r in by_gateway} == {
        name: sum(c["total_tokens"] for (_, svc), c in per_subscription.items() if svc == name) for name in SERVICES}
    rows = list(csv.DictReader(io.StringIO(api.get("/api/usage", [*month, ("format", "csv")]).text)))
    assert {r["apimService"] for r in rows} == SERVICES

    chargeback = api.get("/api/chargeback", [("month", "2026-11")]).json()
    lines = {(ln["subscriptionId"], ln["apimService"]): ln["totalTokens"] for ln in chargeback["subscriptions"]}
    assert lines == {key: c["total_tokens"] for key, c in per_subscription.items() if key[0] != "synthetic-probe"}
    text = api.get("/api/chargeback", [("month", "2026-11"), ("format", "csv")]).text
    assert {(r["subscriptionId"], r["apimService"]) for r in csv.DictReader(io.StringIO(text))} == set(lines)


def test_rows_stored_without_a_service_are_not_counted_twice(loaded: Settings,
                                                             traffic: demo_data.DemoTraffic) -> None:
    """An installation upgraded to the service dimension: its stored rows have no service.  The next
    scheduled run recomputes its lookback hours per service and empties their service-less rows."""
    service(loaded.with_overrides(APIM_SERVICES_MERGED="true"), DEMO_END).backfill(START, DEMO_END)
    scheduled = service(loaded, DEMO_END + timedelta(minutes=5))  # window: the 2 hours before DEMO_END
    result = scheduled.run()
    assert result.window is not None and result.window.start == DEMO_END - timedelta(hours=2)
    merged = expected_hourly(traffic.gateway, traffic.llm, START, DEMO_END)
    hours = stored(loaded, Granularity.HOUR)
    recent = {key for key in hours if key[0] >= result.window.start}
    assert {key[-1] for key in recent if any(hours[key].values())} == SERVICES  # only per-service rows count there
    assert {key[-1] for key in hours if key[0] < result.window.start} == {""}  # older hours untouched
    assert any(not any(hours[key].values()) for key in recent)  # the emptied service-less rows
    assert summed(hours, 5) == merged
    assert summed(stored(loaded, Granularity.DAY), 5) == rollup_to(merged, "day")
    assert summed(stored(loaded, Granularity.MONTH), 5) == rollup_to(merged, "month")
    # a rerun of the same window changes nothing
    before = [{k: v for k, v in e.items() if k != "Timestamp"} for e in all_entities(loaded)]
    scheduled.backfill(result.window.start, DEMO_END)
    assert [{k: v for k, v in e.items() if k != "Timestamp"} for e in all_entities(loaded)] == before
