"""PTU cost per hour and its exact allocation to the subscriptions that used the deployment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.core.deployments import Deployment, DeploymentType
from shared.core.ptu import (
    UNALLOCATED,
    LineKind,
    PtuRates,
    Reservation,
    Term,
    WeightBasis,
    allocate,
    allocate_month,
    capacity_weight,
    hour_cost,
    hour_costs,
    month_total,
    output_ratio,
)
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow

MONTH = datetime(2026, 11, 1, tzinfo=UTC)  # 30 days: 720 hours
HOURS_IN_MONTH = 720
RATES = PtuRates({DeploymentType.GLOBAL: Decimal("1.00"), DeploymentType.DATAZONE: Decimal("1.10"),
                  DeploymentType.REGIONAL: Decimal("2.00")})


def version(ptus: int, at: datetime, sku: str = "GlobalProvisionedManaged", model: str = "gpt-4o",
            deleted: bool = False) -> Deployment:
    return Deployment("ptu-east", "/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/a",
                      model, "2024-08-06", sku, "eastus2", ptus, at, deleted=deleted)


def usage(subscription: str, hour: datetime, prompt: int, completion: int, cached: int = 0,
          deployment: str = "PTU-East") -> UsageRow:
    counters = Counters(requests=1, prompt_tokens=prompt, completion_tokens=completion,
                        total_tokens=prompt + completion, cached_tokens=cached)
    return UsageRow(Granularity.HOUR, hour, UsageKey(subscription, "", "gpt-4o", deployment), counters)


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def test_allocate_is_exact_with_largest_remainder_and_key_tie_break() -> None:
    assert allocate(Decimal("1.00"), {"c": 1, "a": 1, "b": 1}) == {
        "a": Decimal("0.333334"), "b": Decimal("0.333333"), "c": Decimal("0.333333")}
    split = allocate(Decimal("100"), {"team-a": 3, "team-b": 1})
    assert split == {"team-a": Decimal("75"), "team-b": Decimal("25")}
    odd = allocate(Decimal("0.000005"), {"x": 1, "y": 1, "z": 1, "zero": 0})
    assert sum(odd.values()) == Decimal("0.000005") and odd["zero"] == 0
    assert odd == {"x": Decimal("0.000002"), "y": Decimal("0.000002"), "z": Decimal("0.000001"), "zero": 0}


@pytest.mark.parametrize("total", [Decimal("0.0000001"), Decimal("-1")])
def test_allocate_refuses_a_total_it_cannot_split_exactly(total: Decimal) -> None:
    with pytest.raises(ValueError):
        allocate(total, {"a": 1})


def test_allocate_refuses_no_weight() -> None:
    with pytest.raises(ValueError, match="no positive weight"):
        allocate(Decimal(1), {"a": 0})


@pytest.mark.parametrize(("model", "ratio"), [
    ("gpt-4o", 4), ("GPT-4o-2024-08-06", 4), ("gpt-4o-mini", 4), ("gpt-4.1", 4), ("o3", 4), ("o4-mini", 4),
    ("gpt-5", 8), ("gpt-5-mini", 8), ("gpt-5.1", 8), ("gpt-5.3-codex", 8), ("gpt-5.4", 6), ("gpt-5.10", 6),
    ("gpt-35-turbo", None), ("o1", None), ("gpt-4", None), ("gpt-6", None)])
def test_output_ratio_by_family(model: str, ratio: int | None) -> None:
    assert output_ratio(model) == ratio


def test_capacity_weight_and_unknown_model_fallback() -> None:
    counters = Counters(prompt_tokens=1000, cached_tokens=400, completion_tokens=100, total_tokens=1100)
    assert capacity_weight("gpt-4o", counters).tokens == 600 + 4 * 100
    assert capacity_weight("gpt-5", counters).tokens == 600 + 8 * 100
    unknown = capacity_weight("mystery-model", counters)
    assert (unknown.tokens, unknown.basis) == (1100, WeightBasis.TOTAL_TOKENS)


def test_hour_split_3_to_1_and_idle_hours_unallocated() -> None:
    history = [version(10, MONTH)]
    # same weight 3:1 in capacity terms: a is output heavy (400 + 4*200 = 1200), b input heavy (400)
    rows = [usage("team-a", at(2, 10), 400, 200), usage("team-b", at(2, 10), 400, 0),
            usage("team-a", at(2, 11), 1, 0, deployment="other-deployment")]

    lines = allocate_month("ptu-east", history, rows, RATES, MONTH)

    busy = [line for line in lines if line.hour == at(2, 10)]
    assert [(line.subscription_id, line.cost, line.weight, line.kind) for line in busy] == [
        ("team-a", Decimal("7.5"), 1200, LineKind.USAGE), ("team-b", Decimal("2.5"), 400, LineKind.USAGE)]
    idle = [line for line in lines if line.hour != at(2, 10)]
    assert len(idle) == HOURS_IN_MONTH - 1
    assert all(line.subscription_id == UNALLOCATED and line.cost == hour_cost(10, Decimal("1.00")) for line in idle)
    assert month_total(lines) == Decimal(10 * HOURS_IN_MONTH)


def test_three_way_exact_remainder_in_one_hour() -> None:
    history = [version(1, MONTH)]  # 1 PTU at 1.00 -> the hour costs 1.00
    rows = [usage(team, at(3, 0), 100, 0) for team in ("c", "a", "b")]
    lines = [line for line in allocate_month("ptu-east", history, rows, RATES, MONTH) if line.hour == at(3, 0)]
    assert [(line.subscription_id, line.cost) for line in lines] == [
        ("a", Decimal("0.333334")), ("b", Decimal("0.333333")), ("c", Decimal("0.333333"))]


def test_ptu_change_mid_month_changes_cost_from_its_moment() -> None:
    history = [version(10, at(1) - timedelta(days=3)), version(20, at(15, 6, 30)),
               version(20, at(20), sku="DataZoneProvisionedManaged"), version(0, at(25), deleted=True)]
    costs = hour_costs("ptu-east", history, RATES, MONTH)

    assert costs[at(15, 5)] == Decimal(10)
    assert costs[at(15, 6)] == Decimal(15)  # half an hour of 10, half of 20
    assert costs[at(15, 7)] == Decimal(20)
    assert costs[at(20, 0)] == Decimal("22.0")  # Data Zone rate from the SKU change
    assert at(25, 0) not in costs and len(costs) == 24 * 24  # deleted: no more cost
    lines = allocate_month("ptu-east", history, [usage("team-a", at(15, 6), 10, 10)], RATES, MONTH)
    assert month_total(lines) == sum(costs.values())
    (line,) = [line for line in lines if line.hour == at(15, 6)]
    assert (line.subscription_id, line.cost) == ("team-a", Decimal(15))


def test_partial_hour_is_prorated_with_one_rounding_and_lines_still_sum_exactly() -> None:
    history = [version(7, MONTH), version(11, at(4, 9, 20))]  # a change at :20 (a third of an hour)
    rows = [usage(team, at(4, 9), 10, w) for team, w in (("a", 1), ("b", 2), ("c", 3))]
    costs = hour_costs("ptu-east", history, RATES, MONTH)
    assert costs[at(4, 9)] == Decimal("9.666667")  # 7/3 + 11*2/3 = 29/3, half-even to the quantum
    lines = allocate_month("ptu-east", history, rows, RATES, MONTH)
    assert sum(line.cost for line in lines if line.hour == at(4, 9)) == Decimal("9.666667")
    assert month_total(lines) == sum(costs.values())


def test_known_capacity_sends_the_unused_share_to_unallocated() -> None:
    rates = PtuRates(RATES.hourly, tokens_per_ptu_hour=1000)
    history = [version(10, MONTH)]  # capacity 10,000 weighted tokens per hour
    rows = [usage("team-a", at(2, 10), 2000, 0), usage("team-b", at(2, 10), 500, 0),  # 25 % utilised
            usage("team-a", at(2, 11), 50_000, 0)]  # over capacity: capped at 100 %
    lines = allocate_month("ptu-east", history, rows, rates, MONTH)
    hour10 = {line.subscription_id: line.cost for line in lines if line.hour == at(2, 10)}
    assert hour10 == {"team-a": Decimal(2), "team-b": Decimal("0.5"), UNALLOCATED: Decimal("7.5")}
    hour11 = {line.subscription_id: line.cost for line in lines if line.hour == at(2, 11)}
    assert hour11 == {"team-a": Decimal(10)}


def test_unknown_model_hour_falls_back_to_total_tokens_flagged() -> None:
    history = [version(2, MONTH, model="mystery-model")]
    rows = [usage("team-a", at(5, 1), 30, 10), usage("team-b", at(5, 1), 40, 0)]
    lines = [line for line in allocate_month("ptu-east", history, rows, RATES, MONTH) if line.hour == at(5, 1)]
    assert [(line.subscription_id, line.cost, line.weight, line.weight_basis) for line in lines] == [
        ("team-a", Decimal(1), 40, WeightBasis.TOTAL_TOKENS), ("team-b", Decimal(1), 40, WeightBasis.TOTAL_TOKENS)]


def test_spread_policy_moves_idle_cost_to_users_exactly() -> None:
    history = [version(3, MONTH)]
    rows = [usage("a", at(2, 0), 1, 0), usage("b", at(2, 0), 1, 0), usage("c", at(9, 13), 0, 1)]  # weights 1,1,4
    plain = allocate_month("ptu-east", history, rows, RATES, MONTH)
    spread = allocate_month("ptu-east", history, rows, RATES, MONTH, idle="spread")

    assert month_total(spread) == month_total(plain) == Decimal(3 * HOURS_IN_MONTH)
    assert not [line for line in spread if line.subscription_id == UNALLOCATED]
    idle_lines = {line.subscription_id: line for line in spread if line.kind is LineKind.IDLE_SPREAD}
    idle_total = Decimal(3 * (HOURS_IN_MONTH - 2))
    assert sum(line.cost for line in idle_lines.values()) == idle_total
    assert {sub: line.weight for sub, line in idle_lines.items()} == {"a": 1, "b": 1, "c": 4}
    assert idle_lines["c"].cost == idle_total * 4 / 6 and idle_lines["a"].hour == MONTH


def test_spread_with_no_users_keeps_idle_unallocated() -> None:
    lines = allocate_month("ptu-east", [version(1, MONTH)], [], RATES, MONTH, idle="spread")
    assert {line.subscription_id for line in lines} == {UNALLOCATED} and month_total(lines) == HOURS_IN_MONTH


def test_reservation_spread_over_term_hours_and_idle_reserved_ptus() -> None:
    # 10 PTUs reserved for a month from 1 Nov (720 hours) at 260 per PTU: 2600 over 720 hours.
    reservation = Reservation(10, Decimal(260), MONTH, Term.MONTH, DeploymentType.GLOBAL)
    assert reservation.hours == HOURS_IN_MONTH and reservation.end == datetime(2026, 12, 1, tzinfo=UTC)
    shares = [reservation.hour_share(MONTH + i * timedelta(hours=1)) for i in range(reservation.hours)]
    assert sum(shares) == Decimal(2600) and max(shares) - min(shares) == Decimal("0.000001")

    rates = PtuRates(RATES.hourly, reservations=(reservation,))
    # 15 PTUs deployed until the 16th (5 above the reservation at list), then 5 (half the reservation idle)
    history = [version(15, MONTH), version(5, at(16))]
    rows = [usage("team-a", at(2, 0), 10, 0), usage("team-a", at(20, 0), 10, 0)]
    lines = allocate_month("ptu-east", history, rows, rates, MONTH)

    assert month_total(lines) == Decimal(2600) + 5 * Decimal("1.00") * 15 * 24
    hour20 = {line.subscription_id: line.cost for line in lines if line.hour == at(20, 0)}
    share = reservation.hour_share(at(20, 0))
    idle_half = (share / 2).quantize(Decimal("0.000001"))  # the idle reservation, rounded half-even
    assert hour20 == {"team-a": share - idle_half, UNALLOCATED: idle_half}
    hour2 = {line.subscription_id: line.cost for line in lines if line.hour == at(2, 0)}
    assert hour2 == {"team-a": reservation.hour_share(at(2, 0)) + 5}


def test_year_reservation_term_and_month_end_clamp() -> None:
    leap = Reservation(1, Decimal(2652), datetime(2028, 1, 31, tzinfo=UTC), Term.YEAR, DeploymentType.GLOBAL)
    assert leap.hours == 8784  # the term holds 29 Feb 2028
    year = Reservation(3, Decimal(2652), datetime(2026, 6, 1, tzinfo=UTC), Term.YEAR, DeploymentType.GLOBAL)
    assert year.hours == 8760
    assert sum(year.hour_share(year.start + i * timedelta(hours=1)) for i in range(year.hours)) == 3 * 2652
    month = Reservation(1, Decimal(260), datetime(2026, 1, 31, 5, tzinfo=UTC), Term.MONTH, DeploymentType.GLOBAL)
    assert month.end == datetime(2026, 2, 28, 5, tzinfo=UTC)
    with pytest.raises(ValueError, match="UTC hour"):
        Reservation(1, Decimal(260), datetime(2026, 1, 1, 0, 30, tzinfo=UTC), Term.MONTH, DeploymentType.GLOBAL)
