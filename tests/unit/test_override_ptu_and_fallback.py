"""Negotiated rates on provisioned (PTU) hours and on uncatalogued (model-name fallback) lines.

Expected numbers are written out here from the feed's PTU rates (Global 1.00, Data Zone 1.10 per
PTU-hour), the shipped price file (gpt-4o 2.50 / 1.25 / 10.00 per 1M) and the overrides, never read
back from the engine."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from shared.core.cost_lines import UNALLOCATED_CAPACITY, CostBasis
from shared.core.rate_overrides import RateOverride, RateOverrideBook
from shared.core.usage import Granularity, merge
from shared.services.costing import month_cost_lines, monthly_chargeback, usage_costs
from tests.fakes import InMemoryUsageRepository
from tests.unit.test_costing_engine import NOV, pricing, row, version

HOURS_IN_NOV = 30 * 24


def test_a_ptu_discount_prices_every_hour_at_the_contracted_rate_shown_as_override() -> None:
    # 12.5 % off Data Zone PTU-hours from 1 Nov: 1.10 x 0.875 = 0.9625 per PTU-hour, 10 PTUs.
    overrides = RateOverrideBook([RateOverride("ptu", "datazone", date(2026, 11, 1), Decimal("12.5"))])
    engine = pricing(version("ptu", "DataZoneProvisionedManaged", NOV - timedelta(days=1), ptus=10),
                     overrides=overrides)
    store = InMemoryUsageRepository()
    store.upsert([row("team-a", NOV, "ptu", Granularity.HOUR, prompt_tokens=3),
                  row("team-b", NOV, "ptu", Granularity.HOUR, prompt_tokens=1)])
    lines = month_cost_lines(store, engine, NOV)
    contracted_hour = Decimal("9.625")
    first = {line.subscription_id: line for line in lines if line.charge_start == NOV}
    assert first["team-a"].billed_cost == Decimal("7.21875") and first["team-b"].billed_cost == Decimal("2.40625")
    assert all(line.cost_basis is CostBasis.OVERRIDE for line in lines)
    assert first["team-a"].contracted_unit_price == Decimal("0.9625")
    assert first["team-a"].list_unit_price == Decimal("1.1")
    assert first["team-a"].pricing_quantity == Decimal("7.5")  # 3/4 of 10 PTU-hours
    assert first["team-a"].list_cost == Decimal("8.25")  # 7.5 PTU-hours x 1.10
    idle = [line for line in lines if line.subscription_id == UNALLOCATED_CAPACITY]
    assert len(idle) == HOURS_IN_NOV - 1 and all(line.billed_cost == contracted_hour for line in idle)
    assert all(line.list_cost == Decimal("11.0") for line in idle)
    assert sum(line.billed_cost or 0 for line in lines) == HOURS_IN_NOV * contracted_hour


def test_an_explicit_ptu_hour_rate_from_mid_month_and_the_chargeback_split() -> None:
    # List 1.00 (Global) until 16 Nov, then an explicit 0.80 per PTU-hour; 4 PTUs, all hours idle.
    overrides = RateOverrideBook([RateOverride("*", "global", date(2026, 11, 16), None, {"ptu_hour": Decimal("0.80")})])
    engine = pricing(version("ptu", "GlobalProvisionedManaged", NOV - timedelta(days=1), ptus=4), overrides=overrides)
    store = InMemoryUsageRepository()
    chargeback = monthly_chargeback(store, lambda: engine, NOV)
    [idle] = chargeback.lines
    list_hours, override_hours = 15 * 24, 15 * 24
    assert idle.cost.amount == 4 * Decimal(1) * list_hours + 4 * Decimal("0.80") * override_hours
    assert idle.cost.by_basis == {"ptu-allocated": Decimal(4 * list_hours),
                                  "override": Decimal("3.20") * override_hours}
    assert idle.cost.list_amount == 4 * Decimal(1) * HOURS_IN_NOV


def test_a_models_token_rate_does_not_discount_ptu_hours() -> None:
    overrides = RateOverrideBook([RateOverride("gpt-4o", "global", date(2026, 1, 1), Decimal("50"))])
    engine = pricing(version("ptu", "GlobalProvisionedManaged", NOV - timedelta(days=1), ptus=1), overrides=overrides)
    lines = month_cost_lines(InMemoryUsageRepository(), engine, NOV)
    assert {line.cost_basis for line in lines} == {CostBasis.PTU_ALLOCATED}
    assert sum(line.billed_cost or 0 for line in lines) == HOURS_IN_NOV


def test_ptu_rows_usage_costs_carry_the_override_basis() -> None:
    overrides = RateOverrideBook([RateOverride("*", "*", date(2026, 1, 1), Decimal("10"))])
    engine = pricing(version("ptu", "DataZoneProvisionedManaged", NOV - timedelta(days=1), ptus=10),
                     overrides=overrides)
    store = InMemoryUsageRepository()
    hours = [row("team-a", NOV + timedelta(hours=h), "ptu", Granularity.HOUR, prompt_tokens=3) for h in range(5)]
    hours += [row("team-b", NOV + timedelta(hours=h), "ptu", Granularity.HOUR, prompt_tokens=1) for h in range(5)]
    store.upsert([*hours, *merge(hours, Granularity.DAY)])
    days = store.read_all(Granularity.DAY, NOV, NOV + timedelta(days=1))
    costs = {d.subscription_id: c for d, c in zip(days, usage_costs(days, store, engine), strict=True)}
    hour_cost = 10 * Decimal("1.1") * Decimal("0.9")  # 9.90
    assert costs["team-a"].amount == 5 * hour_cost * 3 / 4
    assert costs["team-a"].by_basis == {"override": costs["team-a"].amount}
    assert costs["team-b"].amount == 5 * hour_cost / 4


def test_an_uncatalogued_deployment_gets_the_models_any_type_override() -> None:
    # gpt-4o|* : 20 % off the price file's 2.50 / 1.25 / 10.00, and an explicit output rate of 9.00.
    overrides = RateOverrideBook([RateOverride("gpt-4o", "*", date(2026, 1, 1), Decimal("20"),
                                               {"output": Decimal("9.00")})])
    engine = pricing(overrides=overrides)
    day = row("team-a", NOV, deployment="not-in-catalog", prompt_tokens=2_000_000, cached_tokens=400_000,
              completion_tokens=300_000)
    [result] = usage_costs([day], InMemoryUsageRepository(), engine)
    expected = {"input": Decimal("1_600_000") * Decimal("2.00") / 1_000_000,
                "cached_input": Decimal("400_000") * Decimal("1.00") / 1_000_000,
                "output": Decimal("300_000") * Decimal("9.00") / 1_000_000}
    assert result.by_kind == expected
    assert result.amount == Decimal("3.2") + Decimal("0.4") + Decimal("2.7")
    assert result.by_basis == {"override": result.amount}
    assert result.list_amount == Decimal("4.0") + Decimal("0.5") + Decimal("3.0")
    assert result.uncatalogued == {"not-in-catalog"}
    store = InMemoryUsageRepository()
    store.upsert([day])
    lines = month_cost_lines(store, engine, NOV)
    assert {line.token_kind: (line.list_unit_price, line.contracted_unit_price, line.cost_basis) for line in lines} == {
        "input": (Decimal("2.50"), Decimal("2.0000"), CostBasis.OVERRIDE),
        "cached_input": (Decimal("1.25"), Decimal("1.0000"), CostBasis.OVERRIDE),
        "output": (Decimal("10.00"), Decimal("9.00"), CostBasis.OVERRIDE)}
    assert all(not line.catalogued for line in lines)


def test_a_type_specific_override_never_applies_to_an_uncatalogued_deployment() -> None:
    overrides = RateOverrideBook([RateOverride("gpt-4o", "datazone", date(2026, 1, 1), Decimal("20")),
                                  RateOverride("*", "global", date(2026, 1, 1), Decimal("30"))])
    day = row("team-a", NOV, deployment="not-in-catalog", prompt_tokens=1_000_000)
    [result] = usage_costs([day], InMemoryUsageRepository(), pricing(overrides=overrides))
    assert result.amount == Decimal("2.50") and result.by_basis == {"payg": Decimal("2.50")}


def test_a_blanket_override_reaches_the_fallback_from_its_day_only() -> None:
    # *|* 10 % from 16 Nov: a month row of an uncatalogued deployment is priced from its day rows.
    overrides = RateOverrideBook([RateOverride("*", "*", date(2026, 11, 16), Decimal("10"))])
    engine = pricing(overrides=overrides)
    days = [row("team-a", NOV + timedelta(days=d), deployment="not-in-catalog", prompt_tokens=1_000_000)
            for d in range(30)]
    store = InMemoryUsageRepository()
    store.upsert([*days, *merge(days, Granularity.MONTH)])
    [month] = store.read_all(Granularity.MONTH, NOV, NOV + timedelta(days=30))
    [result] = usage_costs([month], store, engine)
    assert result.by_basis == {"payg": 15 * Decimal("2.50"), "override": 15 * Decimal("2.25")}
    assert result.amount == Decimal("37.50") + Decimal("33.75")
