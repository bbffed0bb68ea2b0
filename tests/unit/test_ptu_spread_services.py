"""Idle PTU cost spread (``PTU_IDLE_COST=spread``) per subscription *of one APIM service*.

Two gateways' same-named subscriptions are two teams: each gets its own share of the idle cost, by
its own capacity-weighted tokens, on a line naming its service.  The expected shares are computed
here with an independent largest-remainder split in exact fractions."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from shared.core.cost_lines import UNALLOCATED_CAPACITY, AllocationMethod
from shared.core.costing_rules import Pricing, PtuPolicy
from shared.core.deployments import Deployment, DeploymentCatalog, Source
from shared.core.meters import PriceBook, parse_feed
from shared.core.pricing import parse_price_file
from shared.core.ptu_lines import ptu_cost_lines
from shared.core.rate_overrides import RateOverride, RateOverrideBook
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow, merge
from shared.services.costing import DEFAULT_PRICES, monthly_chargeback
from tests.fakes import InMemoryUsageRepository

FEED = Path(__file__).resolve().parents[1] / "data" / "retail-examples.json"
NOV = datetime(2026, 11, 1, tzinfo=UTC)
H1, H2 = NOV + timedelta(hours=3), NOV + timedelta(hours=7)
PTUS = 3
DATAZONE_RATE = Decimal("1.1")  # the feed's Provisioned Managed Data Zone Unit, eastus2, per PTU-hour
OVERRIDE_RATE = Decimal("0.80")  # a negotiated ptu_hour rate from 16 Nov (a second run of rates)
EUS, WEU = "apim-eus", "apim-weu"
# gpt-4o weighs an output token as 4 input tokens; cached input tokens weigh nothing.
USAGE = [  # (subscription, service, hour, prompt, cached, completion) -> capacity weight
    ("team-a", EUS, H1, 100, 0, 50),  # 100 + 4 x 50 = 300
    ("team-a", WEU, H1, 100, 40, 10),  # 60 + 4 x 10 = 100
    ("team-a", EUS, H2, 200, 0, 0),  # 200
    ("team-b", EUS, H2, 50, 0, 0),  # 50
]
MONTH_WEIGHTS = {("team-a", EUS): 300 + 200, ("team-a", WEU): 100, ("team-b", EUS): 50}


def rows() -> list[UsageRow]:
    return [UsageRow(Granularity.HOUR, hour, UsageKey(sub, "p1", "gpt-4o-2024-08-06", "ptu", service),
                     Counters(prompt_tokens=prompt, cached_tokens=cached, completion_tokens=completion))
            for sub, service, hour, prompt, cached, completion in USAGE]


def engine(overrides: RateOverrideBook) -> Pricing:
    book = PriceBook("USD", parse_feed([e["row"] for e in json.loads(FEED.read_text(), parse_float=Decimal)["rows"]])
                     .prices)
    ptu = Deployment("ptu", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a",
                     "gpt-4o", "2024-08-06", "DataZoneProvisionedManaged", "eastus2", PTUS, NOV - timedelta(days=1),
                     Source.MANUAL)
    return Pricing.of(parse_price_file(DEFAULT_PRICES.read_text(), "prices.default.json"), meters=book,
                      meters_as_of=date(2025, 8, 25), catalog=DeploymentCatalog([ptu]), overrides=overrides,
                      ptu=PtuPolicy("spread"))


def largest_remainder(total: Decimal, weights: dict[tuple[str, str], int],
                      quantum: Decimal) -> dict[tuple[str, str], Decimal]:
    units = Fraction(total) / Fraction(quantum)
    assert units.denominator == 1
    exact = {user: units * weight / sum(weights.values()) for user, weight in weights.items()}
    floors = {user: share.numerator // share.denominator for user, share in exact.items()}
    spare = int(units) - sum(floors.values())
    for user in sorted(exact, key=lambda u: (-(exact[u] - floors[u]), u))[:spare]:
        floors[user] += 1
    return {user: floors[user] * quantum for user in weights}


ONE_RATE = (RateOverrideBook(), 718 * PTUS * DATAZONE_RATE, DATAZONE_RATE * Decimal("0.000001"))
TWO_RATES = (RateOverrideBook([RateOverride("ptu", "datazone", date(2026, 11, 16), None, {"ptu_hour": OVERRIDE_RATE})]),
             (15 * 24 - 2) * PTUS * DATAZONE_RATE + 15 * 24 * PTUS * OVERRIDE_RATE, Decimal("0.000001"))


@pytest.mark.parametrize(("overrides", "idle_cost", "quantum"), [ONE_RATE, TWO_RATES], ids=["one-rate", "two-rates"])
def test_idle_cost_is_spread_per_subscription_and_apim_service(overrides: RateOverrideBook, idle_cost: Decimal,
                                                                quantum: Decimal) -> None:
    pricing = engine(overrides)
    lines = [line for _, line in ptu_cost_lines("ptu", pricing, rows(), NOV)]

    spread = [line for line in lines if line.allocation_method is AllocationMethod.IDLE_SPREAD]
    got = {(line.subscription_id, line.apim_service): line.billed_cost or Decimal(0) for line in spread}
    expected = largest_remainder(idle_cost, MONTH_WEIGHTS, quantum)
    assert got == expected
    assert len(spread) == 3 and sum(expected.values()) == idle_cost
    # the split really is by service: team-a's eastern share is five times its western one (within a quantum)
    assert abs(got["team-a", EUS] - 5 * got["team-a", WEU]) <= 5 * quantum
    assert all(line.charge_start == NOV and line.product_id == "" for line in spread)
    assert not [line for line in lines if line.subscription_id == UNALLOCATED_CAPACITY]

    # the used hours: each gateway's subscription its capacity-weighted share, on lines naming its service
    hour = PTUS * DATAZONE_RATE
    used = {(line.charge_start, line.subscription_id, line.apim_service): line.billed_cost
            for line in lines if line.allocation_method is AllocationMethod.CAPACITY_WEIGHTED}
    assert used == {(H1, "team-a", EUS): hour * 3 / 4, (H1, "team-a", WEU): hour / 4,
                    (H2, "team-a", EUS): hour * 4 / 5, (H2, "team-b", EUS): hour / 5}
    assert sum(line.billed_cost or 0 for line in lines) == 2 * hour + idle_cost


def test_the_chargeback_line_of_each_gateways_subscription_carries_its_spread_share() -> None:
    pricing = engine(RateOverrideBook())
    store = InMemoryUsageRepository()
    hours = rows()
    store.upsert([*hours, *merge(hours, Granularity.DAY), *merge(hours, Granularity.MONTH)])
    chargeback = monthly_chargeback(store, lambda: pricing, NOV)

    _, idle_cost, quantum = ONE_RATE
    spread = largest_remainder(idle_cost, MONTH_WEIGHTS, quantum)
    hour = PTUS * DATAZONE_RATE
    used = {("team-a", EUS): hour * 3 / 4 + hour * 4 / 5, ("team-a", WEU): hour / 4, ("team-b", EUS): hour / 5}
    by_line = {(line.subscription_id, line.apim_service): line.cost.amount for line in chargeback.lines}
    assert by_line == {user: used[user] + spread[user] for user in MONTH_WEIGHTS}
    assert chargeback.total_cost.amount == 720 * hour
