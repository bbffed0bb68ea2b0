"""The FOCUS export with two APIM services whose subscriptions have the same name: each row names its
gateway (``x_ApimService``), the two gateways' usage is never one row, and each (subscription, service)
pair's rows add up to its own ``/api/chargeback`` line.  On Azurite, usage stored as the rollup stores
it; every row also passes the FOCUS checks of tests/integration/test_finops_focus.py."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from shared.composition import table_store
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow, merge
from shared.settings import Settings
from tests.billing_support import call
from tests.integration.test_finops_focus import NOV, NOW, catalog, check_focus_rows, focus_csv_rows
from tests.integration.test_finops_focus import admin as admin  # fixtures, found by their names
from tests.integration.test_finops_focus import settings_file as settings_file

SERVICES = ("apim-weu", "apim-eus")
PTU_HOUR = datetime(2026, 11, 28, 10, tzinfo=UTC)


def completion(service: str, day: int) -> int:
    return (700 if service == "apim-weu" else 90_000) + day


def hour_rows() -> list[UsageRow]:
    """team-a on `chat` through both gateways on days 1-3 (different completions each), and on `ptu`
    through both in one hour (weu 1 part of its tokens, eus 3 parts)."""
    rows = []
    for day in range(3):
        for service in SERVICES:
            out = completion(service, day)
            rows.append(UsageRow(Granularity.HOUR, NOV + timedelta(days=day, hours=9),
                                 UsageKey("team-a", "p1", "gpt-4o-2024-08-06", "chat", service),
                                 Counters(requests=2, prompt_tokens=50_000, completion_tokens=out,
                                          total_tokens=50_000 + out)))
    for service, tokens in (("apim-weu", 10_000), ("apim-eus", 30_000)):
        rows.append(UsageRow(Granularity.HOUR, PTU_HOUR, UsageKey("team-a", "p1", "gpt-4o-2024-08-06", "ptu", service),
                             Counters(requests=1, prompt_tokens=tokens, total_tokens=tokens)))
    return rows


def test_two_services_same_named_subscription_are_separate_rows(admin: Settings, settings_file: Path) -> None:
    catalog(settings_file)
    hours = hour_rows()
    table_store(admin).upsert([*hours, *merge(hours, Granularity.DAY), *merge(hours, Granularity.MONTH)])

    response = call(admin, "GET", "/api/chargeback?month=2026-11&format=focus", now=NOW)
    assert response.status_code == 200, response.text
    rows = focus_csv_rows(response.text)
    total = check_focus_rows(rows)
    team_a = [r for r in rows if r["x_ApimSubscription"] == "team-a"]
    assert {r["x_ApimService"] for r in team_a} == set(SERVICES)
    assert {r["x_ApimService"] for r in rows if r["x_ApimSubscription"] == "unallocated-capacity"} == {""}

    # the token grain keeps the service: one row per subscription x service x meter kind x day
    chat = [r for r in team_a if r["x_Deployment"] == "chat"]
    grain = [(r["x_ApimService"], r["x_TokenKind"], r["ChargePeriodStart"]) for r in chat]
    assert len(grain) == len(set(grain)) == 2 * 3 * 2  # services x days x (input, output)
    outputs = {(r["x_ApimService"], r["ChargePeriodStart"]): Decimal(r["ConsumedQuantity"])
               for r in chat if r["x_TokenKind"] == "output"}
    assert outputs == {(service, f"2026-11-0{day + 1}T00:00:00Z"): Decimal(completion(service, day))
                       for service in SERVICES for day in range(3)}

    # the provisioned hour both gateways used: one share each, 1 : 3 by their tokens, nothing idle
    ptu = {r["x_ApimService"]: Decimal(r["BilledCost"]) for r in team_a if r["x_Deployment"] == "ptu"}
    assert set(ptu) == set(SERVICES) and ptu["apim-weu"] > 0
    assert abs(ptu["apim-eus"] - 3 * ptu["apim-weu"]) <= Decimal("0.00001")
    assert PTU_HOUR.strftime("%Y-%m-%dT%H:%M:%SZ") not in {
        r["ChargePeriodStart"] for r in rows if r["x_ApimSubscription"] == "unallocated-capacity"}

    # each (subscription, service) line of the chargeback is the sum of its own rows
    billed: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in rows:
        billed[(r["x_ApimSubscription"], r["x_ApimService"])] += Decimal(r["BilledCost"])
    chargeback = call(admin, "GET", "/api/chargeback?month=2026-11", now=NOW).json()
    lines = {(ln["subscriptionId"], ln["apimService"]): Decimal(ln["cost"]) for ln in chargeback["subscriptions"]}
    assert set(lines) == {("team-a", "apim-weu"), ("team-a", "apim-eus"), ("unallocated-capacity", "")}
    assert {key: billed[key] for key in lines} == lines
    assert total == Decimal(chargeback["totals"]["cost"])
