"""The costing engine on in-memory data: real feed rows, a deployment catalog with history, PTU hours.

Every expected number is computed here from the feed's prices and the token counts, independently
of the engine (per 1M tokens: tokens x price / 1,000,000)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from shared.core.cost_lines import UNALLOCATED_CAPACITY, CostBasis
from shared.core.costing_rules import Pricing, PtuPolicy, cost_of_lines, meter_quantities, token_cost, token_lines
from shared.core.deployments import Deployment, DeploymentCatalog, Source
from shared.core.meters import PriceBook, TokenKind, parse_feed
from shared.core.pricing import parse_price_file
from shared.core.rate_overrides import RateOverride, RateOverrideBook
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow, merge
from shared.services.costing import DEFAULT_PRICES, month_cost_lines, monthly_chargeback, usage_costs
from tests.fakes import InMemoryUsageRepository

FEED = Path(__file__).resolve().parents[1] / "data" / "retail-examples.json"
NOV = datetime(2026, 11, 1, tzinfo=UTC)
M = Decimal(1_000_000)


def feed_book() -> PriceBook:
    rows = json.loads(FEED.read_text(), parse_float=Decimal)["rows"]
    return PriceBook("USD", parse_feed([entry["row"] for entry in rows]).prices)


FALLBACK = parse_price_file(DEFAULT_PRICES.read_text(), "prices.default.json")


def version(name: str, sku: str, when: datetime, ptus: int | None = None, model: str = "gpt-4o") -> Deployment:
    return Deployment(name, "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a",
                      model, "2024-08-06", sku, "eastus2", ptus, when, Source.MANUAL)


def pricing(*versions: Deployment, book: PriceBook | None = None, overrides: RateOverrideBook | None = None,
            idle: str = "unallocated") -> Pricing:
    return Pricing.of(FALLBACK, meters=book or feed_book(), meters_as_of=date(2025, 8, 25),
                      catalog=DeploymentCatalog(versions), overrides=overrides or RateOverrideBook(),
                      ptu=PtuPolicy(idle))  # type: ignore[arg-type]


def row(sub: str, start: datetime, deployment: str = "chat", granularity: Granularity = Granularity.DAY,
        model: str = "gpt-4o-2024-08-06", **counts: int) -> UsageRow:
    return UsageRow(granularity, start, UsageKey(sub, "p1", model, deployment), Counters(**counts))


def cost(prompt: int, cached: int, completion: int, prices: tuple[str, str, str]) -> Decimal:
    inp, cch, out = (Decimal(p) for p in prices)
    return ((prompt - cached) * inp + cached * cch + completion * out) / M


def test_meter_quantities_follow_the_nesting_of_the_counters() -> None:
    counters = Counters(prompt_tokens=1000, cached_tokens=300, cached_audio_tokens=100, audio_prompt_tokens=250,
                        cache_write_tokens=50, completion_tokens=400, audio_completion_tokens=150,
                        reasoning_tokens=120)
    assert meter_quantities(counters) == {
        TokenKind.INPUT: 1000 - 300 - 50 - (250 - 100), TokenKind.CACHED_INPUT: 300 - 100,
        TokenKind.AUDIO_INPUT: 150, TokenKind.CACHED_AUDIO_INPUT: 100, TokenKind.CACHE_WRITE: 50,
        TokenKind.OUTPUT: 400 - 150, TokenKind.AUDIO_OUTPUT: 150}


@pytest.mark.parametrize(("sku", "prices", "basis"), [
    ("GlobalStandard", ("2.50", "1.25", "10.00"), "payg"),
    ("DataZoneStandard", ("2.75", "1.375", "11.00"), "payg"),
])
def test_feed_prices_per_deployment_type(sku: str, prices: tuple[str, str, str], basis: str) -> None:
    day = row("team-a", NOV, prompt_tokens=3_000_000, cached_tokens=1_000_000, completion_tokens=500_001)
    [result] = usage_costs([day], InMemoryUsageRepository(), pricing(version("chat", sku, NOV)))
    expected = cost(3_000_000, 1_000_000, 500_001, prices)
    assert result.amount == expected and result.by_basis == {basis: expected}
    assert result.by_kind["input"] == 2_000_000 * Decimal(prices[0]) / M
    assert result.by_kind["cached_input"] == 1_000_000 * Decimal(prices[1]) / M
    assert result.by_kind["output"] == 500_001 * Decimal(prices[2]) / M
    assert not result.uncatalogued and result.price_as_of == date(2025, 8, 25)


def test_global_batch_prices_and_an_unpriced_kind() -> None:
    day = row("team-a", NOV, prompt_tokens=2_000_000, cached_tokens=400_000, completion_tokens=1_000_000)
    engine = pricing(version("chat", "GlobalBatch", NOV))
    [result] = usage_costs([day], InMemoryUsageRepository(), engine)
    # Global Batch: 1.25 input / 5.00 output; the feed has no cached-input batch meter: unpriced, not zero
    assert result.amount == (1_600_000 * Decimal("1.25") + 1_000_000 * Decimal("5.00")) / M
    assert result.by_basis == {"batch": result.amount}
    assert result.unpriced_tokens == 400_000
    assert any("cached_input" in meter for meter in result.unpriced_meters)


def test_audio_tokens_without_an_audio_meter_are_unpriced_for_that_kind() -> None:
    day = row("team-a", NOV, prompt_tokens=1_000_000, audio_prompt_tokens=200_000, completion_tokens=0)
    [result] = usage_costs([day], InMemoryUsageRepository(), pricing(version("chat", "GlobalStandard", NOV)))
    assert result.amount == 800_000 * Decimal("2.50") / M
    assert result.unpriced_tokens == 200_000 and result.unpriced_models == {"gpt-4o-2024-08-06"}


def test_deployment_moving_from_global_to_data_zone_mid_month() -> None:
    store = InMemoryUsageRepository()
    days = [row("team-a", NOV + timedelta(days=d), prompt_tokens=1_000_000 + d, completion_tokens=10_000 * d)
            for d in range(30)]
    store.upsert(days)
    store.upsert(merge(days, Granularity.MONTH))
    moved = NOV + timedelta(days=14)  # Data Zone from 15 November
    engine = pricing(version("chat", "GlobalStandard", NOV - timedelta(days=40)), version("chat", "DataZoneStandard",
                                                                                          moved))
    [month] = store.read_all(Granularity.MONTH, NOV, NOV + timedelta(days=30))
    [result] = usage_costs([month], store, engine)
    expected = sum((cost(d.counters.prompt_tokens, 0, d.counters.completion_tokens,
                         ("2.50", "1.25", "10.00") if d.period_start < moved else ("2.75", "1.375", "11.00"))
                    for d in days), Decimal(0))
    assert result.amount == expected
    assert set(result.by_deployment_type) == {"global", "datazone"}
    chargeback = monthly_chargeback(store, lambda: engine, NOV)
    assert [(line.subscription_id, line.cost.amount) for line in chargeback.lines] == [("team-a", expected)]


def test_price_change_mid_month() -> None:
    book = feed_book()
    [global_input] = [r for r in book.rows if r.key.token_kind is TokenKind.INPUT and r.key.deployment_type == "global"
                      and r.key.mode == "standard" and r.key.model == "gpt-4o" and r.key.version == "0806"]
    cheaper = replace(global_input, price=Decimal("2.00"), effective_start=NOV + timedelta(days=10))
    engine = pricing(version("chat", "GlobalStandard", NOV - timedelta(days=40)),
                     book=book.merge([cheaper]).book)
    store = InMemoryUsageRepository()
    days = [row("team-a", NOV + timedelta(days=d), prompt_tokens=123_457) for d in range(20)]
    store.upsert([*days, *merge(days, Granularity.MONTH)])
    [month] = store.read_all(Granularity.MONTH, NOV, NOV + timedelta(days=30))
    [result] = usage_costs([month], store, engine)
    assert result.amount == (10 * 123_457 * Decimal("2.50") + 10 * 123_457 * Decimal("2.00")) / M


def test_negotiated_discount_is_shown_as_override_with_the_list_price_beside_it() -> None:
    overrides = RateOverrideBook([RateOverride("gpt-4o", "datazone", date(2026, 1, 1), Decimal("10"))])
    engine = pricing(version("chat", "DataZoneStandard", NOV), overrides=overrides)
    store = InMemoryUsageRepository()
    store.upsert([row("team-a", NOV, prompt_tokens=1_000_000)])
    [line] = month_cost_lines(store, engine, NOV)
    assert line.cost_basis is CostBasis.OVERRIDE
    assert line.list_unit_price == Decimal("2.75") and line.contracted_unit_price == Decimal("2.475")
    assert line.list_cost == Decimal("2.75") and line.billed_cost == Decimal("2.475")


def test_uncatalogued_deployment_is_priced_by_model_name_and_reported() -> None:
    day = row("team-a", NOV, deployment="unknown-dep", prompt_tokens=1_000_000, completion_tokens=100_000)
    [result] = usage_costs([day], InMemoryUsageRepository(), pricing(version("chat", "GlobalStandard", NOV)))
    assert result.amount == cost(1_000_000, 0, 100_000, ("2.50", "1.25", "10.00"))  # prices.default.json gpt-4o
    assert result.uncatalogued == {"unknown-dep"} and result.by_deployment_type == {"uncatalogued": result.amount}
    assert result.price_as_of == date(2025, 7, 1)


def test_ptu_hour_split_three_to_one_with_the_remainder_exact_and_idle_hours() -> None:
    created = NOV + timedelta(hours=10, minutes=20)  # 40 minutes of the 10:00 hour are billed
    engine = pricing(version("ptu", "GlobalProvisionedManaged", created, ptus=50))
    store = InMemoryUsageRepository()
    hour = NOV + timedelta(hours=10)
    # capacity weight = input - cached + 4 x output (gpt-4o): 300 vs 100
    store.upsert([row("team-a", hour, "ptu", Granularity.HOUR, prompt_tokens=300),
                  row("team-b", hour, "ptu", Granularity.HOUR, prompt_tokens=60, completion_tokens=10)])
    lines = month_cost_lines(store, engine, NOV)
    in_hour = {line.subscription_id: line for line in lines if line.charge_start == hour}
    hour_cost = Decimal("33.333333")  # 50 PTUs x 1.00 x 40/60, rounded once to the quantum
    assert in_hour["team-a"].billed_cost == Decimal("25.000000")  # 3/4 = 24.99999975: gets the spare quantum
    assert in_hour["team-b"].billed_cost == Decimal("8.333333")
    assert UNALLOCATED_CAPACITY not in in_hour
    assert sum(line.billed_cost or 0 for line in in_hour.values()) == hour_cost
    idle = [line for line in lines if line.subscription_id == UNALLOCATED_CAPACITY]
    whole_hours = 30 * 24 - 11  # 11:00 on 1 Nov to the end of the month
    assert len(idle) == whole_hours and all(line.billed_cost == Decimal(50) for line in idle)
    assert all(line.pricing_quantity == Decimal(50) and line.list_unit_price == 1 for line in idle)
    assert sum(line.billed_cost or 0 for line in lines) == hour_cost + 50 * whole_hours
    chargeback = monthly_chargeback(store, lambda: engine, NOV)
    assert [(line.subscription_id, line.deployment) for line in chargeback.lines] == [
        (UNALLOCATED_CAPACITY, "ptu")]  # no month rows were stored: only the idle line has cost
    assert chargeback.total_cost.amount == 50 * whole_hours


def test_ptu_rows_carry_their_share_in_usage_costs_and_the_idle_line_in_the_chargeback() -> None:
    engine = pricing(version("ptu", "DataZoneProvisionedManaged", NOV - timedelta(days=1), ptus=10))
    store = InMemoryUsageRepository()
    hours = [row("team-a", NOV + timedelta(hours=h), "ptu", Granularity.HOUR, prompt_tokens=3) for h in range(5)]
    hours += [row("team-b", NOV + timedelta(hours=h), "ptu", Granularity.HOUR, prompt_tokens=1) for h in range(5)]
    store.upsert([*hours, *merge(hours, Granularity.DAY), *merge(hours, Granularity.MONTH)])
    days = store.read_all(Granularity.DAY, NOV, NOV + timedelta(days=1))
    costs = dict(zip([d.subscription_id for d in days], usage_costs(days, store, engine), strict=True))
    hour_cost = 10 * Decimal("1.1")
    assert costs["team-a"].amount == 5 * hour_cost * 3 / 4 and costs["team-b"].amount == 5 * hour_cost / 4
    assert costs["team-a"].by_basis == {"ptu-allocated": costs["team-a"].amount}
    chargeback = monthly_chargeback(store, lambda: engine, NOV)
    by_sub = {line.subscription_id: line.cost.amount for line in chargeback.lines}
    assert by_sub[UNALLOCATED_CAPACITY] == (30 * 24 - 5) * hour_cost
    assert chargeback.total_cost.amount == 30 * 24 * hour_cost


def test_idle_cost_spread_over_the_months_users() -> None:
    engine = pricing(version("ptu", "GlobalProvisionedManaged", NOV, ptus=2), idle="spread")
    store = InMemoryUsageRepository()
    store.upsert([row("team-a", NOV, "ptu", Granularity.HOUR, prompt_tokens=2),
                  row("team-b", NOV, "ptu", Granularity.HOUR, prompt_tokens=1)])
    lines = month_cost_lines(store, engine, NOV)
    assert not [line for line in lines if line.subscription_id == UNALLOCATED_CAPACITY]
    total = {sub: sum(line.billed_cost or 0 for line in lines if line.subscription_id == sub)
             for sub in ("team-a", "team-b")}
    assert total["team-a"] + total["team-b"] == 2 * 30 * 24


def test_a_rows_cost_is_the_sum_of_its_lines() -> None:
    overrides = RateOverrideBook([RateOverride("gpt-4o", "datazone", date(2026, 1, 1), Decimal("7.5"))])
    engine = pricing(version("chat", "DataZoneStandard", NOV), version("batch", "GlobalBatch", NOV),
                     overrides=overrides)
    for deployment in ("chat", "batch", "not-catalogued"):
        one = row("team-a", NOV, deployment, prompt_tokens=1_234_567, cached_tokens=234_567, audio_prompt_tokens=1_000,
                  completion_tokens=98_765, audio_completion_tokens=5)
        assert token_cost(one, engine) == cost_of_lines(token_lines(one, engine), one.key.model)
